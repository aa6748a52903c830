// Buffer pools of the software ports (nmwasm's pipes and VALE ports), and the layout of a
// software port's own rings.
//
// Isolation (docs/PORTS.md "Isolation"): every software input port has its OWN ring memory
// (netmap_ring headers, slots and verdict bytes in a private memfd, see PacketMemory's
// layered mode): no other port's guest maps it, so no filter can touch another clause's
// rings or verdicts. Packet buffers come from a pool (SoftDomain):
//   - private (the default): each endpoint (pipe end, VALE port) has a pool of its own; a
//     packet entering it from any other port is copied once, at the boundary;
//   - shared (`@N`, netmap's memory region id): every endpoint opened with the same N uses
//     one pool, so a packet moves between them by swapping buffer indices (zero copy).
//     NB: every guest on a shared pool can read and write the others' packet buffers
//     (as with netmap's shared allocator), never their rings or verdicts.
//
// Layout of a port's memory (the packet window, docs/ABI.md): its rings from offset 0
// (at most kSoftRingArea bytes), then the pool's 2048-byte buffers; buffer index i lives
// at kSoftRingArea + i * kSoftBufSize for every ring (buf_ofs of each ring points there).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/packet_memory.h"
#include "ports/port.h"

namespace nmwasm {

constexpr uint64_t kSoftMemorySize = 0x4000000 - 0x100000;  // NMWASM_DATA_BASE - NMWASM_WINDOW_BASE
constexpr uint64_t kSoftRingArea = 4u << 20;
constexpr uint32_t kSoftBufSize = 2048;
constexpr uint32_t kSoftBuffers = static_cast<uint32_t>((kSoftMemorySize - kSoftRingArea) / kSoftBufSize);

/** The geometry of `rings` rings of `numSlots` slots laid out from offset 0 of a port's own
 * ring memory (buffersOfs = kSoftRingArea); *bytes = the ring memory's size. Throws
 * NativeError ENOSPC naming `port` when they exceed kSoftRingArea. */
std::vector<RingGeometry> softRingLayout(const std::string& port, uint32_t rings, uint32_t numSlots, uint64_t* bytes);

class SoftDomain {
 public:
  /** The shared pool of memory region `memId` (>= 1), created on first use; freed with the
   * last endpoint holding it. */
  static std::shared_ptr<SoftDomain> shared(uint32_t memId);
  /** A pool of its own for `owner` (an endpoint name, for messages and the memfd name). */
  static std::shared_ptr<SoftDomain> makePrivate(const std::string& owner);
  explicit SoftDomain(const std::string& label);
  SoftDomain(const SoftDomain&) = delete;
  SoftDomain& operator=(const SoftDomain&) = delete;

  const std::shared_ptr<PacketMemory>& memory() const { return memory_; }
  /** Native address of buffer `idx` (trusted: idx < kSoftBuffers). */
  uint8_t* buffer(uint32_t idx) const { return memory_->base() + kSoftRingArea + uint64_t{idx} * kSoftBufSize; }

  /** Takes `n` free buffers into `out`, or none: throws NativeError ENOSPC naming `port`
   * with how many are free. */
  void allocBuffers(const std::string& port, uint32_t n, uint32_t* out);
  void freeBuffers(const uint32_t* idx, uint32_t n) noexcept;
  uint32_t freeBufferCount();

 private:
  std::shared_ptr<PacketMemory> memory_;
  std::mutex mu_;
  std::vector<uint32_t> freeBufs_;  // a stack; capacity kSoftBuffers, never reallocated
};

}  // namespace nmwasm
