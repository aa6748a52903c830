// The reference rules parser and evaluator (test/lib/rules-reference.ts) on their own:
// accepted and refused files, address and port parsing, and verdicts on synthetic headers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseRules, parseIPv6, parseIPv4, parseAddress, parsePortRange, verdict, firstMatch, RulesError, DROP, PASS, HOST, type PacketHeaders } from '../lib/rules-reference.ts';
import { ACCEPTED, REJECTED } from './rules-cases.ts';

const hex = (b: Uint8Array | null | undefined): string => (b ? Buffer.from(b).toString('hex') : 'null');

function packet(family: 0 | 4 | 6, src: string, dst: string, proto: number, sport = -1, dport = -1): PacketHeaders {
  const parse = family === 4 ? parseIPv4 : parseIPv6;
  return { family, src: family ? parse(src)! : new Uint8Array(0), dst: family ? parse(dst)! : new Uint8Array(0), proto, sport, dport };
}
const tcp4 = (s: string, d: string, sp: number, dp: number) => packet(4, s, d, 6, sp, dp);
const udp6 = (s: string, d: string, sp: number, dp: number) => packet(6, s, d, 17, sp, dp);
const NON_IP = packet(0, '', '', -1);

test('accepted rules files parse', () => {
  for (const text of ACCEPTED) {
    try {
      parseRules(text);
    } catch (e) {
      assert.unreachable(`${JSON.stringify(text.slice(0, 80))} was refused: ${(e as Error).message}`);
    }
  }
});

test('refused rules files name the line and the offending word', () => {
  for (const { text, line, word } of REJECTED) {
    let error: unknown;
    try {
      parseRules(text);
    } catch (e) {
      error = e;
    }
    assert.instance(error, RulesError, `${JSON.stringify(text.slice(0, 80))} was accepted`);
    const e = error as RulesError;
    assert.is(e.line, line, `line of the error for ${JSON.stringify(text.slice(0, 80))}: ${e.message}`);
    assert.is(e.word, word, `word of the error for ${JSON.stringify(text.slice(0, 80))}: ${e.message}`);
    assert.ok(e.message.includes(`line ${line}`) && e.message.includes(`'${word}'`), e.message);
  }
});

test('IPv6 text forms', () => {
  assert.is(hex(parseIPv6('::')), '0'.repeat(32));
  assert.is(hex(parseIPv6('::1')), '0'.repeat(31) + '1');
  assert.is(hex(parseIPv6('1::')), '0001' + '0'.repeat(28));
  assert.is(hex(parseIPv6('2001:db8::8:800:200c:417a')), '20010db80000000000080800200c417a');
  assert.is(hex(parseIPv6('1:2:3:4:5:6:7:8')), '00010002000300040005000600070008');
  assert.is(hex(parseIPv6('::ffff:192.0.2.1')), '00000000000000000000ffffc0000201');
  for (const bad of ['1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', ':1::', '1::2::3', 'g::', '12345::', '1:2:3:4:5:6:7::8', '::1.2.3', '1.2.3.4::']) {
    assert.is(parseIPv6(bad), null, bad);
  }
});

test('prefixes mask the address; ports are N or N-M', () => {
  const a = parseAddress('10.1.2.3/9')!;
  assert.is(hex(a.addr), '0a000000');
  assert.is(hex(a.mask), 'ff800000');
  const b = parseAddress('2001:db8:0:0:8fff::/65')!;
  assert.is(hex(b.mask), 'ffffffffffffffff8000000000000000');
  assert.is(hex(b.addr), '20010db8000000008000000000000000');
  assert.is(parseAddress('any'), null);
  assert.is(parseAddress('1.2.3.4/-1'), undefined);
  assert.equal(parsePortRange('80'), [80, 80]);
  assert.equal(parsePortRange('0-65535'), [0, 65535]);
  assert.is(parsePortRange('80-'), undefined);
  assert.is(parsePortRange('0x50'), undefined);
});

test('first match wins, default drop when absent', () => {
  assert.is(verdict(parseRules(''), tcp4('1.1.1.1', '2.2.2.2', 1, 2)), DROP);
  assert.is(verdict(parseRules('default host'), NON_IP), HOST);
  const set = parseRules('host tcp\ndrop tcp\ndefault pass');
  assert.is(verdict(set, tcp4('1.1.1.1', '2.2.2.2', 1, 2)), HOST);
  assert.is(firstMatch(set, udp6('::1', '::2', 1, 2)), -1);
  assert.is(verdict(set, udp6('::1', '::2', 1, 2)), PASS);
});

test('packets without a network header match only proto any with both addresses any', () => {
  const set = parseRules('drop tcp\ndrop ip4\ndrop ip6\ndrop from 0.0.0.0/0\ndrop to ::/0\nhost any from any to any\ndefault pass');
  assert.is(verdict(set, NON_IP), HOST);
  assert.is(verdict(parseRules('pass icmp6\npass ip4'), NON_IP), DROP);
});

test('families: tcp/udp match both unless an address fixes one; icmp is IPv4, icmp6 IPv6', () => {
  const set = parseRules('pass tcp from 10.0.0.0/8\nhost tcp\ndefault drop');
  assert.is(verdict(set, tcp4('10.9.9.9', '1.1.1.1', 1, 2)), PASS);
  assert.is(verdict(set, packet(6, '::1', '::2', 6, 1, 2)), HOST);
  assert.is(verdict(parseRules('pass icmp'), packet(6, '::1', '::2', 1)), DROP, 'protocol 1 over IPv6 is not icmp');
  assert.is(verdict(parseRules('pass icmp6'), packet(6, '::1', '::2', 58)), PASS);
  assert.is(verdict(parseRules('pass icmp6'), packet(4, '1.1.1.1', '2.2.2.2', 58)), DROP);
  assert.is(verdict(parseRules('pass from 0.0.0.0/0'), packet(6, '::1', '::2', 17, 1, 2)), DROP, 'an IPv4 /0 does not match IPv6');
});

test('prefix boundaries on both address families', () => {
  const set = parseRules('pass from 10.0.0.0/9 to 192.168.1.128/25\nhost to 2001:db8:0:0:8000::/65\ndefault drop');
  assert.is(verdict(set, tcp4('10.127.255.255', '192.168.1.128', 1, 2)), PASS);
  assert.is(verdict(set, tcp4('10.128.0.0', '192.168.1.128', 1, 2)), DROP);
  assert.is(verdict(set, tcp4('10.0.0.1', '192.168.1.127', 1, 2)), DROP);
  assert.is(verdict(set, udp6('::1', '2001:db8::8000:0:0:1', 1, 2)), HOST);
  assert.is(verdict(set, udp6('::1', '2001:db8::7fff:0:0:1', 1, 2)), DROP);
});

test('ports: both ends of a range, and no match without a port pair', () => {
  const set = parseRules('pass tcp from any port 1024-2048 to any port 80\nhost udp to any port 53\ndefault drop');
  assert.is(verdict(set, tcp4('1.1.1.1', '2.2.2.2', 1024, 80)), PASS);
  assert.is(verdict(set, tcp4('1.1.1.1', '2.2.2.2', 2048, 80)), PASS);
  assert.is(verdict(set, tcp4('1.1.1.1', '2.2.2.2', 2049, 80)), DROP);
  assert.is(verdict(set, tcp4('1.1.1.1', '2.2.2.2', 1023, 80)), DROP);
  assert.is(verdict(set, tcp4('1.1.1.1', '2.2.2.2', 1500, 81)), DROP);
  assert.is(verdict(set, udp6('::1', '::2', 9, 53)), HOST);
  assert.is(verdict(set, packet(4, '1.1.1.1', '2.2.2.2', 17)), DROP, 'a fragment or a truncated header has no ports');
  assert.is(verdict(parseRules('pass udp'), packet(4, '1.1.1.1', '2.2.2.2', 17)), PASS, 'a rule without ports still matches');
});

test('direction: in matches RX rings, out TX rings, none both', () => {
  const set = parseRules('pass in tcp\nhost out tcp\ndefault drop');
  const p = tcp4('1.1.1.1', '2.2.2.2', 1, 2);
  assert.is(verdict(set, p, 1), PASS);
  assert.is(verdict(set, p, 2), HOST);
  assert.is(verdict(parseRules('pass udp'), udp6('::1', '::2', 1, 2), 2), PASS);
});

test.run();
