// End-to-end runs of the bundled CLI over gen traffic and real captures with real modules
// (hand-built ones from test/host/wasm-builder.ts, and the SDK's filters/fixtures when built):
// verdict counts, faults under --on-fault open/closed, the watchdog, violations, filter stats,
// one wasm call per batch, --count/--duration/SIGINT stops.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, startCli, pcaps, pcapRecords, fixtures, haveNative, root } from './helpers.ts';
import { abiModule, verdictLoopBody } from '../host/wasm-builder.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-run-'));
const file = (name: string, content: string | Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const pass = file('pass.wasm', abiModule());
const drop = file('drop.wasm', abiModule({ verdict: 0 }));
const trap = file('trap.wasm', abiModule({ process: [0x00] })); // unreachable
const loop = file('loop.wasm', abiModule({ process: [0x03, 0x40, 0x0c, 0x00, 0x0b, 0x41, 0x00] })); // loop br 0 end
const badVerdict = file('bad-verdict.wasm', abiModule({ verdict: 7 }));
const badReturn = file('bad-return.wasm', abiModule({ process: [...verdictLoopBody(1).slice(0, -2), 0x41, 1] }));
const u64 = (n: number): number[] => [n, 0, 0, 0, 0, 0, 0, 0];
const stats = file('stats.wasm', abiModule({
  data: [{ offset: 0x4000000, bytes: [...u64(5), ...u64(7)] }],
  extraFuncs: [{ export: 'nmwasm_stats', params: [], results: ['i32'], body: [0x41, 0x80, 0x80, 0x80, 0x20] }],
  customs: [{ name: 'nmwasm.manifest', payload: '{"name":"stats","stats":["a","b"]}' }],
}));
// Logs "hello" (the data segment at 0x4000000) once per batch, then passes every packet.
const logger = file('logger.wasm', abiModule({ process: [0x41, 0x80, 0x80, 0x80, 0x20, 0x41, 5, 0x10, 1, ...verdictLoopBody(1)] }));
const capture = join(pcaps, 'babel_rfc6126bis.pcap'); // 130 Ethernet packets
const CAPTURE_PACKETS = 130;

interface Summary {
  packets: number;
  batches: number;
  wasmCalls: number;
  stoppedBy: string;
  verdicts: { pass: number; drop: number; host: number; forward: number };
  faultVerdicts: number;
  faults: { traps: number; timeouts: number; violations: number; violationSlots: number; badReturns: number; restarts: number };
  out: { packets: number };
  filterStats: Record<string, number>;
  trace?: string | number[];
}

function json(args: string[]): { summary: Summary; stderr: string } {
  const res = runCli([...args, '--json']);
  assert.is(res.status, 0, `exit status; stderr: ${res.stderr}`);
  return { summary: JSON.parse(res.stdout) as Summary, stderr: res.stderr };
}

const verdicted = (s: Summary): number => s.verdicts.pass + s.verdicts.drop + s.verdicts.host + s.verdicts.forward;

test('load over gen traffic: every packet passes, one wasm call per batch', () => {
  if (!haveNative) return;
  const { summary } = json(['load', pass, '--port', 'gen:count=10000']);
  assert.is(summary.packets, 10000);
  assert.is(summary.verdicts.pass, 10000);
  assert.is(summary.faultVerdicts, 0);
  assert.is(summary.wasmCalls, summary.batches);
  assert.ok(summary.wasmCalls <= 20, `${summary.wasmCalls} wasm calls for 10000 packets over a 1024-slot ring`);
  assert.is(summary.stoppedBy, 'eof');
});

test('--count stops an unbounded generator at exactly N packets', () => {
  if (!haveNative) return;
  const { summary } = json(['load', drop, '--port', 'gen:size=imix', '--count', '5000']);
  assert.is(summary.verdicts.drop, 5000);
  assert.is(summary.stoppedBy, 'count');
});

test('test over a real capture: counts, per-packet trace, and the --out file', () => {
  if (!haveNative) return;
  const out = join(dir, 'passed.pcap');
  const { summary } = json(['test', pass, '--pcap', capture, '--trace', '--out', out]);
  assert.is(summary.packets, CAPTURE_PACKETS);
  assert.is(summary.verdicts.pass, CAPTURE_PACKETS);
  assert.is(summary.trace, '1'.repeat(CAPTURE_PACKETS));
  assert.is(summary.out.packets, CAPTURE_PACKETS);
  assert.is(pcapRecords(out), CAPTURE_PACKETS);
  const dropped = join(dir, 'dropped.pcap');
  const d = json(['test', drop, '--pcap', capture, '--trace', '--out', dropped]).summary;
  assert.is(d.verdicts.drop, CAPTURE_PACKETS);
  assert.is(d.trace, '0'.repeat(CAPTURE_PACKETS));
  assert.is(pcapRecords(dropped), 0);
});

test('the example firewall over a real capture: verdicts and its stats by manifest name', () => {
  const firewall = join(root, 'filters', 'build', 'firewall.wasm');
  if (!haveNative || !existsSync(firewall)) return;
  const { summary } = json(['test', firewall, '--pcap', capture, '--config', join(root, 'filters', 'examples', 'firewall', 'example.rules')]);
  assert.is(verdicted(summary), CAPTURE_PACKETS);
  assert.is(summary.filterStats.packets, CAPTURE_PACKETS);
});

test('filter stats are read through nmwasm_stats by manifest names', () => {
  if (!haveNative) return;
  const { summary } = json(['load', stats, '--port', 'gen:count=100']);
  assert.equal(summary.filterStats, { a: 5, b: 7 });
});

test('a trap under --on-fault closed drops, under open passes; the host survives', () => {
  if (!haveNative) return;
  const closed = json(['load', trap, '--port', 'gen:count=5000']);
  assert.is(closed.summary.verdicts.drop, 5000);
  assert.is(closed.summary.faultVerdicts, 5000);
  assert.ok(closed.summary.faults.traps >= 1);
  assert.match(closed.stderr, /ring 0: trap fault: trap: unreachable/);
  const open = json(['load', trap, '--port', 'gen:count=5000', '--on-fault', 'open']).summary;
  assert.is(open.verdicts.pass, 5000);
  assert.is(open.faultVerdicts, 5000);
});

test('an infinite loop: the watchdog terminates and restarts the worker, the run still ends', () => {
  if (!haveNative) return;
  const { summary, stderr } = json(['load', loop, '--port', 'gen:count=3000', '--batch-timeout', '50']);
  assert.ok(summary.faults.timeouts >= 1);
  assert.is(verdicted(summary), 3000);
  assert.is(summary.verdicts.drop, 3000);
  assert.match(stderr, /timeout fault: a guest call used [\d.]+ ms of CPU in [\d.]+ ms \(budget 50 ms of CPU\): worker killed; traffic again after [\d.]+ ms/);
});

test('an invalid verdict is a violation: counted, fault verdicts, host fine', () => {
  if (!haveNative) return;
  const { summary } = json(['load', badVerdict, '--port', 'gen:count=3000']);
  assert.ok(summary.faults.violations >= 1);
  assert.ok(summary.faults.violationSlots >= 1);
  assert.is(summary.verdicts.drop, 3000);
});

test('nmwasm_process returning non-zero fails the instance', () => {
  if (!haveNative) return;
  const { summary } = json(['load', badReturn, '--port', 'gen:count=3000', '--on-fault', 'open']);
  assert.ok(summary.faults.badReturns >= 1);
  assert.is(summary.verdicts.pass, 3000);
  assert.is(summary.faultVerdicts, 3000);
});

test('hostile SDK fixtures: infinite loop, oob index, trap', () => {
  if (!haveNative || !existsSync(fixtures)) return;
  const fx = (name: string): string => join(fixtures, name);
  if (existsSync(fx('infinite-loop.wasm'))) {
    const s = json(['load', fx('infinite-loop.wasm'), '--port', 'gen:count=3000', '--batch-timeout', '50']).summary;
    assert.ok(s.faults.timeouts >= 1);
    assert.is(verdicted(s), 3000);
  }
  if (existsSync(fx('oob-index.wasm'))) {
    const s = json(['load', fx('oob-index.wasm'), '--port', 'gen:count=3000']).summary;
    assert.ok(s.faults.violations >= 1);
    assert.is(verdicted(s), 3000);
  }
  if (existsSync(fx('trap.wasm'))) {
    const s = json(['load', fx('trap.wasm'), '--port', 'gen:count=3000', '--on-fault', 'open']).summary;
    assert.ok(s.faults.traps >= 1);
    assert.is(s.verdicts.pass, 3000);
  }
});

test('nmwasm_log lines reach stderr, rate-limited to 20 lines/s per ring, the rest counted', () => {
  if (!haveNative) return;
  const res = runCli(['load', logger, '--port', 'gen:count=100000', '--json']);
  assert.is(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout) as Summary & { logSuppressed: number };
  const lines = res.stderr.split('\n').filter((l) => l === 'log: hello').length;
  assert.ok(lines >= 1 && lines <= 20 * Math.ceil(summary.wasmCalls / 20), `${lines} log lines`);
  assert.is(lines + summary.logSuppressed, summary.wasmCalls);
  assert.ok(summary.logSuppressed > 0, 'about 98 batches in well under a second: some lines suppressed');
});

test('--duration stops an unbounded generator', () => {
  if (!haveNative) return;
  const { summary } = json(['load', pass, '--port', 'gen:', '--duration', '0.3']);
  assert.is(summary.stoppedBy, 'duration');
  assert.ok(summary.verdicts.pass > 0);
});

test('SIGINT stops cleanly with a final summary and commits the --out file', async () => {
  if (!haveNative) return;
  const out = join(dir, 'interrupted.pcap');
  const run = startCli(['load', pass, '--port', 'gen:', '--out', `pcap:${out}`, '--json']);
  await new Promise((resolve) => setTimeout(resolve, 700));
  run.child.kill('SIGINT');
  const res = await run.done;
  assert.is(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout) as Summary;
  assert.is(summary.stoppedBy, 'signal');
  assert.ok(existsSync(out));
  assert.is(pcapRecords(out), summary.out.packets);
});

test.run();
