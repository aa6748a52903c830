// Inbound queue of a software port ring (see soft_queue.h).
#include "soft/soft_queue.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "core/errors.h"

namespace nmwasm {

SoftQueue::SoftQueue(std::shared_ptr<SoftDomain> domain, const std::string& port, uint32_t numSlots, WriterGroup* group)
    : domain_(std::move(domain)), group_(group), slots_(numSlots) {
  std::vector<uint32_t> bufs(numSlots);
  domain_->allocBuffers(port, numSlots, bufs.data());
  for (uint32_t i = 0; i < numSlots; i++) slots_[i] = ShadowSlot{bufs[i], 0, 0, 0, 0, 0};
  eventFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (eventFd_ < 0) {
    const int err = errno;
    domain_->freeBuffers(bufs.data(), numSlots);
    throwSyscallError(port, "eventfd", err, "creating the wake-up descriptor of a software port", "check the open-file limit (ulimit -n)");
  }
}

SoftQueue::~SoftQueue() {
  for (const ShadowSlot& s : slots_) domain_->freeBuffers(&s.bufIdx, 1);
  if (eventFd_ >= 0) close(eventFd_);
}

void SoftQueue::signalLocked() noexcept {
  if (signaled_) return;
  const uint64_t one = 1;
  if (write(eventFd_, &one, sizeof one) == sizeof one) signaled_ = true;
}

void SoftQueue::wake() noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  signalLocked();
  space_.notify_all();
}

void SoftQueue::removeReader() noexcept {
  readers_.fetch_sub(1, std::memory_order_acq_rel);
  std::lock_guard<std::mutex> lock(mu_);
  space_.notify_all();  // a sender waiting for this reader gives up now
}

uint32_t SoftQueue::push(const SoftItem* items, uint32_t count, std::chrono::steady_clock::time_point deadline, uint32_t* swapped) noexcept {
  const uint32_t n = numSlots();
  std::unique_lock<std::mutex> lock(mu_);
  uint32_t done = 0;
  while (done < count) {
    if (size_ == n) {
      // Full: wait for the reader (bounded), unless there is none.
      if (readers_.load(std::memory_order_acquire) == 0) break;
      signalLocked();
      if (!space_.wait_until(lock, deadline, [&] { return size_ < n || readers_.load(std::memory_order_acquire) == 0; })) break;
      if (size_ == n) break;
    }
    uint32_t tail = head_ + size_;
    if (tail >= n) tail -= n;
    ShadowSlot& q = slots_[tail];
    const SoftItem& it = items[done];
    if (it.slot != nullptr && it.pool == domain_.get()) {
      // NB: the zero-copy move: the queue takes the sender's buffer, the sender's slot gets
      // the queue's free one (netmap's buf_idx swap with NS_BUF_CHANGED).
      const uint32_t mine = q.bufIdx;
      q.bufIdx = it.slot->bufIdx;
      it.slot->bufIdx = mine;
      ++*swapped;
    } else {
      std::memcpy(domain_->buffer(q.bufIdx), it.data, it.len);
    }
    q.len = static_cast<uint16_t>(it.len);
    q.origLen = it.origLen;
    q.tsNs = it.tsNs;
    q.flags = 0;
    size_++;
    done++;
  }
  if (size_ > 0) signalLocked();
  return done;
}

uint32_t SoftQueue::pop(RingShadow& sh, uint32_t first, uint32_t count, bool* ended) noexcept {
  // Read the writers before the queue: a writer's last push happens before it leaves, so
  // "no writer left" seen here and an empty queue below means nothing more will come.
  const bool writersGone = group_->hadWriter.load(std::memory_order_acquire) && group_->writers.load(std::memory_order_acquire) == 0;
  const uint32_t n = numSlots();
  const uint32_t ringSlots = sh.geo.numSlots;
  std::lock_guard<std::mutex> lock(mu_);
  const uint32_t take = count < size_ ? count : size_;
  uint32_t i = first;
  for (uint32_t k = 0; k < take; k++) {
    ShadowSlot& q = slots_[head_];
    ShadowSlot& s = sh.slots[i];
    const uint32_t full = q.bufIdx;
    q.bufIdx = s.bufIdx;  // the ring slot's free buffer goes back to the queue
    s.bufIdx = full;
    s.len = q.len;
    s.origLen = q.origLen;
    s.tsNs = q.tsNs;
    s.flags = 0;
    if (++head_ == n) head_ = 0;
    if (++i == ringSlots) i = 0;
  }
  size_ -= take;
  if (take > 0) space_.notify_all();
  if (size_ == 0) {
    if (signaled_) {
      uint64_t v;
      if (read(eventFd_, &v, sizeof v) == sizeof v) signaled_ = false;
    }
    if (writersGone) {
      *ended = true;
      signalLocked();  // stays readable: the reader's wait returns at once and it sees the end
    }
  }
  return take;
}

}  // namespace nmwasm
