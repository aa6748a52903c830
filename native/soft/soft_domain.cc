// Buffer pools and ring layout of the software ports (see soft_domain.h).
#include "soft/soft_domain.h"

#include <map>

#include "core/errors.h"

namespace nmwasm {

namespace {
uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t ringBytes(uint32_t numSlots) { return alignUp(kRingHeaderSize + uint64_t{numSlots} * (sizeof(NetmapSlot) + 1), 128); }

std::mutex sharedMu;
std::map<uint32_t, std::weak_ptr<SoftDomain>> sharedPools;
}  // namespace

std::vector<RingGeometry> softRingLayout(const std::string& port, uint32_t rings, uint32_t numSlots, uint64_t* bytes) {
  std::vector<RingGeometry> geos(rings);
  uint64_t ofs = 0;
  for (RingGeometry& g : geos) {
    g.ringOfs = ofs;
    g.verdictOfs = ofs + kRingHeaderSize + uint64_t{numSlots} * sizeof(NetmapSlot);
    g.buffersOfs = kSoftRingArea;
    g.numSlots = numSlots;
    g.bufSize = kSoftBufSize;
    ofs += ringBytes(numSlots);
  }
  if (ofs > kSoftRingArea)
    throw NativeError("ENOSPC", port, "", 0,
                      std::to_string(rings) + " ring(s) of " + std::to_string(numSlots) + " slots need " + std::to_string(ofs) + " bytes, more than the " +
                          std::to_string(kSoftRingArea >> 20) + " MiB ring area of a software port: use fewer @conf:rings or slots");
  *bytes = ofs;
  return geos;
}

std::shared_ptr<SoftDomain> SoftDomain::shared(uint32_t memId) {
  std::lock_guard<std::mutex> lock(sharedMu);
  std::shared_ptr<SoftDomain> d = sharedPools[memId].lock();
  if (!d) {
    d = std::make_shared<SoftDomain>("software memory region " + std::to_string(memId));
    sharedPools[memId] = d;
  }
  return d;
}

std::shared_ptr<SoftDomain> SoftDomain::makePrivate(const std::string& owner) { return std::make_shared<SoftDomain>(owner + " buffers"); }

// NB: not populated: the pool is sparse (its first kSoftRingArea bytes are never used, and
// only the buffers handed out are touched), so each page costs one minor fault per mapping
// at its first use instead of 63 MiB of RAM per pool up front.
SoftDomain::SoftDomain(const std::string& label) : memory_(std::make_shared<PacketMemory>(label, kSoftMemorySize, false)) {
  freeBufs_.reserve(kSoftBuffers);
  // Hand out low indices first (a stack pops from the back): the touched pages stay few.
  for (uint32_t i = kSoftBuffers; i > 0; i--) freeBufs_.push_back(i - 1);
}

void SoftDomain::allocBuffers(const std::string& port, uint32_t n, uint32_t* out) {
  std::lock_guard<std::mutex> lock(mu_);
  if (freeBufs_.size() < n)
    throw NativeError("ENOSPC", port, "", 0,
                      "the software ports' buffer pool is short: " + std::to_string(n) + " buffers needed, " + std::to_string(freeBufs_.size()) +
                          " of " + std::to_string(kSoftBuffers) + " free: open fewer software ports on this pool or use @conf:slots=256");
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
