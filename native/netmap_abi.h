// netmap's ring and slot structures (sys/net/netmap.h, API 14) as the guest sees
// them in the packet window (docs/ABI.md section 2), plus the verdict values.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nmwasm {

struct NetmapSlot {
  uint32_t buf_idx;
  uint16_t len;
  uint16_t flags;
  uint64_t ptr;  // nmwasm v1: receive timestamp, ns since the Unix epoch
};

struct NetmapRing {
  int64_t buf_ofs;
  uint32_t num_slots;
  uint32_t nr_buf_size;
  uint16_t ringid;
  uint16_t dir;
  uint32_t head;
  uint32_t cur;
  uint32_t tail;
  uint32_t flags;
  uint32_t pad0;
  int64_t ts_sec;
  int64_t ts_usec;
  uint64_t offset_mask;
  uint64_t buf_align;
  uint8_t pad1[56];
  uint8_t sem[128];
  // NetmapSlot slot[] follows at offset 256
};

static_assert(sizeof(NetmapSlot) == 16, "netmap_slot is 16 bytes");
static_assert(offsetof(NetmapRing, head) == 20, "netmap_ring.head at 20");
static_assert(offsetof(NetmapRing, tail) == 28, "netmap_ring.tail at 28");
static_assert(offsetof(NetmapRing, ts_sec) == 40, "netmap_ring.ts at 40");
static_assert(offsetof(NetmapRing, offset_mask) == 56, "netmap_ring.offset_mask at 56");
static_assert(offsetof(NetmapRing, buf_align) == 64, "netmap_ring.buf_align at 64");
static_assert(offsetof(NetmapRing, sem) == 128, "netmap_ring.sem at 128");
static_assert(sizeof(NetmapRing) == 256, "netmap_ring header is 256 bytes");

constexpr size_t kRingHeaderSize = sizeof(NetmapRing);

inline NetmapSlot* ringSlots(NetmapRing* ring) {
  return reinterpret_cast<NetmapSlot*>(reinterpret_cast<uint8_t*>(ring) + kRingHeaderSize);
}

// Verdict bytes (docs/ABI.md section 3).
constexpr uint8_t kVerdictDrop = 0x00;
constexpr uint8_t kVerdictPass = 0x01;
constexpr uint8_t kVerdictHost = 0x02;
constexpr uint8_t kVerdictForward = 0x80;  // | output index
constexpr uint8_t kVerdictUnset = 0xFF;

constexpr uint32_t kMinPacketLen = 14;  // an Ethernet header

}  // namespace nmwasm
