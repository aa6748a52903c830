// What the main thread (host/engine/engine.ts) and a ring worker (host/engine/worker.ts) share: the
// layouts of the per-ring SharedArrayBuffers beside host/ports/native.ts's Counter array, the
// worker's start data, the messages a worker posts, and the fault back-off rule.
// Everything here is plain data: the worker and the watchdog communicate through
// Atomics on RingControl, never through messages, so a busy or stuck worker is still
// observable and killable.

/** Int32Array slots of a ring's control buffer. */
export const RingControl = {
  phase: 0, // Phase: written with Atomics by the worker (enter/leave guest) and by the watchdog (claim a kill)
  stop: 1, // 1 = give the batch in hand its verdicts and end (set by the main thread after it zeroed the budget, Atomics.notify'd)
  go: 2, // 1 = every ring's first instance is ready: start taking traffic
  takeover: 3, // generation of the standby worker that must take the ring over now (host/engine/standby.ts)
  sampleReq: 5, // generation of the last canary-sample request (host/engine/swap.ts)
  sampleDone: 6, // generation of the last sample the worker copied into RingWorkerData.sample
  handover: 7, // Handover step of a swap to a prepared worker (host/engine/worker.ts handOver / takeOver)
  takerBeat: 8, // bumped by a swap's new worker while it spins for the ring: it is on a CPU now
} as const;

/** Steps of a handover in control[handover]: the engine asks (ask), the serving worker lets go
 * of the ring at a batch boundary (released), the new worker took it (taken) or could not
 * (refused: the old worker attaches again and serves on). */
export const Handover = { none: 0, ask: 1, released: 2, taken: 3, refused: 4 } as const;
export const RING_CONTROL_SLOTS = 9;

export const Phase = {
  idle: 0, // not running guest code
  inGuest: 1, // inside a guest call (start function, nmwasm_init, nmwasm_process, nmwasm_stats)
  killed: 2, // the watchdog claimed this guest call: the worker must not touch the ring again
  inStart: 3, // inside instantiation or nmwasm_init of a fresh instance (the start budget applies)
} as const;

/** The one Int32 slot of a worker's own lease buffer: its Phase. Each worker has its own, so
 * a killed worker whose guest call returns late can never mistake its successor's call
 * for its own. */
export const LEASE_SLOTS = 2;

/** Float64Array slots of a ring's host-private state; survives worker restarts. */
export const RingState = {
  first: 1, // slot index of the batch in flight (the head); a respawned worker continues from it
  backoffMs: 2, // current back-off
  failedUntil: 3, // epoch ms until which the ring stays failed (fault verdicts)
  lastFaultAt: 4, // epoch ms of the last fault
  badReturns: 5, // faults: nmwasm_process returned non-zero
  violationFaults: 6, // faults: a batch broke the ABI (Counter.violations grew)
  initFaults: 7, // faults: a fresh instance's start/init trapped or rejected the config
  workerCrashes: 8, // ring workers that died of an uncaught error and were respawned
  statsInvalid: 9, // 1 once nmwasm_stats returned an address out of bounds (reported once)
  outages: 12, // killed guest calls after which traffic flowed again (host/engine/watchdog.ts)
  outageMsMax: 13, // longest of them: from the start of the killed call to the in-flight batch's fault verdicts
  outageMsTotal: 14,
  handoverAt: 10, // epoch ms the serving worker let go of the ring for a handover (the stall starts)
  handoverState: 11, // 1: the old instance's carried state is wanted (the new module takes it)
  guestModule: 15, // index in the chain of the module whose guest call runs (the watchdog's kill names it)
  chainFaultDrop: 0, // packets a faulted module of a chain (> 1 module) ended with the fault verdict DROP (native counted them as drop)
  handoverModule: 32, // index in the chain of the module a handover swaps (its state is carried only when handoverState is 1)
  chainFaultPass: 31, // ... with the fault verdict PASS as the chain's last module (native counted them as pass)
  handoverCpuMs: 33, // CPU time (ms) the serving worker's thread spent in the stall, up to the release
  // Metrics (host/control/metrics.ts), written by the ring worker; slots from 16 on, clear of the others.
  lastBatchSlots: 16, // filled slots handed to the filter at the last sync (ring occupancy)
  instanceMemory: 17, // bytes of the current instance's linear memory (updated once a second)
  batchSeconds: 18, // sum of the batch durations (guest call), seconds
  batchBuckets: 19, // BATCH_BUCKETS.length + 1 slots: batches with duration <= each bound, the last = all (+Inf)
} as const;
/** Upper bounds (seconds) of the batch duration histogram (nmwasm_batch_duration_seconds). */
export const BATCH_BUCKETS = [0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] as const;
export const RING_STATE_SLOTS = 40; // >= RingState.batchBuckets + BATCH_BUCKETS.length + 1, and handoverModule

/** Counts one guest call of `seconds` in the ring's batch duration histogram (cumulative
 * buckets). NB: per batch; a few compares and stores, allocates nothing. */
export function recordBatchDuration(state: Float64Array, seconds: number): void {
  state[RingState.batchSeconds]! += seconds;
  const base = RingState.batchBuckets;
  for (let i = 0; i < BATCH_BUCKETS.length; i++) if (seconds <= BATCH_BUCKETS[i]!) state[base + i]!++;
  state[base + BATCH_BUCKETS.length]!++;
}

export const BACKOFF_FIRST_MS = 100;
export const BACKOFF_MAX_MS = 10_000;
/** A fresh instance that stays healthy this long resets the back-off to BACKOFF_FIRST_MS. */
export const BACKOFF_RESET_MS = 10_000;

/** Milliseconds since the Unix epoch, comparable across threads (each thread's
 * performance.timeOrigin differs, so performance.now() alone is not). */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Records a fault in `state`: sets failedUntil = now + back-off, doubling the back-off when
 * the previous instance had not been healthy for BACKOFF_RESET_MS. Returns the back-off. */
export function recordFault(state: Float64Array, now: number): number {
  const previous = state[RingState.backoffMs]!;
  const healthySince = state[RingState.lastFaultAt]! + previous;
  const backoff = previous === 0 || now - healthySince > BACKOFF_RESET_MS ? BACKOFF_FIRST_MS : Math.min(previous * 2, BACKOFF_MAX_MS);
  state[RingState.backoffMs] = backoff;
  state[RingState.lastFaultAt] = now;
  state[RingState.failedUntil] = now + backoff;
  return backoff;
}

/** Float64Array slots of one chain module's block in a ring's module buffer (RingWorkerData.modules,
 * MODULE_SLOTS per module). backoffMs, failedUntil and lastFaultAt sit at RingState's indices so
 * recordFault works on a block as on a ring's state. Written only for chains of more than one
 * module: a one-module chain's module counts are the ring's own (host/chainstats.ts). */
export const ModuleCounter = {
  seen: 0, // packets that reached the module (PASS of every module before it)
  pass: 1,
  backoffMs: 2,
  failedUntil: 3,
  lastFaultAt: 4,
  drop: 5,
  host: 6,
  forward: 7,
  fault: 8, // packets that got the fault verdict from this module (it was failed, or faulted on them)
  traps: 9,
  violations: 10, // faults: a batch broke the ABI
  badReturns: 11,
  initFaults: 12,
  timeouts: 13, // written by the main thread's watchdog
  restarts: 14,
  violationSlots: 15,
} as const;
export const MODULE_SLOTS = 16;

/** One module of a chain as a worker gets it. */
export interface ChainEntry {
  module: WebAssembly.Module;
  config: Uint8Array;
  statsCount: number; // its manifest's stats names (nmwasm_stats); its slots follow the earlier modules' in `stats`
}

export interface RingWorkerData {
  portId: number;
  ring: number;
  outputs: number[];
  /** The modules run in order on every batch (libxdp dispatcher semantics, docs/ABI.md section 9). */
  chain: ChainEntry[];
  /** MODULE_SLOTS Float64 per module of the chain (ModuleCounter), kept across workers. */
  modules: SharedArrayBuffer;
  counters: SharedArrayBuffer; // host/ports/native.ts Counter layout
  control: SharedArrayBuffer; // RingControl
  state: SharedArrayBuffer; // RingState
  stats: SharedArrayBuffer; // one f64 per manifest stats name of each module, in chain order: accumulated over instances
  faultVerdict: 0 | 1;
  trace: boolean;
  /** The run's budget (AttachOptions.budget): one BigInt64 shared by every ring of the run,
   * packets it may still take from its input (--count, else 2^63-1); 0 once stopping. */
  budget: SharedArrayBuffer;
  /** This worker's own Phase cell (LEASE_SLOTS Int32). */
  lease: SharedArrayBuffer;
  /** Standby: instantiate the module now, then wait until control[takeover] reaches this
   * generation (take the ring over) or stop is set (end); 0 = not a standby. */
  standbyGen: number;
  /** Bytes of the port's packet memory (the window a fresh instance must hold). */
  memSize: number;
  /** false: first start (init failures are usage errors, wait for `go`); true: respawn after a
   * timeout or crash (starts failed: the re-delivered batch in flight gets the fault verdict). */
  resume: boolean;
  /** Canary samples: u32 count, then per packet u32 len + len bytes (SAMPLE_BYTES in all). */
  sample: SharedArrayBuffer;
  /** --on-fault previous: a faulted instance of a swapped-in module is replaced by the last good one. */
  revert: boolean;
  /** A swap's new worker: instantiate and init ahead, then take the ring over at the serving
   * worker's next batch boundary (control[handover]); `previous` is the module it replaces. */
  handover?: { index: number; previous: { module: WebAssembly.Module; config: Uint8Array } | null };
  /** The carried state of a handover, CARRIED_BYTES per module of the chain: u32 length
   * (0xFFFFFFFF: none) + the blob. */
  carried: SharedArrayBuffer;
}

export const CARRIED_BYTES = 4 + 0xf0000; // NMWASM_CONFIG_MAX

/** Room for the canary's sample of live packets (SAMPLE_PACKETS of at most 2048 bytes). */
export const SAMPLE_PACKETS = 64;
export const SAMPLE_BYTES = 4 + SAMPLE_PACKETS * (4 + 2048);

export type FaultKind = 'trap' | 'timeout' | 'violation' | 'return' | 'init' | 'crash';

/** The engine to a ring's spare worker: take the ring over with this chain (a swap of module
 * `handover.index`; the others as they serve). */
export interface TakeMessage {
  type: 'take';
  chain: ChainEntry[];
  handover: { index: number; previous: { module: WebAssembly.Module; config: Uint8Array } | null };
}

export type WorkerMessage =
  | { type: 'ready'; ring: number }
  | { type: 'standby-ready'; ring: number }
  | { type: 'recovered'; ring: number; at: number }
  | { type: 'start-failed'; ring: number; reason: 'init-rejected' | 'trap' | 'memory'; message: string; module: number }
  | { type: 'log'; ring: number; line: string }
  | { type: 'fault'; ring: number; kind: FaultKind; message: string; backoffMs: number; module: number }
  | { type: 'notice'; ring: number; message: string }
  | { type: 'done'; ring: number; trace?: Uint8Array }
  | { type: 'swapped'; ring: number; gen: number; ok: boolean; reason?: string; stallUs: number; stallCpuUs?: number; state: 'carried' | 'none' }
  | { type: 'reverted'; ring: number; message: string; module: number }
  | { type: 'handover-ready'; ring: number }
  | { type: 'spare'; ring: number } // handed the ring over; kept for the next swap (host/engine/worker.ts becomeSpare)
  | { type: 'fatal'; ring: number; message: string; code?: string; port?: string; syscall?: string; errno?: number };
