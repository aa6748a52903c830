// Hot-swap helpers of the engine (main thread): the canary sample taken from a serving ring,
// the canary worker (host/engine/canary.ts) bounded in wall time, and the module + config file
// check of a swap request (the same validation as a load). The switch itself happens in the
// ring workers (host/engine/worker.ts applySwap) at a batch boundary.
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { UsageError } from '../cli/errors.ts';
import { loadModule, NMWASM_CONFIG_MAX, DEFAULT_LIMITS, type LoadedModule, type ModuleLimits } from '../module/module.ts';
import { printable } from '../cli/text.ts';
import { RingControl } from './ringshared.ts';
import type { CanaryData, CanaryMessage } from './canary.ts';
import type { SwapRequest, SwapResult as ControlSwapResult } from '../control/control-types.ts';
import type { Engine } from './engine.ts';

/** Upper bounds (µs) of the swap stall histogram (/metrics nmwasm_swap_stall_seconds). */
export const STALL_BUCKETS_US = [25, 50, 100, 200, 500, 1000, 2000, 5000, 20000, 100000];

/** A clause's swaps (Engine.swapCounts): what the summary, `stats` and /metrics report. The
 * stall of a swap is the longest of its rings' (docs/CONTROL.md "Stall"). */
export interface SwapCounts {
  done: number;
  canaryFailures: number;
  lastStallUs: number;
  stallsUs: number[]; // every swap's stall, in order (NB: 8 bytes per swap, kept for the percentiles)
  stallsCpuUs: number[]; // the same in CPU time of the ring threads
  buckets: number[]; // per STALL_BUCKETS_US bound, then +Inf: swaps with a stall at or under it (cumulative)
  stallSumUs: number;
}

export function newSwapCounts(): SwapCounts {
  return { done: 0, canaryFailures: 0, lastStallUs: 0, stallsUs: [], stallsCpuUs: [], buckets: new Array<number>(STALL_BUCKETS_US.length + 1).fill(0), stallSumUs: 0 };
}

/** Counts a swap that switched with a stall of `stallUs`. */
export function recordSwap(c: SwapCounts, stallUs: number, stallCpuUs: number): void {
  c.done++;
  c.stallsCpuUs.push(stallCpuUs);
  c.lastStallUs = stallUs;
  c.stallsUs.push(stallUs);
  c.stallSumUs += stallUs;
  STALL_BUCKETS_US.forEach((le, i) => {
    if (stallUs <= le) c.buckets[i]!++;
  });
  c.buckets[STALL_BUCKETS_US.length]!++;
}

/** The `swaps` object of the --json summary and `stats --json`: counts, the last stall, and
 * p50/p99/max of the stalls, on the clock and in CPU time (µs; 0 without swaps). */
export function swapSummary(c: SwapCounts | undefined): { done: number; canaryFailures: number; lastStallUs: number; stallUs: Percentiles; stallCpuUs: Percentiles } {
  return { done: c?.done ?? 0, canaryFailures: c?.canaryFailures ?? 0, lastStallUs: c?.lastStallUs ?? 0, stallUs: percentiles(c?.stallsUs ?? []), stallCpuUs: percentiles(c?.stallsCpuUs ?? []) };
}

export interface Percentiles {
  p50: number;
  p99: number;
  max: number;
}

/** p50/p99/max of `values` (0 when empty). */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!);
  return { p50: q(0.5), p99: q(0.99), max: sorted.at(-1) ?? 0 };
}

/** What Engine.swap did (the control protocol's SwapResult, plus whether state was carried). */
export type SwapResult = ControlSwapResult & { stateCarried?: boolean };

/** The control socket's `swap` hook (host/control/control-host.ts HostControl.swapHook): picks the
 * clause's engine, validates and compiles the module (and reads the config) as a load does,
 * then swaps. Bad input and failed canaries resolve ok: false with the reason (the client
 * exits 2); `counts` (HostControl.swaps / canaryFailures) are kept per clause. */
export function makeSwapHook(engines: () => readonly Engine[], limits: readonly ModuleLimits[], counts?: { swaps: number[]; canaryFailures: number[] }): (req: SwapRequest) => Promise<SwapResult> {
  return async (req) => {
    const clause = req.clause ?? 0;
    const list = engines();
    const engine = list[clause];
    if (engine === undefined) return { ok: false, reason: `--clause: expected 0..${list.length - 1}, got ${clause}` };
    const index = req.module_index ?? 0;
    if (index >= engine.chainLength) return { ok: false, reason: `--module: expected 0..${engine.chainLength - 1} (clause ${clause} runs ${engine.chainLength} module${engine.chainLength > 1 ? 's' : ''}), got ${index}` };
    let prepared: ReturnType<typeof prepareSwap>;
    try {
      prepared = prepareSwap(req.module, req.config, limits[clause] ?? DEFAULT_LIMITS);
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? printable(err.message, 300) : String(err) };
    }
    const result = await engine.swap(prepared.loaded, prepared.config, index);
    if (counts) {
      if (result.ok) counts.swaps[clause] = (counts.swaps[clause] ?? 0) + 1;
      else if (result.canary && result.canary.faults > 0) counts.canaryFailures[clause] = (counts.canaryFailures[clause] ?? 0) + 1;
    }
    return result;
  };
}

/** How long the canary may take for its start function + nmwasm_init (wall time, ms). */
export const CANARY_START_BUDGET_MS = 5000;
/** How long to wait for a serving ring to hand over a sample of live packets (ms); a ring with
 * no traffic gives none and the canary then checks instantiation and init only. */
export const SAMPLE_WAIT_MS = 200;

/** The module and config of a swap: validated and compiled like `nmwasm load`'s (throws a
 * UsageError naming the file). */
export function prepareSwap(moduleSpec: string, configPath: string | undefined, limits: ModuleLimits = DEFAULT_LIMITS): { loaded: LoadedModule; config: Uint8Array | undefined } {
  const loaded = cachedModule(moduleSpec, limits);
  if (configPath === undefined) return { loaded, config: undefined };
  let config: Uint8Array;
  try {
    config = readFileSync(configPath);
  } catch (err) {
    throw new UsageError(`--config ${printable(configPath, 120)}: cannot read: ${printable((err as Error).message, 200)}`);
  }
  if (config.length > NMWASM_CONFIG_MAX) throw new UsageError(`--config ${printable(configPath, 120)}: expected at most ${NMWASM_CONFIG_MAX} bytes, got ${config.length}`);
  return { loaded, config };
}

/** Modules compiled for swaps, by sha256 of the file, limits and spec (the same bytes swapped
 * in again, as when alternating two builds, are not validated and compiled again). */
const compiled = new Map<string, LoadedModule>();
const COMPILED_MAX = 16;

/** loadModule, cached for a module file whose bytes were loaded before (a package directory
 * or anything that is not a regular file goes through loadModule each time). */
function cachedModule(spec: string, limits: ModuleLimits): LoadedModule {
  let bytes: Buffer;
  try {
    if (!statSync(spec).isFile()) return loadModule(spec, limits);
    bytes = readFileSync(spec);
  } catch {
    return loadModule(spec, limits); // names the problem
  }
  const key = `${createHash('sha256').update(bytes).digest('hex')} ${JSON.stringify(limits)} ${spec}`;
  const hit = compiled.get(key);
  if (hit !== undefined) return hit;
  const loaded = loadModule(spec, limits);
  // Cached only if the file did not change while it was loaded (loadModule read it again).
  let same = false;
  try {
    same = readFileSync(spec).equals(bytes);
  } catch {
    same = false;
  }
  if (!same) return loaded;
  if (compiled.size >= COMPILED_MAX) compiled.delete(compiled.keys().next().value!);
  compiled.set(key, loaded);
  return loaded;
}

/** Asks the ring's serving worker for a copy of up to SAMPLE_PACKETS packets of its next batch
 * (taken before the filter sees them); resolves with the sample bytes (count 0 without traffic). */
export async function requestSample(control: Int32Array, sample: SharedArrayBuffer): Promise<Uint8Array> {
  const gen = Atomics.add(control, RingControl.sampleReq, 1) + 1;
  const deadline = performance.now() + SAMPLE_WAIT_MS;
  while (Atomics.load(control, RingControl.sampleDone) !== gen && performance.now() < deadline) {
    const seen = Atomics.load(control, RingControl.sampleDone);
    await waitAsync(control, RingControl.sampleDone, seen, Math.max(deadline - performance.now(), 1)).value;
  }
  if (Atomics.load(control, RingControl.sampleDone) !== gen) return new Uint8Array(4);
  return new Uint8Array(sample).slice();
}

// Atomics.waitAsync (Node >= 16) is not in this project's TypeScript lib yet.
const waitAsync = (Atomics as unknown as { waitAsync(a: Int32Array, i: number, v: number, t: number): { value: Promise<string> | string } }).waitAsync;

/** Runs the canary: resolves ok, or not with the reason (a trap, a rejected config, a broken
 * ABI rule, or an overrun of its budgets: CANARY_START_BUDGET_MS, then `sampleBudgetMs`). */
export function runCanary(data: CanaryData, sampleBudgetMs: number): Promise<{ ok: boolean; reason?: string; packets: number }> {
  return new Promise((resolve) => {
    const worker = takeCanaryWorker();
    worker.ref();
    worker.postMessage(data);
    let settled = false;
    let sampling = false;
    const finish = (r: { ok: boolean; reason?: string; packets: number }, reusable = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
      // A passed canary leaves a clean worker: it is the next warm one (a worker thread costs
      // tens of ms to start); any other ends here.
      if (reusable && warm === null) {
        worker.unref();
        worker.on('error', () => {
          if (warm === worker) warm = null;
        });
        warm = worker;
      } else {
        void worker.terminate();
        warmUp();
      }
      resolve(r);
    };
    const overrun = (): void => {
      const packets = new DataView(data.sample.buffer, data.sample.byteOffset).getUint32(0, true);
      finish(sampling ? { ok: false, reason: `nmwasm_process ran over its budget of ${sampleBudgetMs} ms on the sample of ${packets} live packets`, packets } : { ok: false, reason: `the start function or nmwasm_init ran over the start budget of ${CANARY_START_BUDGET_MS} ms`, packets: 0 });
    };
    let timer = setTimeout(overrun, CANARY_START_BUDGET_MS);
    worker.on('message', (msg: CanaryMessage) => {
      if (msg.type === 'sampling') {
        sampling = true;
        clearTimeout(timer);
        timer = setTimeout(overrun, sampleBudgetMs);
      } else finish(msg.ok ? { ok: true, packets: msg.packets } : { ok: false, reason: msg.reason!, packets: msg.packets }, msg.ok);
    });
    worker.on('error', (err) => finish({ ok: false, reason: `canary worker died: ${printable(err.message, 200)}`, packets: 0 }));
    worker.on('exit', () => finish({ ok: false, reason: 'canary worker exited without a result', packets: 0 }));
  });
}

/** A warm canary worker (started ahead: a worker thread takes tens of ms to start, with tsx
 * far more): the one whose canary passed last, or a fresh one started after a failure. */
let warm: Worker | null = null;
function takeCanaryWorker(): Worker {
  const worker = warm ?? newCanaryWorker();
  worker.removeAllListeners('message').removeAllListeners('error').removeAllListeners('exit');
  warm = null;
  return worker;
}

/** Starts the next warm canary worker in the background (after a failed canary ended its own). */
function warmUp(): void {
  if (warm !== null) return;
  const next = newCanaryWorker();
  next.unref(); // an idle warm canary never keeps the process alive
  next.on('error', () => {
    if (warm === next) warm = null;
  });
  warm = next;
}

/** Ends the warm canary worker (the host is done with swaps). */
export function endCanaries(): void {
  void warm?.terminate();
  warm = null;
}

/** The canary worker: dist/canary.mjs in the bundle, host/engine/canary.ts from source (tsx registered
 * in the thread, as host/engine/engine.ts does for ring workers). */
function newCanaryWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./canary.mjs', import.meta.url), { workerData: null });
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const file = new URL('./canary.ts', import.meta.url).href;
  const source = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(file)}); });`;
  return new Worker(source, { eval: true, workerData: null });
}
