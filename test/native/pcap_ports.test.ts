// pcap: input and pcap-out: output ports over real captures, checked with tshark.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter } from '../../host/ports/native.ts';
import { GuestRing, native, newCounters } from './helpers.ts';

const PCAPS = new URL('../pcaps/tcpdump-tests', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-pcap-'));

/** One line per frame: cap_len, len, epoch time (ns), md5 of the bytes. */
function frames(file: string): string[] {
  const out = execFileSync('tshark', ['-r', file, '-o', 'frame.generate_md5_hash:TRUE', '-T', 'fields', '-e', 'frame.cap_len', '-e', 'frame.len', '-e', 'frame.time_epoch', '-e', 'frame.md5_hash'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  return out.trim().split('\n').filter(Boolean);
}

/** Runs pcap `input` through a JS guest into outputs; `guest` picks each packet's verdict (may rewrite len). */
function run(input: string, outPaths: string[], guest: (g: GuestRing, slot: number, index: number) => number, numSlots = 64) {
  const inPort = native.openPort({ kind: 'pcap', name: 'in0', path: input }, { numSlots, bufSize: 2048 });
  const outs = outPaths.map((p, i) => native.openPort({ kind: 'pcap-out', name: `out${i}`, path: p }, { numSlots, bufSize: 2048 }));
  const counters = newCounters();
  const handle = native.attachRing(inPort.id, 0, { outputs: outs.map((o) => o.id), counters, faultVerdict: 0, trace: true });
  const g = new GuestRing(handle);
  let index = 0;
  let n = handle.sync(0, false);
  while (n > 0) {
    for (const i of g.batchSlots(n)) g.setVerdict(i, guest(g, i, index++));
    n = handle.sync(n, false);
  }
  assert.is(n, -1);
  const trace = handle.takeTrace();
  native.closePort(inPort.id);
  for (const o of outs) native.closePort(o.id);
  return { inPort, counters, trace, index };
}

test('pcap -> PASS -> pcap-out keeps every byte, length and nanosecond timestamp (tshark)', () => {
  const input = join(PCAPS, 'afs.pcap');
  const out = join(dir, 'afs-out.pcap');
  const { inPort, counters, index } = run(input, [out], () => 1);
  assert.is(inPort.expected, 601);
  assert.is(index, 601);
  assert.is(counters[Counter.outPackets], 601);
  assert.is(counters[Counter.eof], 1);
  assert.equal(frames(out), frames(input));
});

test('drops leave the file, FORWARD 1 goes to the second output, a shortened len is the new origlen', () => {
  const input = join(PCAPS, 'afs.pcap');
  const a = join(dir, 'a.pcap');
  const b = join(dir, 'b.pcap');
  const { counters, trace } = run(input, [a, b], (g, slot, k) => {
    if (k % 3 === 0) return 0;
    if (k % 3 === 1) return 1;
    new DataView(g.memory.buffer).setUint16(g.slotAddr(slot) + 4, 14, true); // keep only the Ethernet header
    return 0x81;
  });
  const fa = frames(a);
  const fb = frames(b);
  assert.is(fa.length, 200);
  assert.is(fb.length, 200);
  assert.is(counters[Counter.drop], 201);
  assert.is(counters[Counter.forward], 200);
  for (const line of fb) assert.match(line, /^14\t14\t/);
  assert.is(trace.length, 601);
  assert.equal(Array.from(trace.subarray(0, 3)), [0, 1, 0x81]);
});

test('a packet longer than the 2048-byte buffer is truncated to it and keeps its original length', () => {
  const input = join(PCAPS, 'bgp-bgpsec.pcap');
  const out = join(dir, 'bgp.pcap');
  let longest = 0;
  run(input, [out], (g, slot) => {
    longest = Math.max(longest, g.len(slot));
    return 1;
  });
  assert.is(longest, 2048);
  const lines = frames(out);
  assert.ok(lines.some((l) => l.startsWith('2048\t2596\t')), 'truncated frame with origlen 2596');
  assert.is(lines.length, frames(input).length);
});

test('abortPort removes the temporary file; the output appears only at closePort', () => {
  const path = join(dir, 'aborted.pcap');
  const out = native.openPort({ kind: 'pcap-out', name: 'out', path }, { numSlots: 64, bufSize: 2048 });
  assert.is(existsSync(path), false);
  native.abortPort(out.id);
  assert.is(existsSync(path), false);
  assert.equal(readdirSync(dir).filter((f) => f.startsWith('aborted')), []);
});

test('opening a missing capture fails with a code and the port name', () => {
  try {
    native.openPort({ kind: 'pcap', name: 'missing', path: join(dir, 'nope.pcap') }, { numSlots: 64, bufSize: 2048 });
    assert.unreachable('opened a missing file');
  } catch (e) {
    const err = e as Error & { code?: string; port?: string };
    assert.is(err.port, 'missing');
    assert.type(err.code, 'string');
    assert.match(err.message, /missing/);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));

test.run();
