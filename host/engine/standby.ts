// Warm standby workers (main thread), one per ring: a ring worker started ahead with the
// module already instantiated, waiting on Atomics (host/engine/worker.ts standBy()). When the
// watchdog kills the ring's worker (or it dies), the standby takes the ring over at once:
// it attaches, gives the batch in flight its fault verdicts, then serves; a new standby is
// spawned in the background. Without a ready standby a fresh worker takes over (slower:
// a thread, a module instance). The engine (host/engine/engine.ts) owns the workers' listeners.
import { Phase, RingControl } from './ringshared.ts';
import type { RingRun } from './engine.ts';
import { newCallSample, type Reaper } from './watchdog.ts';

export interface StandbyHost {
  /** Spawns a standby of generation `gen` for the ring (sets run.standby*). */
  spawn(run: RingRun, gen: number): void;
  reaper: Reaper;
  notice(ring: number, line: string): void;
  /** A standby is gone (taken over, failed, given up, ended). */
  dropped(run: RingRun): void;
  /** Whether the ring still runs (a standby is worth starting). */
  mayStart(run: RingRun): boolean;
}

export class Standbys {
  constructor(private readonly host: StandbyHost) {}

  /** Keeps a warm standby for the ring: spawns one when there is none. */
  ensure(run: RingRun): void {
    if (run.standby !== null || run.noStandby || !this.host.mayStart(run)) return;
    this.host.spawn(run, ++run.standbyGen);
  }

  /** Forgets the ring's standby (it failed, left, or took over). */
  drop(run: RingRun): void {
    run.standby = null;
    run.standbyLease = null;
    run.standbyReady = false;
    this.host.dropped(run);
  }

  /** A standby whose start function overran `budgetMs` (wall time: it owns no ring yet) is
   * terminated once it is inside guest code; the ring goes on without a standby. */
  giveUp(run: RingRun, budgetMs: number): void {
    const standby = run.standby!;
    if (Atomics.compareExchange(run.standbyLease!, 0, Phase.inStart, Phase.killed) !== Phase.inStart) return; // still loading: not in guest code
    run.noStandby = true;
    this.host.reaper.track(standby, run.ring, true);
    this.drop(run);
    this.host.notice(run.ring, `ring ${run.ring}: the standby instance did not start within ${budgetMs} ms: this ring has no warm standby (a killed call is taken over by a new worker)`);
  }

  /** Replaces the ring's killed (or dead) worker, already detached from `run.worker`: the
   * ready standby takes the ring over at once, else a fresh worker (spawnWorker). Returns
   * how, for the fault line. */
  replace(run: RingRun, spawnWorker: () => void): string {
    const standby = run.standby;
    if (standby !== null && run.standbyReady && run.standbyLease !== null) {
      run.worker = standby;
      run.lease = run.standbyLease;
      run.sample = newCallSample();
      run.killedByWatchdog = false;
      this.drop(run);
      Atomics.store(run.control, RingControl.takeover, run.standbyGen);
      Atomics.notify(run.control, RingControl.takeover);
      this.ensure(run);
      return 'the standby took over';
    }
    if (standby !== null) {
      // Still starting: it would take the ring over only once ready; a worker is quicker.
      // It is told to end (lease[1]) and ends by itself once it has started.
      Atomics.store(run.standbyLease!, 1, 1);
      Atomics.notify(run.control, RingControl.takeover);
      this.host.reaper.track(standby, run.ring, false);
      this.drop(run);
    }
    spawnWorker();
    this.ensure(run);
    return 'a new worker took over';
  }

  /** Ends every unused standby (the run is over): told through lease[1]; a ready one waits in
   * Atomics.wait and is terminated at once (NB: never one still starting: it may be inside a
   * native call, where termination aborts the process). */
  endAll(rings: readonly RingRun[]): void {
    for (const run of rings) {
      if (run.standbyLease !== null) Atomics.store(run.standbyLease, 1, 1);
      Atomics.notify(run.control, RingControl.takeover);
      if (run.standby !== null) this.host.reaper.track(run.standby, run.ring, run.standbyReady, false);
      this.drop(run);
    }
  }
}
