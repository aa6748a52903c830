// Software VALE learning switch (see vale_switch.h).
#include "soft/vale_switch.h"

#include <map>

#include "core/errors.h"

namespace nmwasm {

namespace {
constexpr int32_t kFlood = -2;
constexpr int32_t kNone = -1;

std::mutex registryMu;
std::map<std::string, std::weak_ptr<ValeSwitch>> registry;

inline uint64_t macAt(const uint8_t* p) {
  return uint64_t{p[0]} << 40 | uint64_t{p[1]} << 32 | uint64_t{p[2]} << 24 | uint64_t{p[3]} << 16 | uint64_t{p[4]} << 8 | p[5];
}
inline uint32_t macSlot(uint64_t mac) { return static_cast<uint32_t>((mac * 0x9E3779B97F4A7C15ull) >> 52) & (ValeSwitch::kMacEntries - 1); }
inline uint32_t mix(uint32_t a, uint32_t b) { return (a ^ b) * 0x9E3779B1u; }
inline uint32_t load32(const uint8_t* p) { return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3]; }
inline uint32_t load16(const uint8_t* p) { return uint32_t{p[0]} << 8 | p[1]; }
}  // namespace

uint32_t softFlowHash(const uint8_t* d, uint32_t len) noexcept {
  if (len < 14) return 0;
  const uint32_t type = load16(d + 12);
  if (type == 0x0800 && len >= 34) {
    const uint32_t ihl = (d[14] & 0x0F) * 4u;
    uint32_t h = load32(d + 26) + load32(d + 30);  // + is symmetric: both directions hash alike
    const uint8_t proto = d[23];
    if ((proto == 6 || proto == 17) && ihl >= 20 && len >= 14 + ihl + 4) h += load16(d + 14 + ihl) + load16(d + 16 + ihl);
    return mix(h, proto);
  }
  if (type == 0x86DD && len >= 54) {
    uint32_t h = 0;
    for (uint32_t i = 0; i < 32; i += 4) h += load32(d + 22 + i);
    const uint8_t next = d[20];
    if ((next == 6 || next == 17) && len >= 58) h += load16(d + 54) + load16(d + 56);
    return mix(h, next);
  }
  return mix(load32(d) + load32(d + 6), load16(d + 4) + load16(d + 10));
}

std::shared_ptr<ValeSwitch> ValeSwitch::get(const std::string& name) {
  std::lock_guard<std::mutex> lock(registryMu);
  std::shared_ptr<ValeSwitch> sw = registry[name].lock();
  if (!sw) {
    sw = std::make_shared<ValeSwitch>(name);
    registry[name] = sw;
  }
  return sw;
}

ValeSwitch::ValeSwitch(std::string name)
    : name_(std::move(name)), macs_(kMacEntries), dest_(kMaxBatch), hash_(kMaxBatch), delivered_(kMaxBatch), gather_(kMaxBatch), gatherIdx_(kMaxBatch) {}

uint32_t ValeSwitch::join(const std::string& port, SoftSink* sink) {
  std::lock_guard<std::mutex> lock(mu_);
  for (uint32_t i = 0; i < kMaxPorts; i++) {
    if (ports_[i].sink != nullptr) continue;
    ports_[i].sink = sink;
    ports_[i].gen++;
    return i;
  }
  throw NativeError("ENOSPC", port, "", 0, "switch " + name_ + " has " + std::to_string(kMaxPorts) + " ports already: use another switch (vale1:...)");
}

void ValeSwitch::leave(uint32_t idx) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  ports_[idx].sink = nullptr;
  ports_[idx].gen++;  // its MAC entries are stale from now on
}

void ValeSwitch::wakeAll() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  for (const PortRow& row : ports_)
    if (row.sink != nullptr)
      for (auto& q : row.sink->queues) q->wake();
}

void ValeSwitch::learn(uint64_t mac, uint32_t port) noexcept {
  const uint64_t key = mac | 1ull << 63;
  const uint32_t home = macSlot(mac);
  int32_t freeAt = -1;
  for (uint32_t p = 0; p < 8; p++) {
    MacEntry& e = macs_[(home + p) & (kMacEntries - 1)];
    if (e.key == key) {
      e.port = port;
      e.gen = ports_[port].gen;
      return;
    }
    const bool stale = e.key == 0 || ports_[e.port].sink == nullptr || ports_[e.port].gen != e.gen;
    if (stale && freeAt < 0) freeAt = static_cast<int32_t>((home + p) & (kMacEntries - 1));
  }
  // Full neighbourhood: the newest address wins its home slot.
  MacEntry& e = macs_[freeAt >= 0 ? static_cast<uint32_t>(freeAt) : home];
  e.key = key;
  e.port = port;
  e.gen = ports_[port].gen;
}

int32_t ValeSwitch::lookup(uint64_t mac) const noexcept {
  const uint64_t key = mac | 1ull << 63;
  const uint32_t home = macSlot(mac);
  for (uint32_t p = 0; p < 8; p++) {
    const MacEntry& e = macs_[(home + p) & (kMacEntries - 1)];
    if (e.key != key) continue;
    if (ports_[e.port].sink == nullptr || ports_[e.port].gen != e.gen) return kNone;
    return static_cast<int32_t>(e.port);
  }
  return kNone;
}

uint32_t ValeSwitch::send(uint32_t src, const SoftItem* items, uint32_t count, uint32_t* swapped) noexcept {
  if (count > kMaxBatch) count = kMaxBatch;
  std::lock_guard<std::mutex> lock(mu_);
  // Pass 1: learn the sources, decide each packet's destination.
  for (uint32_t k = 0; k < count; k++) {
    const SoftItem& it = items[k];
    delivered_[k] = 0;
    if (it.len < 14) {
      dest_[k] = kNone;  // not an Ethernet frame: nothing to switch on
      continue;
    }
    const uint8_t* d = it.data;
    if ((d[6] & 1) == 0) learn(macAt(d + 6), src);
    if (d[0] & 1) {
      dest_[k] = kFlood;
    } else {
      const int32_t p = lookup(macAt(d));
      dest_[k] = p < 0 ? kFlood : p == static_cast<int32_t>(src) ? kNone : p;
    }
    hash_[k] = softFlowHash(d, it.len);
  }
  // Pass 2: one push per destination queue, packets in order.
  const auto deadline = std::chrono::steady_clock::now() + kSoftTxWait;
  uint32_t others = 0;
  for (uint32_t p = 0; p < kMaxPorts; p++) others += ports_[p].sink != nullptr && p != src;
  const bool floodMoves = others == 1;  // a flood with one receiver moves the buffer like a unicast
  for (uint32_t p = 0; p < kMaxPorts; p++) {
    SoftSink* sink = ports_[p].sink;
    if (sink == nullptr || p == src) continue;
    const uint32_t rings = static_cast<uint32_t>(sink->queues.size());
    for (uint32_t q = 0; q < rings; q++) {
      uint32_t n = 0;
      for (uint32_t k = 0; k < count; k++) {
        const int32_t dk = dest_[k];
        if (dk != kFlood && dk != static_cast<int32_t>(p)) continue;
        if (rings > 1 && hash_[k] % rings != q) continue;
        gather_[n] = items[k];
        if (dk == kFlood && !floodMoves) gather_[n].slot = nullptr;  // flooded: copied into each port
        gatherIdx_[n++] = k;
      }
      if (n == 0) continue;
      const uint32_t took = sink->queues[q]->push(gather_.data(), n, deadline, swapped);
      for (uint32_t j = 0; j < took; j++) delivered_[gatherIdx_[j]] = 1;
    }
  }
  uint32_t sent = 0;
  for (uint32_t k = 0; k < count; k++) sent += delivered_[k];
  return sent;
}

}  // namespace nmwasm
