// The ring watchdog's rules (main thread; host/engine/engine.ts runs it every WATCHDOG_TICK_MS):
// a guest call is killed when the ring worker's thread has spent more than its budget of
// CPU time in it (measured on the thread's CPU clock, native/core/thread_clock.cc), or when it
// has run past a far wall-clock backstop. A descheduled thread on a loaded machine uses no
// CPU, so it is never mistaken for a runaway. Also here: the reaper, which keeps every
// terminated worker until its 'exit' event and says so when one outlives its kill.
import type { Worker } from 'node:worker_threads';
import { Counter, type NativeAddon } from '../ports/native.ts';
import { Phase } from './ringshared.ts';

/** Watchdog period. NB: one timer wake-up per tick on the main thread; a clock read per
 * ring only while that ring is inside a guest call. */
export const WATCHDOG_TICK_MS = 2;
/** The wall-clock backstop: this many times the CPU budget, at least BACKSTOP_MIN_MS. Far:
 * guest code cannot block (no blocking import), so a call that uses no CPU is a thread the
 * machine does not schedule (seen: 1.1 s without a single CPU ms on a host at load 19). */
export const BACKSTOP_FACTOR = 100;
export const BACKSTOP_MIN_MS = 10_000;
/** After a stop request, a guest call still running this long (wall) is killed. */
export const STOP_GRACE_MS = 200;
/** A terminated worker still alive this long after its kill is reported. */
export const REAP_REPORT_MS = 250;

/** What the watchdog remembers of one ring's current guest call. */
export interface CallSample {
  startedAt: number; // the call's Counter.batchStartedAt (epoch ms): identifies the call
  cpuAtSight: number; // the thread's CPU ms when the watchdog first saw the call, -1 = no CPU clock
}

export function newCallSample(): CallSample {
  return { startedAt: 0, cpuAtSight: -1 };
}

export interface Verdict {
  cpuMs: number; // CPU used by the call (-1: not measured, the wall time decided)
  wallMs: number;
  budgetMs: number;
  why: 'cpu' | 'wall' | 'stop';
}

/** Decides whether the current guest call of a worker must be killed. `lease` is the
 * worker's phase cell, `threadId` its thread, `budgetMs` the CPU budget of this kind of
 * call, `stopAt` the epoch ms of a stop request (0 = none). Pure except for one clock read.
 * The CPU count starts when the watchdog first sees the call, so it lags by a tick at most. */
export function judgeCall(native: NativeAddon, lease: Int32Array, counters: Float64Array, threadId: number, sample: CallSample, budgetMs: number, now: number, stopAt: number): Verdict | null {
  const phase = Atomics.load(lease, 0);
  if (phase !== Phase.inGuest && phase !== Phase.inStart) return null;
  const startedAt = counters[Counter.batchStartedAt]!;
  if (startedAt === 0) return null;
  const cpuNow = native.threadCpuMs(threadId);
  if (sample.startedAt !== startedAt) {
    sample.startedAt = startedAt;
    sample.cpuAtSight = cpuNow;
    return null;
  }
  const wallMs = now - startedAt;
  const cpuMs = cpuNow >= 0 && sample.cpuAtSight >= 0 ? cpuNow - sample.cpuAtSight : -1;
  if (cpuMs > budgetMs) return { cpuMs, wallMs, budgetMs, why: 'cpu' };
  if (cpuMs < 0 ? wallMs > budgetMs : wallMs > Math.max(budgetMs * BACKSTOP_FACTOR, BACKSTOP_MIN_MS)) return { cpuMs, wallMs, budgetMs, why: 'wall' };
  if (stopAt > 0 && now - Math.max(stopAt, startedAt) > STOP_GRACE_MS) return { cpuMs, wallMs, budgetMs, why: 'stop' };
  return null;
}

/** One line about a kill, e.g. "a guest call used 10.2 ms of CPU in 11.0 ms (budget 10 ms of CPU)". */
export function describeKill(v: Verdict): string {
  const used = v.cpuMs >= 0 ? `used ${v.cpuMs.toFixed(1)} ms of CPU in ${v.wallMs.toFixed(1)} ms` : `ran ${v.wallMs.toFixed(1)} ms`;
  if (v.why === 'stop') return `a guest call was still running ${STOP_GRACE_MS} ms after the stop request (${used})`;
  if (v.why === 'wall') return `a guest call ${used}, past the wall-clock backstop of ${Math.max(v.budgetMs * BACKSTOP_FACTOR, BACKSTOP_MIN_MS)} ms (budget ${v.budgetMs} ms of CPU)`;
  return `a guest call ${used} (budget ${v.budgetMs} ms of CPU)`;
}

/** Keeps terminated workers until they exit; reports one that outlives its kill by
 * REAP_REPORT_MS (guest code that never reaches a termination check). */
export class Reaper {
  private readonly alive = new Set<Worker>();
  private waiters: (() => void)[] = [];

  constructor(
    private readonly report: (ring: number, line: string) => void,
    private readonly cpuMs: (threadId: number) => number,
  ) {}

  /** Terminates `worker` (if `terminate`) and tracks it until its 'exit' event; `report`
   * false: a slow exit is not reported (an unused standby ended with the run: it runs no guest code). */
  track(worker: Worker, ring: number, terminate: boolean, report = true): void {
    if (this.alive.has(worker)) return;
    this.alive.add(worker);
    const killedAt = performance.now();
    const threadId = worker.threadId;
    const cpuAtKill = this.cpuMs(threadId);
    const late = setTimeout(() => {
      if (!this.alive.has(worker) || !report) return;
      const cpu = this.cpuMs(threadId);
      // CPU used since the kill tells a guest still running (about REAP_REPORT_MS) from a thread the machine did not schedule.
      const used = cpu >= 0 && cpuAtKill >= 0 ? `; it used ${(cpu - cpuAtKill).toFixed(1)} ms of CPU since` : '';
      this.report(ring, `ring ${ring}: a killed ring worker is still running ${REAP_REPORT_MS} ms after it was terminated${used} (guest code that does not reach a termination check, or a machine short of CPU); it is kept until it exits`);
    }, REAP_REPORT_MS);
    late.unref();
    worker.once('exit', () => {
      clearTimeout(late);
      this.alive.delete(worker);
      const after = performance.now() - killedAt;
      if (after > REAP_REPORT_MS && report) this.report(ring, `ring ${ring}: the killed ring worker exited ${Math.round(after)} ms after it was terminated`);
      if (this.alive.size === 0) for (const w of this.waiters.splice(0)) w();
    });
    if (terminate) void worker.terminate();
  }

  /** Workers terminated but not yet exited. */
  get lingering(): number {
    return this.alive.size;
  }

  /** Settles once every tracked worker has exited. */
  drained(): Promise<void> {
    if (this.alive.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
