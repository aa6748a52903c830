// The run engine (main thread): opens the ports in the native registry, spawns one ring
// worker per ring with shared counters, watches them (watchdog every 20 ms: a batch
// older than --batch-timeout gets its worker terminated and replaced; the port stays
// open), stops on EOF / --count / --duration / stop(), and closes the ports: closePort
// commits an --out file; a failed run aborts them so it writes no output file.
import { Worker } from 'node:worker_threads';
import { COUNTER_SLOTS, Counter, loadNative, type NativeAddon, type PlainPortSpec, type PortInfo } from './native.ts';
import { UsageError, formatNativeError, isNativeError, isUsageNativeError } from './errors.ts';
import { PortPool } from './portpool.ts';
import { NMWASM_DATA_BASE, NMWASM_WINDOW_BASE, type LoadedModule } from './module.ts';
import { epochMs, Phase, recordFault, RING_CONTROL_SLOTS, RING_STATE_SLOTS, RingControl, RingState, type RingWorkerData, type WorkerMessage } from './ringshared.ts';

/** Budget of the first instantiation + nmwasm_init of a ring (ms), at least --batch-timeout. */
const START_BUDGET_MS = 5000;

export const DEFAULT_BATCH_TIMEOUT_MS = 100;
export const DEFAULT_NUM_SLOTS = 1024;
export const BUF_SIZE = 2048;
const WATCHDOG_MS = 20;
const MAX_CRASHES = 10;

export interface EngineOptions {
  loaded: LoadedModule;
  moduleName: string; // as the user gave it, for messages
  config: Uint8Array;
  configName?: string;
  input: PlainPortSpec;
  outputs: PlainPortSpec[];
  onFault: 'open' | 'closed';
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
  worker: Worker | null;
  ready: boolean;
  done: boolean;
  killedByWatchdog: boolean;
  trace?: Uint8Array;
}

export interface RunResult {
  rings: RingRun[];
  input: PortInfo;
  elapsedMs: number;
  stoppedBy: 'eof' | 'count' | 'duration' | 'signal';
  statsNames: string[];
}

/** Creates a ring worker. In the bundle this file is dist/nmwasm.mjs next to dist/worker.mjs;
 * from source (tsx) it is host/engine.ts next to host/worker.ts, and the worker thread must
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
  private readonly native: NativeAddon;
  private readonly opened: PortInfo[] = [];
  private readonly pool: PortPool;
  private readonly rings: RingRun[] = [];
  private input!: PortInfo;
  private outputIds: number[] = [];
  private watchdog: NodeJS.Timeout | null = null;
  private started = false;
  private startedAt = 0;
  private stoppedBy: RunResult['stoppedBy'] = 'eof';
  private settled = false;
  private readonly heldLogs: { ring: number; line: string }[] = [];
  private resolve!: (r: RunResult) => void;
  private reject!: (e: unknown) => void;

  /** Opens the ports and starts the workers. Throws (synchronously) a UsageError or native error
   * when a port cannot be opened; nothing is left open then. */
  constructor(private readonly opts: EngineOptions) {
    this.done = new Promise((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    this.native = loadNative();
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
    const statsCount = opts.loaded.description.manifest?.stats.length ?? 0;
    for (let r = 0; r < this.input.rings; r++) {
      const run: RingRun = {
        ring: r,
        counters: new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8)),
        control: new Int32Array(new SharedArrayBuffer(RING_CONTROL_SLOTS * 4)),
        state: new Float64Array(new SharedArrayBuffer(RING_STATE_SLOTS * 8)),
        stats: new Float64Array(new SharedArrayBuffer(Math.max(statsCount, 1) * 8)).subarray(0, statsCount),
        worker: null,
        ready: false,
        done: false,
        killedByWatchdog: false,
      };
      run.counters[Counter.expected] = r === 0 ? this.input.expected : 0;
      this.rings.push(run);
      this.spawn(run, false);
    }
    this.startedAt = epochMs();
    this.watchdog = setInterval(() => this.tick(), WATCHDOG_MS);
  }

  /** Ring runs (live counters for the status line). */
  get ringRuns(): readonly RingRun[] {
    return this.rings;
  }

  get portInfo(): PortInfo {
    return this.input;
  }

  /** Start-up notices of every port of this engine, input first (offloads, leftovers removed, ...). */
  get portNotices(): string[] {
    return this.opened.flatMap((info) => info.notices ?? []);
  }

  /** Asks every ring to finish its batch and end (SIGINT/SIGTERM, --duration). */
  stop(reason: RunResult['stoppedBy'] = 'signal'): void {
    if (this.stoppedBy === 'eof') this.stoppedBy = reason;
    if (!this.started) {
      // Never started (deferStart, and another engine failed to open): nothing ran, so
      // nothing is committed; an output file being written is removed.
      if (this.settled) return;
      this.settled = true;
      this.abortAll();
      this.resolve({ rings: [], input: this.input, elapsedMs: 0, stoppedBy: reason, statsNames: [] });
      return;
    }
    for (const run of this.rings) {
      Atomics.store(run.control, RingControl.stop, 1);
      Atomics.notify(run.control, RingControl.stop);
      Atomics.notify(run.control, RingControl.go);
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

  private spawn(run: RingRun, resume: boolean): void {
    const statsCount = run.stats.length;
    const data: RingWorkerData = {
      portId: this.input.id,
      ring: run.ring,
      outputs: this.outputIds,
      module: this.opts.loaded.module,
      config: this.opts.config,
      counters: run.counters.buffer as SharedArrayBuffer,
      control: run.control.buffer as SharedArrayBuffer,
      state: run.state.buffer as SharedArrayBuffer,
      stats: run.stats.buffer as SharedArrayBuffer,
      statsCount,
      faultVerdict: this.opts.onFault === 'open' ? 1 : 0,
      trace: this.opts.trace,
      countLimit: this.input.rings === 1 ? this.opts.count : 0,
      resume,
    };
    Atomics.store(run.control, RingControl.phase, Phase.idle);
    run.killedByWatchdog = false;
    const worker = newRingWorker(data);
    run.worker = worker;
    worker.on('message', (msg: WorkerMessage) => this.onMessage(run, msg));
    worker.on('error', (err) => {
      if (run.worker === worker) this.onCrash(run, err.message);
    });
    worker.on('exit', () => {
      if (run.worker !== worker) return; // replaced by the watchdog
      run.worker = null;
      if (!run.done && !this.settled) this.onCrash(run, 'exited without finishing');
    });
  }

  private onMessage(run: RingRun, msg: WorkerMessage): void {
    switch (msg.type) {
      case 'ready':
        run.ready = true;
        if (this.rings.every((r) => r.ready)) {
          for (const held of this.heldLogs.splice(0)) this.opts.onEvent?.('log', held.ring, held.line);
          for (const r of this.rings) {
            Atomics.store(r.control, RingControl.go, 1);
            Atomics.notify(r.control, RingControl.go);
          }
        }
        return;
      case 'start-failed': {
        run.done = true;
        const what = msg.reason === 'init-rejected' ? `configuration rejected by the filter's nmwasm_init: ${msg.message}` : msg.message;
        const subject = msg.reason === 'init-rejected' && this.opts.configName ? `--config ${this.opts.configName}` : this.opts.moduleName;
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
        this.opts.onEvent?.('fault', msg.ring, `ring ${msg.ring}: ${msg.kind} fault: ${msg.message}; fault verdicts for ${msg.backoffMs} ms, then a fresh instance`);
        return;
      case 'notice':
        this.opts.onEvent?.('notice', msg.ring, `ring ${msg.ring}: ${msg.message}`);
        return;
      case 'done':
        run.done = true;
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

  private onCrash(run: RingRun, why: string): void {
    if (this.settled || run.done) return;
    if (!run.ready) {
      this.fail(new UsageError(`${this.opts.moduleName}: ring worker died while starting the module (${why})`));
      return;
    }
    run.state[RingState.workerCrashes]!++;
    if (run.state[RingState.workerCrashes]! > MAX_CRASHES) {
      this.fail(new Error(`ring ${run.ring}: worker died ${MAX_CRASHES} times (last: ${why})`));
      return;
    }
    const backoffMs = recordFault(run.state, epochMs());
    this.opts.onEvent?.('fault', run.ring, `ring ${run.ring}: crash fault: worker died (${why}); fault verdicts for ${backoffMs} ms, then a fresh instance`);
    run.worker = null;
    this.spawn(run, true);
  }

  private tick(): void {
    if (this.settled) return;
    const now = epochMs();
    for (const run of this.rings) {
      if (run.done || run.worker === null) continue;
      if (Atomics.load(run.control, RingControl.phase) !== Phase.inGuest) continue;
      const started = run.counters[Counter.batchStartedAt]!;
      // The first instantiation and nmwasm_init get a start budget: compiling, allocating the
      // memory and parsing a config can take longer than one batch on a busy machine.
      const budget = run.ready ? this.opts.batchTimeoutMs : Math.max(this.opts.batchTimeoutMs, START_BUDGET_MS);
      if (started === 0 || now - started <= budget) continue;
      // Claim the call: if the worker left guest code meanwhile, the exchange fails and it lives on.
      if (Atomics.compareExchange(run.control, RingControl.phase, Phase.inGuest, Phase.killed) !== Phase.inGuest) continue;
      this.onTimeout(run, now - started);
    }
    if (this.opts.count > 0 && this.rings.length > 1 && this.processed() >= this.opts.count) this.stop('count');
    if (this.opts.durationMs > 0 && now - this.startedAt >= this.opts.durationMs) this.stop('duration');
  }

  private onTimeout(run: RingRun, elapsed: number): void {
    const old = run.worker!;
    run.worker = null;
    void old.terminate();
    if (!run.ready) {
      this.fail(new UsageError(`${this.opts.moduleName}: the start function or nmwasm_init ran longer than its start budget of ${Math.max(this.opts.batchTimeoutMs, START_BUDGET_MS)} ms (the larger of --batch-timeout and ${START_BUDGET_MS} ms)`));
      return;
    }
    run.counters[Counter.timeouts]!++;
    run.counters[Counter.batchStartedAt] = 0;
    run.counters[Counter.failed] = 1;
    const backoffMs = recordFault(run.state, epochMs());
    this.opts.onEvent?.('fault', run.ring, `ring ${run.ring}: timeout fault: a guest call ran ${Math.round(elapsed)} ms (budget ${this.opts.batchTimeoutMs} ms): worker restarted; fault verdicts for ${backoffMs} ms, then a fresh instance`);
    if (Atomics.load(run.control, RingControl.stop) !== 0) {
      run.done = true; // stopping anyway: do not respawn
      this.maybeFinish();
      return;
    }
    this.spawn(run, true);
  }

  /** Packets that got a verdict, over all rings. */
  processed(): number {
    let sum = 0;
    for (const run of this.rings) sum += run.counters[Counter.pass]! + run.counters[Counter.drop]! + run.counters[Counter.host]! + run.counters[Counter.forward]!;
    return sum;
  }

  private maybeFinish(): void {
    if (this.settled || !this.rings.every((r) => r.done)) return;
    this.settled = true;
    this.clearWatchdog();
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
          if (Atomics.compareExchange(run.control, RingControl.phase, Phase.inGuest, Phase.killed) === Phase.inGuest) void worker.terminate();
        }, WATCHDOG_MS);
        worker.once('exit', () => clearInterval(poll));
      });
    });
    this.clearWatchdog();
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
