// One ring's batch cycle, independent of N-API: attach a ring of an open port,
// complete a batch (validate what the guest wrote, apply verdicts, transmit),
// refill it from the backend and publish the next batch to the guest.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "ports/port.h"

namespace nmwasm {

/** Counter slot indices; must match `Counter` in host/ports/native.ts. */
namespace Counter {
constexpr int packets = 0, bytes = 1, batches = 2, pass = 3, drop = 4, host = 5, forward = 6, faultVerdicts = 7,
              violations = 8, outPackets = 9, outBytes = 10, eof = 11, expected = 12, outSwapped = 20, outDrops = 21, hostRefused = 22;
constexpr int slots = 24;
}  // namespace Counter

/** What one attach of a ring holds. The shadow belongs to the port; a later attach of
 * the same ring makes this one stale (generation mismatch). */
struct RingAttachment {
  std::shared_ptr<Port> port;
  uint32_t ring = 0;
  RingShadow* shadow = nullptr;
  std::vector<std::shared_ptr<Port>> outputs;  // outputs[0] gets PASS, outputs[n] FORWARD n
  std::vector<std::vector<TxPacket>> tx;       // per output, num_slots entries (allocated once)
  std::vector<uint8_t> swap;                   // per output: 1 = zero copy (it shares this port's memory)
  std::vector<std::vector<SwapPacket>> swapTx; // per zero-copy output, num_slots entries
  std::vector<uint64_t> txBytes;               // per output, bytes of the batch being sent
  std::vector<TxPacket> toHost;                // HOST packets of the batch (num_slots entries, allocated once)
  bool hostStack = false;                      // the port hands packets to a host stack (Port::passesToHost)
  bool passToHost = false;                     // hostStack and no output: PASS goes to toHost too
  std::vector<FlowVerdict> flows;              // flow verdicts of the batch (num_slots entries when the port caches flows)
  bool flowCache = false;                      // the port applies flow verdicts in the kernel (Port::cachesFlows)
  std::vector<uint8_t> verdictScratch;         // the guest's verdicts of the batch, read once (num_slots + 8 entries)
  std::vector<uint16_t> lenScratch;            // the guest's lengths of the batch, read once (num_slots entries)
  double* counters = nullptr;                  // Counter::slots doubles (a SharedArrayBuffer)
  int64_t* budget = nullptr;                   // packets the run may still take from its input, shared by
                                               // its rings (a BigInt64Array's SharedArrayBuffer); nullptr = no limit
  uint8_t faultVerdict = kVerdictDrop;
  uint64_t generation = 0;
};

/** syncRing's answer when nothing is in hand because the run's budget is spent (--count
 * reached, or the run is stopping): nothing more is taken from the port. */
constexpr int32_t kSyncNoBudget = -2;

/** Attaches ring `ring` of `port` (trusted: ring < rings, outputs can transmit,
 * counters has Counter::slots entries and budget, when not null, one int64; both kept
 * alive by the caller). Makes every
 * earlier attachment of that ring stale; a batch it left in flight is delivered
 * again by the next sync. Makes the port forget its flow verdicts (Port::invalidateFlows):
 * whatever instance serves now (a swap, a restart) judges every flow afresh. */
std::unique_ptr<RingAttachment> attachRing(std::shared_ptr<Port> port, uint32_t ring,
                                           std::vector<std::shared_ptr<Port>> outputs, double* counters,
                                           uint8_t faultVerdict, bool trace, int64_t* budget = nullptr);

/** Completes `done` slots from head (clamped to the batch in flight), refills, and
 * publishes the next batch. Every completed slot counts in exactly one of pass, drop,
 * host, forward and faultVerdicts, so their sum is the packets delivered and completed.
 * When `faulted` (the batch gets the fault verdict: trap, timeout, failed instance), the
 * guest's slots and verdicts are not read: every slot counts in faultVerdicts (not in
 * pass or drop, whatever the fault verdict does), never in violations, and leaves with
 * the host's len. Otherwise the guest's slots are checked first: when ANY slot of the
 * batch violates the ABI (changed buf_idx, len out of range, invalid or unset verdict),
 * EVERY slot of the batch gets the fault verdict and the host's len (the guest's changes
 * are discarded); each violating slot counts in violations, every slot in faultVerdicts.
 * With a budget, the refill first claims up to the free space from it (one atomic
 * exchange per batch, shared by the rings of the run) and gives back what the backend did
 * not fill: the run takes exactly the budget from its input, the rest stays in the port.
 * packets/bytes count each packet once, when first delivered; PASS without an output
 * goes to the host stack with the HOST packets when the port has one (Port::passesToHost),
 * else is counted only; packets the host stack refused count in hostRefused. A DROP or PASS
 * with kVerdictFlow counts as DROP or PASS; when the port caches flows it is also handed to
 * Port::cacheFlows (once per batch), except a PASS that goes to an output or a packet whose
 * length the filter changed. The guest's len is accepted when unchanged or in 14..nr_buf_size
 * (a captured runt shorter than 14 bytes is not a violation while the filter leaves
 * it alone).
 * Returns the next batch's size (> 0), 0 (nothing now), kSyncNoBudget (nothing in hand
 * and the budget is spent) or -1 (the finite source is exhausted and every slot
 * released, or the port was closed or its interface deleted: Port::linkGone).
 * Throws NativeError ESTALE only when the ring was attached again since `a`;
 * nothing in the per-packet part throws or allocates (except trace growth). */
int32_t syncRing(RingAttachment& a, uint32_t done, bool faulted);

/** Moves the recorded trace out (empty unless attached with trace). */
std::vector<uint8_t> takeTrace(RingAttachment& a);

}  // namespace nmwasm
