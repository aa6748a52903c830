// test/lib/tshark.ts: how tshark's records become the headers the firewall matches on.
// Synthetic records for the derivation rules, then real captures inspected by hand with
// `tshark -V` (VLAN, QinQ, MPLS, PPPoE, IPv6 extension headers, fragments, ICMP errors,
// GRE, truncated and bogus headers, encapsulations the firewall does not enter).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { FIELDS, fromFields, parseFieldLines, dissect, dissectConcatenated, listCaptures, markedMalformed, type FieldValues, type TsharkPacket } from '../lib/tshark.ts';
import { root } from './nmwasm-runner.ts';

const corpus = join(root, 'test', 'pcaps', 'tcpdump-tests');

function record(values: Partial<Record<(typeof FIELDS)[number], string>>): FieldValues {
  const line = FIELDS.map((f) => values[f] ?? '').join('\t');
  return parseFieldLines(line)[0]!;
}

/** "family src -> dst proto sport/dport" with dotted IPv4 and compact-enough IPv6 hex. */
function summary(p: TsharkPacket): string {
  const addr = (a: Uint8Array) => (a.length === 4 ? a.join('.') : a.length === 16 ? Buffer.from(a).toString('hex') : '-');
  return `${p.family} ${addr(p.src)} -> ${addr(p.dst)} ${p.proto} ${p.sport}/${p.dport}`;
}

test('synthetic: the outermost layer gives the header; inner occurrences are ignored', () => {
  const icmpError = record({ 'frame.number': '1', 'frame.protocols': 'eth:ethertype:ip:icmp:ip:tcp', 'ip.version': '4;4', 'ip.src': '10.0.0.1;10.0.0.2',
    'ip.dst': '10.0.0.3;10.0.0.4', 'ip.proto': '1;6', 'ip.frag_offset': '0;0', 'tcp.srcport': '80', 'tcp.dstport': '81' });
  assert.is(summary(fromFields(icmpError)), '4 10.0.0.1 -> 10.0.0.3 1 -1/-1');
  const sixInFour = record({ 'frame.protocols': 'eth:ethertype:ip:ipv6:udp', 'ip.version': '4;6', 'ip.src': '1.2.3.4', 'ip.dst': '5.6.7.8', 'ip.proto': '41',
    'ip.frag_offset': '0', 'ipv6.version': '6', 'ipv6.src': '::1', 'ipv6.dst': '::2', 'ipv6.nxt': '17', 'udp.srcport': '1', 'udp.dstport': '2' });
  assert.is(summary(fromFields(sixInFour)), '4 1.2.3.4 -> 5.6.7.8 41 -1/-1', 'tunnels are not entered');
});

test('synthetic: IPv6 extension chains take the k-th occurrence of each header kind', () => {
  const chain = record({ 'frame.protocols': 'eth:ethertype:ipv6:ipv6.dstopts:ipv6.routing:ipv6.dstopts:tcp', 'ipv6.version': '6', 'ipv6.src': 'fe80::1',
    'ipv6.dst': 'ff02::1', 'ipv6.nxt': '60', 'ipv6.dstopts.nxt': '43;6', 'ipv6.routing.nxt': '60', 'tcp.srcport': '7', 'tcp.dstport': '8' });
  assert.is(summary(fromFields(chain)), '6 fe800000000000000000000000000001 -> ff020000000000000000000000000001 6 7/8');
  const fragment = record({ 'frame.protocols': 'eth:ethertype:ipv6:ipv6.fraghdr:data', 'ipv6.version': '6', 'ipv6.src': '::1', 'ipv6.dst': '::2',
    'ipv6.nxt': '44', 'ipv6.fraghdr.nxt': '17', 'ipv6.fraghdr.offset': '185' });
  const f = fromFields(fragment);
  assert.is(f.proto, 17);
  assert.is(f.sport, -1);
  assert.is(f.note, 'non-first fragment');
  const cut = record({ 'frame.protocols': 'eth:ethertype:ipv6:ipv6.hopopts', 'ipv6.version': '6', 'ipv6.src': '::1', 'ipv6.dst': '::2', 'ipv6.nxt': '0' });
  assert.is(fromFields(cut).proto, -1, 'a chain cut short has no protocol');
  assert.is(fromFields(cut).family, 6);
});

test('synthetic: only the README encapsulations are entered', () => {
  const base = { 'ip.version': '4', 'ip.src': '1.1.1.1', 'ip.dst': '2.2.2.2', 'ip.proto': '17', 'ip.frag_offset': '0', 'udp.srcport': '1', 'udp.dstport': '2' };
  for (const stack of ['eth:ethertype:vlan:ethertype:ieee8021ad:ethertype:ip:udp', 'eth:ethertype:mpls:ip:udp', 'eth:ethertype:pppoes:ppp:ip:udp', 'eth:llc:ip:udp']) {
    assert.is(fromFields(record({ ...base, 'frame.protocols': stack })).family, 4, stack);
  }
  for (const stack of ['eth:ethertype:macsec:ethertype:ip:udp', 'eth:ethertype:nsh:ip:udp', 'eth:ethertype:mpls:pwethheuristic:pwethcw:eth:ethertype:ip:udp', 'eth:ethertype:arp']) {
    assert.is(fromFields(record({ ...base, 'frame.protocols': stack })).family, 0, stack);
  }
});

test('synthetic: malformed marks', () => {
  assert.ok(markedMalformed(fromFields(record({ 'frame.protocols': 'eth', '_ws.malformed': '_ws.malformed' }))));
  assert.ok(markedMalformed(fromFields(record({ 'frame.protocols': 'eth:ethertype:ip', '_ws.expert.severity': '4194304;8388608' }))));
  assert.not.ok(markedMalformed(fromFields(record({ 'frame.protocols': 'eth:ethertype:ip', '_ws.expert.severity': '4194304;6291456' }))));
});

const HAND_CHECKED: [file: string, frame: number, expected: string][] = [
  ['OLSRv1_HNA_sgw_1.pcap', 1, '4 172.29.175.220 -> 255.255.255.255 17 698/698'], // 802.1Q
  ['802.1ad_QinQ.pcap', 1, '0 - -> - -1 -1/-1'], // 802.1ad + 802.1Q, ARP inside
  ['tok2str-oobr-2.pcap', 1, '4 192.168.0.1 -> 127.0.0.1 17 3503/3503'], // MPLS
  ['pppoes.pcap', 1, '0 - -> - -1 -1/-1'], // PPPoE session carrying LCP
  ['dcb_ets.pcap', 1, '6 fe800000000000000a0027fffe46e884 -> ff020000000000000000000000000016 58 -1/-1'], // hop-by-hop
  ['ipv6-routing-header.pcap', 3, '6 220000000000024402123ffffeae22f7 -> 22000000000002400002000000000004 17 5645/5642'], // routing header
  ['OSPFv3_with_AH.pcap', 1, '6 fe800000000000000000000000000001 -> ff020000000000000000000000000005 89 -1/-1'], // AH
  ['afs.pcap', 29, '4 131.151.32.21 -> 131.151.1.59 1 -1/-1'], // ICMP port unreachable quoting UDP 7003 -> 1792
  ['afs.pcap', 125, '4 131.151.1.146 -> 131.151.32.21 17 7000/7001'], // first fragment: ports
  ['afs.pcap', 126, '4 131.151.1.146 -> 131.151.32.21 17 -1/-1'], // offset 185: no ports
  ['various_gre.pcap', 11, '4 10.172.64.7 -> 10.172.64.6 47 -1/-1'], // GRE (not entered)
  ['icmpv6-rfc7112.pcap', 1, '6 200106300042011002a098fffe15ece7 -> 2001063000420110ae1f6bfffe469eda 58 -1/-1'], // ICMPv6 quoting a fragment
  ['ipv6_39_byte_header.pcap', 1, '0 - -> - -1 -1/-1'], // IPv6 header cut at 25 bytes
  ['ipv4_invalid_hdr_length.pcap', 1, '0 - -> - -1 -1/-1'], // IHL 4
  ['kday1.pcap', 1, '0 - -> - -1 -1/-1'], // IPv4 ethertype, version 6
  ['macsec-short-valid.pcap', 1, '0 - -> - -1 -1/-1'], // IP behind MACsec
  ['arista_ether.pcap', 1, '0 - -> - -1 -1/-1'], // IP behind Arista AVSP
  ['bgp_vpn_rt-oobr.pcap', 3, '0 - -> - -1 -1/-1'], // zero-length frame
  ['bigtcp-ipv6.pcap', 1, '6 260413804091ce00000000000000000b -> 260413804091ce00000000000000000d 6 -1/-1'], // payload length 0 (BIG TCP)
];

test('captures inspected by hand', () => {
  const { captures } = listCaptures(corpus, [...new Set(HAND_CHECKED.map(([file]) => file))]);
  const byFile = dissectConcatenated(captures);
  for (const [file, frame, expected] of HAND_CHECKED) {
    const p = byFile.get(file)![frame - 1]!;
    assert.is(p.frame, frame);
    assert.is(summary(p), expected, `${file} frame ${frame} [${p.protocols}] ${p.note}`);
  }
});

test('one tshark run over concatenated captures gives the same headers as one run per file', () => {
  // The first two dissect differently above the transport layer when concatenated.
  const names = ['bgp-shutdown-msg-variations.pcap', 'smb_data_print-segv.pcap', 'afs.pcap', 'icmpv6-rfc7112.pcap'];
  const { captures } = listCaptures(corpus, names);
  assert.is(captures.length, names.length);
  const together = dissectConcatenated(captures);
  for (const c of captures) {
    const alone = dissect(c.path);
    assert.equal(together.get(c.name)!.map(summary), alone.map(summary), c.name);
  }
});

test.run();
