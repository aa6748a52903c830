// The counter's and the reflector's fast paths (plain IPv4/IPv6 right after Ethernet, read in
// network order into locals; everything else through the SDK's parse) must give exactly what
// parse() gives, at the edges where a frame leaves the fast path or where the fast path's own
// rules decide: IPv4 options, fragments (first and non-first), a total length that ends the
// datagram inside the UDP header or at its end, total length 0 (TSO), IPv6 extension headers,
// a short IPv6 payload, VLAN tags. A regression guard for a performance change: the old filters
// (one parse() per frame) give the same results.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFilter } from '../../host/module/testapi.ts';
import { wasmPath } from './harness.ts';
import * as f from './frames.ts';

const udp4 = (o: Partial<f.V4Opts>, e: f.EthOpts = {}): Uint8Array => f.eth(f.ETH_IPV4, f.ipv4('10.0.0.1', '10.0.0.2', f.udp(1111, 2222), { proto: 17, ...o }), e);
const udp6 = (ext: [number, number[]][] = []): Uint8Array => f.eth(f.ETH_IPV6, f.ipv6('2001:db8::1', '2001:db8::2', 17, f.udp(1111, 2222), ext));
const pad = (frame: Uint8Array, n = 60): Uint8Array => (frame.length >= n ? frame : f.bytes(frame, Array(n - frame.length).fill(0)));
function shortPayload6(): Uint8Array {
  const frame = udp6();
  frame[18] = 0; frame[19] = 3; // payload length 3: the datagram ends inside the UDP ports
  return frame;
}

/** [frame, IP header offset, address length, L4 offset when both ports are swapped or null]. */
const cases: [string, Uint8Array, number, number, number | null][] = [
  ['plain IPv4 UDP', udp4({}), 14, 4, 34],
  ['VLAN-tagged IPv4', udp4({}, { vlans: [7] }), 18, 4, 38],
  ['IPv4 with 4 bytes of options', udp4({ options: [1, 1, 1, 1] }), 14, 4, 38],
  ['first fragment (MF, offset 0)', udp4({ mf: true }), 14, 4, 34],
  ['non-first fragment (offset 8)', udp4({ fragOffset: 8 }), 14, 4, null],
  ['total length 24: the ports end the datagram', pad(udp4({ totalLen: 24 })), 14, 4, 34],
  ['total length 23: the datagram ends inside the ports', pad(udp4({ totalLen: 23 })), 14, 4, null],
  ['total length 0 (TSO)', udp4({ totalLen: 0 }), 14, 4, 34],
  ['total length 19 (bogus): not IPv4', udp4({ totalLen: 19 }), 14, 0, null],
  ['plain IPv6 UDP', udp6(), 14, 16, 54],
  ['IPv6 hop-by-hop then UDP', udp6([[0, f.ext8()]]), 14, 16, 62],
  ['IPv6 payload of 3 bytes', shortPayload6(), 14, 16, null],
];

/** What the reflector (swap ports) makes of `frame`, computed here. */
function reflected(frame: Uint8Array, l3: number, alen: number, l4: number | null): Uint8Array {
  const out = Uint8Array.from(frame);
  const swap = (a: number, b: number, n: number): void => { const t = out.slice(a, a + n); out.copyWithin(a, b, b + n); out.set(t, b); };
  swap(0, 6, 6);
  if (alen === 4) swap(l3 + 12, l3 + 16, 4);
  if (alen === 16) swap(l3 + 8, l3 + 24, 16);
  if (l4 !== null) swap(l4, l4 + 2, 2);
  return out;
}

test('reflector swap ports: addresses and ports exactly as parse() finds them, fast path or not', () => {
  const r = runFilter(wasmPath('reflector'), cases.map((c) => c[1]), { config: 'swap ports' });
  cases.forEach(([name, frame, l3, alen, l4], i) => assert.equal(Array.from(r.frames[i]!.data), Array.from(reflected(frame, l3, alen, l4)), name));
  assert.equal(r.counters, { packets: BigInt(cases.length), swapped_ip: BigInt(cases.filter((c) => c[3] !== 0).length), swapped_ports: BigInt(cases.filter((c) => c[4] !== null).length) });
});

test('counter: the same frames land in the classes parse() gives them', () => {
  const r = runFilter(wasmPath('counter'), cases.map((c) => c[1]));
  const v4 = cases.filter((c) => c[3] === 4).length, v6 = cases.filter((c) => c[3] === 16).length;
  assert.is(r.counters.packets, BigInt(cases.length));
  assert.is(r.counters.ipv4, BigInt(v4));
  assert.is(r.counters.ipv6, BigInt(v6));
  assert.is(r.counters.other, BigInt(cases.length - v4 - v6)); // the bogus IPv4: ethertype 0x0800, no IP header
  assert.is(r.counters.udp, BigInt(v4 + v6)); // every IP frame here carries UDP (fragments included)
  assert.is(r.counters.tcp, 0n);
});

test.run();
