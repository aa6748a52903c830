// Firewall verdicts on hand-built packets: every header path of the parser (VLAN, QinQ,
// MPLS, PPPoE, LLC/SNAP, IPv4 options and fragments, IPv6 extension headers), ports,
// prefixes, direction, first match, and truncated packets at every length.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load, Harness } from './harness.ts';
import * as f from './frames.ts';

const DROP = 0, PASS = 1, HOST = 2;

function firewall(rules: string, dir = 1): Harness {
  const h = load('firewall', { dir });
  const rc = h.init(rules);
  assert.is(rc, 0, h.logs.join(' | '));
  return h;
}
const verdict = (h: Harness, pkt: Uint8Array): number => h.batch([pkt]).verdicts[0]!;

test('default applies when nothing matches; first match wins', () => {
  let h = firewall('');
  assert.is(verdict(h, f.tcp4('10.0.0.1', '10.0.0.2', 1, 2)), DROP);
  h = firewall('default pass');
  assert.is(verdict(h, f.tcp4('10.0.0.1', '10.0.0.2', 1, 2)), PASS);
  h = firewall('host tcp\ndrop tcp\ndefault pass');
  assert.is(verdict(h, f.tcp4('10.0.0.1', '10.0.0.2', 1, 2)), HOST);
  assert.is(verdict(h, f.udp4('10.0.0.1', '10.0.0.2', 1, 2)), PASS);
});

test('protocols', () => {
  const h = firewall('pass tcp\nhost udp\ndrop icmp\nhost icmp6\ndefault pass');
  assert.is(verdict(h, f.tcp6('2001:db8::1', '2001:db8::2', 1, 2)), PASS);
  assert.is(verdict(h, f.udp6('2001:db8::1', '2001:db8::2', 1, 2)), HOST);
  assert.is(verdict(h, f.icmp4('10.0.0.1', '10.0.0.2')), DROP);
  assert.is(verdict(h, f.icmp6('fe80::1', 'ff02::1')), HOST);
  const g = firewall('pass ip4\nhost ip6');
  assert.is(verdict(g, f.icmp4('10.0.0.1', '10.0.0.2')), PASS);
  assert.is(verdict(g, f.icmp6('fe80::1', 'ff02::1')), HOST);
  assert.is(verdict(g, f.arp()), DROP);
  // ICMPv4 carried over IPv6 (protocol 1 in IPv6) is not 'icmp', which implies IPv4.
  assert.is(verdict(firewall('pass icmp'), f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 1, f.icmp(8, 0)))), DROP);
});

test('non-IP packets only match proto any with both addresses any', () => {
  const h = firewall('drop tcp\ndrop ip4\ndrop from 0.0.0.0/0\ndrop to ::/0\nhost any from any to any\ndefault pass');
  assert.is(verdict(h, f.arp()), HOST);
  assert.is(verdict(h, f.eth(0x88cc, [1, 2, 3, 4])), HOST); // LLDP
  assert.is(verdict(firewall('host tcp'), f.arp()), DROP);
});

test('IPv4 prefixes, including /0 and /32 edges', () => {
  const h = firewall('pass from 10.0.0.0/8 to 192.168.1.128/25\nhost to 172.16.0.1\ndrop from 0.0.0.0/0\ndefault host');
  assert.is(verdict(h, f.udp4('10.200.3.4', '192.168.1.200', 1, 2)), PASS);
  assert.is(verdict(h, f.udp4('10.200.3.4', '192.168.1.127', 1, 2)), DROP);
  assert.is(verdict(h, f.udp4('11.0.0.1', '172.16.0.1', 1, 2)), HOST);
  assert.is(verdict(h, f.udp4('11.0.0.1', '172.16.0.2', 1, 2)), DROP);
  assert.is(verdict(h, f.udp6('::1', '::2', 1, 2)), HOST, 'an IPv4 /0 does not match IPv6');
});

test('IPv6 prefixes on both halves of the address', () => {
  const h = firewall('pass from 2001:db8::/32 to ::1\nhost to 2001:db8:0:0:8000::/65\ndefault drop');
  assert.is(verdict(h, f.tcp6('2001:db8:ffff::9', '::1', 1, 2)), PASS);
  assert.is(verdict(h, f.tcp6('2001:db9::9', '::1', 1, 2)), DROP);
  assert.is(verdict(h, f.tcp6('2001:db8::9', '::2', 1, 2)), DROP);
  assert.is(verdict(h, f.tcp6('1::', '2001:db8::8000:0:0:1', 1, 2)), HOST);
  assert.is(verdict(h, f.tcp6('1::', '2001:db8::7fff:0:0:1', 1, 2)), DROP);
  assert.is(verdict(h, f.tcp4('32.1.13.184', '0.0.0.1', 1, 2)), DROP, 'IPv4 bytes equal to an IPv6 prefix do not match');
});

test('port ranges, both sides, boundaries', () => {
  const h = firewall('pass tcp to any port 80\nhost udp from any port 1000-2000 to any port 53\ndefault drop');
  assert.is(verdict(h, f.tcp4('1.1.1.1', '2.2.2.2', 5555, 80)), PASS);
  assert.is(verdict(h, f.tcp4('1.1.1.1', '2.2.2.2', 80, 81)), DROP);
  assert.is(verdict(h, f.udp4('1.1.1.1', '2.2.2.2', 80, 80)), DROP, 'udp is not tcp');
  assert.is(verdict(h, f.udp6('::1', '::2', 1000, 53)), HOST);
  assert.is(verdict(h, f.udp6('::1', '::2', 2000, 53)), HOST);
  assert.is(verdict(h, f.udp6('::1', '::2', 999, 53)), DROP);
  assert.is(verdict(h, f.udp6('::1', '::2', 2001, 53)), DROP);
  assert.is(verdict(h, f.udp6('::1', '::2', 1500, 54)), DROP);
  const edges = firewall('pass tcp to any port 0\nhost tcp to any port 65535');
  assert.is(verdict(edges, f.tcp4('1.1.1.1', '2.2.2.2', 9, 0)), PASS);
  assert.is(verdict(edges, f.tcp4('1.1.1.1', '2.2.2.2', 9, 65535)), HOST);
});

test('direction: in matches RX rings, out TX rings', () => {
  const rules = 'pass in tcp\nhost out tcp\ndefault drop';
  const pkt = f.tcp4('1.1.1.1', '2.2.2.2', 1, 2);
  assert.is(verdict(firewall(rules, 1), pkt), PASS);
  assert.is(verdict(firewall(rules, 0), pkt), HOST);
  const h = firewall(rules, 1);
  h.setDir(0);
  assert.is(verdict(h, pkt), HOST);
});

test('VLAN, QinQ, 0x9100 and deep tag stacks', () => {
  const h = firewall('pass tcp from 10.0.0.1 to any port 22\ndefault drop');
  for (const e of [{ vlans: [5] }, { vlans: [5, 6], tpid: 0x88a8 }, { vlans: [1, 2, 3], tpid: 0x9100 }, { vlans: Array(20).fill(7) }]) {
    assert.is(verdict(h, f.tcp4('10.0.0.1', '10.0.0.2', 1000, 22, e)), PASS, JSON.stringify(e));
    assert.is(verdict(h, f.tcp4('10.0.0.9', '10.0.0.2', 1000, 22, e)), DROP, JSON.stringify(e));
  }
  // QinQ: outer 802.1ad, inner 802.1Q.
  const qinq = f.eth(0x88a8, [0, 10, 0x81, 0, 0, 20, 0x08, 0x00, ...f.ipv4('10.0.0.1', '1.1.1.1', f.tcp(1, 22), { proto: 6 })]);
  assert.is(verdict(h, qinq), PASS);
});

test('MPLS label stacks, PPPoE sessions, LLC/SNAP', () => {
  const h = firewall('pass udp to 192.0.2.1 port 53\nhost tcp to 2001:db8::1\ndefault drop');
  const u = f.l3of(f.udp4('1.1.1.1', '192.0.2.1', 9, 53));
  const t = f.l3of(f.tcp6('::9', '2001:db8::1', 9, 80));
  assert.is(verdict(h, f.mpls([100], u)), PASS);
  assert.is(verdict(h, f.mpls([100, 200, 300], u)), PASS);
  assert.is(verdict(h, f.mpls([100, 200], t)), HOST);
  assert.is(verdict(h, f.pppoe(0x0021, u)), PASS);
  assert.is(verdict(h, f.pppoe(0x0057, t)), HOST);
  assert.is(verdict(h, f.pppoe(0xc021, u)), DROP, 'LCP is not IP');
  assert.is(verdict(h, f.snap(0x0800, u)), PASS);
  assert.is(verdict(h, f.snap(0x86dd, t)), HOST);
  // MPLS without bottom-of-stack: no network header.
  const noBottom = f.eth(0x8847, [0, 1, 0, 64, ...u]);
  assert.is(verdict(firewall('pass ip4\nhost any'), noBottom), HOST);
});

test('IPv4 options and fragments: ports only in the first fragment', () => {
  const h = firewall('pass tcp to any port 80\nhost tcp\ndefault drop');
  const opts = f.eth(f.ETH_IPV4, f.ipv4('1.1.1.1', '2.2.2.2', f.tcp(1, 80), { proto: 6, options: [1, 1, 1, 0, 0x94, 4, 0, 0] }));
  assert.is(verdict(h, opts), PASS);
  const firstFrag = f.eth(f.ETH_IPV4, f.ipv4('1.1.1.1', '2.2.2.2', f.tcp(1, 80), { proto: 6, mf: true }));
  assert.is(verdict(h, firstFrag), PASS);
  const laterFrag = f.eth(f.ETH_IPV4, f.ipv4('1.1.1.1', '2.2.2.2', f.tcp(1, 80), { proto: 6, fragOffset: 1480 }));
  assert.is(verdict(h, laterFrag), HOST, 'a non-first fragment has the protocol but no ports');
  // Padding after a short datagram is not a transport header.
  const short = f.eth(f.ETH_IPV4, f.ipv4('1.1.1.1', '2.2.2.2', f.tcp(1, 80), { proto: 6, totalLen: 22 }));
  assert.is(verdict(h, short), HOST);
  // Bad IHL / version: no network header.
  const badIhl = Uint8Array.from(f.tcp4('1.1.1.1', '2.2.2.2', 1, 80)); badIhl[14] = 0x44;
  assert.is(verdict(firewall('pass ip4\nhost any'), badIhl), HOST);
  const badVer = Uint8Array.from(f.tcp4('1.1.1.1', '2.2.2.2', 1, 80)); badVer[14] = 0x65;
  assert.is(verdict(firewall('pass ip4\nhost any'), badVer), HOST);
});

test('IPv6 extension headers are skipped; fragments with offset != 0 have no ports', () => {
  const h = firewall('pass udp to any port 53\nhost udp\ndrop ip6\ndefault pass');
  const dns = f.udp(9, 53);
  const chains: [number, number[]][][] = [
    [[0, f.ext8()]], [[0, f.ext8()], [43, f.ext8()], [60, f.ext8()]], [[51, f.ahExt()]], [[135, f.ext8()]],
    [[0, f.ext8()], [44, f.fragExt(0, true)], [60, f.ext8()]],
  ];
  for (const chain of chains) assert.is(verdict(h, f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 17, dns, chain))), PASS, JSON.stringify(chain.map((c) => c[0])));
  const later = f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 17, dns, [[44, f.fragExt(8, false)]]));
  assert.is(verdict(h, later), HOST);
  // A longer hop-by-hop header (length field 2 => 24 bytes).
  const long = f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 17, dns, [[0, [0, 2, ...Array(22).fill(1)]]]));
  assert.is(verdict(h, long), PASS);
  // An extension header running past the packet: IPv6 but unknown protocol.
  const trunc = f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 17, [], [[0, [0, 200, 0, 0, 0, 0, 0, 0]]]));
  assert.is(verdict(h, trunc), DROP);
  // Tunnels are not entered: IPv6-in-IPv4 has protocol 41.
  const tunnel = f.eth(f.ETH_IPV4, f.ipv4('1.1.1.1', '2.2.2.2', f.ipv6('::1', '::2', 17, dns), { proto: 41 }));
  assert.is(verdict(firewall('pass udp\nhost ip4'), tunnel), HOST);
});

test('truncated packets at every length: never a trap, ports need all 4 bytes', () => {
  const h = firewall('pass tcp to any port 80\npass udp to any port 80\nhost tcp\nhost udp\ndrop ip4\ndrop ip6\ndefault pass', 1);
  const samples = [
    f.tcp4('1.1.1.1', '2.2.2.2', 1, 80, { vlans: [1, 2] }), f.udp6('::1', '::2', 1, 80),
    f.eth(f.ETH_IPV6, f.ipv6('::1', '::2', 6, f.tcp(1, 80), [[0, f.ext8()], [44, f.fragExt(0, true)], [51, f.ahExt()]])),
    f.mpls([1, 2], f.l3of(f.tcp4('1.1.1.1', '2.2.2.2', 1, 80))), f.pppoe(0x0021, f.l3of(f.tcp4('1.1.1.1', '2.2.2.2', 1, 80))),
    f.arp(), f.snap(0x86dd, f.l3of(f.tcp6('::1', '::2', 1, 80))),
  ];
  for (const pkt of samples) {
    const cuts = Array.from({ length: pkt.length + 1 }, (_, n) => pkt.subarray(0, n));
    for (const poison of [0x00, 0xff, 0x50]) {
      const verdicts = h.run(cuts, 64, poison);
      assert.ok(verdicts.every((v) => v === DROP || v === PASS || v === HOST));
      // Whole packets: every sample reaches the port rule (ARP: the default).
      assert.is(verdicts[pkt.length], PASS, `sample ${samples.indexOf(pkt)}`);
      if (poison !== 0) assert.equal(verdicts, h.run(cuts, 64, 0), 'bytes after len do not change verdicts');
    }
  }
  // The TCP example: the port pair ends 4 bytes into the TCP header.
  const pkt = samples[0]!;
  const l4 = 14 + 8 + 20;
  const v = h.run(Array.from({ length: pkt.length + 1 }, (_, n) => pkt.subarray(0, n)), 64, 0xff);
  assert.is(v[l4 + 3], HOST, 'port pair cut short: protocol only');
  assert.is(v[l4 + 4], PASS, 'whole port pair: port rule matches');
  assert.is(v[l4], HOST, 'whole IPv4 header, no transport header: the protocol still matches');
  assert.is(v[l4 - 1], PASS, 'IPv4 header cut short: not IP, default');
  assert.is(v[13], PASS, 'under 14 bytes: not IP, default');
});

test('batches wrap around the ring and per-rule hits and stats add up', () => {
  const h = load('firewall', { numSlots: 8 });
  assert.is(h.init('pass tcp\nhost udp\ndefault drop'), 0);
  const pkts = [f.tcp4('1.1.1.1', '2.2.2.2', 1, 2), f.udp4('1.1.1.1', '2.2.2.2', 1, 2), f.arp()];
  let expected: number[] = [];
  for (let round = 0; round < 7; round++) {
    const batch = [pkts[round % 3]!, pkts[(round + 1) % 3]!, pkts[(round + 2) % 3]!, pkts[round % 3]!, pkts[0]!];
    const got = h.batch(batch).verdicts;
    expected = batch.map((p) => (p === pkts[0] ? PASS : p === pkts[1] ? HOST : DROP));
    assert.equal(got, expected, `round ${round}`);
  }
  const s = h.namedStats();
  assert.is(s['packets'], 35n);
  assert.is(s['passed']! + s['dropped']! + s['host']!, 35n);
  assert.is(s['defaulted'], s['dropped']);
  const hits = h.fn('firewall_hits')!() >>> 0;
  const v = h.view();
  assert.is(v.getBigUint64(hits, true), s['passed']);
  assert.is(v.getBigUint64(hits + 8, true), s['host']);
});

test.run();
