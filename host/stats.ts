// Run statistics for people and machines: a status line once a second on a TTY (with a
// progress bar for finite inputs), and the final summary as text or as JSON (--json):
// counts per verdict class (pass + drop + host + forward + fault = packets), faults by
// kind, the filter's own stats by manifest names and, with --trace, every packet's final
// verdict.
import { Counter } from './native.ts';
import { RingState } from './ringshared.ts';
import type { RingRun, RunResult } from './engine.ts';

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
  }
  return t;
}

/** Packets that got a verdict: the filter's (pass, drop, host, forward) or the fault verdict. */
export function verdictTotal(t: Totals): number {
  return t.pass + t.drop + t.host + t.forward + t.faultVerdicts;
}

function totalFaults(t: Totals): number {
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

/** The once-a-second status line on a TTY; does nothing when `stream` is not a TTY. */
export class StatusLine {
  private timer: NodeJS.Timeout | null = null;
  private lastPackets = 0;
  private lastAt = 0;
  private shown = false;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly rings: () => readonly RingRun[],
  ) {}

  start(): void {
    if (!this.stream.isTTY) return;
    this.lastAt = performance.now();
    this.timer = setInterval(() => this.draw(), 1000);
    this.timer.unref();
  }

  /** Removes the status line (before the summary is printed). */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.shown) this.stream.write('\r\x1b[K');
    this.shown = false;
  }

  private draw(): void {
    const t = sumCounters(this.rings());
    const now = performance.now();
    const pps = ((t.packets - this.lastPackets) * 1000) / Math.max(now - this.lastAt, 1);
    this.lastPackets = t.packets;
    this.lastAt = now;
    let line = `${compact(t.packets)} pkts ${compact(pps)} pps | pass ${compact(t.pass)} drop ${compact(t.drop)} host ${compact(t.host)} fwd ${compact(t.forward)} fault ${compact(t.faultVerdicts)} | faults ${totalFaults(t)}`;
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
    filterStats,
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
  if (result.statsNames.length > 0) {
    const values = result.statsNames.map((name, i) => `${name} ${result.rings.reduce((sum, r) => sum + (r.stats[i] ?? 0), 0)}`);
    lines.push(`filter: ${values.join(', ')}`);
  }
  if ((result.oversize ?? 0) > 0) lines.push(`oversize: the kernel dropped ${result.oversize} frames of ${ctx.port} longer than its frames hold (1792 bytes on AF_XDP): neither the filter nor the stack got them; lower the MTU`);
  if (t.logSuppressed > 0) lines.push(`log: ${t.logSuppressed} lines suppressed by the rate limit (20 lines/s per ring)`);
  return lines.join('\n');
}
