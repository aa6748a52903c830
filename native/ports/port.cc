// Port base class: packet memory layout and lifecycle (see port.h).
#include "ports/port.h"

namespace nmwasm {

static uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

void Port::setupRings(uint32_t rings, uint32_t numSlots, uint32_t bufSize, uint64_t totalBuffers) {
  const uint64_t page = PacketMemory::pageSize();
  std::vector<RingGeometry> geos(rings);
  uint64_t ofs = 0;
  for (uint32_t r = 0; r < rings; r++) {
    RingGeometry& g = geos[r];
    g.ringOfs = ofs;
    g.verdictOfs = ofs + kRingHeaderSize + uint64_t{numSlots} * sizeof(NetmapSlot);
    g.numSlots = numSlots;
    g.bufSize = bufSize;
    ofs = alignUp(g.verdictOfs + numSlots, 128);  // next ring header cache aligned
  }
  const uint64_t buffersOfs = alignUp(ofs, page);
  for (RingGeometry& g : geos) g.buffersOfs = buffersOfs;
  if (totalBuffers == 0) totalBuffers = uint64_t{rings} * numSlots;
  const uint64_t total = buffersOfs + totalBuffers * bufSize;
  adoptRings(std::make_shared<PacketMemory>(name_, total), geos);
  for (uint32_t r = 0; r < rings; r++) {
    RingShadow& sh = *shadows_[r];
    for (uint32_t i = 0; i < numSlots; i++) sh.slots[i] = ShadowSlot{r * numSlots + i, 0, 0, 0, 0, 0};
  }
}

void Port::adoptRings(std::shared_ptr<PacketMemory> memory, const std::vector<RingGeometry>& geos) {
  memory_ = std::move(memory);
  for (uint32_t r = 0; r < geos.size(); r++) {
    auto sh = std::make_unique<RingShadow>();
    sh->geo = geos[r];
    sh->slots.resize(geos[r].numSlots);
    NetmapRing* ring = guestRing(sh->geo);
    ring->buf_ofs = static_cast<int64_t>(sh->geo.buffersOfs - sh->geo.ringOfs);
    ring->num_slots = sh->geo.numSlots;
    ring->nr_buf_size = sh->geo.bufSize;
    ring->ringid = static_cast<uint16_t>(r);
    ring->dir = 1;
    shadows_.push_back(std::move(sh));
  }
}

void Port::close() {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  onClose();
}

void Port::abort() noexcept {
  if (closed_.exchange(true, std::memory_order_acq_rel)) return;
  onAbort();
}

}  // namespace nmwasm
