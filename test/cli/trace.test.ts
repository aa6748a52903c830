// `nmwasm test --trace` in text and the capture spelling shared with `load`: one line per
// frame (tcpdump -# numbering, verdict name, length), each followed by the lines the filter
// logged for that frame; `--port pcap:FILE` and `--out pcap:FILE` work in `test` as in
// `load`; a module the watchdog had to stop is not re-run for the trace.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, root, pcaps, fixtures, haveNative, pcapRecords } from './helpers.ts';
import { readCapture } from '../filters/pcap.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-trace-'));
const capture = join(pcaps, 'babel_rfc6126bis.pcap');
const lengths = readCapture(capture).packets.map((p) => p.length);
const hexdump = join(root, 'filters', 'build', 'hexdump.wasm');
const ratelimit = join(root, 'filters', 'build', 'ratelimit.wasm');

test('--trace: one line per frame numbered from 1, verdict, length; log lines carry the frame number', () => {
  if (!haveNative) return;
  const conf = join(dir, 'hexdump.conf');
  writeFileSync(conf, 'rate 1000 bytes 4\n');
  const res = runCli(['test', hexdump, '--port', `pcap:${capture}`, '--config', conf, '--trace']);
  assert.is(res.status, 0, res.stderr);
  const frames = res.stdout.split('\n').filter((l) => /^\s*\d+  [A-Z]/.test(l));
  assert.equal(frames, lengths.map((len, i) => `${String(i + 1).padStart(5)}  PASS        len ${len}`));
  const logs = res.stdout.split('\n').filter((l) => /^\s*\d+  log: /.test(l));
  assert.is(logs.length, lengths.length);
  logs.forEach((line, i) => assert.match(line, new RegExp(`^\\s*${i + 1}  log: packet ${i + 1} len ${lengths[i]}: [0-9a-f ]+ \\.\\.\\.$`)));
  // The frame's log line follows the frame's own line.
  const all = res.stdout.split('\n');
  assert.match(all[all.indexOf(frames[6]!) + 1]!, /^\s*7  log: packet 7 /);
  assert.not.match(res.stderr, /^log: /m, 'log lines are printed once, in the trace');
});

test('pcap: is accepted by test as by load (--port, --pcap and --out), and a live port is refused', () => {
  if (!haveNative) return;
  const out = join(dir, 'out.pcap');
  const a = runCli(['test', ratelimit, '--pcap', `pcap:${capture}`, '--config', join(root, 'filters/packages/ratelimit/example.rules'), '--out', `pcap:${out}`]);
  assert.is(a.status, 0, a.stderr);
  assert.is(pcapRecords(out), lengths.length);
  const b = runCli(['test', ratelimit, '--port', 'gen:count=5', '--config', join(root, 'filters/packages/ratelimit/example.rules')]);
  assert.is(b.status, 2);
  assert.match(b.stderr, /^--port "gen:count=5": nmwasm test reads a capture: expected pcap:FILE, got a gen port \(run it with nmwasm load\)\n$/);
  const c = runCli(['test', ratelimit, '--port', `pcap:${capture}`, '--pcap', capture]);
  assert.is(c.status, 2);
  assert.match(c.stderr, /expected one of --port pcap:FILE or --pcap FILE, got both/);
});

test('--trace after faults: faulted frames say so; a module stopped by the watchdog is not re-run', () => {
  if (!haveNative) return;
  // The fixture traps in its third batch: the trace pass has one frame per batch.
  const trap = runCli(['test', join(fixtures, 'trap.wasm'), '--port', `pcap:${capture}`, '--trace']);
  assert.match(trap.stdout, /^\s+3  DROP \(fault\) len \d+$/m);
  assert.match(trap.stdout, /^trace: fault at frames 3\.\.3: trap: /m);
  const loop = runCli(['test', join(fixtures, 'infinite-loop.wasm'), '--port', `pcap:${capture}`, '--trace', '--batch-timeout', '50']);
  assert.is(loop.status, 1);
  assert.match(loop.stderr, /^trace: not printed: a batch overran --batch-timeout/m);
});

test('--trace: a frame longer than a buffer is cut as the port cuts it; a runt is traced as it came', () => {
  if (!haveNative) return;
  const big = join(dir, 'big.pcap');
  const frame = (n: number): Buffer => Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]), Buffer.alloc(n - 14)]);
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0); header.writeUInt16LE(2, 4); header.writeUInt16LE(4, 6); header.writeUInt32LE(65535, 16); header.writeUInt32LE(1, 20);
  const rec = (i: number, n: number): Buffer => { const r = Buffer.alloc(16); r.writeUInt32LE(1 + i, 0); r.writeUInt32LE(n, 8); r.writeUInt32LE(n, 12); return Buffer.concat([r, frame(n)]); };
  writeFileSync(big, Buffer.concat([header, rec(0, 60), rec(1, 3000), rec(2, 60)]));
  const conf = join(dir, 'hexdump-big.conf');
  writeFileSync(conf, 'rate 100 bytes 2\n');
  const res = runCli(['test', hexdump, '--port', `pcap:${big}`, '--config', conf, '--trace']);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stdout, /^    2  PASS        len 2048\n    2  log: packet 2 len 2048: 02 00 \.\.\.$/m);
  // A runt frame (10 bytes) is traced as the port delivers it.
  writeFileSync(big, Buffer.concat([header, rec(0, 60), (() => { const r = Buffer.alloc(16); r.writeUInt32LE(5, 0); r.writeUInt32LE(10, 8); r.writeUInt32LE(10, 12); return Buffer.concat([r, Buffer.alloc(10, 2)]); })()]));
  const runt = runCli(['test', hexdump, '--port', `pcap:${big}`, '--config', conf, '--trace']);
  assert.is(runt.status, 0, runt.stderr);
  assert.match(runt.stdout, /^    2  PASS        len 10\n    2  log: packet 2 len 10: 02 02 \.\.\.$/m);
});

test('--trace escapes what a hostile module logs: one printable line per log line', () => {
  if (!haveNative) return;
  const conf = join(dir, 'x.conf');
  writeFileSync(conf, 'x');
  const res = runCli(['test', join(fixtures, 'hostile-text.wasm'), '--port', `pcap:${capture}`, '--config', conf, '--trace']);
  assert.is(res.status, 1);
  for (const line of res.stdout.split('\n')) assert.not.match(line, /[\x00-\x08\x0b-\x1f\x7f\u0080-\u009f\u202e]/, JSON.stringify(line));
  assert.match(res.stdout, /^\s+1  log: process /m);
  assert.not.match(res.stdout, /^nmwasm: forged host line/m);
});

test.run();
