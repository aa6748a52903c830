// The packet memory every software port of this process shares: nmwasm's pipes and
// VALE ports live in ONE memfd region (netmap's global allocator, in software), so a
// packet moves from one software port to another by swapping buffer indices, never by
// copying. The region is exactly the packet window (docs/ABI.md), so the ring worker of
// any software port maps all of it.
//
// Layout: ring areas (netmap_ring header + slots + verdict bytes) in the first
// kSoftRingArea bytes, then 2048-byte buffers; buffer index i lives at
// kSoftRingArea + i * kSoftBufSize for every ring (buf_ofs of each ring points there).
//
// NB: a filter on one software port can read and write the buffers of packets queued
// for another software port of the same process (as with netmap's shared allocator).
// It cannot reach anything outside the region: run mutually distrusting filters in
// separate processes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "packet_memory.h"
#include "port.h"

namespace nmwasm {

constexpr uint64_t kSoftMemorySize = 0x4000000 - 0x100000;  // NMWASM_DATA_BASE - NMWASM_WINDOW_BASE
constexpr uint64_t kSoftRingArea = 4u << 20;
constexpr uint32_t kSoftBufSize = 2048;
constexpr uint32_t kSoftBuffers = static_cast<uint32_t>((kSoftMemorySize - kSoftRingArea) / kSoftBufSize);

class SoftDomain {
 public:
  /** The process's domain, created on first use; freed with the last port holding it. */
  static std::shared_ptr<SoftDomain> instance();
  SoftDomain();
  SoftDomain(const SoftDomain&) = delete;
  SoftDomain& operator=(const SoftDomain&) = delete;

  const std::shared_ptr<PacketMemory>& memory() const { return memory_; }
  /** Native address of buffer `idx` (trusted: idx < kSoftBuffers). */
  uint8_t* buffer(uint32_t idx) const { return memory_->base() + kSoftRingArea + uint64_t{idx} * kSoftBufSize; }

  /** A ring area for `numSlots` slots. Throws NativeError ENOSPC naming `port` when the
   * ring area is full. */
  RingGeometry allocRing(const std::string& port, uint32_t numSlots);
  void freeRing(const RingGeometry& geo) noexcept;
  /** Takes `n` free buffers into `out`, or none: throws NativeError ENOSPC naming `port`
   * with how many are free. */
  void allocBuffers(const std::string& port, uint32_t n, uint32_t* out);
  void freeBuffers(const uint32_t* idx, uint32_t n) noexcept;
  uint32_t freeBufferCount();

 private:
  struct Extent {
    uint64_t ofs, size;
  };
  std::shared_ptr<PacketMemory> memory_;
  std::mutex mu_;
  std::vector<Extent> freeRings_;   // sorted by ofs, coalesced
  std::vector<uint32_t> freeBufs_;  // a stack; capacity kSoftBuffers, never reallocated
};

}  // namespace nmwasm
