// gen: through the CLI: the seq trailer in a --out pcap (every number once, in order, and
// tshark finds every checksum valid), pps pacing (a lower bound on the run's length: pacing
// that does not wait is wrong, whatever the machine), and rings=2 (two workers, a flow on
// one ring only, the count exact over both, each ring's frames in order).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, fixtures, runCli } from './helpers.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-gen-'));
const pass = join(fixtures, 'pass.wasm');

/** The frames of a classic little-endian pcap file. */
function frames(path: string): Buffer[] {
  const b = readFileSync(path);
  assert.ok(b.readUInt32LE(0) === 0xa1b2c3d4 || b.readUInt32LE(0) === 0xa1b23c4d, `${path}: a little-endian pcap`);
  const out: Buffer[] = [];
  for (let at = 24; at + 16 <= b.length; ) {
    const len = b.readUInt32LE(at + 8);
    out.push(b.subarray(at + 16, at + 16 + len));
    at += 16 + len;
  }
  return out;
}
const seqOf = (f: Buffer) => f.readBigUInt64BE(f.length - 8);
/** Addresses and ports / ICMP id of a frame (what hashes it to a ring). */
function flowKey(f: Buffer): string {
  const et = f.readUInt16BE(12);
  if (et === 0x0806) return `arp ${f.subarray(28, 42).toString('hex')}`;
  if (et === 0x0800) return `4/${f[23]} ${f.subarray(26, 34).toString('hex')} ${f[23] === 1 ? f.subarray(38, 40).toString('hex') : f.subarray(34, 38).toString('hex')}`;
  return `6/${f[20]} ${f.subarray(22, 54).toString('hex')} ${f[20] === 58 ? f.subarray(58, 60).toString('hex') : f.subarray(54, 58).toString('hex')}`;
}

function run(args: string[]): { packets: number; rings: number; elapsedMs: number; verdicts: { pass: number } } {
  const res = runCli(['load', pass, ...args, '--json']);
  assert.is(res.status, 0, `nmwasm ${args.join(' ')}: ${res.stderr}`);
  return JSON.parse(res.stdout);
}

test('gen:count=N,seq -> --out pcap: holds sequence numbers 0..N-1, each once, in order; tshark finds no bad checksum', () => {
  const out = join(dir, 'seq.pcap');
  const summary = run(['--port', 'gen:count=20000,seq,size=64-1518', '--out', `pcap:${out}`]);
  assert.is(summary.packets, 20000);
  const got = frames(out);
  assert.is(got.length, 20000);
  got.forEach((f, i) => {
    if (seqOf(f) !== BigInt(i)) assert.unreachable(`frame ${i} carries sequence number ${seqOf(f)}`);
  });
  const ts = spawnSync('tshark', ['-r', out, '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
    '-Y', '_ws.expert.severity >= error || _ws.malformed', '-T', 'fields', '-e', 'frame.number', '-e', '_ws.expert.message'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.is(ts.status, 0, `tshark: ${ts.stderr}`);
  assert.is(ts.stdout.trim(), '', 'frames tshark flags as errors (bad checksum, malformed)');
  const count = spawnSync('tshark', ['-r', out, '-T', 'fields', '-e', 'frame.number'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.is(count.stdout.trim().split('\n').length, 20000, 'frames tshark reads');
});

test('gen:count=2000,pps=1000 is paced: the run lasts about 2 s (at least 1.5 s)', () => {
  const start = performance.now();
  const summary = run(['--port', 'gen:count=2000,pps=1000']);
  const wallMs = performance.now() - start;
  assert.is(summary.verdicts.pass, 2000);
  assert.ok(summary.elapsedMs >= 1500, `run took ${summary.elapsedMs} ms by its own clock`);
  assert.ok(wallMs >= 1500, `run took ${wallMs} ms`);
});

test('gen:rings=2: two rings, both non-empty, a flow on one ring only, the count exact, each ring in order', () => {
  const out = join(dir, 'rings.pcap');
  const summary = run(['--port', 'gen:count=30001,rings=2,seq,flows=200', '--out', `pcap:${out}`]);
  assert.is(summary.rings, 2);
  assert.is(summary.packets, 30001);
  const got = frames(out);
  assert.is(got.length, 30001);
  const next = [0n, 0n];
  const ringOf = new Map<string, number>();
  for (const f of got) {
    const seq = seqOf(f);
    const ring = Number(seq >> 56n);
    assert.ok(ring === 0 || ring === 1, `ring ${ring}`);
    if ((seq & 0xffffffffffffffn) !== next[ring]) assert.unreachable(`ring ${ring}: frame ${seq & 0xffffffffffffffn}, expected ${next[ring]}`);
    next[ring]!++;
    const key = flowKey(f);
    if ((ringOf.get(key) ?? ring) !== ring) assert.unreachable(`flow ${key} on both rings`);
    ringOf.set(key, ring);
  }
  assert.ok(next[0]! > 0n && next[1]! > 0n, `per ring: ${next}`);
  assert.is(next[0]! + next[1]!, 30001n);
  assert.is(ringOf.size, 200);
});

test('gen:rings=2 unbounded with --count: the rings take exactly --count between them', () => {
  const summary = run(['--port', 'gen:rings=2', '--count', '123457']);
  assert.is(summary.rings, 2);
  assert.is(summary.packets, 123457);
  assert.is(summary.verdicts.pass, 123457);
});

test.run();
