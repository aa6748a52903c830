// Ring worker: runs in a worker_thread, one per ring. Attaches to the ring of a port the
// main thread opened, instantiates the filter with the port's packet memory mapped into
// its linear memory, and runs the batch loop: one sync and one nmwasm_process call per
// batch. Faults fail the instance (never the port): fault verdicts are applied until the
// back-off expires, then a fresh instance takes over. The main thread's watchdog observes
// this worker's lease (its phase) and Counter.batchStartedAt, reads its thread's CPU clock
// and terminates a worker stuck in guest code. A standby worker (data.standbyGen > 0)
// instantiates the module ahead and waits to take the ring over from a killed worker.
//
// NB: the batch path (runBatches' loop) allocates nothing: no closures, objects or strings;
// counters are typed-array stores; the only N-API call is ring.sync.
import { parentPort, receiveMessageOnPort, threadId, workerData, type MessagePort } from 'node:worker_threads';
import { Counter, loadNative, SYNC_NO_BUDGET, type RingHandle } from './native.ts';
import { NMWASM_CONFIG_BASE, NMWASM_CONFIG_MAX, NMWASM_DATA_BASE, NMWASM_WINDOW_BASE } from './module.ts';
import { printable } from './text.ts';
import { epochMs, Handover, Phase, type TakeMessage, recordBatchDuration, recordFault, RingControl, RingState, SAMPLE_BYTES, SAMPLE_PACKETS, type FaultKind, type RingWorkerData, type WorkerMessage } from './ringshared.ts';

const LOG_MAX_BYTES = 1024;
const LOG_LINES_PER_SECOND = 20;
const STATS_INTERVAL_MS = 1000;
const IDLE_WAIT_MS = 1; // software ports with nothing now
const LIVE_WAIT_MS = 10; // live ports: poll this long, then check the stop flag

const data = workerData as RingWorkerData;
const counters = new Float64Array(data.counters);
const control = new Int32Array(data.control);
const lease = new Int32Array(data.lease); // [0]: this worker's Phase, watched by host/watchdog.ts
const state = new Float64Array(data.state);
const statsOut = new Float64Array(data.stats);
const statsBase = Float64Array.from(statsOut); // values of earlier instances (kept across respawns; a standby re-reads it at takeover)
const utf8 = new TextDecoder('utf-8');
const utf16 = new TextDecoder('utf-16le');

function post(message: WorkerMessage): void {
  parentPort!.postMessage(message);
}

// ---- the current module (hot-swap replaces it) and instance -----------------------------
let currentModule: WebAssembly.Module = data.module;
let currentConfig: Uint8Array = data.config;
/** The last good module before a swap (--on-fault previous), null when none or not asked. */
let previous: { module: WebAssembly.Module; config: Uint8Array } | null = null;
let sampleGen = Atomics.load(control, RingControl.sampleDone);
type ProcessFn = (ring: number, verdicts: number, first: number, count: number) => number;
let memory: WebAssembly.Memory | null = null;
let mapped: Uint8Array | null = null; // the view the port memory was mapped through
let processFn: ProcessFn | null = null;
let statsFn: (() => number) | null = null;
let stateSaveFn: (() => number) | null = null;
let stateLoadFn: ((ptr: number, len: number) => number) | null = null;
let healthy = false;
let prepared: WebAssembly.Instance | null = null; // a standby's instance, made before it took the ring
let lastLogLine = '';
let logWindowStart = 0;
let logLinesInWindow = 0;

/** A trap raised by env.abort: carries the decoded AssemblyScript message. */
class AbortTrap extends Error {}

/** Current bytes of the guest memory; re-created only when the guest grew it (old buffer detached). */
function guestBytes(): Uint8Array {
  const buffer = memory!.buffer;
  if (guestView === null || guestView.buffer !== buffer) guestView = new Uint8Array(buffer);
  return guestView;
}
let guestView: Uint8Array | null = null;

/** Decodes an AssemblyScript string (UTF-16, byte length at ptr-4) if it lies in bounds. */
function readAsString(ptr: number): string | null {
  if (memory === null || ptr < 4) return null;
  const bytes = guestBytes();
  ptr >>>= 0;
  if (ptr > bytes.length) return null;
  const size = new DataView(bytes.buffer).getUint32(ptr - 4, true);
  if (size > 2048 || size % 2 !== 0 || ptr + size > bytes.length) return null;
  return utf16.decode(bytes.subarray(ptr, ptr + size));
}

const imports = {
  env: {
    abort(msg: number, file: number, line: number, col: number): never {
      // Guest text: escaped to one printable line (a module must not forge host lines).
      const text = printable(readAsString(msg) ?? `message at 0x${(msg >>> 0).toString(16)} not readable`);
      const where = readAsString(file);
      throw new AbortTrap(`abort: ${text}${where ? ` at ${printable(where, 120)}:${line >>> 0}:${col >>> 0}` : ''}`);
    },
    nmwasm_log(ptr: number, len: number): void {
      const now = performance.now();
      if (now - logWindowStart >= 1000) {
        logWindowStart = now;
        logLinesInWindow = 0;
      }
      if (logLinesInWindow >= LOG_LINES_PER_SECOND) {
        counters[Counter.logSuppressed]!++;
        return;
      }
      logLinesInWindow++;
      if (memory === null) return;
      const bytes = guestBytes();
      ptr >>>= 0;
      len = Math.min(len >>> 0, LOG_MAX_BYTES);
      if (ptr > bytes.length) return;
      const end = Math.min(ptr + len, bytes.length);
      lastLogLine = printable(utf8.decode(bytes.subarray(ptr, end)), LOG_MAX_BYTES); // guest text: one printable line
      post({ type: 'log', ring: data.ring, line: lastLogLine });
    },
    nmwasm_now(): number {
      return performance.now();
    },
  },
};

// ---- watchdog protocol --------------------------------------------------------------
// The phase lives in this worker's own lease cell: the watchdog claims a call there
// (inGuest/inStart -> killed), so only this worker can ever see its own kill.
let guestPhase: number = Phase.inGuest;
function enterGuest(phase: number = Phase.inGuest): void {
  guestPhase = phase;
  counters[Counter.batchStartedAt] = epochMs();
  Atomics.store(lease, 0, phase);
}

/** Leaves guest code; if the watchdog claimed this call, block until terminated. */
function leaveGuest(): void {
  if (Atomics.compareExchange(lease, 0, guestPhase, Phase.idle) !== guestPhase) {
    for (;;) Atomics.wait(lease, 0, Phase.killed);
  }
  counters[Counter.batchStartedAt] = 0;
}

function errorText(err: unknown): string {
  if (err instanceof AbortTrap) return err.message; // escaped when raised
  if (err instanceof WebAssembly.RuntimeError) return `trap: ${printable(err.message)}`;
  if (err instanceof RangeError && OUT_OF_MEMORY.test(err.message)) return `${printable(err.message)}${ADDRESS_SPACE_HINT}`;
  if (err instanceof RangeError) return `trap: ${printable(err.message)}`; // stack overflow
  return printable(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
}

// V8 reserves about 10 GiB of virtual address space per wasm memory (8 GiB + guard regions,
// so bounds checks cost nothing); under `ulimit -v` instantiation then fails as "Out of memory".
const OUT_OF_MEMORY = /out of memory|cannot allocate/i;
const ADDRESS_SPACE_HINT = ' (each filter instance reserves about 10 GiB of virtual address space for its memory, however little it uses: raise `ulimit -v` to at least 10 GiB per ring plus the host, or lift it)';

// ---- instance lifecycle -------------------------------------------------------------
interface StartResult {
  ok: boolean;
  reason?: 'init-rejected' | 'trap' | 'memory';
  message?: string;
}

/** Creates a fresh instance, maps the port memory into it and runs nmwasm_init. */
function startInstance(ring: RingHandle, layoutMemSize: number): StartResult {
  dropInstance(ring);
  lastLogLine = '';
  let instance: WebAssembly.Instance;
  if (prepared !== null) {
    instance = prepared; // a standby made it before taking the ring: no instantiation now
    prepared = null;
  } else {
    enterGuest(Phase.inStart);
    try {
      instance = new WebAssembly.Instance(currentModule, imports); // runs the start function
    } catch (err) {
      leaveGuest();
      return { ok: false, reason: 'trap', message: `instantiation failed: ${errorText(err)}` };
    }
    leaveGuest();
  }
  return adoptInstance(ring, layoutMemSize, instance, currentConfig);
}

/** Makes `instance` the current one: maps the port memory into it, copies the config and runs
 * nmwasm_init. The previous instance must be dropped already. */
function adoptInstance(ring: RingHandle | null, layoutMemSize: number, instance: WebAssembly.Instance, config: Uint8Array): StartResult {
  const exports = instance.exports as Record<string, unknown>;
  memory = exports.memory as WebAssembly.Memory;
  guestView = null;
  const bytes = guestBytes();
  state[RingState.instanceMemory] = bytes.length; // the metrics gauge, from the first instance on (readStats updates it)
  if (bytes.length < NMWASM_DATA_BASE || NMWASM_WINDOW_BASE + layoutMemSize > NMWASM_DATA_BASE) {
    memory = null;
    return { ok: false, reason: 'memory', message: `memory of ${bytes.length} bytes cannot hold the ring's ${layoutMemSize} bytes at 0x${NMWASM_WINDOW_BASE.toString(16)}` };
  }
  if (ring !== null) {
    ring.map(bytes, NMWASM_WINDOW_BASE);
    mapped = bytes;
  } // else a swap's worker initialises ahead: it maps the ring once it has taken it
  bytes.set(config, NMWASM_CONFIG_BASE);
  processFn = exports.nmwasm_process as ProcessFn;
  stateSaveFn = typeof exports.nmwasm_state_save === 'function' ? (exports.nmwasm_state_save as () => number) : null;
  stateLoadFn = typeof exports.nmwasm_state_load === 'function' ? (exports.nmwasm_state_load as (ptr: number, len: number) => number) : null;
  statsFn = data.statsCount > 0 && typeof exports.nmwasm_stats === 'function' ? (exports.nmwasm_stats as () => number) : null;
  const init = exports.nmwasm_init as ((config: number, len: number) => number) | undefined;
  if (init) {
    let rc: number;
    enterGuest(Phase.inStart);
    try {
      rc = init(NMWASM_CONFIG_BASE, config.length);
    } catch (err) {
      leaveGuest();
      return { ok: false, reason: 'trap', message: `nmwasm_init trapped: ${errorText(err)}` };
    }
    leaveGuest();
    if (rc !== 0) return { ok: false, reason: 'init-rejected', message: lastLogLine ? lastLogLine : `nmwasm_init returned ${rc} (the module logged no reason)` };
  }
  healthy = true;
  if (ring !== null) counters[Counter.failed] = 0;
  return { ok: true };
}

/** Unmaps the port memory from the current instance (fresh zero pages replace it) and forgets it. */
function dropInstance(ring: RingHandle | null): void {
  if (ring !== null && memory !== null && mapped !== null) {
    foldStats();
    const current = new Uint8Array(memory.buffer); // after a guest grow the old view is detached
    ring.unmap(current, NMWASM_WINDOW_BASE);
  }
  memory = null;
  mapped = null;
  guestView = null;
  processFn = null;
  statsFn = null;
  stateSaveFn = null;
  stateLoadFn = null;
  healthy = false;
}

// ---- filter stats -------------------------------------------------------------------
const statsValues = new Float64Array(statsOut.length); // last values read from the current instance
let statsReadAt = 0;

/** Reads the instance's nmwasm_stats counters into statsOut (base + current). */
function readStats(): void {
  statsReadAt = performance.now();
  if (memory !== null) state[RingState.instanceMemory] = memory.buffer.byteLength;
  if (statsFn === null || !healthy) return;
  let addr: number;
  enterGuest();
  try {
    addr = statsFn() >>> 0;
  } catch (err) {
    leaveGuest();
    fail('trap', `nmwasm_stats trapped: ${errorText(err)}`);
    return;
  }
  leaveGuest();
  const bytes = guestBytes();
  const n = statsValues.length;
  if (addr < NMWASM_DATA_BASE || addr > bytes.length - 8 * n) {
    if (state[RingState.statsInvalid] === 0) {
      state[RingState.statsInvalid] = 1;
      post({ type: 'notice', ring: data.ring, message: `nmwasm_stats returned 0x${addr.toString(16)}, outside [0x${NMWASM_DATA_BASE.toString(16)}, memory size - ${8 * n}]: filter stats ignored` });
    }
    return;
  }
  // NB: read as two u32 halves: getBigUint64 would allocate a BigInt per value, per batch.
  const dv = statsDataView(bytes);
  for (let i = 0; i < n; i++) {
    statsValues[i] = dv.getUint32(addr + 8 * i, true) + dv.getUint32(addr + 8 * i + 4, true) * 4294967296;
    statsOut[i] = statsBase[i]! + statsValues[i]!;
  }
}

/** A DataView over the guest memory, re-made only when the guest grew it. */
function statsDataView(bytes: Uint8Array): DataView {
  if (statsView === null || statsView.buffer !== bytes.buffer) statsView = new DataView(bytes.buffer);
  return statsView;
}
let statsView: DataView | null = null;

/** Adds the current instance's last stats to the base before the instance goes away. */
function foldStats(): void {
  if (healthy) readStats();
  for (let i = 0; i < statsValues.length; i++) {
    statsBase[i]! += statsValues[i]!;
    statsValues[i] = 0;
  }
}

// ---- faults -------------------------------------------------------------------------
function fail(kind: FaultKind, message: string): void {
  healthy = false;
  counters[Counter.failed] = 1;
  if (kind === 'trap') counters[Counter.traps]!++;
  else if (kind === 'return') state[RingState.badReturns]!++;
  else if (kind === 'violation') state[RingState.violationFaults]!++;
  else if (kind === 'init') state[RingState.initFaults]!++;
  const backoffMs = recordFault(state, epochMs());
  post({ type: 'fault', ring: data.ring, kind, message, backoffMs });
}

/** After the back-off: a fresh instance (restarts counted); a failure starts a new back-off. */
function restartInstance(ring: RingHandle, memSize: number): void {
  counters[Counter.restarts]!++;
  if (previous !== null) {
    // --on-fault previous: the swapped-in module faulted; the last good one serves again.
    currentModule = previous.module;
    currentConfig = previous.config;
    previous = null;
    post({ type: 'reverted', ring: data.ring, message: 'the swapped-in module faulted: the previous module serves again (--on-fault previous)' });
  }
  const result = startInstance(ring, memSize);
  if (!result.ok) fail(result.reason === 'trap' ? 'trap' : 'init', result.message!);
}

// ---- hot-swap (host/swap.ts) ---------------------------------------------------------
const sampleBytes = new Uint8Array(data.sample);
const sampleView = new DataView(data.sample);

/** Copies up to SAMPLE_PACKETS packets of the batch in hand (before the filter sees them) into
 * the shared sample buffer for a canary, and says so through control[sampleDone]. */
function takeSample(ringPtr: number, n: number, first: number): void {
  sampleGen = Atomics.load(control, RingControl.sampleReq);
  let count = 0;
  let at = 4;
  if (memory !== null && mapped !== null) {
    const bytes = guestBytes();
    const dv = statsDataView(bytes);
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
    if (!healthy && !owed && !stopping && epochMs() >= state[RingState.failedUntil]!) restartInstance(ring, memSize);
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
      if (performance.now() - statsReadAt >= STATS_INTERVAL_MS) readStats();
      continue;
    }
    let faulted = !healthy || owed; // never re-processed by a fresh instance
    if (!faulted) {
      let rc = 0;
      let trapped: unknown = null;
      counters[Counter.wasmCalls]!++; // counted when started: a call the watchdog kills counts too
      enterGuest();
      try {
        rc = processFn!(ringPtr, verdictPtr, first, n);
      } catch (err) {
        trapped = err;
      }
      const startedAt = counters[Counter.batchStartedAt]!;
      leaveGuest();
      recordBatchDuration(state, (epochMs() - startedAt) / 1000);
      if (trapped !== null) {
        fail('trap', errorText(trapped));
        faulted = true;
      } else if (rc !== 0) {
        fail('return', `nmwasm_process returned ${rc}`);
        faulted = true;
      }
    }
    state[RingState.lastBatchSlots] = n;
    const violationsBefore = counters[Counter.violations]!;
    const next = ring.sync(n, faulted, LIVE_WAIT_MS);
    first = (first + n) % numSlots;
    state[RingState.first] = first;
    if (!faulted && counters[Counter.violations]! > violationsBefore) {
      fail('violation', `batch of ${n} slots broke the ABI (${counters[Counter.violations]! - violationsBefore} slots with a changed buf_idx, a bad len or an invalid verdict)`);
    }
    n = next;
    if (owed) {
      owed = false;
      post({ type: 'recovered', ring: data.ring, at: epochMs() });
    }
    // The filter's counters are published after every batch: a killed instance loses the
    // stats of the batch in flight only. NB: one more small guest call per batch.
    if (!faulted && statsFn !== null) readStats();
    else if (performance.now() - statsReadAt >= STATS_INTERVAL_MS) readStats();
  }
}

/** A standby: instantiates the module now (unwatched: it owns no ring yet), says so, and
 * waits until the watchdog hands it the ring (true) or the engine ends it (false). */
function standBy(): boolean {
  // The start function runs here, under the engine's start budget (wall time, on this lease).
  Atomics.store(lease, 0, Phase.inStart);
  try {
    prepared = new WebAssembly.Instance(data.module, imports);
  } catch {
    prepared = null; // the takeover instantiates again, watched, and reports the fault then
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
  statsBase.set(statsOut); // what every earlier instance published, up to the killed call's last batch
  return true;
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
    takeOver(data.module, data.config, data.handover.previous);
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
    const ringPtr = NMWASM_WINDOW_BASE + layout.ringOfs;
    const verdictPtr = NMWASM_WINDOW_BASE + layout.verdictOfs;
    if (!data.resume) {
      const result = startInstance(ring, layout.memSize);
      if (!result.ok) {
        post({ type: 'start-failed', ring: data.ring, reason: result.reason!, message: result.message! });
        ring.detach();
        return;
      }
      post({ type: 'ready', ring: data.ring });
      while (Atomics.load(control, RingControl.go) === 0 && Atomics.load(control, RingControl.stop) === 0) {
        Atomics.wait(control, RingControl.go, 0, 50);
      }
    } else {
      counters[Counter.failed] = 1; // fault verdicts until the back-off set by the watchdog expires
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
    dropInstance(null); // handed over: the port memory stays mapped in the new instance only
    becomeSpare();
    return;
  }
  if (healthy) readStats();
  const trace = data.trace ? last.takeTrace() : undefined;
  dropInstance(last);
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
const NO_STATE = 0xffffffff;
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

/** Serving worker, at a batch boundary: saves the instance's carried state for the new worker,
 * then (takerOnCpu) lets go of the ring (the batch in hand, not processed, is delivered again to whoever attaches
 * next) and waits for the outcome. Returns null when the new worker took the ring, `ring`
 * itself when it did not let go yet, else a fresh handle (this worker serves on with its
 * instance). */
function handOver(ring: RingHandle): RingHandle | null {
  stallFrom = epochMs();
  const cpuFrom = threadCpuMs();
  carriedView.setUint32(0, NO_STATE, true);
  if (healthy) readStats();
  if (healthy && stateSaveFn !== null && state[RingState.handoverState] === 1) {
    let addr = -1;
    enterGuest();
    try {
      addr = stateSaveFn() >>> 0;
    } catch (err) {
      post({ type: 'notice', ring: data.ring, message: `nmwasm_state_save trapped (${errorText(err)}): the new module starts without carried state` });
    }
    leaveGuest();
    if (addr >= 0) {
      const bytes = guestBytes();
      const len = addr >= NMWASM_DATA_BASE && addr + 4 <= bytes.length ? statsDataView(bytes).getUint32(addr, true) : -1;
      if (len >= 0 && len <= NMWASM_CONFIG_MAX && addr + 4 + len <= bytes.length) {
        carriedBytes.set(bytes.subarray(addr + 4, addr + 4 + len), 4);
        carriedView.setUint32(0, len, true);
      } else {
        post({ type: 'notice', ring: data.ring, message: `nmwasm_state_save returned 0x${addr.toString(16)}, not a u32-length-prefixed blob of at most ${NMWASM_CONFIG_MAX} bytes at or above 0x${NMWASM_DATA_BASE.toString(16)}: the new module starts without carried state` });
      }
    }
  }
  // Saved first, then the ring is let go only if the new worker is on a CPU now: the window
  // in which it could lose its CPU is then just the detach. Otherwise this batch is processed
  // by the old instance (the saved state is stale: saved again at the next boundary).
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

/** A swap's new worker: instantiates and initialises the new module ahead (it owns no ring
 * yet), then, once the serving worker let go of the ring, attaches, maps the port memory,
 * hands over the carried state and serves from the batch in hand. NB: the ring stalls from the
 * release to the first batch here (attach + map + nmwasm_state_load), not for instantiation. */
function takeOver(module: WebAssembly.Module, config: Uint8Array, previousModule: { module: WebAssembly.Module; config: Uint8Array } | null): void {
  let instance: WebAssembly.Instance;
  currentModule = module; // what a fault restart instantiates again
  currentConfig = config;
  Atomics.store(lease, 0, Phase.inStart);
  try {
    instance = new WebAssembly.Instance(module, imports);
  } catch (err) {
    Atomics.compareExchange(lease, 0, Phase.inStart, Phase.idle);
    refuse(null, `instantiation failed: ${errorText(err)}`, false);
    return;
  }
  Atomics.compareExchange(lease, 0, Phase.inStart, Phase.idle);
  // nmwasm_init ahead too: its packet window is not mapped yet (zero pages).
  const result = adoptInstance(null, data.memSize, instance, config);
  if (!result.ok) {
    refuse(null, result.reason === 'init-rejected' ? `configuration rejected by nmwasm_init: ${result.message!}` : result.message!, false);
    return;
  }
  // The packet memory is mapped into the new instance ahead too (NB: a populated mapping costs
  // some 0.2 ms, which would be part of the stall after the release).
  try {
    native.mapPortMemory(data.portId, guestBytes(), NMWASM_WINDOW_BASE);
    mapped = guestBytes();
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
  } catch (err) {
    refuse(null, `taking the ring failed: ${errorText(err)}`, true);
    return;
  }
  statsBase.set(statsOut); // everything the old worker published
  const len = carriedView.getUint32(0, true);
  if (len !== NO_STATE && stateLoadFn !== null) {
    guestBytes().set(carriedBytes.subarray(4, 4 + len), NMWASM_CONFIG_BASE);
    let rc = 0;
    let why = '';
    enterGuest(Phase.inStart);
    try {
      rc = stateLoadFn(NMWASM_CONFIG_BASE, len);
    } catch (err) {
      why = `nmwasm_state_load trapped: ${errorText(err)}`;
    }
    leaveGuest();
    if (why === '' && rc !== 0) why = `nmwasm_state_load returned ${rc}${lastLogLine ? ` (${lastLogLine})` : ''}`;
    if (why !== '') {
      refuse(ring, why, true);
      return;
    }
    // What the instance reports right after taking the state is counted already: a module
    // that carries its counters (counter) continues them, one that does not (ratelimit) starts
    // from 0; either way the stats add up once.
    if (statsFn !== null) {
      readStats();
      for (let i = 0; i < statsValues.length; i++) statsBase[i]! -= statsValues[i]!;
      statsOut.set(statsBase);
      for (let i = 0; i < statsValues.length; i++) statsOut[i]! += statsValues[i]!;
    }
  }
  previous = data.revert ? previousModule : null;
  counters[Counter.failed] = 0;
  Atomics.store(control, RingControl.handover, Handover.taken);
  Atomics.notify(control, RingControl.handover);
  // The stall on the clock (it includes any time either thread waited for a CPU) and in CPU
  // time of the two threads (what the switch itself costs).
  const stallUs = Math.round((epochMs() - state[RingState.handoverAt]!) * 1000);
  const stallCpuUs = Math.round((state[RingState.handoverCpuMs]! + threadCpuMs() - cpuFrom) * 1000);
  post({ type: 'swapped', ring: data.ring, gen: 0, ok: true, stallUs, stallCpuUs, state: len !== NO_STATE && stateLoadFn !== null ? 'carried' : 'none' });
  try {
    serve(ring, layout);
  } catch (err) {
    postFatal(err);
  }
}

/** A worker that handed its ring over to a swap's worker is kept as the ring's spare (a
 * thread costs tens of ms to start, a swap should not wait for one): it says so and waits in
 * its event loop for the engine's next `take` (host/engine.ts handOver), then takes the ring
 * over with that module as a fresh swap worker would. Without a `take` it is terminated at
 * the end of the run (idle in its event loop, never inside a native call). */
function becomeSpare(): void {
  post({ type: 'spare', ring: data.ring });
  // NB: blocks in Atomics.wait (the engine notifies lease[0] after posting `take`): a spare
  // is terminated there at the end of the run, as a ready standby is.
  for (;;) {
    const m = receiveMessageOnPort(parentPort as unknown as MessagePort)?.message as TakeMessage | undefined;
    if (m !== undefined) {
      sampleGen = Atomics.load(control, RingControl.sampleDone);
      statsValues.fill(0);
      takeOver(m.module, m.config, m.previous);
      return;
    }
    Atomics.wait(lease, 0, Phase.idle, 50);
  }
}

/** The new worker could not take the ring: the old one attaches again and serves on. */
function refuse(ring: RingHandle | null, reason: string, released: boolean): void {
  if (ring !== null) {
    dropInstance(ring);
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
