// The run engine (main thread): opens the ports in the native registry, spawns one ring
// worker per ring with shared counters plus a warm standby worker, watches them
// (host/engine/watchdog.ts: a guest call over its --batch-timeout of CPU time gets its worker
// terminated, and the standby takes the ring over at once: fault verdicts for the batch in
// flight, then it serves; the port stays open), stops on EOF / --count / --duration /
// stop(), and closes the ports: closePort commits an --out file; a failed run aborts them
// so it writes no output file.
// Counts add up at every stop: the rings take packets from the input only while the run's
// budget (--count, shared by the rings, zeroed by stop()) allows, and every packet taken
// gets a verdict before its ring ends, so packets == pass+drop+host+forward+fault.
import { Worker } from 'node:worker_threads';
import { COUNTER_SLOTS, Counter, LinkState, loadNative, type NativeAddon, type PlainPortSpec, type PortInfo } from '../ports/native.ts';
import { UsageError, formatNativeError, isNativeError, isUsageNativeError } from '../cli/errors.ts';
import { PortPool } from './portpool.ts';
import { printable } from '../cli/text.ts';
import { NMWASM_DATA_BASE, NMWASM_WINDOW_BASE, type LoadedModule } from '../module/module.ts';
import { epochMs, LEASE_SLOTS, MODULE_SLOTS, ModuleCounter, Phase, recordFault, RING_CONTROL_SLOTS, RING_STATE_SLOTS, CARRIED_BYTES, Handover, RingControl, RingState, SAMPLE_BYTES, type ChainEntry, type RingWorkerData, type TakeMessage, type WorkerMessage } from './ringshared.ts';
import { describeKill, judgeCall, newCallSample, Reaper, WATCHDOG_TICK_MS, type CallSample, type Verdict } from './watchdog.ts';
import { Standbys } from './standby.ts';
import { requestSample, runCanary } from './swap.ts';
import { newSwapCounts, recordSwap, type SwapCounts, type SwapResult } from './swap.ts';

/** Budget of the first instantiation + nmwasm_init of a ring (ms), at least --batch-timeout. */
const START_BUDGET_MS = 5000;

/** CPU budget of one guest call. 10 ms of CPU is ~100x a full 1024-slot batch of the example
 * firewall, and CPU time does not grow on a loaded machine; it bounds the outage of a hung
 * batch (budget + a watchdog tick + the standby's takeover) under 20 ms. */
export const DEFAULT_BATCH_TIMEOUT_MS = 10;
export const DEFAULT_NUM_SLOTS = 1024;
export const BUF_SIZE = 2048;
const MAX_CRASHES = 10;
/** How often the link monitor looks at the interfaces of live ports (one ioctl each). */
const LINK_CHECK_MS = 250;
const NO_LIMIT = 2n ** 63n - 1n;
/** Warm standbys of a swapped-in module are started this long after the last swap (ms). */
const RESTANDBY_MS = 500;
/** How long a swap waits for a ring to answer (it switches at its next batch boundary). */
const SWAP_ANSWER_MS = 10_000;

/** A module of a chain after the first (EngineOptions.then). */
export interface EngineModule {
  loaded: LoadedModule;
  moduleName: string; // as the user gave it, for messages
  config: Uint8Array;
  configName?: string;
}

export interface EngineOptions {
  loaded: LoadedModule;
  moduleName: string; // as the user gave it, for messages
  config: Uint8Array;
  configName?: string;
  /** The modules that run after the first on every batch, in order: a chain (docs/ABI.md section 9). */
  then?: EngineModule[];
  input: PlainPortSpec;
  outputs: PlainPortSpec[];
  onFault: 'open' | 'closed';
  /** --on-fault previous: a faulted instance of a swapped-in module is replaced by the last good module. */
  revert?: boolean;
  batchTimeoutMs: number;
  count: number; // 0 = no limit
  durationMs: number; // 0 = no limit
  trace: boolean;
  numSlots?: number;
  /** Opens and closes the ports; shared by the engines of one host (default: one of its own). */
  pool?: PortPool;
  /** Open the ports now but start the ring workers only at start() (several engines in one host). */
  deferStart?: boolean;
  /** Receives log lines, fault lines and notices as they happen (one line each). */
  onEvent?: (kind: 'log' | 'fault' | 'notice', ring: number, line: string) => void;
}

/** One ring's shared buffers and its current worker. */
export interface RingRun {
  ring: number;
  counters: Float64Array;
  control: Int32Array;
  state: Float64Array;
  stats: Float64Array;
  /** MODULE_SLOTS per module of the chain (ModuleCounter); written for chains of more than one module. */
  modules: Float64Array;
  worker: Worker | null;
  ready: boolean;
  done: boolean;
  killedByWatchdog: boolean;
  trace?: Uint8Array;
  /** The current worker's phase cell (its lease) and the watchdog's notes on its call. */
  lease: Int32Array;
  sample: CallSample;
  /** The warm standby: instantiated, waiting to take the ring over (null while none). */
  standby: Worker | null;
  standbyLease: Int32Array | null;
  standbyReady: boolean;
  standbyGen: number;
  standbySince: number; // epoch ms the standby was spawned
  noStandby: boolean; // a standby failed to start in its budget: none for this ring any more
  /** Canary samples from this ring's serving worker (RingWorkerData.sample). */
  sampleBuffer: SharedArrayBuffer;
  /** The worker that let go of the ring to a swap's worker (its exit is no crash). */
  handingOff?: Worker | null;
  /** Carried state of a handover (RingWorkerData.carried). */
  carried: SharedArrayBuffer;
  /** Hot-swaps this ring has not answered yet, by generation. */
  swapWaiters: Map<number, (msg: Extract<WorkerMessage, { type: 'swapped' }> | null) => void>;
  /** Swaps applied on this ring and their stalls (µs, compile excluded). */
  swaps: number;
  swapStallsUs: number[];
  /** The worker that handed the ring over at the last swap, idle, kept for the next one. */
  spare: { worker: Worker; lease: Int32Array } | null;
  /** A kill whose outage is not reported yet: the line and the killed call's start. */
  outage: { line: string; startedAt: number; backoffMs: number; how: string } | null;
}

export interface RunResult {
  rings: RingRun[];
  input: PortInfo;
  elapsedMs: number;
  stoppedBy: 'eof' | 'count' | 'duration' | 'signal' | 'link'; // link: an interface of the clause was deleted (exit 1)
  statsNames: string[]; // the first module's (nmwasm_stats); `chain` has every module's
  /** The modules of the chain, in order: name as given and manifest stats names (their values
   * follow each other in RingRun.stats). */
  chain: { module: string; statsNames: string[] }[];
  oversize: number; // frames the input's kernel dropped for being longer than its frames (AF_XDP)
  /** Packets of the input the kernel decided from the filter's flow verdicts, never taken from the port (AF_XDP). */
  kernel?: KernelVerdicts;
  swaps?: SwapCounts; // the clause's hot-swaps (absent: none were possible)
}

/** Packets the kernel dropped / passed from flow verdicts (docs/ABI.md "Flow verdicts"). */
export interface KernelVerdicts {
  drop: number;
  pass: number;
}

/** Creates a ring worker. In the bundle this file is dist/nmwasm.mjs next to dist/worker.mjs;
 * from source (tsx) it is host/engine/engine.ts next to host/engine/worker.ts, and the worker thread must
 * register tsx itself first (--import hooks of the main thread do not reach worker threads). */
function newRingWorker(data: RingWorkerData): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./worker.mjs', import.meta.url), { workerData: data });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const workerTs = new URL('./worker.ts', import.meta.url).href;
  const source = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(workerTs)}); });`;
  return new Worker(source, { eval: true, workerData: data });
}

/** A run in progress; `done` settles with the result, or rejects (UsageError for bad input). */
export class Engine {
  readonly done: Promise<RunResult>;
  /** Settles once every ring's worker and warm standby are ready and the rings start taking
   * packets (never, for a run that fails before). Until then the port is open but unread. */
  readonly running: Promise<void>;
  private markRunning!: () => void;
  private readonly native: NativeAddon;
  private readonly opened: PortInfo[] = [];
  private readonly pool: PortPool;
  private readonly rings: RingRun[] = [];
  private input!: PortInfo;
  private outputIds: number[] = [];
  private watchdog: NodeJS.Timeout | null = null;
  private stopAt = 0;
  private went = false;
  private readonly reaper = new Reaper((ring, line) => this.opts.onEvent?.('notice', ring, line), (threadId) => this.native.threadCpuMs(threadId));
  private readonly standbys = new Standbys({
    spawn: (run, gen) => this.spawn(run, true, gen),
    reaper: this.reaper,
    notice: (ring, line) => this.opts.onEvent?.('notice', ring, line),
    dropped: (run) => {
      if (!this.went && run.ready) this.maybeGo();
    },
    mayStart: (run) => !run.done && !this.settled && Atomics.load(run.control, RingControl.stop) === 0,
  });
  private started = false;
  private startedAt = 0;
  private stoppedBy: RunResult['stoppedBy'] = 'eof';
  private linkCheckedAt = 0;
  private oversize = 0;
  private readonly kernel: KernelVerdicts = { drop: 0, pass: 0 };
  /** Packets the rings may still take from the input (RingWorkerData.budget); 0 once stopping. */
  private readonly budget = new BigInt64Array(new SharedArrayBuffer(8));
  private settled = false;
  private readonly heldLogs: { ring: number; line: string }[] = [];
  /** The modules and configs of the chain new instances are made of (changed by swaps and reverts). */
  private current: { loaded: LoadedModule; config: Uint8Array }[];
  private readonly previousModules = new Map<number, { loaded: LoadedModule; config: Uint8Array }>();
  /** Names of the chain's modules as given (messages), and their config file names. */
  private readonly names: string[];
  private readonly configNames: (string | undefined)[];
  private swapGen = 0;
  private restandby: NodeJS.Timeout | null = null;
  /** This clause's swaps: done, canary failures, stalls (the summary, `stats`, /metrics). */
  readonly swapCounts: SwapCounts = newSwapCounts();
  private swapQueue: Promise<unknown> = Promise.resolve();
  private resolve!: (r: RunResult) => void;
  private reject!: (e: unknown) => void;

  /** Opens the ports and starts the workers. Throws (synchronously) a UsageError or native error
   * when a port cannot be opened; nothing is left open then. */
  constructor(private readonly opts: EngineOptions) {
    this.running = new Promise((res) => {
      this.markRunning = res;
    });
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.native = loadNative();
    this.current = [{ loaded: opts.loaded, config: opts.config }, ...(opts.then ?? []).map((m) => ({ loaded: m.loaded, config: m.config }))];
    this.names = [opts.moduleName, ...(opts.then ?? []).map((m) => m.moduleName)];
    this.configNames = [opts.configName, ...(opts.then ?? []).map((m) => m.configName)];
    Atomics.store(this.budget, 0, opts.count > 0 ? BigInt(opts.count) : NO_LIMIT);
    this.pool = opts.pool ?? new PortPool(this.native);
    this.openPorts();
    if (!opts.deferStart) this.start();
  }

  /** Starts one ring worker per input ring and the watchdog (once). With `deferStart`, the
   * caller opens every engine's ports first and then starts them all, so a software pipe
   * or VALE port has its reader before any writer sends. */
  start(): void {
    if (this.started || this.settled) return;
    this.started = true;
    const opts = this.opts;
    const statsCount = this.current.reduce((sum, m) => sum + (m.loaded.description.manifest?.stats.length ?? 0), 0);
    for (let r = 0; r < this.input.rings; r++) {
      const run: RingRun = {
        ring: r,
        counters: new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8)),
        control: new Int32Array(new SharedArrayBuffer(RING_CONTROL_SLOTS * 4)),
        state: new Float64Array(new SharedArrayBuffer(RING_STATE_SLOTS * 8)),
        stats: new Float64Array(new SharedArrayBuffer(Math.max(statsCount, 1) * 8)).subarray(0, statsCount),
        modules: new Float64Array(new SharedArrayBuffer(this.current.length * MODULE_SLOTS * 8)),
        worker: null,
        ready: false,
        done: false,
        killedByWatchdog: false,
        lease: new Int32Array(new SharedArrayBuffer(LEASE_SLOTS * 4)),
        sample: newCallSample(),
        standby: null,
        standbyLease: null,
        standbyReady: false,
        standbyGen: 0,
        standbySince: 0,
        noStandby: false,
        outage: null,
        sampleBuffer: new SharedArrayBuffer(SAMPLE_BYTES),
        carried: new SharedArrayBuffer(CARRIED_BYTES * this.current.length),
        swapWaiters: new Map(),
        swaps: 0,
        swapStallsUs: [],
        spare: null,
      };
      run.counters[Counter.expected] = r === 0 ? this.input.expected : 0;
      this.rings.push(run);
      this.spawn(run, false);
      this.standbys.ensure(run);
    }
    this.startedAt = epochMs();
    // NB: the tick is a timer wake-up of the main thread: a tenth of the batch budget, at
    // least WATCHDOG_TICK_MS (the default 10 ms budget: 2 ms), at most 50 ms.
    this.watchdog = setInterval(() => this.tick(), Math.min(50, Math.max(WATCHDOG_TICK_MS, Math.floor(this.opts.batchTimeoutMs / 10))));
  }

  /** Ring runs (live counters for the status line). */
  get ringRuns(): readonly RingRun[] {
    return this.rings;
  }

  get portInfo(): PortInfo {
    return this.input;
  }

  /** Packets of the input the kernel decided from flow verdicts, as of the last link check (every 250 ms). */
  get kernelVerdicts(): KernelVerdicts {
    return { ...this.kernel };
  }

  /** Start-up notices of every port of this engine, input first (offloads, leftovers removed, ...). */
  get portNotices(): string[] {
    return this.opened.flatMap((info) => info.notices ?? []);
  }

  /** Workers terminated but not exited yet (guest code that ignores termination). */
  get lingeringWorkers(): number {
    return this.reaper.lingering;
  }

  /** Settles once every worker this engine terminated has exited. */
  workersExited(): Promise<void> {
    return this.reaper.drained();
  }

  /** What the run has counted so far (the summary of a run cut off by the stop deadline). */
  snapshot(): RunResult {
    return { rings: this.rings, input: this.input, elapsedMs: this.started ? epochMs() - this.startedAt : 0, stoppedBy: this.stoppedBy, statsNames: this.opts.loaded.description.manifest?.stats ?? [], chain: this.chainInfo(), oversize: this.oversize, kernel: { ...this.kernel }, swaps: this.swapCounts };
  }

  /** The modules serving now, in chain order (after swaps and reverts), for `nmwasm ps`. */
  servingModules(): LoadedModule[] {
    return this.current.map((m) => m.loaded);
  }

  /** The chain as the summaries name it: each module as given, with its stats names (the
   * modules loaded at start: a swapped-in module keeps the slot's names). */
  chainInfo(): RunResult['chain'] {
    return this.names.map((module, i) => ({ module, statsNames: (i === 0 ? this.opts.loaded : this.opts.then![i - 1]!.loaded).description.manifest?.stats ?? [] }));
  }

  /** The chain's module entries for a worker. */
  private chainEntries(current = this.current): ChainEntry[] {
    return current.map((m, i) => ({ module: m.loaded.module, config: m.config, statsCount: this.chainInfo()[i]!.statsNames.length }));
  }

  /** Asks every ring to give the batch in hand its verdicts and end (SIGINT/SIGTERM,
   * --duration, --count): the budget goes to 0 first, so no ring takes another packet; a
   * guest call still running STOP_GRACE_MS later is killed (its batch gets the fault verdict). */
  stop(reason: RunResult['stoppedBy'] = 'signal'): void {
    if (this.stoppedBy === 'eof') this.stoppedBy = reason;
    Atomics.store(this.budget, 0, 0n);
    if (this.stopAt === 0) this.stopAt = epochMs();
    if (!this.started) {
      // Never started (deferStart, and another engine failed to open): nothing ran, so
      // nothing is committed; an output file being written is removed.
      if (this.settled) return;
      this.settled = true;
      this.abortAll();
      this.resolve({ rings: [], input: this.input, elapsedMs: 0, stoppedBy: reason, statsNames: [], chain: this.chainInfo(), oversize: 0 });
      return;
    }
    for (const run of this.rings) {
      Atomics.store(run.control, RingControl.stop, 1);
      Atomics.notify(run.control, RingControl.stop);
      Atomics.notify(run.control, RingControl.go);
      Atomics.notify(run.control, RingControl.takeover);
    }
  }

  private openPorts(): void {
    const portOpts = { numSlots: this.opts.numSlots ?? DEFAULT_NUM_SLOTS, bufSize: BUF_SIZE };
    try {
      this.input = this.openOne(this.opts.input, portOpts);
      const windowBytes = NMWASM_DATA_BASE - NMWASM_WINDOW_BASE;
      if (this.input.memSize > windowBytes) {
        throw new UsageError(`${this.opts.input.name}: packet memory of ${this.input.memSize} bytes does not fit the ${windowBytes}-byte packet window (use fewer or smaller slots)`);
      }
      this.outputIds = this.opts.outputs.map((spec) => this.openOne(spec, portOpts).id);
    } catch (err) {
      this.abortAll();
      throw err;
    }
  }

  private openOne(spec: PlainPortSpec, portOpts: { numSlots: number; bufSize: number }): PortInfo {
    try {
      const info = this.pool.open(spec, portOpts);
      this.opened.push(info);
      return info;
    } catch (err) {
      if (isNativeError(err) && isUsageNativeError(err)) {
        throw new UsageError(formatNativeError(err.port ? err : Object.assign(err, { port: spec.name })));
      }
      throw err;
    }
  }

  /** Starts the ring's worker (standbyGen 0), or a warm standby for it (standbyGen > 0). */
  private spawn(run: RingRun, resume: boolean, standbyGen = 0): void {
    const lease = new Int32Array(new SharedArrayBuffer(LEASE_SLOTS * 4));
    const data: RingWorkerData = {
      portId: this.input.id,
      ring: run.ring,
      outputs: this.outputIds,
      chain: this.chainEntries(),
      modules: run.modules.buffer as SharedArrayBuffer,
      sample: run.sampleBuffer,
      revert: this.opts.revert === true,
      carried: run.carried,
      counters: run.counters.buffer as SharedArrayBuffer,
      control: run.control.buffer as SharedArrayBuffer,
      state: run.state.buffer as SharedArrayBuffer,
      stats: run.stats.buffer as SharedArrayBuffer,
      faultVerdict: this.opts.onFault === 'open' ? 1 : 0,
      trace: this.opts.trace,
      budget: this.budget.buffer as SharedArrayBuffer,
      resume,
      lease: lease.buffer as SharedArrayBuffer,
      standbyGen,
      memSize: this.input.memSize,
    };
    const worker = newRingWorker(data);
    if (standbyGen > 0) {
      run.standby = worker;
      run.standbyLease = lease;
      run.standbyReady = false;
      run.standbySince = epochMs();
    } else {
      run.killedByWatchdog = false;
      run.worker = worker;
      run.lease = lease;
    }
    worker.on('message', (msg: WorkerMessage) => {
      if (msg.type === 'spare') this.keepSpare(run, worker, lease);
      else if (msg.type === 'standby-ready') {
        if (run.standby === worker) run.standbyReady = true;
        this.maybeGo();
      } else if (run.worker === worker || msg.type === 'log' || msg.type === 'notice') this.onMessage(run, msg);
    });
    worker.on('error', (err) => {
      if (run.worker === worker) this.onCrash(run, err.message);
      else if (run.standby === worker) this.standbys.drop(run);
    });
    worker.on('exit', () => {
      if (run.standby === worker) this.standbys.drop(run);
      if (run.worker !== worker) return; // replaced by the watchdog
      if (run.handingOff === worker) return; // handed the ring over to a swap's worker (its answer may not be read yet)
      run.worker = null;
      if (!run.done && !this.settled) this.onCrash(run, 'exited without finishing');
    });
  }

  /** Hot-swaps the clause's module (queued behind any swap in progress): a canary of the new
   * module (a fresh instance in its own worker: nmwasm_init with `config`, then a sample of up
   * to 64 of the clause's live packets) and, only if it passes, every serving ring switches at
   * a batch boundary, handing its instance's carried state over. ok false: the old module
   * still serves, `reason` says why. `loaded` is validated and compiled (host/engine/swap.ts). */
  swap(loaded: LoadedModule, config: Uint8Array | undefined, index = 0): Promise<SwapResult> {
    if (!Number.isInteger(index) || index < 0 || index >= this.current.length) return Promise.resolve({ ok: false, reason: `--module: expected 0..${this.current.length - 1} (the clause runs ${this.current.length} module${this.current.length > 1 ? 's' : ''}), got ${index}` });
    const next = this.swapQueue.then(() => this.swapNow(loaded, config ?? this.current[index]!.config, index));
    this.swapQueue = next.catch(() => undefined);
    return next;
  }

  /** Number of modules in the chain. */
  get chainLength(): number {
    return this.current.length;
  }

  private async swapNow(loaded: LoadedModule, config: Uint8Array, index: number): Promise<SwapResult> {
    const serving = (): RingRun[] => this.rings.filter((r) => !r.done && r.worker !== null);
    if (!this.went || this.settled || serving().length === 0) return { ok: false, reason: 'the clause is not serving (still starting, or ended): nothing swapped' };
    const from = serving()[0]!;
    const sample = await requestSample(from.control, from.sampleBuffer);
    const canary = await runCanary({ module: loaded.module, config, sample, outputs: this.outputIds.length }, Math.max(this.opts.batchTimeoutMs * 20, 250));
    const canaryInfo = { packets: canary.packets, faults: canary.ok ? 0 : 1 };
    if (!canary.ok) this.swapCounts.canaryFailures++;
    if (!canary.ok) return { ok: false, reason: `canary failed: ${canary.reason!}; the old module still serves`, canary: canaryInfo };
    const gen = ++this.swapGen;
    const takesState = loaded.description.exports.some((e) => e.name === 'nmwasm_state_load');
    const answers = serving().map((run) => this.handOver(run, gen, loaded, config, takesState, index));
    const results = await Promise.all(answers);
    const failed = results.find((r) => r !== null && !r.ok);
    const stallUs = Math.max(0, ...results.map((r) => r?.stallUs ?? 0));
    const stallCpuUs = Math.max(0, ...results.map((r) => r?.stallCpuUs ?? 0));
    if (results.some((r) => r?.ok)) {
      recordSwap(this.swapCounts, stallUs, stallCpuUs);
      if (this.opts.revert) this.previousModules.set(index, this.current[index]!);
      else this.previousModules.delete(index);
      this.current = this.current.map((m, i) => (i === index ? { loaded, config } : m));
      // Standbys hold an instance of the old module: fresh ones of the new, once swaps pause
      // (NB: a standby is a thread and an instance: one per swap of a burst would slow the
      // burst down; meanwhile a killed worker is replaced by a fresh one, as without standby).
      this.standbys.endAll(this.rings.filter((run) => run.standby !== null));
      if (this.restandby !== null) clearTimeout(this.restandby);
      this.restandby = setTimeout(() => {
        this.restandby = null;
        if (!this.settled) for (const run of this.rings) this.standbys.ensure(run);
      }, RESTANDBY_MS);
      this.restandby.unref();
    }
    if (failed) return { ok: false, reason: `ring ${failed.ring}: ${failed.reason!}; the old module still serves${results.some((r) => r?.ok) ? ' on that ring (the other rings switched)' : ''}`, canary: canaryInfo, stallUs };
    return { ok: true, canary: canaryInfo, stallUs, stallCpuUs, stateCarried: results.every((r) => r === null || r.state === 'carried') };
  }

  /** One ring's switch: a new worker instantiates and initialises the new module ahead, then
   * the serving worker lets go of the ring at a batch boundary and the new one takes it over
   * (host/engine/worker.ts handOver / takeOver). Resolves with the new worker's answer (null: the
   * ring ended first). */
  private handOver(run: RingRun, gen: number, loaded: LoadedModule, config: Uint8Array, takesState: boolean, index: number): Promise<Extract<WorkerMessage, { type: 'swapped' }> | null> {
    return new Promise((resolve) => {
      run.state[RingState.handoverState] = takesState ? 1 : 0;
      run.state[RingState.handoverModule] = index;
      const chain = this.chainEntries(this.current.map((m, i) => (i === index ? { loaded, config } : m)));
      const old = this.current[index]!;
      run.handingOff = run.worker;
      // The ring's spare (the worker that handed it over at the last swap) takes it, else a new
      // worker (NB: a thread start, tens of ms, more on a loaded machine).
      const spare = run.spare;
      run.spare = null;
      const lease = spare?.lease ?? new Int32Array(new SharedArrayBuffer(LEASE_SLOTS * 4));
      const handover = { index, previous: this.opts.revert ? { module: old.loaded.module, config: old.config } : null };
      if (spare !== null) {
        spare.worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
        spare.worker.ref();
        Atomics.store(lease, 0, Phase.idle);
        Atomics.store(lease, 1, 0);
        spare.worker.postMessage({ type: 'take', chain, handover } satisfies TakeMessage);
        Atomics.notify(lease, 0); // it waits there (host/engine/worker.ts becomeSpare)
      }
      const worker = spare?.worker ?? newRingWorker({
        portId: this.input.id, ring: run.ring, outputs: this.outputIds, chain, modules: run.modules.buffer as SharedArrayBuffer,
        counters: run.counters.buffer as SharedArrayBuffer, control: run.control.buffer as SharedArrayBuffer, state: run.state.buffer as SharedArrayBuffer,
        stats: run.stats.buffer as SharedArrayBuffer, faultVerdict: this.opts.onFault === 'open' ? 1 : 0, trace: this.opts.trace,
        budget: this.budget.buffer as SharedArrayBuffer, resume: false, lease: lease.buffer as SharedArrayBuffer, standbyGen: 0, memSize: this.input.memSize,
        sample: run.sampleBuffer, revert: this.opts.revert === true, carried: run.carried,
        handover,
      });
      let settled = false;
      let took = false;
      const finish = (msg: Extract<WorkerMessage, { type: 'swapped' }> | null): void => {
        if (settled) return;
        settled = true;
        clearInterval(watch);
        run.swapWaiters.delete(gen);
        // The old worker acknowledges (handover back to none) once it has let go for good or
        // attached again: only then may another swap of this ring begin.
        const until = performance.now() + 5000;
        const acked = (): void => {
          if (Atomics.load(run.control, RingControl.handover) !== Handover.none && performance.now() < until && !run.done) {
            setTimeout(acked, 1);
            return;
          }
          if (msg === null || !msg.ok) run.handingOff = null;
          resolve(msg);
        };
        acked();
      };
      run.swapWaiters.set(gen, () => {
        // The ring ended before the switch: the new worker is told to end.
        Atomics.store(lease, 1, 1);
        Atomics.compareExchange(run.control, RingControl.handover, Handover.ask, Handover.none);
        finish(null);
      });
      const since = performance.now();
      const watch = setInterval(() => {
        if (this.settled || run.done) run.swapWaiters.get(gen)?.(null);
        else if (performance.now() - since > SWAP_ANSWER_MS && Atomics.compareExchange(run.control, RingControl.handover, Handover.ask, Handover.none) === Handover.ask) {
          Atomics.store(lease, 1, 1); // the new worker ends; the ring never let go
          finish({ type: 'swapped', ring: run.ring, gen, ok: false, reason: `the ring did not reach a batch boundary within ${SWAP_ANSWER_MS} ms`, stallUs: 0, state: 'none' });
        }
      }, 50);
      worker.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'spare') {
          this.keepSpare(run, worker, lease);
          return;
        }
        if (run.worker === worker) {
          this.onMessage(run, msg);
          return;
        }
        if (msg.type === 'handover-ready') {
          run.handingOff = run.worker; // the new worker asked the serving one to let go (control[handover])
        } else if (msg.type === 'swapped') {
          const answer = { ...msg, gen };
          if (msg.ok) {
            took = true;
            run.worker = worker;
            run.lease = lease;
            run.sample = newCallSample();
            run.killedByWatchdog = false;
            run.swaps++;
            run.swapStallsUs.push(msg.stallUs);
          }
          finish(answer);
        } else if (msg.type === 'log' || msg.type === 'notice') this.onMessage(run, msg);
      });
      const lost = (why: string): void => {
        // Gone before it took the ring: the serving worker attaches again (or never let go).
        if (Atomics.compareExchange(run.control, RingControl.handover, Handover.released, Handover.refused) !== Handover.released) {
          Atomics.compareExchange(run.control, RingControl.handover, Handover.ask, Handover.none);
        }
        Atomics.notify(run.control, RingControl.handover);
        finish({ type: 'swapped', ring: run.ring, gen, ok: false, reason: `the new worker ${why}`, stallUs: 0, state: 'none' });
      };
      worker.on('error', (err) => {
        if (!took) lost(`died: ${printable(err.message, 200)}`);
        else if (run.worker === worker) this.onCrash(run, err.message);
      });
      worker.on('exit', () => {
        if (!took) {
          lost('exited before it took the ring');
          return;
        }
        if (run.worker === worker && run.handingOff !== worker) {
          run.worker = null;
          if (!run.done && !this.settled) this.onCrash(run, 'exited without finishing');
        }
      });
    });
  }

  /** A worker that handed its ring over to a swap's worker waits, idle, for the next swap
   * (host/engine/worker.ts becomeSpare): kept as the ring's spare, one per ring; ended with the run. */
  private keepSpare(run: RingRun, worker: Worker, lease: Int32Array): void {
    if (run.handingOff === worker) run.handingOff = null;
    worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
    if (run.spare !== null || run.done || this.settled) {
      void worker.terminate(); // idle in its event loop: safe to terminate
      return;
    }
    const spare = { worker, lease };
    run.spare = spare;
    worker.unref();
    const gone = (): void => {
      if (run.spare === spare) run.spare = null;
    };
    worker.on('error', gone);
    worker.on('exit', gone);
  }

  /** Ends every ring's spare worker (the run is over). */
  private endSpares(): void {
    for (const run of this.rings) {
      const spare = run.spare;
      run.spare = null;
      if (spare !== null) void spare.worker.terminate();
    }
  }

  private onMessage(run: RingRun, msg: WorkerMessage): void {
    switch (msg.type) {
      case 'standby-ready':
        return;
      case 'recovered':
        this.reportOutage(run, msg.at);
        return;
      case 'ready':
        run.ready = true;
        this.maybeGo();
        return;
      case 'start-failed': {
        run.done = true;
        const what = msg.reason === 'init-rejected' ? `configuration rejected by the filter's nmwasm_init: ${msg.message}` : msg.message;
        const configName = this.configNames[msg.module];
        const subject = msg.reason === 'init-rejected' && configName ? `--config ${printable(configName, 120)}` : this.names[msg.module] ?? this.opts.moduleName;
        this.fail(new UsageError(`${subject}: ${what}`));
        return;
      }
      case 'log':
        // Until every ring runs, lines are held: a rejected config is reported in ONE line
        // that quotes the module's last log line.
        if (this.rings.every((r) => r.ready)) this.opts.onEvent?.('log', msg.ring, msg.line);
        else if (this.heldLogs.length < 20) this.heldLogs.push({ ring: msg.ring, line: msg.line });
        return;
      case 'fault':
        this.opts.onEvent?.('fault', msg.ring, `${this.clause(msg.ring, msg.module)}: ${msg.kind} fault: ${msg.message}; fault verdicts for ${msg.backoffMs} ms${this.current.length > 1 ? ' to the packets that reach it' : ''}, then a fresh instance`);
        return;
      case 'notice':
        this.opts.onEvent?.('notice', msg.ring, `${this.clause(msg.ring)}: ${msg.message}`);
        return;
      case 'swapped':
      case 'handover-ready':
      case 'spare':
        return;
      case 'reverted':
        {
          const previous = this.previousModules.get(msg.module);
          if (previous !== undefined) this.current = this.current.map((m, i) => (i === msg.module ? previous : m));
          this.previousModules.delete(msg.module);
        }
        this.opts.onEvent?.('notice', msg.ring, `${this.clause(msg.ring)}: ${msg.message}`);
        return;
      case 'done':
        run.done = true;
        for (const waiter of run.swapWaiters.values()) waiter(null);
        run.swapWaiters.clear();
        this.reportOutage(run, 0);
        if (msg.trace) run.trace = msg.trace;
        this.maybeFinish();
        return;
      case 'fatal': {
        run.done = true;
        const err = Object.assign(new Error(msg.message), msg.code ? { code: msg.code, port: msg.port, syscall: msg.syscall, errno: msg.errno } : {});
        // A capture that changed while it was read (EPCAP_*) is a bad input: exit 2; any other
        // error while running (a failed write such as ENOSPC) exits 1.
        if (isNativeError(err) && err.code.startsWith('EPCAP_')) this.fail(new UsageError(formatNativeError(err)));
        else this.fail(isNativeError(err) ? new Error(formatNativeError(err)) : err);
        return;
      }
    }
  }

  /** Names a ring's clause in fault lines: "MODULE on PORT ring N" (module and port as given);
   * in a chain of several modules, with `index`: "MODULE (module 1 of 3) on PORT ring N". */
  private clause(ring: number, index = -1): string {
    const chain = this.current.length > 1;
    const module = chain && index >= 0 ? `${printable(this.names[index] ?? '', 120)} (module ${index} of ${this.current.length})` : chain ? this.names.map((n) => printable(n, 60)).join(' -> ') : printable(this.opts.moduleName, 120);
    return `${module} on ${printable(this.opts.input.name, 120)} ring ${ring}`;
  }

  /** Traffic starts once every ring's first instance and its standby are ready (a standby
   * that failed to start does not hold it up: a kill then spawns a worker instead). */
  private maybeGo(): void {
    if (this.went || !this.rings.every((r) => r.ready && (r.standby === null || r.standbyReady))) return;
    this.went = true;
    this.markRunning();
    this.startedAt = epochMs(); // --duration and the elapsed time count from here (two workers per ring start first)
    for (const held of this.heldLogs.splice(0)) this.opts.onEvent?.('log', held.ring, held.line);
    for (const r of this.rings) {
      Atomics.store(r.control, RingControl.go, 1);
      Atomics.notify(r.control, RingControl.go);
    }
  }

  private onCrash(run: RingRun, why: string): void {
    if (this.settled || run.done) return;
    if (!run.ready) {
      this.fail(new UsageError(`${this.opts.moduleName}: ring worker died while starting the module (${why})`));
      return;
    }
    run.state[RingState.workerCrashes]!++;
    if (run.state[RingState.workerCrashes]! > MAX_CRASHES) {
      this.fail(new Error(`${this.clause(run.ring)}: worker died ${MAX_CRASHES} times (last: ${why})`));
      return;
    }
    const backoffMs = recordFault(run.state, epochMs());
    this.opts.onEvent?.('fault', run.ring, `${this.clause(run.ring)}: crash fault: worker died (${why}); fault verdicts for ${backoffMs} ms, then a fresh instance`);
    run.worker = null;
    this.standbys.replace(run, () => this.spawn(run, true));
  }

  private tick(): void {
    if (this.settled) return;
    const now = epochMs();
    for (const run of this.rings) {
      if (run.standby !== null && !run.standbyReady && now - run.standbySince > START_BUDGET_MS) this.standbys.giveUp(run, START_BUDGET_MS);
      if (run.done || run.worker === null) continue;
      // Instantiation and nmwasm_init get a start budget: compiling, allocating the memory
      // and parsing a config can take longer than one batch.
      const phase = Atomics.load(run.lease, 0);
      const budget = run.ready && phase === Phase.inGuest ? this.opts.batchTimeoutMs : Math.max(this.opts.batchTimeoutMs, START_BUDGET_MS);
      // A stop (signal, --duration) does not cut a start-up short: the instance finishes its
      // start under the start budget, sees the stop and ends its ring with nothing taken (a
      // normal end); killing it here was reported as an overrun of the start budget (exit 2).
      const verdict = judgeCall(this.native, run.lease, run.counters, run.worker.threadId, run.sample, budget, now, run.ready ? this.stopAt : 0);
      if (verdict === null) continue;
      // Claim the call: if the worker left guest code meanwhile, the exchange fails and it lives on.
      if (Atomics.compareExchange(run.lease, 0, phase, Phase.killed) !== phase) continue;
      this.onTimeout(run, verdict, run.counters[Counter.batchStartedAt]!);
    }
    if (now - this.linkCheckedAt >= LINK_CHECK_MS) this.checkLinks(now);
    // The rings took exactly --count packets between them (the budget); the run stops once
    // every one of them has its verdict.
    if (this.opts.count > 0 && this.processed() >= this.opts.count) this.stop('count');
    if (this.opts.durationMs > 0 && now - this.startedAt >= this.opts.durationMs) this.stop('duration');
  }

  /** The watchdog claimed the ring's current guest call: terminate its worker (tracked
   * until it exits) and hand the ring to the standby; the outage is reported when the
   * batch in flight has its fault verdicts (message 'recovered'). */
  private onTimeout(run: RingRun, verdict: Verdict, startedAt: number): void {
    const old = run.worker!;
    run.worker = null;
    this.reaper.track(old, run.ring, true);
    if (!run.ready) {
      this.fail(new UsageError(`${this.opts.moduleName}: the start function or nmwasm_init ran longer than its start budget of ${Math.max(this.opts.batchTimeoutMs, START_BUDGET_MS)} ms of CPU (the larger of --batch-timeout and ${START_BUDGET_MS} ms; it ${describeKill(verdict).replace(/^a guest call /, '').replace(/ \(budget.*$/, '')})`));
      return;
    }
    run.counters[Counter.timeouts]!++;
    run.counters[Counter.batchStartedAt] = 0;
    // A chain: the killed module alone waits out the back-off (host/engine/worker.ts main, resume).
    const killed = this.current.length > 1 ? run.state[RingState.guestModule]! : -1;
    const block = killed >= 0 ? run.modules.subarray(killed * MODULE_SLOTS, (killed + 1) * MODULE_SLOTS) : null;
    if (block !== null) block[ModuleCounter.timeouts]!++;
    else run.counters[Counter.failed] = 1;
    const backoffMs = recordFault(block ?? run.state, epochMs());
    // Also when stopping: the new worker gives the batch in flight its fault verdicts, then ends.
    const how = this.standbys.replace(run, () => this.spawn(run, true));
    if (run.outage !== null) this.opts.onEvent?.('fault', run.ring, `${run.outage.line}; ${run.outage.how}, killed in turn before traffic flowed`);
    run.outage = { line: `${this.clause(run.ring, killed)}: timeout fault: ${describeKill(verdict)}: worker killed`, startedAt, backoffMs, how };
  }

  /** Reports a pending outage: traffic flowed again at `at` (epoch ms; 0 = the ring ended first). */
  private reportOutage(run: RingRun, at: number): void {
    const o = run.outage;
    if (o === null) return;
    run.outage = null;
    if (at === 0) {
      this.opts.onEvent?.('fault', run.ring, `${o.line}; ${o.how}; the ring ended`);
      return;
    }
    const ms = Math.max(at - o.startedAt, 0);
    run.state[RingState.outages]!++;
    run.state[RingState.outageMsTotal]! += ms;
    run.state[RingState.outageMsMax] = Math.max(run.state[RingState.outageMsMax]!, ms);
    this.opts.onEvent?.('fault', run.ring, `${o.line}; traffic again after ${ms.toFixed(1)} ms (${o.how}: fault verdicts for the batch in flight); fault verdicts for ${o.backoffMs} ms, then a fresh instance`);
  }

  /** Link monitor (main thread, every LINK_CHECK_MS and once at the end): reports each change of
   * an interface of this clause once per host ("NAME: link down", "NAME: link up again"); a
   * deleted interface ends the clause (stoppedBy 'link', exit 1); the input's kernel drops of
   * frames too long for its frames are kept for the summary. */
  private checkLinks(now: number): void {
    this.linkCheckedAt = now;
    const ports = [{ id: this.input.id, name: this.opts.input.name }, ...this.outputIds.map((id, i) => ({ id, name: this.opts.outputs[i]!.name }))];
    for (const [i, port] of ports.entries()) {
      let link: number;
      try {
        const seen = this.native.portLink(port.id);
        link = seen.link;
        if (i === 0 && seen.oversize > this.oversize) {
          if (this.oversize === 0) this.opts.onEvent?.('notice', -1, `${port.name}: the kernel drops frames longer than the port's frames hold (1792 bytes on AF_XDP); counted in the summary (oversize): lower the MTU`);
          this.oversize = seen.oversize;
        }
        if (i === 0) {
          this.kernel.drop = Math.max(this.kernel.drop, seen.kernelDrop);
          this.kernel.pass = Math.max(this.kernel.pass, seen.kernelPass);
        }
      } catch {
        continue; // closed meanwhile (a shared port its other engine closed)
      }
      if (link === LinkState.gone) this.stop('link');
      if (!this.pool.linkChanged(port.name, link)) continue;
      const what = link === LinkState.gone ? 'interface deleted: its clause ended' : link === LinkState.down ? 'link down' : 'link up again';
      this.opts.onEvent?.('notice', -1, `${port.name}: ${what}`);
    }
  }

  /** Packets that got a verdict (the filter's or the fault verdict), over all rings. */
  processed(): number {
    let sum = 0;
    for (const { counters: c } of this.rings) sum += c[Counter.pass]! + c[Counter.drop]! + c[Counter.host]! + c[Counter.forward]! + c[Counter.faultVerdicts]!;
    return sum;
  }

  private maybeFinish(): void {
    if (this.settled || !this.rings.every((r) => r.done)) return;
    this.settled = true;
    this.clearWatchdog();
    this.checkLinks(epochMs()); // a deletion that ended the rings before the monitor saw it
    this.standbys.endAll(this.rings);
    this.endSpares();
    try {
      // Close outputs after the input so the last packets are flushed, then commit.
      for (const info of [...this.opened].reverse()) this.pool.close(info.id);
      this.opened.length = 0;
    } catch (err) {
      this.abortAll();
      this.reject(isNativeError(err) ? new Error(formatNativeError(err)) : err);
      return;
    }
    const stoppedBy = this.stoppedBy === 'eof' && this.opts.count > 0 && this.processed() >= this.opts.count ? 'count' : this.stoppedBy;
    this.resolve({
      rings: this.rings,
      input: this.input,
      elapsedMs: epochMs() - this.startedAt,
      stoppedBy,
      statsNames: this.opts.loaded.description.manifest?.stats ?? [],
      chain: this.chainInfo(),
      oversize: this.oversize,
      kernel: { ...this.kernel },
      swaps: this.swapCounts,
    });
  }

  /** Ends the run as failed: stops the workers, aborts the ports (no output file).
   * NB: a worker is terminated only while it runs guest code (claimed through its phase word):
   * terminating one inside a native call (sync, detach) aborts the process in the addon.
   * The others finish their batch, see `stop` and exit by themselves. */
  private fail(err: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.stop();
    const exits = this.rings.map((run) => {
      const worker = run.worker;
      if (worker === null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        const poll = setInterval(() => {
          if (Atomics.compareExchange(run.lease, 0, Phase.inGuest, Phase.killed) === Phase.inGuest) void worker.terminate();
        }, WATCHDOG_TICK_MS * 10);
        worker.once('exit', () => clearInterval(poll));
      });
    });
    this.clearWatchdog();
    this.standbys.endAll(this.rings);
    this.endSpares();
    void Promise.all(exits).finally(() => {
      for (const run of this.rings) run.worker = null;
      this.abortAll();
      this.reject(err);
    });
  }

  private abortAll(): void {
    for (const info of this.opened.splice(0).reverse()) {
      try {
        this.pool.abort(info.id);
      } catch {
        // already failing: the first error is the one reported
      }
    }
  }

  private clearWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = null;
  }
}
