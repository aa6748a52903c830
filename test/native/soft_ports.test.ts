// nmwasm's software pipes and VALE switch (native/ports/port_soft.cc, soft_queue.cc,
// vale_switch.cc), driven from JS as the guest: real packets from gen and pcap ports,
// real rings mapped into WebAssembly memories. Port names go through the real edge
// (host/ports/portspec.ts), which picks the software backend because /dev/netmap is absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Counter } from '../../host/ports/native.ts';
import { parsePortSpec } from '../../host/ports/portspec.ts';
import { bytes, ETH_IPV4 } from '../filters/frames.ts';
import { writeCapture } from '../filters/pcap.ts';
import { drain, genSpec, native, openAndAttach, WINDOW_BASE, type GuestRing } from './helpers.ts';

const RING_AREA = 4 << 20; // native/soft/soft_domain.h kSoftRingArea
const WINDOW_END = 0x4000000; // NMWASM_DATA_BASE

const dir = mkdtempSync(join(tmpdir(), 'nmwasm-soft-'));
const soft = (text: string, role: 'in' | 'out') => parsePortSpec(text, role);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** One batch by hand: returns the packets and buf_idx values, gives each `verdict`. */
function batch(g: GuestRing, n: number, verdict: number): { pkts: Uint8Array[]; bufs: number[] } {
  const pkts: Uint8Array[] = [];
  const bufs: number[] = [];
  for (const i of g.batchSlots(n)) {
    pkts.push(g.packet(i));
    bufs.push(g.bufIdx(i));
    g.setVerdict(i, verdict);
  }
  return { pkts, bufs };
}

function pcapPort(name: string, frames: Uint8Array[], outputs: number[]) {
  const path = join(dir, `${name}.pcap`);
  writeCapture(path, frames);
  return openAndAttach({ kind: 'pcap', name, path }, { outputs });
}

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('/dev/netmap is absent here, so pipe and VALE names get the software backend', () => {
  assert.not.ok(existsSync('/dev/netmap'));
  assert.equal(soft('p{1', 'out'), { kind: 'soft', name: 'p{1', ring: -1, rings: 0, slots: 0, exclusive: false, memId: 0, rx: false, tx: true, endpoint: 'p{1', peer: 'p}1', switch: '' });
  assert.equal(soft('vale0:a-1/x@conf:rings=2,slots=256', 'in'), {
    kind: 'soft', name: 'vale0:a-1/x@conf:rings=2,slots=256', ring: 1, rings: 2, slots: 256, exclusive: true, memId: 0, rx: true, tx: false, endpoint: 'vale0:a', peer: '', switch: 'vale0',
  });
  assert.equal((soft('eth0}web', 'in') as { endpoint: string; peer: string }).peer, 'eth0{web');
});

test('pipes in one memory region (@1): copied in from gen, moved on by buffer swap, bytes and order kept, ends when its writers leave', () => {
  const intoA = native.openPort(soft('t1{a@1', 'out'), { numSlots: 256, bufSize: 2048 });
  const intoB = native.openPort(soft('t1{b@1', 'out'), { numSlots: 256, bufSize: 2048 });
  const readA = openAndAttach(soft('t1}a@1', 'in'), { outputs: [intoB.id] });
  const readB = openAndAttach(soft('t1}b@1', 'in'));
  const gen = openAndAttach(genSpec({ count: 600 }), { outputs: [intoA.id] });
  const sent = drain(gen.guest, () => 1).map(hex);
  assert.is(sent.length, 600);
  assert.is(gen.counters[Counter.outPackets], 600);
  assert.is(gen.counters[Counter.outSwapped], 0, 'gen has its own memory: one copy into the pipe');

  // Stage A forwards everything: the buffers themselves move to t1}b.
  const movedBufs: number[] = [];
  const seenA: string[] = [];
  let n = readA.handle.sync(0, false);
  while (n > 0) {
    const { pkts, bufs } = batch(readA.guest, n, 1);
    seenA.push(...pkts.map(hex));
    movedBufs.push(...bufs);
    n = readA.handle.sync(n, false);
  }
  assert.is(n, 0, 'writer still attached: no end of stream yet');
  assert.equal(seenA, sent);
  assert.is(readA.counters[Counter.outPackets], 600);
  assert.is(readA.counters[Counter.outSwapped], 600, 'pipe to pipe: every packet moved without a copy');

  const seenB: string[] = [];
  const bufsB: number[] = [];
  n = readB.handle.sync(0, false);
  while (n > 0) {
    const { pkts, bufs } = batch(readB.guest, n, 0);
    seenB.push(...pkts.map(hex));
    bufsB.push(...bufs);
    n = readB.handle.sync(n, false);
  }
  assert.equal(seenB, sent);
  assert.equal(bufsB, movedBufs, 'the reader of t1}b sees the very buffers t1}a handed on (zero copy)');

  // Writers leave: each reader drains and then sees the end of its stream.
  native.closePort(intoA.id);
  assert.is(readA.handle.sync(0, false), -1);
  native.closePort(intoB.id);
  assert.is(readB.handle.sync(0, false), -1);
  for (const p of [readA, readB, gen]) {
    p.handle.detach();
    native.closePort(p.port.id);
  }
});

test('pipes by default (private buffer pools): every hop copies, bytes and order kept', () => {
  const intoA = native.openPort(soft('t2{a', 'out'), { numSlots: 256, bufSize: 2048 });
  const intoB = native.openPort(soft('t2{b', 'out'), { numSlots: 256, bufSize: 2048 });
  const readA = openAndAttach(soft('t2}a', 'in'), { outputs: [intoB.id] });
  const readB = openAndAttach(soft('t2}b', 'in'));
  const gen = openAndAttach(genSpec({ count: 600 }), { outputs: [intoA.id] });
  const sent = drain(gen.guest, () => 1).map(hex);
  assert.equal(drain(readA.guest, () => 1).map(hex), sent);
  assert.is(readA.counters[Counter.outPackets], 600);
  assert.is(readA.counters[Counter.outSwapped], 0, 'another endpoint, another pool: one copy at the boundary');
  assert.equal(drain(readB.guest, () => 0).map(hex), sent);
  for (const p of [readA, readB, gen]) {
    p.handle.detach();
    native.closePort(p.port.id);
  }
  native.closePort(intoA.id);
  native.closePort(intoB.id);
});

/** Two clauses' input ports fed the same 300 packets; the stomper's guest writes 0x01 over
 * its whole ring area (every ring header, slot and verdict byte it could reach) and `bufFill`
 * over its whole buffer area, after the good guest has set its verdicts. */
function stompTest(suffix: string, bufFill: number | null): void {
  const intoGood = native.openPort(soft(`t12{good${suffix}`, 'out'), { numSlots: 256, bufSize: 2048 });
  const intoBad = native.openPort(soft(`t12{bad${suffix}`, 'out'), { numSlots: 256, bufSize: 2048 });
  const good = openAndAttach(soft(`t12}good${suffix}`, 'in'));
  const bad = openAndAttach(soft(`t12}bad${suffix}`, 'in'));
  const feed = (into: number) => {
    const gen = openAndAttach(genSpec({ count: 300 }), { outputs: [into] });
    const sent = drain(gen.guest, () => 1).map(hex);
    gen.handle.detach();
    native.closePort(gen.port.id);
    return sent;
  };
  const sent = feed(intoGood.id);
  feed(intoBad.id);
  const n = good.handle.sync(0, false);
  const m = bad.handle.sync(0, false);
  assert.is(n, 300);
  assert.is(m, 300);
  batch(good.guest, n, 0); // the good filter drops everything
  const view = bad.guest.view();
  view.fill(0x01, WINDOW_BASE, WINDOW_BASE + RING_AREA); // PASS everywhere, buf_idx 0x01010101, len 257
  if (bufFill !== null) view.fill(bufFill, WINDOW_BASE + RING_AREA, WINDOW_END);
  const pkts = good.guest.batchSlots(n).map((i) => good.guest.packet(i)); // after the stomp
  good.handle.sync(n, false);
  assert.is(good.counters[Counter.violations], 0, 'nothing the stomper wrote reached the good ring');
  assert.is(good.counters[Counter.faultVerdicts], 0);
  assert.is(good.counters[Counter.drop], n);
  assert.is(good.counters[Counter.pass], 0);
  // private pools: the stomper cannot reach the good port's packets either
  if (bufFill !== null) assert.equal(pkts.map(hex), sent);
  bad.handle.sync(m, false);
  assert.is(bad.counters[Counter.violations], m, 'the stomper broke its own ring only');
  for (const p of [good, bad]) {
    p.handle.detach();
    native.closePort(p.port.id);
  }
  native.closePort(intoGood.id);
  native.closePort(intoBad.id);
}

test('isolation: a guest that writes over its whole window cannot change another port\'s verdicts, ring or packets (private pools)', () => {
  stompTest('', 0xee);
});

test('isolation: in a shared memory region (@5) the rings and verdicts of another port stay out of reach too', () => {
  stompTest('@5', null); // the buffers are shared by choice (documented): only the rings are checked
});

test('a full pipe without a reader refuses the rest at once and counts it', () => {
  const into = native.openPort(soft('t3{x', 'out'), { numSlots: 256, bufSize: 2048 });
  const gen = openAndAttach(genSpec({ count: 1500 }), { outputs: [into.id] });
  drain(gen.guest, () => 1, false);
  assert.is(gen.counters[Counter.outPackets], 1024, 'the queue holds 1024 (default slots)');
  assert.is(gen.counters[Counter.outDrops], 476);
  gen.handle.detach();
  native.closePort(gen.port.id);
  native.closePort(into.id);
});

const MAC = { a: [2, 0, 0, 0, 0, 0xa], b: [2, 0, 0, 0, 0, 0xb], c: [2, 0, 0, 0, 0, 0xc], bcast: [255, 255, 255, 255, 255, 255] };
const frame = (dst: number[], src: number[], tag: number): Uint8Array => bytes(dst, src, [ETH_IPV4 >> 8, ETH_IPV4 & 0xff], Array(46).fill(tag));

test('VALE: floods unknown and broadcast destinations, learns sources, never sends back to the sender', () => {
  const ports = ['a', 'b', 'c'].map((p) => ({
    name: p,
    out: native.openPort(soft(`vale7:${p}`, 'out'), { numSlots: 256, bufSize: 2048 }),
    in: openAndAttach(soft(`vale7:${p}`, 'in')),
  }));
  const [a, b, c] = ports as [(typeof ports)[0], (typeof ports)[0], (typeof ports)[0]];
  const send = (from: typeof a, step: string, frames: Uint8Array[]) => {
    const src = pcapPort(`vale-${step}`, frames, [from.out.id]);
    drain(src.guest, () => 1, false);
    const counts = [src.counters[Counter.outPackets], src.counters[Counter.outDrops]];
    src.handle.detach();
    native.closePort(src.port.id);
    return counts;
  };
  const f1 = frame(MAC.b, MAC.a, 1); // a -> b, b unknown: flooded to b and c
  const f2 = frame(MAC.a, MAC.b, 2); // b -> a, a learnt: a only
  const f3 = frame(MAC.b, MAC.a, 3); // a -> b, b learnt now: b only
  const f4 = frame(MAC.bcast, MAC.c, 4); // broadcast from c: a and b
  const f5 = frame(MAC.a, MAC.c, 5); // c -> a: a only
  const self = frame(MAC.a, MAC.a, 6); // a -> a: learnt on a itself, goes nowhere
  const runt = new Uint8Array(10); // no Ethernet header: nothing to switch on
  assert.equal(send(a, '1', [f1]), [1, 0]);
  assert.equal(send(b, '2', [f2]), [1, 0]);
  assert.equal(send(a, '3', [f3, self, runt]), [1, 2]);
  assert.equal(send(c, '4', [f4, f5]), [2, 0]);
  const got = (p: typeof a) => {
    const n = p.in.handle.sync(0, false);
    const { pkts } = batch(p.in.guest, Math.max(n, 0), 0);
    return pkts.map(hex);
  };
  assert.equal(got(a), [f2, f4, f5].map(hex));
  assert.equal(got(b), [f1, f3, f4].map(hex));
  assert.equal(got(c), [f1].map(hex));
  for (const p of ports) {
    p.in.handle.detach();
    native.closePort(p.in.port.id);
    native.closePort(p.out.id);
  }
});

test('VALE in one memory region (@2): a unicast packet from a software port moves by buffer swap, a flood to several ports is copied', () => {
  // Every port in memory region 2: one pool, so a unicast can move without a copy.
  const into = native.openPort(soft('t5{in@2', 'out'), { numSlots: 256, bufSize: 2048 });
  const toSwitch = native.openPort(soft('vale8:a@2', 'out'), { numSlots: 256, bufSize: 2048 });
  const relay = openAndAttach(soft('t5}in@2', 'in'), { outputs: [toSwitch.id] });
  const b = openAndAttach(soft('vale8:b@2', 'in'));
  const c = openAndAttach(soft('vale8:c@2', 'in'));
  const fromB = native.openPort(soft('vale8:b@2', 'out'), { numSlots: 256, bufSize: 2048 });
  // Teach the switch where MAC b lives.
  const teach = pcapPort('vale8-teach', [frame(MAC.a, MAC.b, 9)], [fromB.id]);
  drain(teach.guest, () => 1, false);
  const src = pcapPort('vale8-src', [frame(MAC.b, MAC.a, 1), frame(MAC.bcast, MAC.a, 2)], [into.id]);
  drain(src.guest, () => 1, false);
  const n = relay.handle.sync(0, false);
  assert.is(n, 2);
  batch(relay.guest, n, 1);
  relay.handle.sync(n, false);
  assert.is(relay.counters[Counter.outPackets], 2);
  assert.is(relay.counters[Counter.outSwapped], 1, 'the unicast one moved, the broadcast one was copied to b and c');
  assert.is(b.handle.sync(0, false), 2);
  assert.is(c.handle.sync(0, false), 2, 'the flooded teaching frame (MAC a unknown then) and the broadcast');
  for (const p of [relay, b, c, teach, src]) {
    p.handle.detach();
    native.closePort(p.port.id);
  }
  for (const id of [into.id, toSwitch.id, fromB.id]) native.closePort(id);
});

test('a guest that rewrites buf_idx on a software port is a violation: the whole batch gets the fault verdict, no buffer changes hands', () => {
  const into = native.openPort(soft('t6{a', 'out'), { numSlots: 256, bufSize: 2048 });
  const onward = native.openPort(soft('t6{b', 'out'), { numSlots: 256, bufSize: 2048 });
  const reader = openAndAttach(soft('t6}a', 'in'), { outputs: [onward.id] });
  const sink = openAndAttach(soft('t6}b', 'in'));
  const gen = openAndAttach(genSpec({ count: 4 }), { outputs: [into.id] });
  drain(gen.guest, () => 1, false);
  const n = reader.handle.sync(0, false);
  assert.is(n, 4);
  const slots = reader.guest.batchSlots(n);
  const before = slots.map((i) => reader.guest.bufIdx(i));
  for (const i of slots) reader.guest.setVerdict(i, 1);
  // Claim another buffer index (one some other ring owns).
  reader.guest.dv().setUint32(reader.guest.slotAddr(slots[0]!), before[1]! + 5000, true);
  reader.handle.sync(n, false);
  assert.is(reader.counters[Counter.violations], 1);
  assert.is(reader.counters[Counter.faultVerdicts], 4);
  assert.is(reader.counters[Counter.drop], 0); // fault verdicts are counted apart from drop
  assert.is(reader.counters[Counter.outPackets], 0);
  assert.is(sink.handle.sync(0, false), 0, 'nothing of the faulting batch moved on');
  for (const p of [reader, sink, gen]) {
    p.handle.detach();
    native.closePort(p.port.id);
  }
  native.closePort(into.id);
  native.closePort(onward.id);
});

test('refusals: ring out of range, conflicting @conf, a second reader of a /x port, an exhausted buffer pool', () => {
  const opts = { numSlots: 256, bufSize: 2048 };
  const err = (f: () => unknown): { code: string; message: string } => {
    try {
      f();
    } catch (e) {
      return e as { code: string; message: string };
    }
    throw new Error('expected an error');
  };
  let e = err(() => native.openPort(soft('t7}a-2', 'in'), opts));
  assert.is(e.code, 'ERANGE');
  assert.match(e.message, /ring 2 is out of range: t7}a has 1 ring\(s\) \(0\.\.0; set them with @conf:rings=N\)/);

  const first = native.openPort(soft('t8{a@conf:slots=256', 'out'), opts);
  e = err(() => native.openPort(soft('t8}a@conf:slots=512', 'in'), opts));
  assert.is(e.code, 'EINVAL');
  assert.match(e.message, /t8}a is already open with 1 ring\(s\) of 256 slots: give every opener the same @conf \(or none\)/);
  const same = native.openPort(soft('t8}a', 'in'), opts); // no @conf: takes what exists
  native.closePort(same.id);
  native.closePort(first.id);

  const x = native.openPort(soft('t9}a/x', 'in'), opts);
  e = err(() => native.openPort(soft('t9}a', 'in'), opts));
  assert.is(e.code, 'EBUSY');
  assert.match(e.message, /t9}a is bound exclusively \(\/x\) by another input/);
  native.closePort(x.id);
  native.closePort(native.openPort(soft('t9}a', 'in'), opts).id); // free again once closed

  e = err(() => native.openPort(soft('t10}a@conf:slots=16384,rings=2', 'in'), opts));
  assert.is(e.code, 'ENOSPC');
  assert.match(e.message, /buffer pool is short: 16384 buffers needed, \d+ of 30208 free: open fewer software ports on this pool or use @conf:slots=256/);
  // Another memory region than the endpoint's: refused, naming both.
  const priv = native.openPort(soft('t11}a', 'in'), opts);
  e = err(() => native.openPort(soft('t11{a@3', 'out'), opts));
  assert.is(e.code, 'EINVAL');
  assert.match(e.message, /t11}a is already open in a private buffer pool, not in memory region @3: give every opener of it the same @N, or none of them one/);
  native.closePort(priv.id);
  // Nothing leaked: the same pool still serves a normal port.
  native.closePort(native.openPort(soft('t10}b', 'in'), opts).id);
});

test.run();
