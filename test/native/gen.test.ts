// gen: port: determinism, sizes, protocol mix, well-formed headers and checksums; the seq
// trailer, rings=N (flows hashed to rings, count split exactly) and the paced schedule.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Counter } from '../../host/ports/native.ts';
import { drain, genSpec, GuestRing, native, newCounters, openAndAttach } from './helpers.ts';

function collect(over: Parameters<typeof genSpec>[0]): Uint8Array[] {
  const { port, guest } = openAndAttach(genSpec(over));
  const pkts = drain(guest, () => 0);
  native.closePort(port.id);
  return pkts;
}

function sum16(b: Uint8Array, start: number, end: number, acc = 0): number {
  for (let i = start; i < end; i += 2) acc += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  return acc;
}
function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc & 0xffff) + Math.floor(acc / 0x10000);
  return acc;
}
const be16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;

function kind(p: Uint8Array): string {
  const et = be16(p, 12);
  if (et === 0x0806) return 'arp';
  if (et === 0x0800) return { 6: 'tcp4', 17: 'udp4', 1: 'icmp4' }[p[23]!] ?? '?';
  if (et === 0x86dd) return { 6: 'tcp6', 17: 'udp6', 58: 'icmp6' }[p[20]!] ?? '?';
  return '?';
}

test('same seed gives the same bytes, another seed different bytes', () => {
  const a = collect({ count: 500, seed: 7 });
  const b = collect({ count: 500, seed: 7 });
  const c = collect({ count: 500, seed: 8 });
  assert.is(a.length, 500);
  assert.equal(a, b);
  assert.not.equal(a, c);
});

test('sizes stay in sizeMin..sizeMax (slot len = size - 4) and the count is exact', () => {
  const pkts = collect({ count: 3000, sizeMin: 100, sizeMax: 300, seed: 3 });
  assert.is(pkts.length, 3000);
  for (const p of pkts) assert.ok(p.length >= 96 && p.length <= 296, `len ${p.length}`);
  const distinct = new Set(pkts.map((p) => p.length));
  assert.ok(distinct.size > 100, `only ${distinct.size} distinct sizes`);
});

test('imix gives 64/594/1518 in about 7:4:1', () => {
  const pkts = collect({ count: 12000, imix: true, mix: [1, 1, 1, 0, 0, 0, 1] });
  const by = new Map<number, number>();
  for (const p of pkts) by.set(p.length, (by.get(p.length) ?? 0) + 1);
  assert.equal([...by.keys()].sort((x, y) => x - y), [60, 590, 1514]);
  assert.ok(Math.abs(by.get(60)! - 7000) < 400 && Math.abs(by.get(590)! - 4000) < 350 && Math.abs(by.get(1514)! - 1000) < 200, JSON.stringify([...by]));
});

test('protocol mix follows the weights over 10k packets', () => {
  const mix = [4, 3, 1, 2, 1, 1, 1];
  const names = ['tcp4', 'udp4', 'icmp4', 'tcp6', 'udp6', 'icmp6', 'arp'];
  const pkts = collect({ count: 10000, mix, flows: 1000, seed: 11 });
  const counts = new Map<string, number>();
  for (const p of pkts) counts.set(kind(p), (counts.get(kind(p)) ?? 0) + 1);
  const total = mix.reduce((s, w) => s + w, 0);
  names.forEach((name, i) => {
    const want = (10000 * mix[i]!) / total;
    const got = counts.get(name) ?? 0;
    assert.ok(Math.abs(got - want) < 5 * Math.sqrt(want) + 20, `${name}: got ${got}, want about ${want}`);
  });
  assert.is(counts.get('?'), undefined);
});

test('a zero weight never appears; flows give distinct 5-tuples', () => {
  const pkts = collect({ count: 4000, mix: [1, 0, 0, 0, 0, 0, 0], flows: 50, seed: 5 });
  const tuples = new Set<string>();
  for (const p of pkts) {
    assert.is(kind(p), 'tcp4');
    tuples.add(Array.from(p.subarray(26, 38)).join(','));
  }
  assert.is(tuples.size, 50);
});

/** Asserts every IPv4 header checksum and TCP/UDP/ICMP/ICMPv6 checksum of `pkts`; returns how many L4 sums it checked. */
function checkSums(pkts: Uint8Array[]): number {
  let checked = 0;
  for (const p of pkts) {
    const k = kind(p);
    if (k.endsWith('4')) {
      assert.is(fold(sum16(p, 14, 34)), 0xffff, 'ipv4 header checksum');
      const pseudo = k === 'icmp4' ? 0 : sum16(p, 26, 34) + p[23]! + (p.length - 34);
      assert.is(fold(sum16(p, 34, p.length, pseudo)), 0xffff, `${k} checksum, len ${p.length}`);
      checked++;
    } else if (k.endsWith('6')) {
      assert.is(fold(sum16(p, 54, p.length, sum16(p, 22, 54) + p[20]! + (p.length - 54))), 0xffff, `${k} checksum, len ${p.length}`);
      checked++;
    }
  }
  return checked;
}
const seqOf = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset + p.length - 8, 8).getBigUint64(0);
/** A frame's flow key: addresses and ports (TCP/UDP) or identifier (ICMP); ARP: sender and target. */
function tuple(p: Uint8Array): string {
  const k = kind(p);
  const parts = { arp: [[28, 42]], tcp4: [[26, 38]], udp4: [[26, 38]], icmp4: [[26, 34], [38, 40]], tcp6: [[22, 58]], udp6: [[22, 58]], icmp6: [[22, 54], [58, 60]] }[k]!;
  return `${k} ${parts.map(([a, b]) => Array.from(p.subarray(a, b)).join('.')).join(' ')}`;
}

test('seq: the last 8 bytes count 0..count-1 big-endian, every checksum stays valid (odd and even offsets)', () => {
  const pkts = collect({ count: 3000, seed: 4, sizeMin: 64, sizeMax: 300, seq: true });
  assert.is(pkts.length, 3000);
  pkts.forEach((p, i) => assert.is(seqOf(p), BigInt(i), `packet ${i}`));
  assert.ok(checkSums(pkts) > 2500);
  assert.ok(new Set(pkts.map((p) => p.length % 2)).size === 2, 'both odd and even lengths');
  // A 64-byte frame has room for the trailer after its headers (the frame grows if needed).
  for (const p of collect({ count: 500, seq: true, sizeMin: 64, sizeMax: 64 })) {
    const hdr = { tcp4: 54, udp4: 42, icmp4: 42, tcp6: 74, udp6: 62, icmp6: 62, arp: 42 }[kind(p)]!;
    assert.ok(p.length >= hdr + 8, `${kind(p)} of ${p.length} bytes`);
  }
});

test('seq leaves the frames otherwise as without it (same flows, sizes and headers)', () => {
  const plain = collect({ count: 400, seed: 6, sizeMin: 100, sizeMax: 200 });
  const seq = collect({ count: 400, seed: 6, sizeMin: 100, sizeMax: 200, seq: true });
  plain.forEach((p, i) => {
    assert.is(seq[i]!.length, p.length);
    assert.equal(seq[i]!.subarray(0, 14), p.subarray(0, 14));
    assert.is(tuple(seq[i]!), tuple(p));
  });
});

/** Every packet of every ring of a rings=N port, drained ring by ring. */
function collectRings(over: Parameters<typeof genSpec>[0]): Uint8Array[][] {
  const spec = genSpec(over);
  const port = native.openPort(spec, { numSlots: 256, bufSize: 2048 });
  const out: Uint8Array[][] = [];
  for (let r = 0; r < port.rings; r++) {
    const counters = newCounters();
    const handle = native.attachRing(port.id, r, { outputs: [], counters, faultVerdict: 0, trace: false });
    // The port's expected packets count once, in ring 0's counters (the host sums the rings').
    assert.is(counters[Counter.expected], r === 0 ? (over?.count ?? 1000) : 0, `ring ${r} expected`);
    out.push(drain(new GuestRing(handle), () => 1));
    assert.is(counters[Counter.packets], out[r]!.length, `ring ${r} packets`);
    handle.detach();
  }
  native.closePort(port.id);
  return out;
}

test('rings=2: two non-empty rings, a flow on one ring only, the count exact, per-ring seq in order', () => {
  const rings = collectRings({ count: 10001, rings: 2, seq: true, flows: 64, seed: 3 });
  assert.is(rings.length, 2);
  assert.is(rings[0]!.length + rings[1]!.length, 10001);
  const owner = new Map<string, number>();
  rings.forEach((pkts, r) => {
    assert.ok(pkts.length > 1000, `ring ${r}: ${pkts.length} packets`);
    pkts.forEach((p, k) => {
      assert.is(seqOf(p), (BigInt(r) << 56n) | BigInt(k), `ring ${r} packet ${k}`);
      const t = tuple(p);
      assert.is(owner.get(t) ?? r, r, `flow ${t} on two rings`);
      owner.set(t, r);
    });
    checkSums(pkts);
  });
  assert.is(owner.size, 64);
});

test('rings=N keeps the one-ring traffic: the same flows and sizes, split by flow', () => {
  const one = collectRings({ count: 6000, seed: 12, sizeMin: 64, sizeMax: 1518 })[0]!;
  const three = collectRings({ count: 6000, seed: 12, sizeMin: 64, sizeMax: 1518, rings: 3 });
  const sig = (p: Uint8Array) => `${tuple(p)} ${p.length}`;
  // Ring r's packets are the one-ring stream's packets of its flows, in the same order.
  const owner = new Map<string, number>();
  three.forEach((pkts, r) => pkts.forEach((p) => owner.set(tuple(p), r)));
  const merged = three.flat().map(sig).sort();
  const expect = one.map(sig).sort();
  // Counts per ring are the ring's share of 6000, so the multisets agree up to the rounding of the split.
  let same = 0;
  const bag = new Map<string, number>();
  for (const s of expect) bag.set(s, (bag.get(s) ?? 0) + 1);
  for (const s of merged) if ((bag.get(s) ?? 0) > 0) { bag.set(s, bag.get(s)! - 1); same++; }
  assert.ok(same > 5900, `${same} of 6000 packets in common`);
  three.forEach((pkts, r) => {
    const mine = one.filter((p) => owner.get(tuple(p)) === r).map(sig);
    const n = Math.min(mine.length, pkts.length);
    assert.equal(pkts.slice(0, n).map(sig), mine.slice(0, n), `ring ${r} follows the one-ring stream`);
  });
});

test('flows=1, rings=4: the rings without a flow end at once, the count is exact', () => {
  const rings = collectRings({ count: 777, rings: 4, flows: 1, mix: [1, 0, 0, 0, 0, 0, 0] });
  assert.equal(rings.map((r) => r.length).sort((a, b) => a - b), [0, 0, 0, 777]);
});

test('IPv4 header checksums and TCP/UDP/ICMP checksums are valid', () => {
  const pkts = collect({ count: 5000, seed: 9, sizeMin: 64, sizeMax: 400 });
  let checked = 0;
  for (const p of pkts) {
    const k = kind(p);
    if (k.endsWith('4')) {
      assert.is(p[14], 0x45);
      assert.is(fold(sum16(p, 14, 34)), 0xffff, 'ipv4 header checksum');
      assert.is(be16(p, 16), p.length - 14, 'ipv4 total length');
      const l4len = p.length - 34;
      const pseudo = k === 'icmp4' ? 0 : sum16(p, 26, 34) + p[23]! + l4len;
      assert.is(fold(sum16(p, 34, p.length, pseudo)), 0xffff, `${k} checksum`);
      checked++;
    } else if (k.endsWith('6')) {
      assert.is(be16(p, 18), p.length - 54, 'ipv6 payload length');
      const l4len = p.length - 54;
      assert.is(fold(sum16(p, 54, p.length, sum16(p, 22, 54) + p[20]! + l4len)), 0xffff, `${k} checksum`);
      checked++;
    } else {
      assert.is(be16(p, 20), 1, 'arp request');
    }
  }
  assert.ok(checked > 4000);
});

test('timestamps are increasing, seed-dependent, counters count what was delivered', () => {
  const { port, guest, counters } = openAndAttach(genSpec({ count: 600, seed: 2 }));
  let n = guest.handle.sync(0, false);
  let last = 0n;
  let bytes = 0;
  while (n > 0) {
    for (const i of guest.batchSlots(n)) {
      const ts = guest.ts(i);
      assert.ok(ts > last);
      assert.ok(ts > 1_700_000_000_000_000_000n && ts < 1_700_000_001_000_000_000n);
      last = ts;
      bytes += guest.len(i);
      guest.setVerdict(i, 1);
    }
    n = guest.handle.sync(n, false);
  }
  assert.is(n, -1);
  assert.is(counters[Counter.packets], 600);
  assert.is(counters[Counter.bytes], bytes);
  assert.is(counters[Counter.pass], 600);
  assert.is(counters[Counter.eof], 1);
  assert.is(counters[Counter.expected], 600);
  native.closePort(port.id);
});

test.run();
