// Run statistics for people and machines: a status line once a second on a TTY (with a
// progress bar for finite inputs), and the final summary as text or as JSON (--json):
// counts per verdict class (pass + drop + host + forward + fault = packets), faults by
// kind, the filter's own stats by manifest names and, with --trace, every packet's final
// verdict.
import { Counter } from '../ports/native.ts';
import { MODULE_SLOTS, ModuleCounter, RingState } from '../engine/ringshared.ts';
import type { RingRun, RunResult } from '../engine/engine.ts';
import { swapSummary } from '../engine/swap.ts';

export interface Totals {
  packets: number;
  bytes: number;
  batches: number;
  wasmCalls: number;
  pass: number;
  drop: number;
  host: number;
  forward: number;
  faultVerdicts: number; // packets that got the fault verdict (not in pass or drop)
  outPackets: number;
  outBytes: number;
  outSwapped: number;
  outDrops: number;
  hostRefused: number;
  expected: number;
  logSuppressed: number;
  faults: { traps: number; timeouts: number; violations: number; violationSlots: number; badReturns: number; initFaults: number; crashes: number; restarts: number };
  /** Killed guest calls after which traffic flowed again, and how long it stopped (ms). */
  outages: { count: number; maxMs: number; totalMs: number };
}

/** Sums the counters of every ring (safe to call while workers run: values only grow). */
export function sumCounters(rings: readonly RingRun[]): Totals {
  const t: Totals = {
    packets: 0, bytes: 0, batches: 0, wasmCalls: 0, pass: 0, drop: 0, host: 0, forward: 0, faultVerdicts: 0,
    outPackets: 0, outBytes: 0, outSwapped: 0, outDrops: 0, hostRefused: 0, expected: 0, logSuppressed: 0,
    faults: { traps: 0, timeouts: 0, violations: 0, violationSlots: 0, badReturns: 0, initFaults: 0, crashes: 0, restarts: 0 },
    outages: { count: 0, maxMs: 0, totalMs: 0 },
  };
  for (const { counters: c, state: s } of rings) {
    t.packets += c[Counter.packets]!;
    t.bytes += c[Counter.bytes]!;
    t.batches += c[Counter.batches]!;
    t.wasmCalls += c[Counter.wasmCalls]!;
    t.pass += c[Counter.pass]!;
    t.drop += c[Counter.drop]!;
    t.host += c[Counter.host]!;
    t.forward += c[Counter.forward]!;
    t.faultVerdicts += c[Counter.faultVerdicts]!;
    t.outPackets += c[Counter.outPackets]!;
    t.outBytes += c[Counter.outBytes]!;
    t.outSwapped += c[Counter.outSwapped]!;
    t.outDrops += c[Counter.outDrops]!;
    t.hostRefused += c[Counter.hostRefused]!;
    t.expected += c[Counter.expected]!;
    t.logSuppressed += c[Counter.logSuppressed]!;
    t.faults.traps += c[Counter.traps]!;
    t.faults.timeouts += c[Counter.timeouts]!;
    t.faults.violationSlots += c[Counter.violations]!;
    t.faults.violations += s[RingState.violationFaults]!;
    t.faults.badReturns += s[RingState.badReturns]!;
    t.faults.initFaults += s[RingState.initFaults]!;
    t.faults.crashes += s[RingState.workerCrashes]!;
    t.faults.restarts += c[Counter.restarts]!;
    t.outages.count += s[RingState.outages]!;
    t.outages.maxMs = Math.max(t.outages.maxMs, s[RingState.outageMsMax]!);
    t.outages.totalMs += s[RingState.outageMsTotal]!;
    // A faulted module of a chain ended these packets with the fault verdict; native counted
    // them under the verdict applied (host/engine/chain.ts).
    t.drop -= s[RingState.chainFaultDrop]!;
    t.pass -= s[RingState.chainFaultPass]!;
    t.faultVerdicts += s[RingState.chainFaultDrop]! + s[RingState.chainFaultPass]!;
  }
  return t;
}

/** One module of a clause's chain as the summaries show it. */
export interface ModuleTotals {
  index: number;
  module: string;
  packets: number; // packets that reached it (= the sum of its verdicts)
  verdicts: { pass: number; drop: number; host: number; forward: number; fault: number };
  faults: { traps: number; timeouts: number; violations: number; violationSlots: number; badReturns: number; initFaults: number };
  restarts: number;
  filterStats: Record<string, number>;
}

/** Per-module counts of a clause's chain (safe while workers run). A chain of one module
 * counts what its ring counts; a longer chain's modules count in RingRun.modules. */
export function moduleTotals(chain: RunResult['chain'], rings: readonly RingRun[]): ModuleTotals[] {
  let statsAt = 0;
  return chain.map((entry, index) => {
    const filterStats: Record<string, number> = Object.create(null); // a stat may be named "__proto__"
    const at = statsAt;
    entry.statsNames.forEach((name, i) => {
      filterStats[name] = rings.reduce((sum, r) => sum + (r.stats[at + i] ?? 0), 0);
    });
    statsAt += entry.statsNames.length;
    if (chain.length === 1) {
      const t = sumCounters(rings);
      const f = t.faults;
      return {
        index, module: entry.module, packets: verdictTotal(t),
        verdicts: { pass: t.pass, drop: t.drop, host: t.host, forward: t.forward, fault: t.faultVerdicts },
        faults: { traps: f.traps, timeouts: f.timeouts, violations: f.violations, violationSlots: f.violationSlots, badReturns: f.badReturns, initFaults: f.initFaults },
        restarts: f.restarts, filterStats,
      };
    }
    const sum = (slot: number): number => rings.reduce((n, r) => n + (r.modules[index * MODULE_SLOTS + slot] ?? 0), 0);
    return {
      index, module: entry.module, packets: sum(ModuleCounter.seen),
      verdicts: { pass: sum(ModuleCounter.pass), drop: sum(ModuleCounter.drop), host: sum(ModuleCounter.host), forward: sum(ModuleCounter.forward), fault: sum(ModuleCounter.fault) },
      faults: { traps: sum(ModuleCounter.traps), timeouts: sum(ModuleCounter.timeouts), violations: sum(ModuleCounter.violations), violationSlots: sum(ModuleCounter.violationSlots), badReturns: sum(ModuleCounter.badReturns), initFaults: sum(ModuleCounter.initFaults) },
      restarts: sum(ModuleCounter.restarts), filterStats,
    };
  });
}

/** Packets that got a verdict: the filter's (pass, drop, host, forward) or the fault verdict. */
export function verdictTotal(t: Totals): number {
  return t.pass + t.drop + t.host + t.forward + t.faultVerdicts;
}

export function totalFaults(t: Totals): number {
  const f = t.faults;
  return f.traps + f.timeouts + f.violations + f.badReturns + f.initFaults + f.crashes;
}

function round1(ms: number): number {
  return Math.round(ms * 10) / 10;
}

/** Compact number: 1234567 -> "1.23M". */
export function compact(n: number): string {
  if (n < 1e4) return String(Math.round(n));
  if (n < 1e6) return `${(n / 1e3).toFixed(1)}k`;
  if (n < 1e9) return `${(n / 1e6).toFixed(2)}M`;
  return `${(n / 1e9).toFixed(2)}G`;
}

/** Bytes for people, in powers of 1024: 512 B, 1.5 KiB, 12.3 MiB, 2.00 GiB. */
export function humanBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** A bit rate for people (powers of 1000): 950 bit/s, 1.20 Mbit/s, 9.87 Gbit/s. */
export function humanBits(bitsPerSecond: number): string {
  if (bitsPerSecond < 1000) return `${Math.round(bitsPerSecond)} bit/s`;
  const units = ['kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
  let v = bitsPerSecond / 1000;
  let i = 0;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[i]}`;
}

/** Seconds as "1:02:03" or "02:03". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export interface StatusOptions {
  /** Seconds between two status lines when stdout is not a terminal; 0 = none. */
  intervalS: number;
  /** --duration in ms (0 = none): the terminal line shows the time left. */
  durationMs: number;
  /** Where the periodic lines go when stdout is not a terminal (stderr: stdout keeps the summary). */
  log: NodeJS.WritableStream;
}

/** The status line: on a terminal (`stream.isTTY`) redrawn in place once a second (elapsed
 * time, time left with --duration, progress for finite inputs); otherwise one line every
 * `intervalS` seconds on `log`. Both show packets, pps, bit/s, bytes and verdicts. */
export class StatusLine {
  private timer: NodeJS.Timeout | null = null;
  private lastPackets = 0;
  private lastBytes = 0;
  private lastAt = 0;
  private startedAt = 0;
  private shown = false;
  private armed = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly rings: () => readonly RingRun[],
    private readonly opts: StatusOptions = { intervalS: 0, durationMs: 0, log: process.stderr },
  ) {}

  /** Status lines describe running rings: the first one comes `intervalS` after this (every
   * engine is running), not while the workers still start (the port open but unread). */
  arm(): void {
    this.armed = true;
    this.start();
  }

  start(): void {
    if (this.timer || !this.armed) return;
    const now = performance.now();
    if (this.startedAt === 0) this.startedAt = now;
    if (this.stream.isTTY) {
      this.lastAt = now;
      this.timer = setInterval(() => this.draw(), 1000);
    } else if (this.opts.intervalS > 0) {
      this.lastAt = now;
      this.timer = setInterval(() => this.opts.log.write(`status: ${this.line()}\n`), this.opts.intervalS * 1000);
    } else return;
    this.timer.unref();
  }

  /** Removes the status line (before the summary is printed). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }

  /** One status line (rates since the previous line). */
  line(): string {
    const t = sumCounters(this.rings());
    const now = performance.now();
    const secs = Math.max(now - this.lastAt, 1) / 1000;
    const pps = (t.packets - this.lastPackets) / secs;
    const bps = ((t.bytes - this.lastBytes) * 8) / secs;
    this.lastPackets = t.packets;
    this.lastBytes = t.bytes;
    this.lastAt = now;
    const elapsed = (now - this.startedAt) / 1000;
    const left = this.opts.durationMs > 0 ? `, ${clock(this.opts.durationMs / 1000 - elapsed)} left` : '';
    return `${clock(elapsed)}${left} | ${compact(t.packets)} pkts ${humanBytes(t.bytes)} | ${compact(pps)} pps ${humanBits(bps)} | pass ${compact(t.pass)} drop ${compact(t.drop)} host ${compact(t.host)} fwd ${compact(t.forward)} fault ${compact(t.faultVerdicts)} | faults ${totalFaults(t)}`;
  }

  private draw(): void {
    const t = sumCounters(this.rings());
    let line = this.line();
    if (t.expected > 0) line = `${progressBar(verdictTotal(t), t.expected, 20)} ${line}`;
    const width = this.stream.columns || 120; // 0 when the terminal size is unknown
    this.stream.write(`\r\x1b[K${line.slice(0, Math.max(width - 1, 20))}`);
    this.shown = true;
  }
}

/** "[#####.....] 50%" */
export function progressBar(done: number, total: number, width: number): string {
  const ratio = total > 0 ? Math.min(done / total, 1) : 0;
  const full = Math.round(ratio * width);
  return `[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${Math.floor(ratio * 100)}%`;
}

/** Final verdict bytes as a string of digits when every value is 0..9, else an array of numbers. */
export function formatTrace(trace: Uint8Array): string | number[] {
  for (const v of trace) if (v > 9) return Array.from(trace);
  let out = '';
  for (const v of trace) out += String(v);
  return out;
}

export interface SummaryContext {
  module: string;
  port: string;
  outputs: string[];
  onFault?: 'open' | 'closed'; // what the fault verdict did (text summary)
}

/** The machine-readable summary (--json). */
export function summaryJson(result: RunResult, ctx: SummaryContext, withTrace: boolean): Record<string, unknown> {
  const t = sumCounters(result.rings);
  const filterStats: Record<string, number> = Object.create(null); // a stat may be named "__proto__"
  result.statsNames.forEach((name, i) => {
    filterStats[name] = result.rings.reduce((sum, r) => sum + (r.stats[i] ?? 0), 0);
  });
  const summary: Record<string, unknown> = {
    module: ctx.module,
    port: ctx.port,
    outputs: ctx.outputs,
    stoppedBy: result.stoppedBy,
    elapsedMs: Math.round(result.elapsedMs),
    rings: result.rings.length,
    packets: t.packets,
    bytes: t.bytes,
    batches: t.batches,
    wasmCalls: t.wasmCalls,
    verdicts: { pass: t.pass, drop: t.drop, host: t.host, forward: t.forward, fault: t.faultVerdicts },
    faultVerdicts: t.faultVerdicts, // = verdicts.fault (kept for older readers)
    hostRefused: t.hostRefused,
    faults: t.faults,
    outages: { count: t.outages.count, maxMs: round1(t.outages.maxMs), totalMs: round1(t.outages.totalMs) },
    out: { packets: t.outPackets, bytes: t.outBytes, zeroCopy: t.outSwapped, drops: t.outDrops },
    logSuppressed: t.logSuppressed,
    oversize: result.oversize ?? 0,
    kernel: { drop: result.kernel?.drop ?? 0, pass: result.kernel?.pass ?? 0 },
    filterStats, // the first module's (each module's: modules[i].filterStats)
    modules: moduleTotals(result.chain ?? [{ module: ctx.module, statsNames: result.statsNames }], result.rings),
    swaps: swapSummary(result.swaps),
  };
  if (withTrace) {
    const parts = result.rings.map((r) => r.trace ?? new Uint8Array(0));
    const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      all.set(p, at);
      at += p.length;
    }
    summary.trace = formatTrace(all);
  }
  return summary;
}

/** The human-readable summary: a few lines. */
export function summaryText(result: RunResult, ctx: SummaryContext): string {
  const t = sumCounters(result.rings);
  const secs = result.elapsedMs / 1000;
  const lines = [
    `${ctx.module} on ${ctx.port}: ${t.packets} packets (${t.bytes} bytes) in ${secs.toFixed(2)} s, ${compact(t.packets / Math.max(secs, 1e-3))} pps, ${t.batches} batches, ${t.wasmCalls} wasm calls${result.stoppedBy !== 'eof' ? `, stopped by ${result.stoppedBy}` : ''}`,
    `verdicts: pass ${t.pass}, drop ${t.drop}, host ${t.host}, forward ${t.forward}, fault ${t.faultVerdicts}${t.faultVerdicts > 0 && ctx.onFault ? ` (${ctx.onFault === 'open' ? 'passed' : 'dropped'}: --on-fault ${ctx.onFault})` : ''}`,
  ];
  const k = result.kernel;
  if (k !== undefined && k.drop + k.pass > 0) {
    lines.push(`kernel: drop ${k.drop}, pass ${k.pass} (flow verdicts applied by the XDP program; never taken from the port, not in packets)`);
  }
  const missing = t.packets - verdictTotal(t);
  if (missing !== 0) lines.push(`unaccounted: ${missing} packets taken from the port without a verdict (a bug in nmwasm: please report it with this summary)`);
  const f = t.faults;
  if (totalFaults(t) > 0 || f.restarts > 0 || f.violationSlots > 0) {
    lines.push(`faults: traps ${f.traps}, timeouts ${f.timeouts}, violations ${f.violations} (${f.violationSlots} slots), bad returns ${f.badReturns}, init ${f.initFaults}, worker crashes ${f.crashes}; restarts ${f.restarts}`);
  }
  if (t.hostRefused > 0) lines.push(`host stack: ${t.hostRefused} packets (PASS or HOST) refused by the kernel when handed back (re-injection failed)`);
  if (t.outages.count > 0) {
    lines.push(`outages: ${t.outages.count} (killed guest calls until traffic flowed again), longest ${t.outages.maxMs.toFixed(1)} ms, total ${t.outages.totalMs.toFixed(1)} ms`);
  }
  if (ctx.outputs.length > 0) {
    const how = t.outSwapped > 0 ? `, ${t.outSwapped} of them zero-copy` : '';
    const lost = t.outDrops > 0 ? `; ${t.outDrops} not accepted by an output (queue full or frame too long)` : '';
    lines.push(`out: ${t.outPackets} packets (${t.outBytes} bytes) to ${ctx.outputs.join(', ')}${how}${lost}`);
  }
  const chain = result.chain ?? [{ module: ctx.module, statsNames: result.statsNames }];
  if (chain.length > 1) {
    // One line per module of the chain (libxdp dispatcher semantics: docs/ABI.md section 9).
    for (const m of moduleTotals(chain, result.rings)) {
      const v = m.verdicts;
      const f = m.faults;
      const faults = f.traps + f.timeouts + f.violations + f.badReturns + f.initFaults;
      const stats = Object.entries(m.filterStats).map(([name, value]) => `${name} ${value}`);
      lines.push(`module ${m.index} ${m.module}: ${m.packets} packets: pass ${v.pass}, drop ${v.drop}, host ${v.host}, forward ${v.forward}, fault ${v.fault}${faults > 0 || m.restarts > 0 ? `; faults: traps ${f.traps}, timeouts ${f.timeouts}, violations ${f.violations}, bad returns ${f.badReturns}, init ${f.initFaults}; restarts ${m.restarts}` : ''}${stats.length > 0 ? `; filter: ${stats.join(', ')}` : ''}`);
    }
  } else if (result.statsNames.length > 0) {
    const values = result.statsNames.map((name, i) => `${name} ${result.rings.reduce((sum, r) => sum + (r.stats[i] ?? 0), 0)}`);
    lines.push(`filter: ${values.join(', ')}`);
  }
  const sw = result.swaps;
  if (sw !== undefined && sw.done + sw.canaryFailures > 0) {
    const st = swapSummary(sw).stallUs;
    lines.push(`swaps: ${sw.done} done, ${sw.canaryFailures} refused by the canary; ring stall last ${sw.lastStallUs} µs, p50 ${st.p50} µs, p99 ${st.p99} µs, max ${st.max} µs`);
  }
  if ((result.oversize ?? 0) > 0) lines.push(`oversize: the kernel dropped ${result.oversize} frames of ${ctx.port} longer than its frames hold (1792 bytes on AF_XDP): neither the filter nor the stack got them; lower the MTU`);
  if (t.logSuppressed > 0) lines.push(`log: ${t.logSuppressed} lines suppressed by the rate limit (20 lines/s per ring)`);
  return lines.join('\n');
}
