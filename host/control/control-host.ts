// The control plane of one `nmwasm load` host: its name, its control socket
// (host/control/control-server.ts), its metrics endpoint (host/control/metrics.ts) and the live views both
// serve (ps, stats, rates), over the engines cli.ts runs. Opened before any port, so a
// refused name or metrics address leaves nothing open; attached to the engines once they
// start; given the final summaries at the end (the answer to `unload`).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import type { Server } from 'node:http';
import { UsageError, describeError } from '../cli/errors.ts';
import { ControlServer, type HostHooks } from './control-server.ts';
import { CONTROL_PROTOCOL, NAME_RE, type ClauseInfo, type HostInfo, type ModuleInfo, type SwapHook } from './control-types.ts';
import { hostRegistry, serveMetrics, type MetricsAddress, type MetricsClause } from './metrics.ts';
import { sumCounters, summaryJson, type SummaryContext } from '../cli/stats.ts';
import type { Engine } from '../engine/engine.ts';
import type { LoadedModule } from '../module/module.ts';

/** nmwasm's version (the package root's package.json: two folders above host/control/, one above dist/). */
export function nmwasmVersion(): string {
  try {
    const url = import.meta.url.endsWith('.ts') ? new URL('../../package.json', import.meta.url) : new URL('../package.json', import.meta.url);
    const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Host options of `load` (--name, --metrics, --metrics-public, --status-interval). */
export interface HostOptions {
  name?: string; // checked against NAME_RE
  metrics?: MetricsAddress;
}

/** One clause the host runs (a RunRequest of cli.ts, reduced to what the views need). */
export interface HostClause {
  group: number;
  moduleSpec: string;
  loaded: LoadedModule;
  /** The modules of its chain after the first (docs/ABI.md section 9), in order. */
  then?: { moduleSpec: string; loaded: LoadedModule }[];
  ctx: SummaryContext;
  trace: boolean;
}

/** The default host name, derived from the first clause's input port: "gen:count=5" ->
 * "gen-count-5", "pcap:/x/in.pcap" -> "pcap-in.pcap", "eth0-1" -> "eth0-1". */
export function defaultHostName(port: string): string {
  const file = /^pcap:(.*)$/.exec(port);
  const base = file ? `pcap-${basename(file[1]!)}` : port;
  const name = base.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[-.]+/, '').replace(/-+$/, '').slice(0, 60);
  return NAME_RE.test(name) ? name : 'nmwasm';
}

/** Checks --name NAME. */
export function checkHostName(text: string): string {
  if (!NAME_RE.test(text)) throw new UsageError(`--name: expected 1..64 letters, digits, ".", "_" or "-" (not starting with "." or "-"), got ${JSON.stringify(text.slice(0, 70))}`);
  return text;
}

function moduleInfo(spec: string, loaded: LoadedModule): ModuleInfo {
  let sha256 = loaded.sha256 ?? '';
  if (sha256 === '') {
    try {
      sha256 = createHash('sha256').update(readFileSync(loaded.description.path)).digest('hex');
    } catch {
      sha256 = ''; // the file went away after it was loaded
    }
  }
  const m = loaded.description.manifest;
  return { name: m?.name ?? basename(spec), version: m?.version ?? null, sha256, path: spec };
}

/** The control plane of one host. */
export class HostControl {
  private engines: Engine[] = [];
  private running: boolean[] = [];
  private stopAll: (() => void) | null = null;
  private unloadAsked = false; // unload before the engines started: they stop once attached
  private readonly finalSummaries: Promise<Record<string, unknown>[]>;
  private resolveFinal!: (s: Record<string, unknown>[]) => void;
  private readonly startedAt = Date.now();
  private readonly modules: ModuleInfo[][]; // per clause: each module of its chain, as loaded at start
  private readonly loaded: LoadedModule[][]; // the same modules (a swapped-in one is told apart from them)
  private server: ControlServer | null = null;
  /** Said once every port opened (a host that fails to start prints only its one error line). */
  startupNotices: string[] = [];
  private metricsServer: Server | null = null;
  private rateTimer: NodeJS.Timeout | null = null;
  private rates: { packets: number; bytes: number; at: number; pps: number; bps: number }[] = [];
  /** Swaps and canary failures per clause (g3's swap hook counts them). */
  readonly swaps: number[];
  readonly canaryFailures: number[];
  /** The engine hook for `swap` (host/engine/swap.ts sets it); absent: "not available". */
  swapHook: SwapHook | undefined;

  constructor(
    readonly name: string,
    private readonly clauses: HostClause[],
  ) {
    this.finalSummaries = new Promise((resolve) => (this.resolveFinal = resolve));
    this.modules = clauses.map((c) => [moduleInfo(c.moduleSpec, c.loaded), ...(c.then ?? []).map((m) => moduleInfo(m.moduleSpec, m.loaded))]);
    this.loaded = clauses.map((c) => [c.loaded, ...(c.then ?? []).map((m) => m.loaded)]);
    this.swaps = clauses.map(() => 0);
    this.canaryFailures = clauses.map(() => 0);
  }

  /** Opens the control socket (and the metrics endpoint) before any port is opened. With
   * `derived` (no --name given), a taken name becomes NAME-2, NAME-3, ... and a socket
   * directory that cannot be made only costs the socket (a warning line, printed with the
   * start-up lines once every port opened: startupNotices). */
  static async open(name: string, derived: boolean, clauses: HostClause[], opts: HostOptions, say: (line: string) => void): Promise<HostControl> {
    let control = new HostControl(name, clauses);
    for (let n = 2; ; n++) {
      try {
        // A stale socket of a derived name is replaced silently; of an explicit --name, said.
        control.server = await ControlServer.open(control.name, control.hooks(), derived ? () => {} : say);
        break;
      } catch (err) {
        const taken = err instanceof UsageError && /is already running|took the name meanwhile/.test(err.message);
        if (derived && taken && n <= 100) {
          control = new HostControl(`${name.slice(0, 60)}-${n}`, clauses);
          continue;
        }
        if (derived && !taken) {
          control.startupNotices.push(`warning: no control socket for this host: ${describeError(err)}`);
          break;
        }
        throw err;
      }
    }
    if (opts.metrics) {
      const registry = hostRegistry(control.name, () => control.metricsClauses(), control.startedAt);
      try {
        control.metricsServer = await serveMetrics(registry, opts.metrics);
      } catch (err) {
        control.close();
        throw err;
      }
    }
    return control;
  }

  /** Where clients reach this host ("" when it has no socket). */
  get socketPath(): string {
    return this.server?.path ?? '';
  }

  /** The engines started (same order as the clauses); `stop` stops them all (unload). */
  attach(engines: Engine[], stop: () => void): void {
    this.engines = engines;
    this.running = engines.map(() => true);
    this.stopAll = stop;
    if (this.unloadAsked) stop();
    engines.forEach((e, i) => void e.done.then(() => (this.running[i] = false), () => (this.running[i] = false)));
    this.rates = engines.map(() => ({ packets: 0, bytes: 0, at: performance.now(), pps: 0, bps: 0 }));
    this.rateTimer = setInterval(() => this.sampleRates(), 1000);
    this.rateTimer.unref();
  }

  /** The final summaries (the same objects the --json summary prints): answers `unload`. */
  finish(summaries: Record<string, unknown>[]): void {
    this.running = this.running.map(() => false);
    this.resolveFinal(summaries);
  }

  /** Closes the socket and the metrics endpoint (after pending answers are written). */
  close(): void {
    if (this.rateTimer) clearInterval(this.rateTimer);
    this.rateTimer = null;
    this.server?.close();
    this.server = null;
    this.metricsServer?.close();
    this.metricsServer?.closeAllConnections();
    this.metricsServer = null;
  }

  private sampleRates(): void {
    const now = performance.now();
    this.engines.forEach((e, i) => {
      const t = sumCounters(e.ringRuns);
      const r = this.rates[i]!;
      const secs = Math.max(now - r.at, 1) / 1000;
      this.rates[i] = { packets: t.packets, bytes: t.bytes, at: now, pps: (t.packets - r.packets) / secs, bps: ((t.bytes - r.bytes) * 8) / secs };
    });
  }

  private hooks(): HostHooks {
    return {
      info: () => this.info(),
      stats: () => this.liveSummaries(),
      unload: () => {
        this.unloadAsked = true;
        this.stopAll?.();
        return this.finalSummaries;
      },
      // Read at each request: g3's swap hook may be set after the socket opened.
      swap: (req) => (this.swapHook ? this.swapHook(req) : Promise.reject(new Error('swap is not available in this build'))),
    };
  }

  private info(): HostInfo {
    const clauses = this.clauses.map((c, i): HostInfo['clauses'][number] => {
      const engine = this.engines[i];
      const base: ClauseInfo = {
        clause: i,
        group: c.group,
        port: c.ctx.port,
        outputs: c.ctx.outputs,
        rings: engine?.ringRuns.length ?? 0,
        // What serves now: a swapped-in module replaces the one loaded at start.
        modules: engine ? engine.servingModules().map((m, k) => (m === this.loaded[i]![k] ? this.modules[i]![k]! : moduleInfo(m.description.path, m))) : this.modules[i]!,
        running: this.running[i] ?? false,
      };
      const rate = this.rates[i];
      return { ...base, packets: engine ? sumCounters(engine.ringRuns).packets : 0, pps: rate?.pps ?? 0, bps: rate?.bps ?? 0 };
    });
    return {
      name: this.name,
      pid: process.pid,
      uid: process.getuid?.() ?? 0,
      version: nmwasmVersion(),
      protocol: CONTROL_PROTOCOL,
      startedAt: new Date(this.startedAt).toISOString(),
      uptimeS: Math.round((Date.now() - this.startedAt) / 100) / 10,
      clauses,
    };
  }

  /** The live counters of every clause, shaped like the final --json summary. */
  private liveSummaries(): Record<string, unknown>[] {
    const elapsedMs = Date.now() - this.startedAt;
    return this.clauses.map((c, i) => {
      const engine = this.engines[i];
      const live = {
        rings: engine ? [...engine.ringRuns] : [],
        input: engine?.portInfo,
        elapsedMs,
        stoppedBy: 'running',
        statsNames: c.loaded.description.manifest?.stats ?? [],
        chain: engine?.chainInfo() ?? [{ module: c.moduleSpec, statsNames: c.loaded.description.manifest?.stats ?? [] }],
        oversize: 0,
        kernel: engine?.kernelVerdicts,
        swaps: engine?.swapCounts,
      } as unknown as Parameters<typeof summaryJson>[0];
      return summaryJson(live, c.ctx, false);
    });
  }

  private metricsClauses(): MetricsClause[] {
    return this.clauses.map((c, i) => ({
      clause: i,
      module: this.modules[i]!.map((m) => m.name).join(','),
      port: c.ctx.port,
      rings: this.engines[i]?.ringRuns ?? [],
      // The engine counts every swap (control socket and --watch alike).
      swaps: this.engines[i]?.swapCounts.done ?? this.swaps[i]!,
      canaryFailures: this.engines[i]?.swapCounts.canaryFailures ?? this.canaryFailures[i]!,
      swapCounts: this.engines[i]?.swapCounts,
      kernel: this.engines[i]?.kernelVerdicts ?? { drop: 0, pass: 0 },
      chain: this.engines[i]?.chainInfo() ?? [{ module: c.moduleSpec, statsNames: [] }],
      moduleNames: this.modules[i]!.map((m) => m.name),
    }));
  }
}
