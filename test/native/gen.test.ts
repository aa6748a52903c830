// gen: port: determinism, sizes, protocol mix, well-formed headers and checksums.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Counter } from '../../host/native.ts';
import { drain, genSpec, native, openAndAttach } from './helpers.ts';

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
