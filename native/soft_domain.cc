// Shared memory of the software ports (see soft_domain.h).
#include "soft_domain.h"

#include "errors.h"

namespace nmwasm {

namespace {
uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t ringBytes(uint32_t numSlots) { return alignUp(kRingHeaderSize + uint64_t{numSlots} * (sizeof(NetmapSlot) + 1), 128); }

std::mutex instanceMu;
std::weak_ptr<SoftDomain> current;
}  // namespace

std::shared_ptr<SoftDomain> SoftDomain::instance() {
  std::lock_guard<std::mutex> lock(instanceMu);
  std::shared_ptr<SoftDomain> d = current.lock();
  if (!d) {
    d = std::make_shared<SoftDomain>();
    current = d;
  }
  return d;
}

SoftDomain::SoftDomain() : memory_(std::make_shared<PacketMemory>("software ports", kSoftMemorySize)) {
  freeRings_.push_back(Extent{0, kSoftRingArea});
  freeBufs_.reserve(kSoftBuffers);
  // Hand out low indices first (a stack pops from the back).
  for (uint32_t i = kSoftBuffers; i > 0; i--) freeBufs_.push_back(i - 1);
}

RingGeometry SoftDomain::allocRing(const std::string& port, uint32_t numSlots) {
  const uint64_t need = ringBytes(numSlots);
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < freeRings_.size(); i++) {
    Extent& e = freeRings_[i];
    if (e.size < need) continue;
    RingGeometry g{};
    g.ringOfs = e.ofs;
    g.verdictOfs = e.ofs + kRingHeaderSize + uint64_t{numSlots} * sizeof(NetmapSlot);
    g.buffersOfs = kSoftRingArea;
    g.numSlots = numSlots;
    g.bufSize = kSoftBufSize;
    e.ofs += need;
    e.size -= need;
    if (e.size == 0) freeRings_.erase(freeRings_.begin() + static_cast<long>(i));
    return g;
  }
  throw NativeError("ENOSPC", port, "", 0,
                    "the software ports' ring area (" + std::to_string(kSoftRingArea >> 20) + " MiB) is full: open fewer software rings or use @conf:slots=256");
}

void SoftDomain::freeRing(const RingGeometry& geo) noexcept {
  const Extent back{geo.ringOfs, ringBytes(geo.numSlots)};
  std::lock_guard<std::mutex> lock(mu_);
  size_t i = 0;
  while (i < freeRings_.size() && freeRings_[i].ofs < back.ofs) i++;
  try {
    freeRings_.insert(freeRings_.begin() + static_cast<long>(i), back);
  } catch (...) {
    return;  // out of memory: the area stays lost, nothing else breaks
  }
  // Coalesce with the neighbours.
  if (i + 1 < freeRings_.size() && freeRings_[i].ofs + freeRings_[i].size == freeRings_[i + 1].ofs) {
    freeRings_[i].size += freeRings_[i + 1].size;
    freeRings_.erase(freeRings_.begin() + static_cast<long>(i) + 1);
  }
  if (i > 0 && freeRings_[i - 1].ofs + freeRings_[i - 1].size == freeRings_[i].ofs) {
    freeRings_[i - 1].size += freeRings_[i].size;
    freeRings_.erase(freeRings_.begin() + static_cast<long>(i));
  }
}

void SoftDomain::allocBuffers(const std::string& port, uint32_t n, uint32_t* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (freeBufs_.size() < n)
    throw NativeError("ENOSPC", port, "", 0,
                      "the software ports' buffer pool is short: " + std::to_string(n) + " buffers needed, " + std::to_string(freeBufs_.size()) +
                          " of " + std::to_string(kSoftBuffers) + " free: open fewer software ports or use @conf:slots=256");
  for (uint32_t i = 0; i < n; i++) {
    out[i] = freeBufs_.back();
    freeBufs_.pop_back();
  }
}

void SoftDomain::freeBuffers(const uint32_t* idx, uint32_t n) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t i = 0; i < n; i++) freeBufs_.push_back(idx[i]);  // capacity kSoftBuffers: never reallocates
}

uint32_t SoftDomain::freeBufferCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<uint32_t>(freeBufs_.size());
}

}  // namespace nmwasm
