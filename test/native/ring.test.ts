// RingHandle: mapping into real WebAssembly memories, sync, guest validation,
// fault verdicts, trace. The "guest" is JS writing into the mapped window.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Counter, SYNC_NO_BUDGET } from '../../host/ports/native.ts';
import { GuestRing, WINDOW_BASE, genSpec, native, newCounters, openAndAttach } from './helpers.ts';

test('layout: verdicts after the slots, buffers page aligned, memory fits the window', () => {
  const { port, guest } = openAndAttach(genSpec(), { numSlots: 256 });
  const L = guest.layout;
  assert.is(L.numSlots, 256);
  // gen: spaces its buffers a cache line more than asked (2048 + 64: no power-of-two stride,
  // whose frames would all share a few cache sets); the ring's nr_buf_size says so.
  assert.is(L.bufSize, 2048 + 64);
  assert.is(L.verdictOfs, L.ringOfs + 256 + 16 * 256);
  assert.is(L.memSize % 4096, 0);
  assert.is(L.memSize, port.memSize);
  guest.handle.sync(0, false);
  const bufOfs = Number(guest.dv().getBigInt64(guest.ring, true));
  assert.is((guest.ring + bufOfs) % 4096, 0);
  assert.ok(L.verdictOfs + 256 <= L.ringOfs + bufOfs);
  assert.is(guest.dv().getUint32(guest.ring + 8, true), 256); // num_slots
  assert.is(guest.dv().getUint32(guest.ring + 12, true), 2048 + 64); // nr_buf_size
  assert.is(guest.dv().getUint16(guest.ring + 18, true), 1); // dir = rx
  native.closePort(port.id);
});

test('sync hands batches of at most num_slots-1, verdicts pre-filled with 0xFF, counters follow verdicts', () => {
  const { port, guest, counters } = openAndAttach(genSpec({ count: 1000 }), { numSlots: 256 });
  let n = guest.handle.sync(0, false);
  assert.is(n, 255);
  let k = 0;
  const want = [0, 0, 0, 0]; // drop pass host forward
  while (n > 0) {
    assert.is(guest.tail, (guest.head + n) % 256);
    for (const i of guest.batchSlots(n)) {
      assert.is(guest.view()[guest.verdictAddr(i)], 0xff);
      const v = k++ % 3; // drop, pass, host
      want[v]!++;
      guest.setVerdict(i, v);
    }
    n = guest.handle.sync(n, false);
  }
  assert.is(n, -1);
  assert.is(counters[Counter.drop], want[0]);
  assert.is(counters[Counter.pass], want[1]);
  assert.is(counters[Counter.host], want[2]);
  assert.is(counters[Counter.violations], 0);
  assert.is(counters[Counter.faultVerdicts], 0);
  assert.is(counters[Counter.outPackets], 0); // PASS without an output is only counted
  assert.is(counters[Counter.batches], Math.ceil(1000 / 255));
  assert.is(guest.handle.sync(0, false), -1); // stays at end
  native.closePort(port.id);
});

test('a hostile guest: changed buf_idx, len 0, len 4000, unset or invalid verdicts are violations; the whole batch gets the fault verdict; the shadow wins', () => {
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, trace: true });
  const n = handle.sync(0, false);
  const slots = guest.batchSlots(n);
  const dv = guest.dv();
  const origBuf = guest.bufIdx(slots[0]!);
  const origLen = guest.len(slots[1]!);
  for (const i of slots) guest.setVerdict(i, 1);
  dv.setUint32(guest.slotAddr(slots[0]!), 12345, true); // buf_idx changed
  dv.setUint16(guest.slotAddr(slots[1]!) + 4, 0, true); // len 0
  dv.setUint16(guest.slotAddr(slots[2]!) + 4, 4000, true); // len > nr_buf_size
  guest.setVerdict(slots[3]!, 0xff); // unset
  guest.setVerdict(slots[4]!, 0x80); // FORWARD 0 without outputs
  guest.setVerdict(slots[5]!, 0x03); // not a verdict
  dv.setUint16(guest.slotAddr(slots[6]!) + 4, 14, true); // shortest valid len: fine
  dv.setUint32(guest.ring + 20, 999, true); // scribble on host-owned header fields
  const next = handle.sync(n, false);
  assert.ok(next > 0);
  assert.is(counters[Counter.violations], 6);
  assert.is(counters[Counter.faultVerdicts], n); // every slot of the batch, the valid ones too
  assert.is(counters[Counter.drop], 0); // fault verdicts are counted apart from drop
  assert.is(counters[Counter.pass], 0);
  const trace = handle.takeTrace();
  assert.is(trace.length, n);
  assert.ok(trace.every((v) => v === 0));
  // the next pass over the same slots shows the host's values again
  assert.is(guest.head, (slots[0]! + n) % 64);
  let m = next;
  while (!guest.batchSlots(m).includes(slots[0]!)) {
    for (const i of guest.batchSlots(m)) guest.setVerdict(i, 1);
    m = handle.sync(m, false);
  }
  assert.is(guest.bufIdx(slots[0]!), origBuf);
  assert.ok(guest.len(slots[1]!) >= 60 && guest.len(slots[1]!) <= 1514);
  assert.is(counters[Counter.violations], 6);
  assert.ok(origLen >= 60);
  native.closePort(port.id);
});

test('bulk validation: one bad verdict at any place of a wrapping batch is one violation; flags and an in-range len are the guest\'s', () => {
  // No output, no trace: the verdicts are checked eight at a time (ring_sync.cc) and the
  // batch (63 of 64 slots) starts one slot earlier each time, so every bad byte is tried at
  // every place of the batch, in the last partial word and across the wrap.
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 0 }), { numSlots: 64 });
  let n = handle.sync(0, false);
  const dv = guest.dv();
  let violations = 0;
  let faults = 0;
  let passes = 0;
  for (const bad of [0x03, 0x7f, 0x80, 0x81, 0xfe, 0xff]) {
    for (let at = 0; at < n; at++) {
      const slots = guest.batchSlots(n);
      for (const i of slots) guest.setVerdict(i, 1);
      guest.setVerdict(slots[at]!, bad);
      n = handle.sync(n, false);
      violations++;
      faults += slots.length;
      assert.is(counters[Counter.violations], violations, `verdict 0x${bad.toString(16)} at ${at}`);
      assert.is(counters[Counter.faultVerdicts], faults);
      assert.is(counters[Counter.pass], passes);
    }
  }
  // A slot with a changed buf_idx AND a bad verdict is one violating slot, not two.
  let slots = guest.batchSlots(n);
  for (const i of slots) guest.setVerdict(i, 1);
  dv.setUint32(guest.slotAddr(slots[7]!), 60000, true);
  guest.setVerdict(slots[7]!, 0xff);
  n = handle.sync(n, false);
  assert.is(counters[Counter.violations], violations + 1);
  faults += slots.length;
  // Changed flags and a len still in 14..nr_buf_size are not violations: PASS, DROP and HOST counted.
  slots = guest.batchSlots(n);
  slots.forEach((i, k) => guest.setVerdict(i, k % 3));
  dv.setUint16(guest.slotAddr(slots[0]!) + 6, 0xabcd, true); // flags
  dv.setUint16(guest.slotAddr(slots[slots.length - 1]!) + 4, 14, true); // shortest valid len
  n = handle.sync(n, false);
  assert.is(counters[Counter.violations], violations + 1);
  assert.is(counters[Counter.faultVerdicts], faults);
  assert.is(counters[Counter.drop], slots.filter((_, k) => k % 3 === 0).length);
  assert.is(counters[Counter.pass], slots.filter((_, k) => k % 3 === 1).length);
  assert.is(counters[Counter.host], slots.filter((_, k) => k % 3 === 2).length);
  handle.detach();
  native.closePort(port.id);
});

test('one violating slot in a batch: every valid slot gets the fault verdict too and leaves with its host length', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-ring-'));
  const outPath = join(dir, 'out.pcap');
  const out = native.openPort({ kind: 'pcap-out', name: `pcap-out:${outPath}`, path: outPath }, { numSlots: 64, bufSize: 2048 });
  // closed: DROP. The guest says PASS (FORWARD 0) everywhere and shortens every packet to 14
  // bytes, but duplicates one buf_idx (the last slot claims the first slot's buffer).
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, faultVerdict: 0, outputs: [out.id] });
  const n = handle.sync(0, false);
  const slots = guest.batchSlots(n);
  const dv = guest.dv();
  for (const i of slots) {
    guest.setVerdict(i, 0x80);
    dv.setUint16(guest.slotAddr(i) + 4, 14, true);
  }
  dv.setUint32(guest.slotAddr(slots[n - 1]!), guest.bufIdx(slots[0]!), true);
  handle.sync(n, false);
  assert.is(counters[Counter.violations], 1);
  assert.is(counters[Counter.faultVerdicts], n);
  assert.is(counters[Counter.drop], 0); // fault verdicts are counted apart from drop
  assert.is(counters[Counter.forward] + counters[Counter.pass], 0);
  assert.is(counters[Counter.outPackets], 0);
  // open: PASS with the host's lengths, not the guest's 14
  const b = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, faultVerdict: 1, outputs: [out.id] });
  const m = b.handle.sync(0, false);
  const bs = b.guest.batchSlots(m);
  const lens = bs.map((i) => b.guest.len(i));
  for (const i of bs) {
    b.guest.setVerdict(i, 0x00);
    b.guest.dv().setUint16(b.guest.slotAddr(i) + 4, 14, true);
  }
  b.guest.setVerdict(bs[m >> 1]!, 0xff); // half-way: one verdict left unset
  b.handle.sync(m, false);
  assert.is(b.counters[Counter.violations], 1);
  assert.is(b.counters[Counter.faultVerdicts], m);
  assert.is(b.counters[Counter.pass], 0); // open: passed on, but counted as fault verdicts
  assert.is(b.counters[Counter.drop], 0);
  assert.is(b.counters[Counter.outPackets], m);
  assert.is(b.counters[Counter.outBytes], lens.reduce((x, y) => x + y, 0));
  b.handle.detach();
  handle.detach();
  native.closePort(b.port.id);
  native.closePort(port.id);
  native.closePort(out.id);
  rmSync(dir, { recursive: true, force: true });
});

test('faulted = true gives every slot of the batch the fault verdict (open: PASS)', () => {
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 100 }), { numSlots: 64, faultVerdict: 1 });
  const n = handle.sync(0, false);
  for (const i of guest.batchSlots(n)) guest.setVerdict(i, 0); // whatever the guest said
  handle.sync(n, true);
  assert.is(counters[Counter.faultVerdicts], n);
  assert.is(counters[Counter.pass], 0); // passed on, but counted as fault verdicts only
  assert.is(counters[Counter.drop], 0);
  assert.is(counters[Counter.violations], 0);
  native.closePort(port.id);
});

test('a faulted batch is not validated: no violations, every slot leaves with its host length', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-ring-'));
  const outPath = join(dir, 'out.pcap');
  const out = native.openPort({ kind: 'pcap-out', name: `pcap-out:${outPath}`, path: outPath }, { numSlots: 64, bufSize: 2048 });
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, faultVerdict: 1, outputs: [out.id] });
  const n = handle.sync(0, false);
  const slots = guest.batchSlots(n);
  const lens = slots.map((i) => guest.len(i));
  // what a trapped guest may have left behind: every kind of violation
  const dv = guest.dv();
  for (const i of slots) guest.setVerdict(i, 0x03);
  dv.setUint32(guest.slotAddr(slots[0]!), 12345, true);
  dv.setUint16(guest.slotAddr(slots[1]!) + 4, 0, true);
  dv.setUint16(guest.slotAddr(slots[2]!) + 4, 4000, true);
  dv.setUint16(guest.slotAddr(slots[3]!) + 4, 20, true); // in range, but the guest's output is void
  guest.setVerdict(slots[4]!, 0xff);
  handle.sync(n, true);
  assert.is(counters[Counter.violations], 0);
  assert.is(counters[Counter.faultVerdicts], n);
  assert.is(counters[Counter.pass], 0);
  assert.is(counters[Counter.outPackets], n); // the open fault verdict passes them on
  assert.is(counters[Counter.outBytes], lens.reduce((a, b) => a + b, 0));
  handle.detach();
  native.closePort(port.id);
  native.closePort(out.id);
  // the output file's record lengths (classic pcap: 24-byte header, 16-byte record headers)
  const file = readFileSync(outPath);
  const written: number[] = [];
  for (let off = 24; off + 16 <= file.length; off += 16 + file.readUInt32LE(off + 8)) written.push(file.readUInt32LE(off + 8));
  assert.equal(written, lens);
  rmSync(dir, { recursive: true, force: true });
});

test('a partial completion delivers the rest again and counts packets once', () => {
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 100 }), { numSlots: 64 });
  const n = handle.sync(0, false);
  for (const i of guest.batchSlots(10)) guest.setVerdict(i, 1);
  const next = handle.sync(10, false);
  assert.is(next, 63);
  assert.is(counters[Counter.packets], 73);
  for (const i of guest.batchSlots(next)) assert.is(guest.view()[guest.verdictAddr(i)], 0xff);
  assert.is(n, 63);
  native.closePort(port.id);
});

test('a budget shared by two rings takes exactly that many packets from their ports, then sync says SYNC_NO_BUDGET', () => {
  const budget = new BigInt64Array(new SharedArrayBuffer(8));
  budget[0] = 100n;
  const a = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, budget });
  const b = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, budget });
  assert.is(a.handle.sync(0, false), 63);
  assert.is(b.handle.sync(0, false), 37, 'the second ring gets what the first left');
  for (const i of a.guest.batchSlots(63)) a.guest.setVerdict(i, 1);
  for (const i of b.guest.batchSlots(37)) b.guest.setVerdict(i, 0);
  assert.is(a.handle.sync(63, false), SYNC_NO_BUDGET);
  assert.is(b.handle.sync(37, false, 50), SYNC_NO_BUDGET, 'no wait and no packet once the budget is spent');
  assert.is(budget[0], 0n);
  assert.equal([a.counters[Counter.packets], a.counters[Counter.pass]], [63, 63]);
  assert.equal([b.counters[Counter.packets], b.counters[Counter.drop]], [37, 37]);
  budget[0] = 5n; // more budget later: the rings take it
  assert.is(a.handle.sync(0, false), 5);
  native.closePort(a.port.id);
  native.closePort(b.port.id);
});

test('a budget: what the port did not fill goes back; zeroed in flight, the batch in hand still completes', () => {
  const budget = new BigInt64Array(new SharedArrayBuffer(8));
  budget[0] = 1000n;
  const { port, guest, counters, handle } = openAndAttach(genSpec({ count: 40 }), { numSlots: 64, budget });
  const n = handle.sync(0, false);
  assert.is(n, 40);
  assert.is(budget[0], 960n, 'the 23 slots claimed but not filled were given back');
  for (const i of guest.batchSlots(n)) guest.setVerdict(i, 1);
  assert.is(handle.sync(n, false), -1);
  assert.is(budget[0], 960n);
  native.closePort(port.id);
  // a stop zeroes the budget while a batch is in hand: it completes, nothing more is taken
  budget[0] = 1000n;
  const live = openAndAttach(genSpec({ count: 0 }), { numSlots: 64, budget });
  const m = live.handle.sync(0, false);
  budget[0] = 0n;
  for (const i of live.guest.batchSlots(m)) live.guest.setVerdict(i, 2);
  assert.is(live.handle.sync(m, false), SYNC_NO_BUDGET);
  assert.is(live.counters[Counter.packets], m);
  assert.is(live.counters[Counter.host], m);
  native.closePort(live.port.id);
  assert.is(counters[Counter.pass], 40);
});

test('the same packet memory mapped into two memories shows the same bytes both ways', () => {
  const { port, guest, handle } = openAndAttach(genSpec(), { numSlots: 64 });
  const other = new WebAssembly.Memory({ initial: 1100 });
  handle.map(new Uint8Array(other.buffer), WINDOW_BASE);
  handle.sync(0, false);
  const a = guest.view();
  const b = new Uint8Array(other.buffer);
  const L = guest.layout;
  assert.equal(a.subarray(WINDOW_BASE, WINDOW_BASE + L.memSize), b.subarray(WINDOW_BASE, WINDOW_BASE + L.memSize));
  b[WINDOW_BASE + L.verdictOfs] = 0x42;
  assert.is(a[WINDOW_BASE + L.verdictOfs], 0x42);
  // unmapping one leaves zero pages there and the other mapping intact
  handle.unmap(b, WINDOW_BASE);
  assert.is(b[WINDOW_BASE + L.verdictOfs], 0);
  assert.is(b[WINDOW_BASE + L.memSize - 1], 0);
  b[WINDOW_BASE + 100] = 7; // writable, private
  assert.is(a[WINDOW_BASE + L.verdictOfs], 0x42);
  assert.is.not(a[WINDOW_BASE + 100], 7);
  native.closePort(port.id);
});

test('map refuses unaligned offsets and windows beyond the memory', () => {
  const { port, handle } = openAndAttach(genSpec(), { numSlots: 64 });
  const small = new WebAssembly.Memory({ initial: 2 });
  try {
    handle.map(new Uint8Array(small.buffer), 0);
    assert.unreachable('mapped beyond byteLength');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ERANGE');
  }
  const big = new WebAssembly.Memory({ initial: 1100 });
  try {
    handle.map(new Uint8Array(big.buffer), WINDOW_BASE + 8);
    assert.unreachable('mapped unaligned');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'EINVAL');
    assert.match((e as Error).message, /page aligned/);
  }
  native.closePort(port.id);
});

test('a shared (SharedArrayBuffer) memory works too', () => {
  const port = native.openPort(genSpec(), { numSlots: 64, bufSize: 2048 });
  const handle = native.attachRing(port.id, 0, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false });
  const mem = new WebAssembly.Memory({ initial: 1100, maximum: 1100, shared: true });
  handle.map(new Uint8Array(mem.buffer), WINDOW_BASE);
  const n = handle.sync(0, false);
  const dv = new DataView(mem.buffer);
  assert.is(dv.getUint32(WINDOW_BASE + handle.layout().ringOfs + 28, true), n);
  native.closePort(port.id);
});

test('a second attach makes the first handle stale; the batch in flight is delivered again', () => {
  const { port, guest, handle, counters } = openAndAttach(genSpec({ count: 0 }), { numSlots: 64 });
  const n = handle.sync(0, false);
  const second = native.attachRing(port.id, 0, { outputs: [], counters, faultVerdict: 0, trace: false });
  try {
    handle.sync(n, false);
    assert.unreachable('stale handle synced');
  } catch (e) {
    assert.is((e as { code?: string }).code, 'ESTALE');
  }
  const g2 = new GuestRing(second);
  assert.is(second.sync(0, false), n);
  assert.is(g2.head, guest.head);
  assert.is(counters[Counter.packets], n);
  handle.detach();
  native.closePort(port.id);
});

test('errors carry code and port: unknown port id, bad ring, non-output as output', () => {
  const { port } = openAndAttach(genSpec());
  const check = (f: () => unknown, code: string) => {
    try {
      f();
      assert.unreachable(`expected ${code}`);
    } catch (e) {
      assert.is((e as { code?: string }).code, code);
    }
  };
  check(() => native.attachRing(9999, 0, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false }), 'EBADPORT');
  check(() => native.attachRing(port.id, 3, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false }), 'EINVAL');
  check(() => native.attachRing(port.id, 0, { outputs: [port.id], counters: newCounters(), faultVerdict: 0, trace: false }), 'EINVAL');
  check(() => native.attachRing(port.id, 0, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false, budget: new Float64Array(1) as unknown as BigInt64Array }), 'EINVAL');
  native.closePort(port.id);
  check(() => native.closePort(port.id), 'EBADPORT');
});

test('native error messages are one line, name the port once and say what to do', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-err-'));
  const junk = join(dir, 'junk.pcap');
  writeFileSync(junk, 'this is not a capture file\n');
  const opts = { numSlots: 64, bufSize: 2048 };
  const gen = native.openPort(genSpec(), opts);
  const detached = native.attachRing(gen.id, 0, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false });
  detached.detach();
  const cases: Array<{ name: string; subject: string; run: () => unknown; code: string; todo: RegExp }> = [
    { name: `pcap:${dir}/missing.pcap`, subject: `${dir}/missing.pcap`, run: () => native.openPort({ kind: 'pcap', name: `pcap:${dir}/missing.pcap`, path: `${dir}/missing.pcap` }, opts), code: 'ENOENT', todo: /check the path/ },
    { name: `pcap:${dir}`, subject: dir, run: () => native.openPort({ kind: 'pcap', name: `pcap:${dir}`, path: dir }, opts), code: 'EISDIR', todo: /give an Ethernet pcap/ },
    { name: `pcap:${junk}`, subject: junk, run: () => native.openPort({ kind: 'pcap', name: `pcap:${junk}`, path: junk }, opts), code: 'EPCAP_FORMAT', todo: /give an Ethernet pcap/ },
    { name: `pcap-out:${dir}/no/out.pcap`, subject: `${dir}/no/out.pcap`, run: () => native.openPort({ kind: 'pcap-out', name: `pcap-out:${dir}/no/out.pcap`, path: `${dir}/no/out.pcap` }, opts), code: 'ENOENT', todo: /create the directory/ },
    { name: 'gen0', subject: 'gen0', run: () => native.attachRing(gen.id, 0, { outputs: [gen.id], counters: newCounters(), faultVerdict: 0, trace: false }), code: 'EINVAL', todo: /cannot be an output here \(it has no transmit side\): use --out pcap:FILE, a netmap pipe or VALE port/ },
    { name: 'gen0', subject: 'gen0', run: () => detached.sync(0, false), code: 'EDETACHED', todo: /call attachRing again/ },
  ];
  for (const c of cases) {
    let err: (Error & { code?: string; port?: string }) | undefined;
    try {
      c.run();
    } catch (e) {
      err = e as Error & { code?: string; port?: string };
    }
    assert.ok(err, `${c.name}: expected ${c.code}`);
    const msg = err!.message;
    assert.is(err!.code, c.code, msg);
    assert.is(err!.port, c.name, msg);
    assert.ok(msg.startsWith(`port ${c.name}: `), msg);
    assert.is(msg.split(c.subject).length - 1, 1, `names ${c.subject} once: ${msg}`);
    assert.not.match(msg, /[\r\n]/);
    assert.match(msg, c.todo);
  }
  native.closePort(gen.id);
  rmSync(dir, { recursive: true, force: true });
});

// A worker that cycles attach/map/sync/detach (and leaves some handles to the GC) as fast
// as it can, so that terminate() lands inside native calls: RingHandle methods, attachRing,
// the handle's constructor and its finalizer.
const churnSource = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.addon);
const { portId } = workerData;
const mem = new WebAssembly.Memory({ initial: 1100 });
const view = new Uint8Array(mem.buffer);
parentPort.postMessage('started');
for (let round = 0; ; round++) {
  const counters = new Float64Array(new SharedArrayBuffer(24 * 8));
  const h = native.attachRing(portId, 0, { outputs: [], counters, faultVerdict: 0, trace: false });
  h.map(view, 0x100000);
  const L = h.layout();
  let n = h.sync(0, false);
  for (let k = 0; k < 3 && n > 0; k++) {
    view.fill(1, 0x100000 + L.verdictOfs, 0x100000 + L.verdictOfs + L.numSlots);
    n = h.sync(n, round % 2 === 0);
  }
  h.unmap(view, 0x100000);
  if (round % 3 !== 0) h.detach();
  try { h.sync(0, false); } catch {} // EDETACHED or ESTALE: errors thrown on purpose
}
`;

test('terminating workers inside native calls never aborts the process', async () => {
  const port = native.openPort(genSpec({ count: 0 }), { numSlots: 256, bufSize: 2048 });
  const addon = new URL('../../build/Release/nmwasm.node', import.meta.url).pathname;
  for (let i = 0; i < 60; i++) {
    const worker = new Worker(churnSource, { eval: true, workerData: { addon, portId: port.id } });
    const failed = new Promise<unknown>((resolve) => worker.once('error', resolve));
    await new Promise<void>((resolve) => worker.once('message', () => resolve()));
    // spread the terminate over the cycle: 0..~5 ms after the worker started churning
    await new Promise((resolve) => setTimeout(resolve, i % 6));
    await worker.terminate();
    const err = await Promise.race([failed, Promise.resolve(null)]);
    assert.is(err, null, `worker ${i} failed: ${String(err)}`);
  }
  // the port survived every terminated attachment: a fresh handle still works
  const handle = native.attachRing(port.id, 0, { outputs: [], counters: newCounters(), faultVerdict: 0, trace: false });
  new GuestRing(handle);
  assert.ok(handle.sync(0, false) > 0);
  native.closePort(port.id);
});

test.run();
