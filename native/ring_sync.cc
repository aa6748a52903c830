// Ring batch cycle (see ring_sync.h).
//
// Batch size: every filled slot, i.e. at most num_slots - 1 (one slot always
// stays empty so that head == tail means "empty", as in netmap). The backend is
// asked to fill every free slot at each sync, so a batch is as large as the
// source allows; a live backend with little traffic returns small batches.
#include "ring_sync.h"

#include <time.h>

#include "errors.h"

namespace nmwasm {

namespace {

/** Next slot index (num_slots need not be a power of two). */
inline uint32_t advance(uint32_t i, uint32_t n, uint32_t numSlots) {
  i += n;
  return i >= numSlots ? i - numSlots : i;
}

/** A verdict byte the ABI allows, given the number of outputs. NB: 0xFF (unset)
 * would read as FORWARD 127, so it is excluded explicitly. */
inline bool verdictValid(uint8_t v, uint32_t numOutputs) {
  if (v <= kVerdictHost || v == (kVerdictFlow | kVerdictDrop) || v == (kVerdictFlow | kVerdictPass)) return true;
  if (v == kVerdictUnset || (v & kVerdictForward) == 0) return false;
  return uint32_t(v & 0x7F) < numOutputs;
}

void completeSlots(RingAttachment& a, RingShadow& sh, uint32_t done, bool faulted) {
  Port& port = *a.port;
  const RingGeometry& geo = sh.geo;
  NetmapSlot* gslots = ringSlots(port.guestRing(geo));
  const volatile uint8_t* verdicts = port.guestVerdicts(geo);
  const uint32_t numOutputs = static_cast<uint32_t>(a.outputs.size());
  uint32_t txCount[128];
  for (uint32_t o = 0; o < numOutputs; o++) {
    txCount[o] = 0;
    a.txBytes[o] = 0;
  }
  uint64_t pass = 0, drop = 0, host = 0, forward = 0, faultVerdicts = 0, violations = 0;
  uint32_t hostCount = 0, flowCount = 0;

  // Pass 1: read and check what the guest wrote (each guest field exactly once: the guest's
  // copy is untrusted). A batch with any violation gets the fault verdict on EVERY slot and
  // the guest's lengths are discarded (docs/ABI.md section 6): a module that broke the ABI
  // anywhere in the batch is not trusted on the rest of it either.
  uint32_t i = sh.head;
  if (!faulted) {
    for (uint32_t k = 0; k < done; k++, i = advance(i, 1, geo.numSlots)) {
      const volatile NetmapSlot& g = gslots[i];
      const uint32_t guestBuf = g.buf_idx;
      const uint32_t guestLen = g.len;
      const uint8_t guestVerdict = verdicts[i];
      const ShadowSlot& s = sh.slots[i];
      const bool lenOk = guestLen == s.len || (guestLen >= kMinPacketLen && guestLen <= geo.bufSize);
      if (guestBuf != s.bufIdx || !lenOk || !verdictValid(guestVerdict, numOutputs)) violations++;
      a.verdictScratch[k] = guestVerdict;
      a.lenScratch[k] = static_cast<uint16_t>(guestLen);
    }
  }
  const bool whole = faulted || violations > 0;
  if (whole) faultVerdicts = done;

  // Pass 2: apply the verdicts.
  i = sh.head;
  for (uint32_t k = 0; k < done; k++, i = advance(i, 1, geo.numSlots)) {
    const ShadowSlot& s = sh.slots[i];  // NB: s.bufIdx may change in transmitSwap below, after this loop
    uint8_t v = whole ? a.faultVerdict : a.verdictScratch[k];
    const uint32_t len = whole ? s.len : a.lenScratch[k];
    if ((v & (kVerdictForward | kVerdictFlow)) == kVerdictFlow) {  // DROP or PASS for the flow (checked in pass 1)
      v &= static_cast<uint8_t>(~kVerdictFlow);
      // NB: PASS to an output cannot be applied by the kernel; a resized packet was rewritten.
      if (a.flowCache && (v == kVerdictDrop || numOutputs == 0) && len == s.len)
        a.flows[flowCount++] = FlowVerdict{port.bufferAt(geo, s.bufIdx), len, v};
    }
    uint32_t out = UINT32_MAX;
    if (v == kVerdictPass) {
      if (!whole) pass++;
      if (numOutputs > 0) out = 0;
      else if (a.passToHost) a.toHost[hostCount++] = TxPacket{port.bufferAt(geo, s.bufIdx), len, len, s.tsNs};  // continues to the host stack
    } else if (v == kVerdictDrop) {
      if (!whole) drop++;
    } else if (v == kVerdictHost) {
      host++;  // handed to Port::toHost below (software ports: counted only)
      a.toHost[hostCount++] = TxPacket{port.bufferAt(geo, s.bufIdx), len, len, s.tsNs};
    } else {
      forward++;
      out = v & 0x7F;
    }
    if (out != UINT32_MAX) {
      if (a.swap[out])
        a.swapTx[out][txCount[out]++] = SwapPacket{&sh.slots[i], len};
      else
        a.tx[out][txCount[out]++] = TxPacket{port.bufferAt(geo, s.bufIdx), len, len == s.len ? s.origLen : len, s.tsNs};
      a.txBytes[out] += len;
    }
    if (sh.tracing) sh.trace.push_back(v);
  }

  double* c = a.counters;
  for (uint32_t o = 0; o < numOutputs; o++) {
    if (txCount[o] == 0) continue;
    uint32_t sent, swapped = 0;
    uint64_t bytes = a.txBytes[o];
    if (a.swap[o]) {
      // NB: moves buffers: the shadow slots of this batch may get new buf_idx values.
      sent = a.outputs[o]->transmitSwap(a.swapTx[o].data(), txCount[o], &swapped);
      if (sent < txCount[o]) {
        bytes = 0;
        for (uint32_t k = 0; k < sent; k++) bytes += a.swapTx[o][k].len;
      }
    } else {
      sent = a.outputs[o]->transmit(a.tx[o].data(), txCount[o]);
      if (sent < txCount[o]) {
        bytes = 0;
        for (uint32_t k = 0; k < sent; k++) bytes += a.tx[o][k].len;
      }
    }
    c[Counter::outPackets] += sent;
    c[Counter::outSwapped] += swapped;
    c[Counter::outDrops] += txCount[o] - sent;
    c[Counter::outBytes] += static_cast<double>(bytes);
  }
  if (flowCount > 0) port.cacheFlows(a.ring, a.flows.data(), flowCount);
  if (hostCount > 0) {
    const uint32_t accepted = port.toHost(a.ring, a.toHost.data(), hostCount);
    if (a.hostStack) c[Counter::hostRefused] += hostCount - accepted;  // else HOST is counted only
  }
  c[Counter::pass] += static_cast<double>(pass);
  c[Counter::drop] += static_cast<double>(drop);
  c[Counter::host] += static_cast<double>(host);
  c[Counter::forward] += static_cast<double>(forward);
  c[Counter::faultVerdicts] += static_cast<double>(faultVerdicts);
  c[Counter::violations] += static_cast<double>(violations);

  port.rxrelease(a.ring, sh.head, done);
  sh.head = advance(sh.head, done, geo.numSlots);
  sh.delivered -= done;
}

/** Takes up to `want` packets from the run's budget (all of them without one). */
inline uint32_t claimBudget(int64_t* budget, uint32_t want) {
  if (budget == nullptr || want == 0) return want;
  int64_t left = __atomic_load_n(budget, __ATOMIC_SEQ_CST);
  for (;;) {
    const uint32_t take = left <= 0 ? 0 : left < int64_t(want) ? uint32_t(left) : want;
    if (take == 0) return 0;
    if (__atomic_compare_exchange_n(budget, &left, left - take, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return take;
  }
}

/** Rewrites the guest's ring header, batch slots and verdict bytes from the shadow. */
void publishBatch(RingAttachment& a, RingShadow& sh, uint32_t batch) {
  Port& port = *a.port;
  const RingGeometry& geo = sh.geo;
  NetmapRing* ring = port.guestRing(geo);
  NetmapSlot* gslots = ringSlots(ring);
  uint8_t* verdicts = port.guestVerdicts(geo);
  double* c = a.counters;

  uint64_t newBytes = 0;
  uint32_t i = sh.head;
  for (uint32_t k = 0; k < batch; k++, i = advance(i, 1, geo.numSlots)) {
    const ShadowSlot& s = sh.slots[i];
    gslots[i] = NetmapSlot{s.bufIdx, s.len, s.flags, s.tsNs};
    verdicts[i] = kVerdictUnset;
    if (k >= sh.delivered) newBytes += s.len;
  }
  c[Counter::packets] += batch - sh.delivered;
  c[Counter::bytes] += static_cast<double>(newBytes);
  sh.delivered = batch;

  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  ring->buf_ofs = static_cast<int64_t>(geo.buffersOfs - geo.ringOfs);
  ring->num_slots = geo.numSlots;
  ring->nr_buf_size = geo.bufSize;
  ring->ringid = static_cast<uint16_t>(a.ring);
  ring->dir = 1;
  ring->head = sh.head;
  ring->cur = sh.head;
  ring->tail = advance(sh.head, batch, geo.numSlots);
  ring->flags = 0;
  ring->ts_sec = now.tv_sec;
  ring->ts_usec = now.tv_nsec / 1000;
  ring->offset_mask = 0;
  ring->buf_align = 0;
}

}  // namespace

std::unique_ptr<RingAttachment> attachRing(std::shared_ptr<Port> port, uint32_t ring,
                                           std::vector<std::shared_ptr<Port>> outputs, double* counters,
                                           uint8_t faultVerdict, bool trace, int64_t* budget) {
  auto a = std::make_unique<RingAttachment>();
  a->budget = budget;
  RingShadow& sh = port->shadow(ring);
  a->ring = ring;
  a->shadow = &sh;
  a->counters = counters;
  a->faultVerdict = faultVerdict;
  a->tx.resize(outputs.size());
  a->swap.resize(outputs.size());
  a->swapTx.resize(outputs.size());
  for (size_t o = 0; o < outputs.size(); o++) {
    a->swap[o] = outputs[o]->canSwapWith(*port) ? 1 : 0;
    if (a->swap[o])
      a->swapTx[o].resize(sh.geo.numSlots);
    else
      a->tx[o].resize(sh.geo.numSlots);
  }
  a->txBytes.resize(outputs.size());
  a->toHost.resize(sh.geo.numSlots);
  a->hostStack = port->passesToHost();
  a->passToHost = a->hostStack && outputs.empty();
  a->verdictScratch.resize(sh.geo.numSlots);
  a->flowCache = port->cachesFlows();
  if (a->flowCache) a->flows.resize(sh.geo.numSlots);
  // The instance about to serve may judge differently (a swap, a new config): the kernel
  // forgets what the previous one decided.
  port->invalidateFlows();
  a->lenScratch.resize(sh.geo.numSlots);
  a->outputs = std::move(outputs);
  // The port's expected packets count once per run: in ring 0's counters (host/engine.ts sums rings).
  counters[Counter::expected] = ring == 0 ? static_cast<double>(port->expected()) : 0;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    a->generation = ++sh.generation;
    if (trace && !sh.tracing) {
      sh.tracing = true;
      uint64_t expect = port->expected();
      sh.trace.reserve(expect > 0 && expect < (1u << 26) ? expect : (1u << 16));
    }
  }
  a->port = std::move(port);
  return a;
}

int32_t syncRing(RingAttachment& a, uint32_t done, bool faulted) {
  RingShadow& sh = *a.shadow;
  std::lock_guard<std::mutex> lock(sh.mu);
  if (sh.generation != a.generation)
    throw NativeError("ESTALE", a.port->name(), "", 0,
                      "ring " + std::to_string(a.ring) + " was attached again by another handle; use the newest handle and detach this one");
  if (done > sh.delivered) done = sh.delivered;
  if (done > 0) {
    completeSlots(a, sh, done, faulted);
    // An output that failed (a write error) ends the run now; this batch got its verdicts.
    for (const auto& out : a.outputs) out->throwIfFailed();
  }

  const uint32_t numSlots = sh.geo.numSlots;
  const bool closed = a.port->closed();
  // A deleted interface ends the port once what the kernel had already handed over (its rings
  // stay mapped until close) has been taken and has got its verdicts.
  const bool gone = a.port->linkGone();
  bool budgetSpent = false;
  if (!sh.exhausted && !closed) {
    const uint32_t space = numSlots - 1 - sh.filled();
    // NB: one atomic claim per batch on the budget the run's rings share; what the backend
    // did not fill goes back at once, so another ring can take it.
    const uint32_t want = claimBudget(a.budget, space);
    if (want > 0) {
      bool exhausted = false;
      const uint32_t got = a.port->rxsync(a.ring, sh.tail, want, &exhausted);
      if (got < want && a.budget != nullptr) __atomic_add_fetch(a.budget, int64_t(want - got), __ATOMIC_SEQ_CST);
      sh.tail = advance(sh.tail, got, numSlots);
      if (exhausted) sh.exhausted = true;
    } else if (space > 0) {
      budgetSpent = true;
    }
  }
  const uint32_t batch = sh.filled();
  publishBatch(a, sh, batch);
  if (batch > 0) {
    a.counters[Counter::batches] += 1;
    return static_cast<int32_t>(batch);
  }
  if (sh.exhausted) {
    a.port->throwIfFailed();  // a source that ended on an error: every packet read got its verdict
    a.counters[Counter::eof] = 1;
    return -1;
  }
  if (closed || gone) return -1;
  return budgetSpent ? kSyncNoBudget : 0;
}

std::vector<uint8_t> takeTrace(RingAttachment& a) {
  RingShadow& sh = *a.shadow;
  std::lock_guard<std::mutex> lock(sh.mu);
  std::vector<uint8_t> out;
  out.swap(sh.trace);
  return out;
}

}  // namespace nmwasm
