// One filter instance of a ring worker (host/engine/worker.ts), one per module of the ring's chain:
// the module and config it is made of, its current WebAssembly instance with the port memory
// mapped into its linear memory, its health and fault back-off, its nmwasm_stats counters and
// its carried state (nmwasm_state_save/load). Load, fault restart, standby takeover and swap
// handover all go through the same few methods: start (fresh instance), adopt (an instance
// made ahead), drop, fail, restart.
//
// Also the worker's guest-call protocol with the watchdog (enterGuest/leaveGuest on the
// worker's lease): every guest call of every instance goes through it.
//
// NB: nothing here runs per packet; process() is the one call per batch and module, readStats
// one small guest call per batch for a module that exports nmwasm_stats.
import { Counter, type RingHandle } from '../ports/native.ts';
import { NMWASM_CONFIG_BASE, NMWASM_CONFIG_MAX, NMWASM_DATA_BASE, NMWASM_WINDOW_BASE } from '../module/module.ts';
import { printable } from '../cli/text.ts';
import { epochMs, MODULE_SLOTS, ModuleCounter, Phase, recordFault, RingState, type FaultKind, type RingWorkerData, type WorkerMessage } from './ringshared.ts';

const LOG_MAX_BYTES = 1024;
const LOG_LINES_PER_SECOND = 20;

/** What every instance of a worker shares: the ring's shared buffers and the way to the main thread. */
export interface WorkerContext {
  data: RingWorkerData;
  counters: Float64Array; // host/ports/native.ts Counter
  state: Float64Array; // RingState
  lease: Int32Array; // [0]: this worker's Phase
  statsOut: Float64Array; // every module's nmwasm_stats values, in chain order (base + current)
  statsBase: Float64Array; // values of earlier instances
  post(message: WorkerMessage): void;
}

export type ProcessFn = (ring: number, verdicts: number, first: number, count: number) => number;

export interface StartResult {
  ok: boolean;
  reason?: 'init-rejected' | 'trap' | 'memory';
  message?: string;
}

/** A trap raised by env.abort: carries the decoded AssemblyScript message. */
export class AbortTrap extends Error {}

// ---- watchdog protocol --------------------------------------------------------------
// The phase lives in this worker's own lease cell: the watchdog claims a call there
// (inGuest/inStart -> killed), so only this worker can ever see its own kill.
let guestPhase: number = Phase.inGuest;

/** Enters guest code of chain module `index` (the watchdog's kill then names it). */
export function enterGuest(ctx: WorkerContext, index: number, phase: number = Phase.inGuest): void {
  guestPhase = phase;
  ctx.state[RingState.guestModule] = index;
  ctx.counters[Counter.batchStartedAt] = epochMs();
  Atomics.store(ctx.lease, 0, phase);
}

/** Leaves guest code; if the watchdog claimed this call, block until terminated. */
export function leaveGuest(ctx: WorkerContext): void {
  if (Atomics.compareExchange(ctx.lease, 0, guestPhase, Phase.idle) !== guestPhase) {
    for (;;) Atomics.wait(ctx.lease, 0, Phase.killed);
  }
  ctx.counters[Counter.batchStartedAt] = 0;
}

// V8 reserves about 10 GiB of virtual address space per wasm memory (8 GiB + guard regions,
// so bounds checks cost nothing); under `ulimit -v` instantiation then fails as "Out of memory".
const OUT_OF_MEMORY = /out of memory|cannot allocate/i;
const ADDRESS_SPACE_HINT = ' (each filter instance reserves about 10 GiB of virtual address space for its memory, however little it uses: raise `ulimit -v` to at least 10 GiB per ring and module plus the host, or lift it)';

/** One printable line for an error a guest call raised. */
export function errorText(err: unknown): string {
  if (err instanceof AbortTrap) return err.message; // escaped when raised
  if (err instanceof WebAssembly.RuntimeError) return `trap: ${printable(err.message)}`;
  if (err instanceof RangeError && OUT_OF_MEMORY.test(err.message)) return `${printable(err.message)}${ADDRESS_SPACE_HINT}`;
  if (err instanceof RangeError) return `trap: ${printable(err.message)}`; // stack overflow
  return printable(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
}

// The filter's log lines are limited per ring (all modules together).
let logWindowStart = 0;
let logLinesInWindow = 0;
const utf8 = new TextDecoder('utf-8');
const utf16 = new TextDecoder('utf-16le');

/** Module `index` of the ring's chain and its current instance. */
export class Instance {
  module: WebAssembly.Module;
  config: Uint8Array;
  /** The last good module before a swap (--on-fault previous), null when none or not asked. */
  previous: { module: WebAssembly.Module; config: Uint8Array } | null = null;
  memory: WebAssembly.Memory | null = null;
  processFn: ProcessFn | null = null;
  stateSaveFn: (() => number) | null = null;
  stateLoadFn: ((ptr: number, len: number) => number) | null = null;
  healthy = false;
  /** An instance made ahead (a standby's, before it took the ring). */
  prepared: WebAssembly.Instance | null = null;
  lastLogLine = '';
  /** Where its fault back-off lives (RingState indices backoffMs/failedUntil/lastFaultAt): the
   * ring's state for a one-module chain (as before chains), else its module block. */
  readonly faultState: Float64Array;
  /** Its ModuleCounter block; null for a one-module chain (its counts are the ring's). */
  readonly block: Float64Array | null;
  readonly imports: WebAssembly.Imports;
  private statsFn: (() => number) | null = null;
  private mapped = false;
  private guestView: Uint8Array | null = null;
  private dataView: DataView | null = null;
  private readonly statsValues: Float64Array; // last values read from the current instance
  statsReadAt = 0;

  constructor(
    private readonly ctx: WorkerContext,
    readonly index: number,
    readonly chainLength: number,
    private readonly statsOffset: number,
    private readonly statsCount: number,
    modules: Float64Array,
  ) {
    const entry = ctx.data.chain[index]!;
    this.module = entry.module;
    this.config = entry.config;
    this.statsValues = new Float64Array(statsCount);
    this.block = chainLength > 1 ? modules.subarray(index * MODULE_SLOTS, (index + 1) * MODULE_SLOTS) : null;
    this.faultState = this.block ?? ctx.state;
    this.imports = this.makeImports();
  }

  /** Current bytes of the guest memory; re-created only when the guest grew it (old buffer detached). */
  guestBytes(): Uint8Array {
    const buffer = this.memory!.buffer;
    if (this.guestView === null || this.guestView.buffer !== buffer) this.guestView = new Uint8Array(buffer);
    return this.guestView;
  }

  /** A DataView over the guest memory, re-made only when the guest grew it. */
  view(bytes: Uint8Array): DataView {
    if (this.dataView === null || this.dataView.buffer !== bytes.buffer) this.dataView = new DataView(bytes.buffer);
    return this.dataView;
  }

  /** Whether the port memory is mapped into the current instance (it sees packets). */
  get hasWindow(): boolean {
    return this.memory !== null && this.mapped;
  }

  /** Decodes an AssemblyScript string (UTF-16, byte length at ptr-4) if it lies in bounds. */
  private readAsString(ptr: number): string | null {
    if (this.memory === null || ptr < 4) return null;
    const bytes = this.guestBytes();
    ptr >>>= 0;
    if (ptr > bytes.length) return null;
    const size = new DataView(bytes.buffer).getUint32(ptr - 4, true);
    if (size > 2048 || size % 2 !== 0 || ptr + size > bytes.length) return null;
    return utf16.decode(bytes.subarray(ptr, ptr + size));
  }

  private makeImports(): WebAssembly.Imports {
    const ctx = this.ctx;
    const prefix = this.chainLength > 1 ? `module ${this.index}: ` : '';
    return {
      env: {
        abort: (msg: number, file: number, line: number, col: number): never => {
          // Guest text: escaped to one printable line (a module must not forge host lines).
          const text = printable(this.readAsString(msg) ?? `message at 0x${(msg >>> 0).toString(16)} not readable`);
          const where = this.readAsString(file);
          throw new AbortTrap(`abort: ${text}${where ? ` at ${printable(where, 120)}:${line >>> 0}:${col >>> 0}` : ''}`);
        },
        nmwasm_log: (ptr: number, len: number): void => {
          const now = performance.now();
          if (now - logWindowStart >= 1000) {
            logWindowStart = now;
            logLinesInWindow = 0;
          }
          if (logLinesInWindow >= LOG_LINES_PER_SECOND) {
            ctx.counters[Counter.logSuppressed]!++;
            return;
          }
          logLinesInWindow++;
          if (this.memory === null) return;
          const bytes = this.guestBytes();
          ptr >>>= 0;
          len = Math.min(len >>> 0, LOG_MAX_BYTES);
          if (ptr > bytes.length) return;
          const end = Math.min(ptr + len, bytes.length);
          this.lastLogLine = printable(utf8.decode(bytes.subarray(ptr, end)), LOG_MAX_BYTES); // guest text: one printable line
          ctx.post({ type: 'log', ring: ctx.data.ring, line: prefix + this.lastLogLine });
        },
        nmwasm_now: (): number => performance.now(),
      },
    };
  }

  /** Creates a fresh instance (or takes the one made ahead), maps the port memory into it and runs nmwasm_init. */
  start(ring: RingHandle, layoutMemSize: number): StartResult {
    this.drop(ring);
    this.lastLogLine = '';
    let instance: WebAssembly.Instance;
    if (this.prepared !== null) {
      instance = this.prepared; // made before the worker took the ring: no instantiation now
      this.prepared = null;
    } else {
      enterGuest(this.ctx, this.index, Phase.inStart);
      try {
        instance = new WebAssembly.Instance(this.module, this.imports); // runs the start function
      } catch (err) {
        leaveGuest(this.ctx);
        return { ok: false, reason: 'trap', message: `instantiation failed: ${errorText(err)}` };
      }
      leaveGuest(this.ctx);
    }
    return this.adopt(ring, layoutMemSize, instance, this.config);
  }

  /** Makes `instance` the current one: maps the port memory into it (ring null: later, mapWindow),
   * copies the config and runs nmwasm_init. The previous instance must be dropped already. */
  adopt(ring: RingHandle | null, layoutMemSize: number, instance: WebAssembly.Instance, config: Uint8Array): StartResult {
    const exports = instance.exports as Record<string, unknown>;
    this.memory = exports.memory as WebAssembly.Memory;
    this.guestView = null;
    const bytes = this.guestBytes();
    if (bytes.length < NMWASM_DATA_BASE || NMWASM_WINDOW_BASE + layoutMemSize > NMWASM_DATA_BASE) {
      this.memory = null;
      return { ok: false, reason: 'memory', message: `memory of ${bytes.length} bytes cannot hold the ring's ${layoutMemSize} bytes at 0x${NMWASM_WINDOW_BASE.toString(16)}` };
    }
    if (ring !== null) this.mapWindow(ring);
    bytes.set(config, NMWASM_CONFIG_BASE);
    this.processFn = exports.nmwasm_process as ProcessFn;
    this.stateSaveFn = typeof exports.nmwasm_state_save === 'function' ? (exports.nmwasm_state_save as () => number) : null;
    this.stateLoadFn = typeof exports.nmwasm_state_load === 'function' ? (exports.nmwasm_state_load as (ptr: number, len: number) => number) : null;
    this.statsFn = this.statsCount > 0 && typeof exports.nmwasm_stats === 'function' ? (exports.nmwasm_stats as () => number) : null;
    const init = exports.nmwasm_init as ((config: number, len: number) => number) | undefined;
    if (init) {
      let rc: number;
      enterGuest(this.ctx, this.index, Phase.inStart);
      try {
        rc = init(NMWASM_CONFIG_BASE, config.length);
      } catch (err) {
        leaveGuest(this.ctx);
        return { ok: false, reason: 'trap', message: `nmwasm_init trapped: ${errorText(err)}` };
      }
      leaveGuest(this.ctx);
      if (rc !== 0) return { ok: false, reason: 'init-rejected', message: this.lastLogLine ? this.lastLogLine : `nmwasm_init returned ${rc} (the module logged no reason)` };
    }
    this.healthy = true;
    if (ring !== null && this.chainLength === 1) this.ctx.counters[Counter.failed] = 0;
    return { ok: true };
  }

  /** Maps the port memory into the current instance's packet window. */
  mapWindow(ring: RingHandle): void {
    ring.map(this.guestBytes(), NMWASM_WINDOW_BASE);
    this.mapped = true;
  }

  /** Maps the port memory into the packet window without a ring attached (a swap's new worker,
   * ahead of the release: native mapPortMemory). */
  mapPortWindow(map: (view: Uint8Array, offset: number) => void): void {
    map(this.guestBytes(), NMWASM_WINDOW_BASE);
    this.mapped = true;
  }

  /** A spare worker taking a ring over again (host/engine/worker.ts becomeSpare): the chain entry it
   * is made of now; nothing of its last instance is kept (dropped at the handover). */
  reset(entry: { module: WebAssembly.Module; config: Uint8Array }): void {
    this.module = entry.module;
    this.config = entry.config;
    this.previous = null;
    this.prepared = null;
    this.statsValues.fill(0);
    this.lastLogLine = '';
  }

  /** Unmaps the port memory from the current instance (fresh zero pages replace it; ring null:
   * handed over, the mapping goes with the thread) and forgets the instance. */
  drop(ring: RingHandle | null): void {
    // Handed over (ring null): no guest call any more, and nothing written to the shared
    // counters, which the new worker owns now.
    if (ring !== null && this.memory !== null) this.foldStats();
    if (ring !== null && this.memory !== null && this.mapped) {
      const current = new Uint8Array(this.memory.buffer); // after a guest grow the old view is detached
      ring.unmap(current, NMWASM_WINDOW_BASE);
    }
    this.memory = null;
    this.mapped = false;
    this.guestView = null;
    this.dataView = null;
    this.processFn = null;
    this.statsFn = null;
    this.stateSaveFn = null;
    this.stateLoadFn = null;
    this.healthy = false;
  }

  // ---- filter stats ---------------------------------------------------------------------
  /** Reads the instance's nmwasm_stats counters into statsOut (base + current). */
  readStats(): void {
    this.statsReadAt = performance.now();
    if (this.statsFn === null || !this.healthy) return;
    const ctx = this.ctx;
    let addr: number;
    enterGuest(ctx, this.index);
    try {
      addr = this.statsFn() >>> 0;
    } catch (err) {
      leaveGuest(ctx);
      this.fail('trap', `nmwasm_stats trapped: ${errorText(err)}`);
      return;
    }
    leaveGuest(ctx);
    const bytes = this.guestBytes();
    const n = this.statsCount;
    if (addr < NMWASM_DATA_BASE || addr > bytes.length - 8 * n) {
      if (ctx.state[RingState.statsInvalid] === 0) {
        ctx.state[RingState.statsInvalid] = 1;
        ctx.post({ type: 'notice', ring: ctx.data.ring, message: `${this.chainLength > 1 ? `module ${this.index}: ` : ''}nmwasm_stats returned 0x${addr.toString(16)}, outside [0x${NMWASM_DATA_BASE.toString(16)}, memory size - ${8 * n}]: filter stats ignored` });
      }
      return;
    }
    // NB: read as two u32 halves: getBigUint64 would allocate a BigInt per value, per batch.
    const dv = this.view(bytes);
    const o = this.statsOffset;
    for (let i = 0; i < n; i++) {
      this.statsValues[i] = dv.getUint32(addr + 8 * i, true) + dv.getUint32(addr + 8 * i + 4, true) * 4294967296;
      ctx.statsOut[o + i] = ctx.statsBase[o + i]! + this.statsValues[i]!;
    }
  }

  /** After nmwasm_state_load: what the instance reports right away is counted already (by the
   * instance it took the state from), so it becomes part of the base: a module that carries its
   * counters continues them, one that does not starts from 0; either way they add up once. */
  rebaseStats(): void {
    if (this.statsFn === null) return;
    this.readStats();
    const { statsBase, statsOut } = this.ctx;
    const o = this.statsOffset;
    for (let i = 0; i < this.statsCount; i++) {
      statsBase[o + i]! -= this.statsValues[i]!;
      statsOut[o + i] = statsBase[o + i]! + this.statsValues[i]!;
    }
  }

  /** Whether nmwasm_stats is read after every batch. */
  get hasStats(): boolean {
    return this.statsFn !== null;
  }

  /** Adds the current instance's last stats to the base before the instance goes away. */
  private foldStats(): void {
    if (this.healthy) this.readStats();
    for (let i = 0; i < this.statsCount; i++) {
      this.ctx.statsBase[this.statsOffset + i]! += this.statsValues[i]!;
      this.statsValues[i] = 0;
    }
  }

  // ---- faults -----------------------------------------------------------------------
  /** Fails the instance: counted (ring and module), fault verdicts for the back-off, then restart(). */
  fail(kind: FaultKind, message: string): void {
    const { counters, state } = this.ctx;
    this.healthy = false;
    if (this.chainLength === 1) counters[Counter.failed] = 1;
    if (kind === 'trap') counters[Counter.traps]!++;
    else if (kind === 'return') state[RingState.badReturns]!++;
    else if (kind === 'violation') state[RingState.violationFaults]!++;
    else if (kind === 'init') state[RingState.initFaults]!++;
    const b = this.block;
    if (b !== null) {
      if (kind === 'trap') b[ModuleCounter.traps]!++;
      else if (kind === 'return') b[ModuleCounter.badReturns]!++;
      else if (kind === 'violation') b[ModuleCounter.violations]!++;
      else if (kind === 'init') b[ModuleCounter.initFaults]!++;
    }
    const backoffMs = recordFault(this.faultState, epochMs());
    this.ctx.post({ type: 'fault', ring: this.ctx.data.ring, kind, message, backoffMs, module: this.index });
  }

  /** Whether the back-off of a failed instance is over (a fresh one may take over). */
  due(now: number): boolean {
    return !this.healthy && now >= this.faultState[RingState.failedUntil]!;
  }

  /** After the back-off: a fresh instance (restarts counted); a failure starts a new back-off. */
  restart(ring: RingHandle, memSize: number): void {
    this.ctx.counters[Counter.restarts]!++;
    if (this.block !== null) this.block[ModuleCounter.restarts]!++;
    if (this.previous !== null) {
      // --on-fault previous: the swapped-in module faulted; the last good one serves again.
      this.module = this.previous.module;
      this.config = this.previous.config;
      this.previous = null;
      this.ctx.post({ type: 'reverted', ring: this.ctx.data.ring, module: this.index, message: `${this.chainLength > 1 ? `module ${this.index}: ` : ''}the swapped-in module faulted: the previous module serves again (--on-fault previous)` });
    }
    const result = this.start(ring, memSize);
    if (!result.ok) this.fail(result.reason === 'trap' ? 'trap' : 'init', result.message!);
  }

  // ---- carried state (hot-swap handover) -------------------------------------------------
  /** Saves the instance's state blob into `carried` at `at` (u32 length + blob; NO_STATE when
   * it has none or it cannot be read, with a notice). */
  saveState(carriedView: DataView, carriedBytes: Uint8Array, at: number): void {
    carriedView.setUint32(at, NO_STATE, true);
    if (!this.healthy || this.stateSaveFn === null) return;
    const ctx = this.ctx;
    const who = this.chainLength > 1 ? `module ${this.index}: ` : '';
    let addr = -1;
    enterGuest(ctx, this.index);
    try {
      addr = this.stateSaveFn() >>> 0;
    } catch (err) {
      ctx.post({ type: 'notice', ring: ctx.data.ring, message: `${who}nmwasm_state_save trapped (${errorText(err)}): the new instance starts without carried state` });
    }
    leaveGuest(ctx);
    if (addr < 0) return;
    const bytes = this.guestBytes();
    const len = addr >= NMWASM_DATA_BASE && addr + 4 <= bytes.length ? this.view(bytes).getUint32(addr, true) : -1;
    if (len >= 0 && len <= NMWASM_CONFIG_MAX && addr + 4 + len <= bytes.length) {
      carriedBytes.set(bytes.subarray(addr + 4, addr + 4 + len), at + 4);
      carriedView.setUint32(at, len, true);
    } else {
      ctx.post({ type: 'notice', ring: ctx.data.ring, message: `${who}nmwasm_state_save returned 0x${addr.toString(16)}, not a u32-length-prefixed blob of at most ${NMWASM_CONFIG_MAX} bytes at or above 0x${NMWASM_DATA_BASE.toString(16)}: the new instance starts without carried state` });
    }
  }

  /** Hands a blob saved by saveState to the new instance. Returns '' (done), 'none' (no blob or
   * no nmwasm_state_load) or why it failed. */
  loadState(carriedView: DataView, carriedBytes: Uint8Array, at: number): string {
    const len = carriedView.getUint32(at, true);
    if (len === NO_STATE || this.stateLoadFn === null) return 'none';
    this.guestBytes().set(carriedBytes.subarray(at + 4, at + 4 + len), NMWASM_CONFIG_BASE);
    let rc = 0;
    let why = '';
    enterGuest(this.ctx, this.index, Phase.inStart);
    try {
      rc = this.stateLoadFn(NMWASM_CONFIG_BASE, len);
    } catch (err) {
      why = `nmwasm_state_load trapped: ${errorText(err)}`;
    }
    leaveGuest(this.ctx);
    if (why === '' && rc !== 0) why = `nmwasm_state_load returned ${rc}${this.lastLogLine ? ` (${this.lastLogLine})` : ''}`;
    return why;
  }
}

/** The length word of a carried-state slot without a blob. */
export const NO_STATE = 0xffffffff;
