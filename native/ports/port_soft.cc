// Software pipes (`NAME{ID` / `NAME}ID`) and VALE ports (`valeX:Y`): nmwasm's own, for
// when /dev/netmap is absent. Ports in one process only. Each input port has rings of its
// own (a private memfd no other guest maps); each endpoint has a buffer pool of its own
// unless opened in a shared memory region (`@N`), see soft_domain.h. Moving a packet
// between two ports on one pool is a buffer swap, else a copy.
//
// An endpoint is one named end ("p}1", "vale0:a"): its inbound queues, one per ring,
// created by the first port that needs them and shared by every later one. A port opened
// as an input (--port) reads its endpoint's queues into its own rings; a port opened as
// an output (--to, --out) writes into the peer endpoint (pipes: what goes into `p{1`
// comes out of `p}1` and back) or into the switch (VALE). The stream of an input ends
// when every writer that was attached has left and its queue is empty, so a pipeline fed
// by a capture ends by itself.
#include <map>

#include "core/errors.h"
#include "ports/port.h"
#include "soft/soft_domain.h"
#include "soft/soft_queue.h"
#include "soft/vale_switch.h"

namespace nmwasm {

namespace {

constexpr uint32_t kDefaultSoftSlots = 1024;

struct SoftEndpoint : SoftSink {
  std::string name;
  uint32_t rings = 1;
  uint32_t slots = kDefaultSoftSlots;
  WriterGroup pipeWriters;          // pipes: the peer end's outputs write here
  WriterGroup* group = &pipeWriters;
  std::shared_ptr<ValeSwitch> sw;   // VALE ports: their switch
  uint32_t swIndex = 0;
  bool joined = false;
  uint32_t readers = 0;     // input ports reading it (under endpointsMu)
  bool exclusive = false;   // one of them asked for /x
  uint32_t memId = 0;       // @N: shared memory region N; 0 = a private pool
  std::shared_ptr<SoftDomain> pool;  // its queues' (and readers' rings') buffers
  ~SoftEndpoint() {
    if (joined) sw->leave(swIndex);  // before the queues go: the switch stops pushing into them
  }
};

std::mutex endpointsMu;
std::map<std::string, std::weak_ptr<SoftEndpoint>> endpoints;

std::string memText(uint32_t memId) { return memId == 0 ? "a private buffer pool" : "memory region @" + std::to_string(memId); }

/** The endpoint `name`, created with `rings`/`slots` (0 = default) and its pool (`memId`
 * 0 = private) on first use. A later open asking for other explicit counts is refused (the
 * first opener decides), and so is one with another `memId` (every opener must agree). */
std::shared_ptr<SoftEndpoint> endpointFor(const std::string& port, const std::string& name, const std::string& sw, uint32_t rings, uint32_t slots,
                                          uint32_t memId) {
  std::lock_guard<std::mutex> lock(endpointsMu);
  std::shared_ptr<SoftEndpoint> ep = endpoints[name].lock();
  if (ep) {
    if ((rings != 0 && rings != ep->rings) || (slots != 0 && slots != ep->slots))
      throw NativeError("EINVAL", port, "", 0,
                        name + " is already open with " + std::to_string(ep->rings) + " ring(s) of " + std::to_string(ep->slots) +
                            " slots: give every opener the same @conf (or none)");
    if (memId != ep->memId)
      throw NativeError("EINVAL", port, "", 0,
                        name + " is already open in " + memText(ep->memId) + ", not in " + memText(memId) + ": give every opener of it the same @N, or none of them one");
    return ep;
  }
  ep = std::make_shared<SoftEndpoint>();
  ep->name = name;
  ep->rings = rings != 0 ? rings : 1;
  ep->slots = slots != 0 ? slots : kDefaultSoftSlots;
  ep->memId = memId;
  ep->pool = memId != 0 ? SoftDomain::shared(memId) : SoftDomain::makePrivate(name);
  const std::shared_ptr<SoftDomain>& domain = ep->pool;
  if (!sw.empty()) {
    ep->sw = ValeSwitch::get(sw);
    ep->group = &ep->sw->group;
  }
  for (uint32_t r = 0; r < ep->rings; r++) ep->queues.push_back(std::make_unique<SoftQueue>(domain, port, ep->slots, ep->group));
  if (ep->sw) {
    ep->swIndex = ep->sw->join(port, ep.get());  // last: the switch may push at once
    ep->joined = true;
  }
  endpoints[name] = ep;
  return ep;
}

class SoftPort final : public Port {
 public:
  explicit SoftPort(const SoftPortSpec& spec) : Port(spec.name, spec.sw.empty() ? "pipe" : "vale") {
    try {
      if (spec.rx) openInput(spec);
      if (spec.tx) {
        target_ = spec.sw.empty() ? endpointFor(spec.name, spec.peer, "", spec.rings, spec.slots, spec.memId)
                                  : (self_ ? self_ : endpointFor(spec.name, spec.endpoint, spec.sw, spec.rings, spec.slots, spec.memId));
        if (!spec.rx) adoptRings(target_->pool->memory(), {});  // an output only: no rings, its target's pool
        scratch_.resize(ValeSwitch::kMaxBatch);
        target_->group->hadWriter.store(true, std::memory_order_release);
        target_->group->writers.fetch_add(1, std::memory_order_acq_rel);
        writing_ = true;
      }
    } catch (...) {
      release();
      throw;
    }
  }

  ~SoftPort() override { release(); }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    bool ended = false;
    const uint32_t got = in_[ring]->pop(shadow(ring), first, count, &ended);
    if (ended) *exhausted = true;
    return got;
  }

  int pollFd(uint32_t ring) const override { return in_[ring]->eventFd(); }

  bool canTransmit() const override { return writing_; }
  /** Zero copy only from a port whose buffers are in the target endpoint's pool. */
  bool canSwapWith(const Port& from) const override {
    return writing_ && from.memory() != nullptr && from.memory()->pool() == target_->pool->memory().get();
  }

  uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    if (count > scratch_.size()) count = static_cast<uint32_t>(scratch_.size());
    uint32_t n = 0;
    for (uint32_t k = 0; k < count; k++) {
      if (pkts[k].len > kSoftBufSize) continue;  // larger than a buffer: not sent
      scratch_[n++] = SoftItem{nullptr, pkts[k].data, pkts[k].len, pkts[k].origLen, pkts[k].tsNs, nullptr};
    }
    uint32_t swapped = 0;
    return deliver(n, &swapped);
  }

  uint32_t transmitSwap(const SwapPacket* pkts, uint32_t count, uint32_t* swapped) noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    const SoftDomain* pool = target_->pool.get();
    if (count > scratch_.size()) count = static_cast<uint32_t>(scratch_.size());
    for (uint32_t k = 0; k < count; k++) {
      ShadowSlot* s = pkts[k].slot;
      // canSwapWith checked that the sender's buffers are in target_'s pool.
      scratch_[k] = SoftItem{s, pool->buffer(s->bufIdx), pkts[k].len, pkts[k].len == s->len ? s->origLen : pkts[k].len, s->tsNs, pool};
    }
    *swapped = 0;
    return deliver(count, swapped);
  }

 protected:
  void onClose() override { leave(); }
  void onAbort() noexcept override { leave(); }

 private:
  /** Input side: registers as a reader of the endpoint and builds its rings. */
  void openInput(const SoftPortSpec& spec) {
    self_ = endpointFor(spec.name, spec.endpoint, spec.sw, spec.rings, spec.slots, spec.memId);
    if (spec.ring >= 0 && static_cast<uint32_t>(spec.ring) >= self_->rings)
      throw NativeError("ERANGE", spec.name, "", 0,
                        "ring " + std::to_string(spec.ring) + " is out of range: " + self_->name + " has " + std::to_string(self_->rings) +
                            " ring(s) (0.." + std::to_string(self_->rings - 1) + "; set them with @conf:rings=N)");
    {
      std::lock_guard<std::mutex> lock(endpointsMu);
      if (self_->exclusive || (spec.exclusive && self_->readers > 0))
        throw NativeError("EBUSY", spec.name, "", 0,
                          self_->name + " is " + (self_->exclusive ? "bound exclusively (/x) by another input" : "read by another input, so /x cannot have it") +
                              ": use another pipe or VALE port");
      self_->readers++;
      self_->exclusive = spec.exclusive;
      reading_ = true;
    }
    const uint32_t first = spec.ring >= 0 ? static_cast<uint32_t>(spec.ring) : 0;
    const uint32_t count = spec.ring >= 0 ? 1 : self_->rings;
    // The rings live in a memory of this port's own (the front of a layered memory over the
    // endpoint's pool): no other port's guest maps them.
    uint64_t ringBytes = 0;
    const std::vector<RingGeometry> geos = softRingLayout(spec.name, count, self_->slots, &ringBytes);
    adoptRings(std::make_shared<PacketMemory>(spec.name + " rings", ringBytes, self_->pool->memory(), kSoftRingArea), geos);
    for (uint32_t r = 0; r < count; r++) {
      RingShadow& sh = shadow(r);
      std::vector<uint32_t> bufs(sh.geo.numSlots);
      self_->pool->allocBuffers(spec.name, sh.geo.numSlots, bufs.data());
      for (uint32_t i = 0; i < sh.geo.numSlots; i++) sh.slots[i] = ShadowSlot{bufs[i], 0, 0, 0, 0, 0};
      buffered_ = r + 1;
      in_.push_back(self_->queues[first + r].get());
      in_.back()->addReader();
    }
  }

  /** Sends scratch_[0..n): into the switch, or the pipe peer's queues by flow hash. */
  uint32_t deliver(uint32_t n, uint32_t* swapped) noexcept {
    if (n == 0) return 0;
    if (target_->sw) return target_->sw->send(target_->swIndex, scratch_.data(), n, swapped);
    const auto deadline = std::chrono::steady_clock::now() + kSoftTxWait;
    const uint32_t rings = static_cast<uint32_t>(target_->queues.size());
    if (rings == 1) return target_->queues[0]->push(scratch_.data(), n, deadline, swapped);
    // Several rings: stable partition by queue (gather_ is scratch), one push each.
    if (gather_.size() < n) return 0;  // never: both sized kMaxBatch
    uint32_t sent = 0;
    for (uint32_t q = 0; q < rings; q++) {
      uint32_t m = 0;
      for (uint32_t k = 0; k < n; k++)
        if (softFlowHash(scratch_[k].data, scratch_[k].len) % rings == q) gather_[m++] = scratch_[k];
      if (m > 0) sent += target_->queues[q]->push(gather_.data(), m, deadline, swapped);
    }
    return sent;
  }

  /** Stops reading and writing (close, abort, destruction); idempotent. */
  void leave() noexcept {
    // NB: in_ keeps its pointers (the endpoint owns the queues until this port is gone), so a
    // late rxsync or pollFd after close still finds its queue.
    if (reading_) {
      for (SoftQueue* q : in_) q->removeReader();
      reading_ = false;
      std::lock_guard<std::mutex> lock(endpointsMu);
      self_->readers--;
      if (self_->readers == 0) self_->exclusive = false;
    }
    if (writing_) {
      writing_ = false;
      target_->group->writers.fetch_sub(1, std::memory_order_acq_rel);
      if (target_->sw)
        target_->sw->wakeAll();
      else
        for (auto& q : target_->queues) q->wake();
    }
  }

  /** Gives the rings' buffers back to the endpoint's pool (the ring memory goes with the port). */
  void release() noexcept {
    leave();
    for (uint32_t r = 0; r < buffered_; r++)
      for (const ShadowSlot& s : shadow(r).slots) self_->pool->freeBuffers(&s.bufIdx, 1);
    buffered_ = 0;
  }

  std::shared_ptr<SoftEndpoint> self_;    // input: the endpoint read
  std::shared_ptr<SoftEndpoint> target_;  // output: the endpoint (pipe peer, or own VALE port) written
  std::vector<SoftQueue*> in_;            // input: the queue of each ring
  uint32_t buffered_ = 0;                 // rings whose slots hold domain buffers
  bool writing_ = false;
  bool reading_ = false;
  std::mutex txMu_;
  std::vector<SoftItem> scratch_;
  std::vector<SoftItem> gather_ = std::vector<SoftItem>(ValeSwitch::kMaxBatch);
};

}  // namespace

std::shared_ptr<Port> openSoftPort(const SoftPortSpec& spec) { return std::make_shared<SoftPort>(spec); }

}  // namespace nmwasm
