// Ring batch cycle (see ring_sync.h).
//
// Batch size: every filled slot, i.e. at most num_slots - 1 (one slot always
// stays empty so that head == tail means "empty", as in netmap). The backend is
// asked to fill every free slot at each sync, so a batch is as large as the
// source allows; a live backend with little traffic returns small batches.
#include "core/ring_sync.h"

#include <time.h>

#include <cstddef>
#include <cstring>

#include "core/errors.h"

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

static_assert(offsetof(ShadowSlot, len) == 4 && offsetof(ShadowSlot, flags) == 6 && offsetof(NetmapSlot, len) == 4 &&
                  offsetof(NetmapSlot, flags) == 6 && offsetof(NetmapSlot, ptr) == 8 && sizeof(NetmapSlot) == 16,
              "a shadow slot starts as a netmap slot does: buf_idx, len, flags");
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "slot words are read as buf_idx | len << 32 (little-endian, as wasm memory is)");

/** buf_idx | len << 32 | flags << 48 of a shadow slot: its first 8 bytes, as a netmap slot has them. */
inline uint64_t shadowWord(const ShadowSlot& s) {
  uint64_t w;
  std::memcpy(&w, &s, 8);
  return w;
}

/** Copies the `n` verdict bytes from slot `head` on (wrapping at numSlots) to `out` and
 * zero-fills `out` up to the next multiple of 8: each guest byte is read exactly once. */
inline void copyVerdicts(uint8_t* out, const volatile uint8_t* verdicts, uint32_t head, uint32_t n, uint32_t numSlots) {
  const uint8_t* v = const_cast<const uint8_t*>(verdicts);  // NB: read once, by memcpy (vectorised), never again
  const uint32_t first = n < numSlots - head ? n : numSlots - head;
  std::memcpy(out, v + head, first);
  if (n > first) std::memcpy(out + first, v, n - first);
  std::memset(out + n, 0, (8 - (n & 7)) & 7);
}

/** What the verdict scan of a batch found. */
struct VerdictCounts {
  uint64_t bad = 0, pass = 0, host = 0;  // drop = n - bad - pass - host
  uint64_t flowBits = 0;                 // the flow bit (0x40) of any byte: then the scan's counts do not hold
};

/** Counts the verdicts of a port without outputs: valid are DROP, PASS and HOST (0, 1, 2).
 * `v` holds n bytes zero-padded to a multiple of 8. NB: eight verdicts a step (SWAR): a byte
 * is >= 3 when its top bit is set or its low 7 bits plus 0x7D carry into bit 7; the per-byte
 * 0/1 flags of a word are summed by one multiply. */
VerdictCounts countVerdictsNoOutputs(const uint8_t* v, uint32_t n) {
  constexpr uint64_t kOnes = 0x0101010101010101ull, kHigh = 0x8080808080808080ull, kLow7 = 0x7F7F7F7F7F7F7F7Full;
  VerdictCounts c;
  for (uint32_t k = 0; k < n; k += 8) {
    uint64_t x;
    std::memcpy(&x, v + k, 8);
    const uint64_t bad = (((x & kLow7) + 0x7D7D7D7D7D7D7D7Dull) | x) & kHigh;  // 0x80 in each byte >= 3
    const uint64_t valid = ~(bad >> 7) & kOnes;                                 // 0x01 in each byte <= 2
    c.bad += ((bad >> 7) * kOnes) >> 56;
    c.pass += ((x & valid) * kOnes) >> 56;
    c.host += (((x >> 1) & valid) * kOnes) >> 56;
    c.flowBits |= x & 0x4040404040404040ull;
  }
  return c;
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
  bool counted = false;  // pass/drop/host already known from the verdict scan (pass 2 only routes)

  // Pass 1: read and check what the guest wrote (each guest field exactly once: the guest's
  // copy is untrusted). A batch with any violation gets the fault verdict on EVERY slot and
  // the guest's lengths are discarded (docs/ABI.md section 6): a module that broke the ABI
  // anywhere in the batch is not trusted on the rest of it either.
  // NB: the per-slot cost of this pass is most of the host's own cost per packet: the
  // verdicts are copied in bulk and scanned eight at a time; a slot's buf_idx and len are
  // one 8-byte compare against what was published, and only a slot that differs is looked at.
  uint32_t i = sh.head;
  if (!faulted) {
    uint8_t* vs = a.verdictScratch.data();
    copyVerdicts(vs, verdicts, sh.head, done, geo.numSlots);
    uint16_t* lens = a.lenScratch.data();
    const ShadowSlot* shadow = sh.slots.data();  // NB: a local: the byte stores below may alias anything
    const uint32_t numSlots = geo.numSlots, bufSize = geo.bufSize;
    // In at most two runs (the ring wraps once): no wrap test per slot.
    for (uint32_t k = 0; k < done;) {
      const uint32_t run = done - k < numSlots - i ? done - k : numSlots - i;
      for (uint32_t j = i; j < i + run; j++, k++) {
        const uint64_t word = *reinterpret_cast<const volatile uint64_t*>(&gslots[j]);  // buf_idx | len << 32 | flags << 48
        const ShadowSlot& s = shadow[j];
        const uint64_t published = shadowWord(s);
        uint32_t guestLen = s.len;
        if (((word ^ published) & 0xFFFFFFFFFFFFull) != 0) {  // buf_idx or len changed (flags are the guest's)
          guestLen = static_cast<uint16_t>(word >> 32);
          const bool lenOk = guestLen == s.len || (guestLen >= kMinPacketLen && guestLen <= bufSize);
          if (static_cast<uint32_t>(word) != s.bufIdx || !lenOk) {
            violations++;
            vs[k] = kVerdictDrop;  // counted once as a violating slot, whatever its verdict
          }
        }
        lens[k] = static_cast<uint16_t>(guestLen);
      }
      i = advance(i, run, numSlots);
    }
    if (numOutputs == 0) {
      const VerdictCounts vc = countVerdictsNoOutputs(vs, done);
      if (vc.flowBits == 0) {
        violations += vc.bad;
        pass = vc.pass;
        host = vc.host;
        drop = done - vc.bad - vc.pass - vc.host;
        counted = true;
      } else {  // flow verdicts (0x40 | DROP/PASS): rare (a flow's first packets), checked one by one
        for (uint32_t k = 0; k < done; k++) violations += verdictValid(vs[k], 0) ? 0 : 1;
      }
    } else {
      for (uint32_t k = 0; k < done; k++) violations += verdictValid(vs[k], numOutputs) ? 0 : 1;
    }
  }
  const bool whole = faulted || violations > 0;
  if (whole) {
    faultVerdicts = done;
    pass = drop = host = 0;
    counted = false;
  }

  // Pass 2: apply the verdicts. NB: skipped when there is nothing to route: no output, no
  // HOST verdict, PASS not handed to a host stack, no trace (the counts came from the scan).
  const bool route = !counted || host > 0 || a.passToHost || sh.tracing;
  i = sh.head;
  for (uint32_t k = 0; route && k < done; k++, i = advance(i, 1, geo.numSlots)) {
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
      if (!whole && !counted) pass++;
      if (numOutputs > 0) out = 0;
      else if (a.passToHost) a.toHost[hostCount++] = TxPacket{port.bufferAt(geo, s.bufIdx), len, len, s.tsNs};  // continues to the host stack
    } else if (v == kVerdictDrop) {
      if (!whole && !counted) drop++;
    } else if (v == kVerdictHost) {
      if (!counted) host++;  // handed to Port::toHost below (software ports: counted only)
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

  // NB: in at most two runs (the ring wraps once), the verdicts by memset.
  uint64_t newBytes = 0;
  const ShadowSlot* shadow = sh.slots.data();
  for (uint32_t k = 0, i = sh.head; k < batch;) {
    const uint32_t run = batch - k < geo.numSlots - i ? batch - k : geo.numSlots - i;
    std::memset(verdicts + i, kVerdictUnset, run);
    for (uint32_t j = i; j < i + run; j++) {
      const ShadowSlot& s = shadow[j];
      // NB: two 8-byte stores (buf_idx, len, flags as they lie in the shadow; the timestamp).
      const uint64_t word = shadowWord(s);
      std::memcpy(&gslots[j], &word, 8);
      std::memcpy(reinterpret_cast<uint8_t*>(&gslots[j]) + 8, &s.tsNs, 8);
      newBytes += s.len;
    }
    // The slots already delivered (a batch delivered again) were counted then: taken back out.
    for (uint32_t j = i; j < i + run && k + (j - i) < sh.delivered; j++) newBytes -= shadow[j].len;
    k += run;
    i = advance(i, run, geo.numSlots);
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
  a->verdictScratch.resize(sh.geo.numSlots + 8);  // + the zero padding of the 8-at-a-time scan
  a->flowCache = port->cachesFlows();
  if (a->flowCache) a->flows.resize(sh.geo.numSlots);
  // The instance about to serve may judge differently (a swap, a new config): the kernel
  // forgets what the previous one decided.
  port->invalidateFlows();
  a->lenScratch.resize(sh.geo.numSlots);
  a->outputs = std::move(outputs);
  // The port's expected packets count once per run: in ring 0's counters (host/engine/engine.ts sums rings).
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
