// The inbound queue of one ring of a software port (pipe end or VALE port): packets sent
// to the port wait here until the ring worker of the port's input takes them. Every queue
// slot always owns one buffer of the endpoint's pool (SoftDomain); a packet moves in by
// swapping buffer indices (zero copy) from a port on the same pool, else by one copy in;
// it moves out to the reader's ring (same pool) by a swap.
//
// Locking: the queue mutex is a leaf lock (nothing else is locked while it is held), so a
// sender holding its own ring's lock can push into any queue without lock-order cycles.
// Readiness: an eventfd is readable while the queue holds packets or its stream ended;
// the reader's ring worker polls it (Port::pollFd) instead of spinning.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ports/port.h"
#include "soft/soft_domain.h"

namespace nmwasm {

/** The writers of a set of queues (a pipe end's peer side, or a whole VALE switch). A
 * reader's stream has ended once some writer was attached, none is left, and its queue
 * is empty. */
struct WriterGroup {
  std::atomic<int> writers{0};
  std::atomic<bool> hadWriter{false};
};

/** One packet pushed into a queue: with `slot` and a `pool` that is the queue's own, its
 * buffer moves into the queue and the slot gets the queue's free buffer; otherwise `data`
 * is copied (a queue on another pool never takes a foreign buffer index). */
struct SoftItem {
  ShadowSlot* slot;
  const uint8_t* data;
  uint32_t len;
  uint32_t origLen;
  uint64_t tsNs;
  const SoftDomain* pool;  // the pool `slot`'s buffer belongs to (nullptr without slot)
};

/** How long a sender waits for space in a full queue that has a reader before dropping the
 * rest of its batch. NB: the sender's ring stalls meanwhile (netmap's blocking TX, bounded). */
constexpr std::chrono::milliseconds kSoftTxWait{1000};

class SoftQueue {
 public:
  /** Allocates `numSlots` buffers of `domain` (the endpoint's pool) and an eventfd; throws
   * NativeError naming `port`. */
  SoftQueue(std::shared_ptr<SoftDomain> domain, const std::string& port, uint32_t numSlots, WriterGroup* group);
  ~SoftQueue();
  SoftQueue(const SoftQueue&) = delete;
  SoftQueue& operator=(const SoftQueue&) = delete;

  int eventFd() const { return eventFd_; }
  /** Appends `items` in order. While the queue is full and a reader is attached, waits for
   * space until `deadline`; without a reader, or after the deadline, the rest is refused.
   * Returns how many were accepted (a prefix); adds the moved ones to *swapped. */
  uint32_t push(const SoftItem* items, uint32_t count, std::chrono::steady_clock::time_point deadline, uint32_t* swapped) noexcept;
  /** Moves up to `count` queued packets into `sh` slots first.. (mod ring size), swapping
   * buffers. Sets *ended when the stream has ended (see WriterGroup) and nothing is left. */
  uint32_t pop(RingShadow& sh, uint32_t first, uint32_t count, bool* ended) noexcept;
  void addReader() noexcept { readers_.fetch_add(1, std::memory_order_acq_rel); }
  void removeReader() noexcept;
  /** Makes the eventfd readable (a writer left: the reader re-checks the end of stream). */
  void wake() noexcept;
  uint32_t numSlots() const { return static_cast<uint32_t>(slots_.size()); }

 private:
  void signalLocked() noexcept;
  std::shared_ptr<SoftDomain> domain_;
  WriterGroup* group_;
  std::mutex mu_;
  std::condition_variable space_;
  std::vector<ShadowSlot> slots_;
  uint32_t head_ = 0;
  uint32_t size_ = 0;
  int eventFd_ = -1;
  bool signaled_ = false;
  std::atomic<int> readers_{0};
};

}  // namespace nmwasm
