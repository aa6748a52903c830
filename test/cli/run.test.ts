// End-to-end runs of the bundled CLI over gen traffic and real captures with real modules
// (hand-built ones from test/host/wasm-builder.ts, and the SDK's filters/fixtures when built):
// verdict counts, faults under --on-fault open/closed, the watchdog, violations, filter stats,
// one wasm call per batch, --count/--duration/SIGINT/SIGTERM stops (counts add up exactly:
// packets == pass + drop + host + forward + fault), `nmwasm test`'s exit status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, startCli, pcaps, pcapRecords, fixtures, haveNative, root, TOOK_PACKETS, untilStderr } from './helpers.ts';
import { abiModule, sleb, verdictLoopBody } from '../host/wasm-builder.ts';

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
  verdicts: { pass: number; drop: number; host: number; forward: number; fault: number };
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

const verdicted = (s: Summary): number => s.verdicts.pass + s.verdicts.drop + s.verdicts.host + s.verdicts.forward + s.verdicts.fault;

/** A classic pcap of `n` 60-byte Ethernet frames (IPv4 ethertype, zero payload). */
function framesPcap(name: string, n: number): string {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const frame = Buffer.alloc(60);
  frame.fill(0xff, 0, 6);
  frame.writeUInt16BE(0x0800, 12);
  const parts = [header];
  for (let i = 0; i < n; i++) {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(i, 0);
    rec.writeUInt32LE(60, 8);
    rec.writeUInt32LE(60, 12);
    parts.push(rec, frame);
  }
  return file(name, Buffer.concat(parts));
}

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
  const { summary } = json(['test', firewall, '--pcap', capture, '--config', join(root, 'filters', 'packages', 'firewall', 'example.rules')]);
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
  assert.is(closed.summary.verdicts.fault, 5000, 'fault verdicts are counted apart from drop');
  assert.is(closed.summary.verdicts.drop, 0);
  assert.is(closed.summary.faultVerdicts, 5000);
  assert.ok(closed.summary.faults.traps >= 1);
  assert.match(closed.stderr, /ring 0: trap fault: trap: unreachable/);
  const open = json(['load', trap, '--port', 'gen:count=5000', '--on-fault', 'open']).summary;
  assert.is(open.verdicts.fault, 5000);
  assert.is(open.verdicts.pass, 0);
  assert.is(open.faultVerdicts, 5000);
});

test('an infinite loop: the watchdog terminates and restarts the worker, the run still ends', () => {
  if (!haveNative) return;
  const { summary, stderr } = json(['load', loop, '--port', 'gen:count=3000', '--batch-timeout', '50']);
  assert.ok(summary.faults.timeouts >= 1);
  assert.is(verdicted(summary), 3000);
  assert.is(summary.verdicts.fault, 3000);
  assert.match(stderr, /timeout fault: a guest call used [\d.]+ ms of CPU in [\d.]+ ms \(budget 50 ms of CPU\): worker killed; traffic again after [\d.]+ ms/);
});

test('an invalid verdict is a violation: counted, fault verdicts, host fine', () => {
  if (!haveNative) return;
  const { summary } = json(['load', badVerdict, '--port', 'gen:count=3000']);
  assert.ok(summary.faults.violations >= 1);
  assert.ok(summary.faults.violationSlots >= 1);
  assert.is(summary.verdicts.fault, 3000);
});

test('nmwasm_process returning non-zero fails the instance', () => {
  if (!haveNative) return;
  const { summary } = json(['load', badReturn, '--port', 'gen:count=3000', '--on-fault', 'open']);
  assert.ok(summary.faults.badReturns >= 1);
  assert.is(summary.verdicts.fault, 3000);
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
    assert.is(s.verdicts.pass, 2046, 'the fixture passes two batches of 1023, then traps');
    assert.is(s.verdicts.fault, 3000 - 2046);
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

test('--count on a capture stops after exactly N packets: N taken, N verdicts', () => {
  if (!haveNative) return;
  const input = framesPcap('3000.pcap', 3000);
  const { summary } = json(['load', pass, '--port', `pcap:${input}`, '--count', '1500']);
  assert.is(summary.packets, 1500);
  assert.is(summary.verdicts.pass, 1500);
  assert.is(verdicted(summary), 1500);
  assert.is(summary.stoppedBy, 'count');
  const text = runCli(['load', drop, '--port', `pcap:${input}`, '--count', '1500']);
  assert.is(text.status, 0, text.stderr);
  assert.match(text.stdout, /: 1500 packets \(90000 bytes\)/);
  assert.match(text.stdout, /verdicts: pass 0, drop 1500, host 0, forward 0, fault 0\n/);
  // a --count that is not a multiple of anything, and one above the capture's size
  assert.is(json(['load', pass, '--port', `pcap:${input}`, '--count', '1']).summary.packets, 1);
  const all = json(['load', pass, '--port', `pcap:${input}`, '--count', '5000']).summary;
  assert.equal([all.packets, verdicted(all), all.stoppedBy], [3000, 3000, 'eof']);
});

test('--duration stops an unbounded generator; the batch in hand gets its verdicts', () => {
  if (!haveNative) return;
  // The duration counts from the moment traffic starts (both workers of the ring ready), so
  // a slow start-up does not eat it; 2 s of traffic is many batches on any machine, and the
  // counts asserted are exact whatever their number.
  const { summary } = json(['load', pass, '--port', 'gen:', '--duration', '2']);
  assert.is(summary.stoppedBy, 'duration');
  assert.ok(summary.verdicts.pass > 0);
  assert.is(verdicted(summary), summary.packets);
  assert.is(summary.verdicts.pass, summary.packets);
});

test('a --duration that ends while nmwasm_init still runs ends the run normally (was: exit 2, "ran longer than its start budget")', () => {
  if (!haveNative) return;
  // nmwasm_init counts its config length (0) up to 10^9: about a second of CPU, far under the
  // start budget of 60 s of CPU (--batch-timeout 60000), far over the 1 ms --duration, which
  // ends at the watchdog's first tick. The stop used to kill the starting instance 200 ms
  // later and report that as an overrun of the start budget.
  const slowInit = file('slow-but-finite-init.wasm', abiModule({ init: [0x03, 0x40, 0x20, 1, 0x41, 1, 0x6a, 0x22, 1, 0x41, ...sleb(1_000_000_000), 0x49, 0x0d, 0, 0x0b, 0x41, 0] }));
  const res = runCli(['load', slowInit, '--port', 'gen:', '--duration', '0.001', '--batch-timeout', '60000', '--json'], root, 600_000);
  assert.is(res.status, 0, res.stderr);
  assert.not.match(res.stderr, /start budget|fault/, res.stderr);
  const summary = JSON.parse(res.stdout) as Summary;
  assert.is(summary.stoppedBy, 'duration');
  assert.is(verdicted(summary), summary.packets, 'what it took (if anything) has its verdicts');
  assert.is(summary.faultVerdicts, 0);
  assert.is(summary.faults.timeouts, 0, 'the starting instance was not killed');
});

test('SIGTERM: every packet taken got a verdict, also one stuck in a guest call the watchdog kills', async () => {
  if (!haveNative) return;
  // The signal goes once a status line counts a packet taken: the handlers are installed and
  // traffic flows (with loop.wasm: the first call is stuck, its 60 s budget far away), so the
  // stop lands on a running ring whatever the machine's load.
  for (const [module, extra] of [[drop, []], [loop, ['--batch-timeout', '60000']]] as const) {
    const run = startCli(['load', module, '--port', 'gen:', ...extra, '--status-interval', '0.05', '--json']);
    await untilStderr(run, TOOK_PACKETS);
    run.child.kill('SIGTERM');
    const res = await run.done;
    assert.is(res.status, 0, res.stderr);
    const summary = JSON.parse(res.stdout) as Summary;
    assert.is(summary.stoppedBy, 'signal');
    assert.ok(summary.packets > 0);
    assert.is(verdicted(summary), summary.packets, `${module}: packets ${summary.packets}, verdicts ${JSON.stringify(summary.verdicts)}`);
    if (module === loop) {
      assert.match(res.stderr, /timeout fault: a guest call was still running 200 ms after the stop request/, 'the stop found the call stuck; the watchdog killed it');
      assert.is(summary.faults.timeouts, 1);
      assert.is(summary.verdicts.fault, summary.packets);
    } else assert.is(summary.verdicts.drop, summary.packets);
  }
});

test('nmwasm test exits 1 when the filter faulted (every packet, or some), with the summary and one line why', () => {
  if (!haveNative) return;
  const always = [trap, ...(existsSync(join(fixtures, 'abort.wasm')) ? [join(fixtures, 'abort.wasm')] : [])];
  for (const module of always) {
    const res = runCli(['test', module, '--pcap', capture, '--json']);
    assert.is(res.status, 1, `${module}: ${res.stderr}`);
    const summary = JSON.parse(res.stdout) as Summary;
    assert.equal([summary.packets, summary.verdicts.fault], [CAPTURE_PACKETS, CAPTURE_PACKETS]);
    assert.match(res.stderr, new RegExp(`nmwasm test: the filter faulted 1 time\\(s\\) on ".*babel_rfc6126bis\\.pcap": ${CAPTURE_PACKETS} of ${CAPTURE_PACKETS} packets got the fault verdict`));
  }
  // the SDK fixture trap.wasm passes two batches, then traps: some packets got the fault verdict
  if (existsSync(join(fixtures, 'trap.wasm'))) {
    const some = runCli(['test', join(fixtures, 'trap.wasm'), '--pcap', framesPcap('3000-test.pcap', 3000), '--on-fault', 'open']);
    assert.is(some.status, 1, some.stderr);
    assert.match(some.stdout, /verdicts: pass 2046, drop 0, host 0, forward 0, fault 954 \(passed: --on-fault open\)/);
    assert.match(some.stderr, /954 of 3000 packets got the fault verdict/);
  }
  const fine = runCli(['test', pass, '--pcap', capture]);
  assert.is(fine.status, 0, fine.stderr);
});

test('SIGINT stops cleanly with a final summary and commits the --out file', async () => {
  if (!haveNative) return;
  const out = join(dir, 'interrupted.pcap');
  const run = startCli(['load', pass, '--port', 'gen:', '--out', `pcap:${out}`, '--status-interval', '0.05', '--json']);
  await untilStderr(run, TOOK_PACKETS); // running, with packets on their way to the file
  run.child.kill('SIGINT');
  const res = await run.done;
  assert.is(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout) as Summary;
  assert.is(summary.stoppedBy, 'signal');
  assert.ok(summary.packets > 0);
  assert.is(summary.verdicts.pass, summary.packets);
  assert.is(summary.out.packets, summary.packets, 'every PASS went to the file');
  assert.ok(existsSync(out));
  assert.is(pcapRecords(out), summary.out.packets);
});

test.run();
