// host-control, counter and hexdump on hand-built packets.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load } from './harness.ts';
import * as f from './frames.ts';

const DROP = 0, PASS = 1, HOST = 2;

test('host-control: ARP, ICMP, ICMPv6 (incl. NDP) to the host; the rest dropped', () => {
  const h = load('host-control');
  assert.is(h.init(), 0);
  const pkts = [
    f.arp(1), f.arp(2, { vlans: [7] }), f.icmp4('10.0.0.1', '10.0.0.2'), f.icmp4('10.0.0.1', '10.0.0.2', { vlans: [1, 2], tpid: 0x88a8 }),
    f.icmp6('fe80::1', 'ff02::1:ff00:1', 135), f.icmp6('fe80::1', 'fe80::2', 136), f.icmp6('::1', '::2', 128),
    f.eth(f.ETH_IPV6, f.ipv6('fe80::1', 'ff02::16', 58, f.icmp(143, 0), [[0, f.ext8()]])), // MLDv2 after hop-by-hop
    f.tcp4('10.0.0.1', '10.0.0.2', 1, 22), f.udp6('::1', '::2', 1, 53), f.eth(0x88cc, [1, 2, 3]), f.eth(f.ETH_IPV4, [0x45]),
    f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 1, f.icmp(8, 0))), // ICMPv4 number inside IPv6: not ICMPv6
  ];
  assert.equal(h.batch(pkts).verdicts, [HOST, HOST, HOST, HOST, HOST, HOST, HOST, HOST, DROP, DROP, DROP, DROP, DROP]);
  assert.equal(h.namedStats(), { arp: 2n, icmp: 2n, icmp6: 4n, dropped: 5n });
});

test('counter: per-protocol counts and bytes, everything passes', () => {
  const h = load('counter');
  const pkts = [f.tcp4('1.1.1.1', '2.2.2.2', 1, 2), f.udp4('1.1.1.1', '2.2.2.2', 1, 2), f.tcp6('::1', '::2', 1, 2), f.icmp6('::1', '::2'),
    f.icmp4('1.1.1.1', '2.2.2.2'), f.arp(), f.eth(0x88cc, [0, 0]), f.eth(0x0800, [0x45, 0]), f.mpls([3], f.l3of(f.udp6('::1', '::2', 1, 2)))];
  assert.ok(h.batch(pkts).verdicts.every((v) => v === PASS));
  assert.equal(h.namedStats(), {
    packets: 9n, bytes: BigInt(pkts.reduce((n, p) => n + p.length, 0)), ipv4: 3n, ipv6: 3n, arp: 1n, tcp: 2n, udp: 2n, icmp: 1n, icmp6: 1n, other: 2n,
  });
});

test('hexdump: lines name the packet number (not the slot), length and bytes; its own rate limit follows now()', () => {
  let clock = 1000;
  const h = load('hexdump', { now: () => clock });
  assert.is(h.init('rate 2\nbytes 4'), 0, h.logs.join(' | '));
  const pkt = f.arp();
  const b = h.batch([pkt, pkt, pkt]);
  assert.equal(b.verdicts, [PASS, PASS, PASS]);
  assert.equal(h.logs, [`packet 1 len ${pkt.length}: ff ff ff ff ...`.replace('ff ff ff ff', '02 00 00 00'), `packet 2 len ${pkt.length}: 02 00 00 00 ...`]);
  clock += 500;
  h.batch([pkt]);
  assert.is(h.logs.length, 2, 'still inside the same second');
  clock += 600;
  h.batch([f.eth(0x88cc, [9])]);
  assert.is(h.logs.length, 3);
  assert.is(h.logs[2], 'packet 5 len 15: 02 00 00 00 ...');
  assert.equal(h.namedStats(), { packets: 5n, logged: 3n, skipped: 2n });
});

test('hexdump: short packets print whole, config errors name the word', () => {
  const h = load('hexdump');
  assert.is(h.init(''), 0);
  h.batch([Uint8Array.from([0xde, 0xad])]);
  assert.equal(h.logs, ['packet 1 len 2: de ad']);
  for (const [config, message] of [
    ['speed 3', "line 1: unknown setting 'speed' (expected rate N or bytes N)"],
    ['rate 0', "line 1: bad rate '0' (expected 1..1000)"],
    ['bytes 10\nbytes 999', "line 2: bad byte count '999' (expected 1..256)"],
    ['rate', "line 1: missing value after 'rate' at end of line (expected 1..1000)"],
  ] as const) {
    const g = load('hexdump');
    assert.is(g.init(config), 1, config);
    assert.equal(g.logs, [message]);
  }
});

test.run();
