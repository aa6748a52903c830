// Ring worker: runs in a worker_thread, one per ring. Attaches to the ring of a port the
// main thread opened, instantiates the ring's chain of filters (host/engine/instance.ts, one instance
// per module) with the port's packet memory mapped into each linear memory, and runs the batch
// loop: one sync per batch and one nmwasm_process call per batch and module (a chain of more
// than one module runs through host/engine/chain.ts). Faults fail the instance (never the port, never
// the other modules of the chain): fault verdicts are applied to the packets that reach it
// until the back-off expires, then a fresh instance takes over. The main thread's watchdog
// observes this worker's lease (its phase) and Counter.batchStartedAt, reads its thread's CPU
// clock and terminates a worker stuck in guest code. A standby worker (data.standbyGen > 0)
// instantiates the modules ahead and waits to take the ring over from a killed worker.
//
// NB: the batch path (runBatches' loop) allocates nothing: no closures, objects or strings;
// counters are typed-array stores; the only N-API call is ring.sync.
import { parentPort, receiveMessageOnPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import { Counter, loadNative, SYNC_NO_BUDGET, type RingHandle } from '../ports/native.ts';
import { NMWASM_WINDOW_BASE } from '../module/module.ts';
import { ChainRunner } from './chain.ts';
import { enterGuest, errorText, Instance, leaveGuest, type WorkerContext } from './instance.ts';
import { CARRIED_BYTES, epochMs, Handover, Phase, recordBatchDuration, RingControl, RingState, SAMPLE_BYTES, SAMPLE_PACKETS, type RingWorkerData, type TakeMessage, type WorkerMessage } from './ringshared.ts';

const STATS_INTERVAL_MS = 1000;
const IDLE_WAIT_MS = 1; // software ports with nothing now
const LIVE_WAIT_MS = 10; // live ports: poll this long, then check the stop flag

const data = workerData as RingWorkerData;
const counters = new Float64Array(data.counters);
const control = new Int32Array(data.control);
const lease = new Int32Array(data.lease); // [0]: this worker's Phase, watched by host/engine/watchdog.ts
const state = new Float64Array(data.state);
const statsOut = new Float64Array(data.stats);
const moduleCounters = new Float64Array(data.modules);

function post(message: WorkerMessage): void {
  parentPort!.postMessage(message);
}

const ctx: WorkerContext = {
  data,
  counters,
  state,
  lease,
  statsOut,
  statsBase: Float64Array.from(statsOut), // values of earlier instances (kept across respawns; a standby re-reads it at takeover)
  post,
};

// ---- the chain: one instance per module (hot-swap replaces one) ------------------------------
const chain: Instance[] = [];
{
  let statsOffset = 0;
  data.chain.forEach((entry, i) => {
    chain.push(new Instance(ctx, i, data.chain.length, statsOffset, entry.statsCount, moduleCounters));
    statsOffset += entry.statsCount;
  });
}
const single = chain.length === 1 ? chain[0]! : null; // a one-module chain: called directly, as before chains
let runner: ChainRunner | null = null; // chains of more than one module
let sampleGen = Atomics.load(control, RingControl.sampleReq);

/** Starts every instance of the chain (a fresh one, or the one made ahead); the first failure ends it. */
function startChain(ring: RingHandle, memSize: number): { ok: boolean; index: number; reason?: 'init-rejected' | 'trap' | 'memory'; message?: string } {
  for (const inst of chain) {
    const r = inst.start(ring, memSize);
    if (!r.ok) return { ...r, index: inst.index };
  }
  noteInstanceMemory();
  return { ok: true, index: -1 };
}

/** Sets the instance-memory gauge (all modules together) as soon as the instances exist: a
 * module without nmwasm_stats on a short run may never reach a timed stats read. */
function noteInstanceMemory(): void {
  let bytes = 0;
  for (const inst of chain) if (inst.memory !== null) bytes += inst.memory.buffer.byteLength;
  state[RingState.instanceMemory] = bytes;
}

/** Drops every instance (ring null: handed over) and the chain's own view of the window. */
function dropChain(ring: RingHandle | null): void {
  for (const inst of chain) inst.drop(ring);
  runner?.unmap(ring);
}

/** Reads every instance's filter stats and the memory gauge (all modules together). */
function readAllStats(): void {
  for (const inst of chain) inst.readStats();
  noteInstanceMemory();
}

/** Whether a current instance exports nmwasm_stats (read after every batch then). */
function hasStats(): boolean {
  if (single !== null) return single.hasStats;
  for (const inst of chain) if (inst.hasStats) return true;
  return false;
}

// ---- hot-swap (host/engine/swap.ts) ---------------------------------------------------------
const sampleBytes = new Uint8Array(data.sample);
const sampleView = new DataView(data.sample);

/** Copies up to SAMPLE_PACKETS packets of the batch in hand (before the filters see them) into
 * the shared sample buffer for a canary, and says so through control[sampleDone]. */
function takeSample(ringPtr: number, n: number, first: number): void {
  sampleGen = Atomics.load(control, RingControl.sampleReq);
  let count = 0;
  let at = 4;
  const bytes = runner !== null ? runner.bytes : single !== null && single.hasWindow ? single.guestBytes() : null;
  if (bytes !== null) {
    const dv = new DataView(bytes.buffer);
    const bufOfs = dv.getUint32(ringPtr, true) + dv.getInt32(ringPtr + 4, true) * 4294967296;
    const numSlots = dv.getUint32(ringPtr + 8, true);
    const bufSize = dv.getUint32(ringPtr + 12, true);
    for (let i = 0; i < n && count < SAMPLE_PACKETS && numSlots > 0; i++) {
      const slot = ringPtr + 256 + ((first + i) % numSlots) * 16;
      const len = Math.min(dv.getUint16(slot + 4, true), 2048);
      const addr = ringPtr + bufOfs + dv.getUint32(slot, true) * bufSize;
      if (addr < 0 || addr + len > bytes.length || at + 4 + len > SAMPLE_BYTES) continue;
      sampleView.setUint32(at, len, true);
      sampleBytes.set(bytes.subarray(addr, addr + len), at + 4);
      at += 4 + len;
      count++;
    }
  }
  sampleView.setUint32(0, count, true);
  Atomics.store(control, RingControl.sampleDone, sampleGen);
  Atomics.notify(control, RingControl.sampleDone);
}

// ---- the batch loop -----------------------------------------------------------------
/** Fresh instances for the failed modules whose back-off is over (not while a batch is owed
 * its fault verdicts, nor when stopping). */
function restartDue(ring: RingHandle, memSize: number): void {
  let now = 0;
  for (const inst of chain) {
    if (inst.healthy) continue;
    if (now === 0) now = epochMs();
    if (inst.due(now)) inst.restart(ring, memSize);
  }
}

/** Runs batches until the source ends or the run stops. Every packet the ring takes from
 * the port gets a verdict: at a stop the batch in hand is processed (or given the fault
 * verdict) like any other and completed before the ring ends; the main thread zeroed the
 * budget first, so that last sync takes nothing more. */
function runBatches(ring: RingHandle, numSlots: number, ringPtr: number, verdictPtr: number, memSize: number): RingHandle | null {
  // After a respawn the batch the dead worker left in flight is delivered again by this first
  // sync (native re-attach semantics), from the same head: it gets the fault verdict below.
  let first = state[RingState.first]!;
  let n = ring.sync(0, false, LIVE_WAIT_MS);
  // That batch is owed its fault verdicts even when a stop is already asked for (a kill at
  // stop time), and before any fresh instance could see it (never re-processed); once they
  // are applied the host learns that traffic flows again.
  let owed = data.resume && n > 0;
  // A live port (or a software port) has a descriptor: sync itself polls it when nothing is
  // there (NB: one N-API call per batch, the wait included); without one (gen, pcap) an empty
  // sync waits on the stop flag here.
  const hasDescriptor = ring.wait(0) >= 0;
  for (;;) {
    if (n === -1) return ring; // end of a finite source (or the port closed), every slot released
    if (Atomics.load(control, RingControl.handover) === Handover.ask) {
      // A swap's prepared worker takes the ring over with the batch in hand (not processed
      // here), once it is seen on a CPU (else this batch is processed as usual).
      const kept = handOver(ring);
      if (kept === null) return null;
      if (kept !== ring) {
        ring = kept;
        n = ring.sync(0, false, LIVE_WAIT_MS); // the same batch, delivered again
        continue;
      }
    } else if (askSeenAt !== 0) askSeenAt = 0; // an ask the engine gave up on
    // A canary sample asked for: at this batch boundary (one Atomics load per batch).
    if (n > 0 && Atomics.load(control, RingControl.sampleReq) !== sampleGen) takeSample(ringPtr, n, first);
    const stopping = Atomics.load(control, RingControl.stop) !== 0;
    if (!owed && !stopping) restartDue(ring, memSize);
    if (n <= 0) {
      state[RingState.lastBatchSlots] = 0; // an empty ring (metrics: occupancy)
      // Nothing in hand: a stop ends the ring here, every packet it took has its verdict.
      if (stopping) return ring;
      // Nothing for LIVE_WAIT_MS (sync polled the descriptor that long, so the stop flag is
      // seen); a port without a descriptor, or a spent budget (--count reached: the main
      // thread stops the run once every ring's verdicts are in), waits on the stop flag.
      if (n === SYNC_NO_BUDGET) Atomics.wait(control, RingControl.stop, 0, LIVE_WAIT_MS);
      else if (!hasDescriptor) Atomics.wait(control, RingControl.stop, 0, IDLE_WAIT_MS);
      n = ring.sync(0, false, LIVE_WAIT_MS);
      if (performance.now() - chain[0]!.statsReadAt >= STATS_INTERVAL_MS) readAllStats();
      continue;
    }
    let faulted = owed; // never re-processed by a fresh instance
    if (single !== null) {
      faulted ||= !single.healthy;
      if (!faulted) {
        let rc = 0;
        let trapped: unknown = null;
        counters[Counter.wasmCalls]!++; // counted when started: a call the watchdog kills counts too
        enterGuest(ctx, 0);
        try {
          rc = single.processFn!(ringPtr, verdictPtr, first, n);
        } catch (err) {
          trapped = err;
        }
        const startedAt = counters[Counter.batchStartedAt]!;
        leaveGuest(ctx);
        recordBatchDuration(state, (epochMs() - startedAt) / 1000);
        if (trapped !== null) {
          single.fail('trap', errorText(trapped));
          faulted = true;
        } else if (rc !== 0) {
          single.fail('return', `nmwasm_process returned ${rc}`);
          faulted = true;
        }
      }
    } else if (!faulted) {
      const seconds = runner!.run(first, n, ringPtr, data.faultVerdict, data.outputs.length);
      if (seconds >= 0) recordBatchDuration(state, seconds);
    }
    state[RingState.lastBatchSlots] = n;
    const violationsBefore = counters[Counter.violations]!;
    const next = ring.sync(n, faulted, LIVE_WAIT_MS);
    first = (first + n) % numSlots;
    state[RingState.first] = first;
    if (single !== null && !faulted && counters[Counter.violations]! > violationsBefore) {
      single.fail('violation', `batch of ${n} slots broke the ABI (${counters[Counter.violations]! - violationsBefore} slots with a changed buf_idx, a bad len or an invalid verdict)`);
    }
    n = next;
    if (owed) {
      owed = false;
      post({ type: 'recovered', ring: data.ring, at: epochMs() });
    }
    // The filters' counters are published after every batch: a killed instance loses the
    // stats of the batch in flight only. NB: one more small guest call per batch and module.
    if (!faulted && hasStats()) readAllStats();
    else if (performance.now() - chain[0]!.statsReadAt >= STATS_INTERVAL_MS) readAllStats();
  }
}

/** A standby: instantiates the modules now (unwatched: it owns no ring yet), says so, and
 * waits until the watchdog hands it the ring (true) or the engine ends it (false). */
function standBy(): boolean {
  // The start functions run here, under the engine's start budget (wall time, on this lease).
  Atomics.store(lease, 0, Phase.inStart);
  for (const inst of chain) {
    try {
      inst.prepared = new WebAssembly.Instance(inst.module, inst.imports);
    } catch {
      inst.prepared = null; // the takeover instantiates again, watched, and reports the fault then
    }
  }
  if (Atomics.compareExchange(lease, 0, Phase.inStart, Phase.idle) !== Phase.inStart) {
    for (;;) Atomics.wait(lease, 0, Phase.killed); // the engine gave up on this standby
  }
  post({ type: 'standby-ready', ring: data.ring });
  for (;;) {
    const gen = Atomics.load(control, RingControl.takeover);
    if (gen >= data.standbyGen) break;
    // Not on `stop`: a call killed at stop time still needs the standby to give its batch the
    // fault verdicts. The engine ends an unused standby through lease[1].
    if (Atomics.load(lease, 1) !== 0) return false;
    Atomics.wait(control, RingControl.takeover, gen, 50);
  }
  ctx.statsBase.set(statsOut); // what every earlier instance published, up to the killed call's last batch
  return true;
}

/** The chain runner of a chain of more than one module (null for one module), its view mapped. */
function makeRunner(ring: RingHandle, layout: ReturnType<RingHandle['layout']>): void {
  if (chain.length === 1) return;
  runner = new ChainRunner(ctx, chain, layout.numSlots, layout.bufSize, NMWASM_WINDOW_BASE + layout.ringOfs, NMWASM_WINDOW_BASE + layout.verdictOfs, layout.memSize);
  runner.map(ring);
}

function main(): void {
  native = loadNative();
  try {
    native.registerThreadClock(threadId);
  } catch (err) {
    post({ type: 'notice', ring: data.ring, message: `${(err as Error).message}` });
  }
  if (data.standbyGen > 0 && !standBy()) return;
  if (data.handover) {
    takeOver(data.handover);
    return;
  }
  let ring: RingHandle;
  try {
    ring = attach();
  } catch (err) {
    postFatal(err);
    return;
  }
  try {
    const layout = ring.layout();
    makeRunner(ring, layout);
    if (!data.resume) {
      const result = startChain(ring, layout.memSize);
      if (!result.ok) {
        post({ type: 'start-failed', ring: data.ring, reason: result.reason!, message: result.message!, module: result.index });
        dropChain(ring);
        ring.detach();
        return;
      }
      post({ type: 'ready', ring: data.ring });
      while (Atomics.load(control, RingControl.go) === 0 && Atomics.load(control, RingControl.stop) === 0) {
        Atomics.wait(control, RingControl.go, 0, 50);
      }
    } else if (single !== null) {
      counters[Counter.failed] = 1; // fault verdicts until the back-off set by the watchdog expires
    } else {
      // A chain: the module whose call was killed waits out its back-off (set by the watchdog
      // in its block); the others start now.
      const killed = state[RingState.guestModule]!;
      for (const inst of chain) {
        if (inst.index === killed) continue;
        const r = inst.start(ring, layout.memSize);
        if (!r.ok) inst.fail(r.reason === 'trap' ? 'trap' : 'init', r.message!);
      }
    }
    serve(ring, layout);
  } catch (err) {
    postFatal(err);
  }
}

/** Runs the ring to its end and says so ('done'), unless a swap's worker took it over: then
 * this worker becomes the ring's spare (becomeSpare). */
function serve(ring: RingHandle, layout: ReturnType<RingHandle['layout']>): void {
  const last = runBatches(ring, layout.numSlots, NMWASM_WINDOW_BASE + layout.ringOfs, NMWASM_WINDOW_BASE + layout.verdictOfs, layout.memSize);
  if (last === null) {
    dropChain(null); // handed over: the port memory stays mapped in the new instances only
    becomeSpare();
    return;
  }
  readAllStats();
  const trace = data.trace ? last.takeTrace() : undefined;
  dropChain(last);
  last.detach();
  post(trace ? { type: 'done', ring: data.ring, trace } : { type: 'done', ring: data.ring });
}

let native: ReturnType<typeof loadNative>;
/** This thread's CPU time (ms; 0 when its clock could not be registered). */
function threadCpuMs(): number {
  try {
    return native.threadCpuMs(threadId);
  } catch {
    return 0;
  }
}
function attach(): RingHandle {
  return native.attachRing(data.portId, data.ring, { outputs: data.outputs, counters, faultVerdict: data.faultVerdict, trace: data.trace, budget: new BigInt64Array(data.budget) });
}

// ---- handover: a swap's prepared worker takes the ring over -------------------------------
const carriedView = new DataView(data.carried);
const carriedBytes = new Uint8Array(data.carried);
const SPIN_MS = 20;

/** Spinning on the serving worker's side for at most this long per batch boundary (ms). */
const BEAT_WAIT_MS = 0.02;
/** After this long (ms) since the ask the ring is let go even if the new worker was never seen
 * on a CPU at a boundary (a machine with one free CPU or less). */
const BEAT_GIVE_UP_MS = 50;
let askSeenAt = 0;
/** When the stall of the handover in progress began (epoch ms): the serving worker's batch
 * boundary where it decided to let go. */
let stallFrom = 0;

/** Serving worker, asked for the ring: whether the swap's new worker is spinning on a CPU right
 * now (its beat, control[takerBeat], moves within BEAT_WAIT_MS). Only then is the ring let go,
 * so the new worker picks it up at once rather than after a scheduler round (most of a stall
 * on a loaded machine); otherwise this batch is processed as usual and the next boundary
 * checks again. NB: up to BEAT_WAIT_MS of spinning per boundary while a swap waits. */
function takerOnCpu(): boolean {
  if (askSeenAt === 0) askSeenAt = stallFrom;
  if (stallFrom - askSeenAt > BEAT_GIVE_UP_MS) return true;
  const beat = Atomics.load(control, RingControl.takerBeat);
  const until = performance.now() + BEAT_WAIT_MS;
  while (performance.now() < until) if (Atomics.load(control, RingControl.takerBeat) !== beat) return true;
  return false;
}

/** Serving worker, at a batch boundary: saves each instance's carried state for the new worker
 * (the swapped module's only when the new module takes it), then (takerOnCpu) lets go of the
 * ring (the batch in hand, not processed, is delivered again to whoever attaches next) and
 * waits for the outcome. Returns null when the new worker took the ring, `ring` itself when it
 * did not let go yet, else a fresh handle (this worker serves on with its instances). */
function handOver(ring: RingHandle): RingHandle | null {
  stallFrom = epochMs();
  const cpuFrom = threadCpuMs();
  const swapped = state[RingState.handoverModule]!;
  for (const inst of chain) {
    if (inst.healthy) inst.readStats();
    const at = inst.index * CARRIED_BYTES;
    if (inst.index === swapped && state[RingState.handoverState] !== 1) carriedView.setUint32(at, 0xffffffff, true);
    else inst.saveState(carriedView, carriedBytes, at);
  }
  // Saved first, then the ring is let go only if the new worker is on a CPU now: the window
  // in which it could lose its CPU is then just the detach. Otherwise this batch is processed
  // by the old instances (the saved states are stale: saved again at the next boundary).
  if (!takerOnCpu()) return ring;
  askSeenAt = 0;
  state[RingState.handoverAt] = stallFrom;
  ring.detach();
  state[RingState.handoverCpuMs] = threadCpuMs() - cpuFrom;
  if (Atomics.compareExchange(control, RingControl.handover, Handover.ask, Handover.released) === Handover.ask) {
    Atomics.notify(control, RingControl.handover);
    for (;;) {
      const step = Atomics.load(control, RingControl.handover);
      if (step === Handover.taken) {
        Atomics.store(control, RingControl.handover, Handover.none); // the engine waits for this
        return null;
      }
      if (step === Handover.refused) break;
      Atomics.wait(control, RingControl.handover, step, 50);
    }
  }
  const again = attach();
  Atomics.store(control, RingControl.handover, Handover.none); // the engine waits for this
  return again;
}

/** A swap's new worker: instantiates and initialises every module of the chain ahead (it owns
 * no ring yet) and maps the port memory into them, then, once the serving worker let go of the
 * ring, attaches, hands over the carried states and serves from the batch in hand. NB: the ring
 * stalls from the release to the first batch here (attach + nmwasm_state_load per module), not
 * for instantiation nor the mapping. */
function takeOver(handover: NonNullable<RingWorkerData['handover']>): void {
  Atomics.store(lease, 0, Phase.inStart);
  const made: WebAssembly.Instance[] = [];
  for (const inst of chain) {
    try {
      made.push(new WebAssembly.Instance(inst.module, inst.imports));
    } catch (err) {
      Atomics.compareExchange(lease, 0, Phase.inStart, Phase.idle);
      refuse(null, `${chain.length > 1 ? `module ${inst.index}: ` : ''}instantiation failed: ${errorText(err)}`, false);
      return;
    }
  }
  Atomics.compareExchange(lease, 0, Phase.inStart, Phase.idle);
  // nmwasm_init ahead too: the packet windows are not mapped yet (zero pages).
  for (const inst of chain) {
    const result = inst.adopt(null, data.memSize, made[inst.index]!, inst.config);
    if (!result.ok) {
      const who = chain.length > 1 ? `module ${inst.index}: ` : '';
      refuse(null, who + (result.reason === 'init-rejected' ? `configuration rejected by nmwasm_init: ${result.message!}` : result.message!), false);
      return;
    }
  }
  // The packet memory is mapped into the new instances ahead too (NB: a populated mapping costs
  // some 0.2 ms per instance, which would be part of the stall after the release).
  try {
    for (const inst of chain) inst.mapPortWindow((view, offset) => native.mapPortMemory(data.portId, view, offset));
  } catch (err) {
    refuse(null, `mapping the packet memory failed: ${errorText(err)}`, false);
    return;
  }
  post({ type: 'handover-ready', ring: data.ring });
  // Asked here, not through the main thread: the spin below then covers the serving worker's
  // way to its next batch boundary.
  if (Atomics.load(lease, 1) !== 0) return;
  Atomics.compareExchange(control, RingControl.handover, Handover.none, Handover.ask);
  Atomics.notify(control, RingControl.stop); // an idle serving worker waits there: it re-checks at once
  // NB: spins (up to SPIN_MS) rather than sleeping: a sleeping thread's wake-up costs a
  // scheduler round, part of the ring's stall. The serving worker lets go at its next batch
  // boundary, normally well within this.
  // The beat tells the serving worker this thread is on a CPU (it lets go only then); after
  // SPIN_MS a short sleep lets a starved machine breathe, then the spin resumes.
  let spinUntil = performance.now() + SPIN_MS;
  for (;;) {
    const step = Atomics.load(control, RingControl.handover);
    if (step === Handover.released) break;
    if (Atomics.load(lease, 1) !== 0) return; // the engine gave up on this swap
    Atomics.add(control, RingControl.takerBeat, 1);
    if (performance.now() > spinUntil) {
      Atomics.wait(control, RingControl.handover, step, 1);
      spinUntil = performance.now() + SPIN_MS;
    }
  }
  const cpuFrom = threadCpuMs();
  let ring: RingHandle;
  let layout: ReturnType<RingHandle['layout']>;
  try {
    ring = attach();
    layout = ring.layout();
    makeRunner(ring, layout);
  } catch (err) {
    refuse(null, `taking the ring failed: ${errorText(err)}`, true);
    return;
  }
  ctx.statsBase.set(statsOut); // everything the old worker published
  let carried = false;
  for (const inst of chain) {
    const why = inst.loadState(carriedView, carriedBytes, inst.index * CARRIED_BYTES);
    if (why === 'none') continue;
    if (why !== '') {
      refuse(ring, `${chain.length > 1 ? `module ${inst.index}: ` : ''}${why}`, true);
      return;
    }
    // What the instance reports right after taking the state is counted already: a module
    // that carries its counters (counter) continues them, one that does not (ratelimit) starts
    // from 0; either way the stats add up once.
    inst.rebaseStats();
    if (inst.index === handover.index) carried = true;
  }
  for (const inst of chain) inst.previous = null;
  if (data.revert) chain[handover.index]!.previous = handover.previous ?? null;
  counters[Counter.failed] = 0;
  Atomics.store(control, RingControl.handover, Handover.taken);
  Atomics.notify(control, RingControl.handover);
  // The stall on the clock (it includes any time either thread waited for a CPU) and in CPU
  // time of the two threads (what the switch itself costs).
  const stallUs = Math.round((epochMs() - state[RingState.handoverAt]!) * 1000);
  const stallCpuUs = Math.round((state[RingState.handoverCpuMs]! + threadCpuMs() - cpuFrom) * 1000);
  post({ type: 'swapped', ring: data.ring, gen: 0, ok: true, stallUs, stallCpuUs, state: carried ? 'carried' : 'none' });
  try {
    serve(ring, layout);
  } catch (err) {
    postFatal(err);
  }
}

/** A worker that handed its ring over to a swap's worker is kept as the ring's spare (a
 * thread costs tens of ms to start, a swap should not wait for one): it says so and waits for
 * the engine's next `take` (host/engine/engine.ts handOver), then takes the ring over with that chain
 * as a fresh swap worker would. Without a `take` it is terminated at the end of the run. */
function becomeSpare(): void {
  post({ type: 'spare', ring: data.ring });
  // NB: blocks in Atomics.wait (the engine notifies lease[0] after posting `take`): a spare
  // is terminated there at the end of the run, as a ready standby is.
  for (;;) {
    const m = receiveMessageOnPort(parentPort as unknown as MessagePort)?.message as TakeMessage | undefined;
    if (m !== undefined) {
      sampleGen = Atomics.load(control, RingControl.sampleDone);
      for (const inst of chain) inst.reset(m.chain[inst.index]!);
      takeOver(m.handover);
      return;
    }
    Atomics.wait(lease, 0, Phase.idle, 50);
  }
}

/** The new worker could not take the ring: the old one attaches again and serves on. */
function refuse(ring: RingHandle | null, reason: string, released: boolean): void {
  if (ring !== null) {
    dropChain(ring);
    ring.detach();
  }
  if (released) {
    Atomics.store(control, RingControl.handover, Handover.refused);
    Atomics.notify(control, RingControl.handover);
  }
  post({ type: 'swapped', ring: data.ring, gen: 0, ok: false, reason, stallUs: 0, state: 'none' });
}

function postFatal(err: unknown): void {
  const e = err as Error & { code?: string; port?: string; syscall?: string; errno?: number };
  const msg: WorkerMessage = { type: 'fatal', ring: data.ring, message: e instanceof Error ? e.message : String(err) };
  if (typeof e.code === 'string') msg.code = e.code;
  if (typeof e.port === 'string') msg.port = e.port;
  if (typeof e.syscall === 'string') msg.syscall = e.syscall;
  if (typeof e.errno === 'number') msg.errno = e.errno;
  post(msg);
}

main();
