// The firewall rules language: every form compiles to the documented 80-byte table
// (filters/packages/firewall/README.md), every error names the line and the word.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load, Harness } from './harness.ts';
import { v4, v6, arp, eth, ipv4, udp, udp4, udp6, tcp4, ETH_IPV4 } from './frames.ts';

interface Rule {
  action: number; dir: number; family: number; proto: number;
  sportLo: number; sportHi: number; dportLo: number; dportHi: number; flags: number;
  src: number[]; srcMask: number[]; dst: number[]; dstMask: number[];
}

function compile(text: string): { h: Harness; rc: number } {
  const h = load('firewall');
  return { h, rc: h.init(text) };
}

function rules(h: Harness): Rule[] {
  const addr = h.fn('firewall_rules')!() >>> 0;
  const n = h.fn('firewall_rule_count')!();
  const v = h.view();
  const b = h.bytes();
  const arr = (off: number): number[] => Array.from(b.subarray(off, off + 16));
  return Array.from({ length: n }, (_, i) => {
    const r = addr + 80 * i;
    return {
      action: v.getUint8(r), dir: v.getUint8(r + 1), family: v.getUint8(r + 2), proto: v.getUint8(r + 3),
      sportLo: v.getUint16(r + 4, true), sportHi: v.getUint16(r + 6, true), dportLo: v.getUint16(r + 8, true), dportHi: v.getUint16(r + 10, true),
      flags: v.getUint32(r + 12, true), src: arr(r + 16), srcMask: arr(r + 32), dst: arr(r + 48), dstMask: arr(r + 64),
    };
  });
}

function one(text: string): Rule {
  const { h, rc } = compile(text);
  assert.is(rc, 0, `rules ${JSON.stringify(text)} rejected: ${h.logs.join(' | ')}`);
  const list = rules(h);
  assert.is(list.length, 1);
  return list[0]!;
}

const zero16 = Array(16).fill(0);
const pad16 = (b: number[]): number[] => [...b, ...Array(16 - b.length).fill(0)];
const mask = (bits: number, bytes: number): number[] =>
  pad16(Array.from({ length: bytes }, (_, i) => Math.max(0, Math.min(8, bits - 8 * i))).map((n) => (0xff << (8 - n)) & 0xff));

test('minimal rule: action only, everything any', () => {
  const r = one('pass');
  assert.equal(r, { action: 1, dir: 0, family: 0, proto: 0xff, sportLo: 0, sportHi: 65535, dportLo: 0, dportHi: 65535, flags: 0, src: zero16, srcMask: zero16, dst: zero16, dstMask: zero16 });
  assert.is(one('drop').action, 0);
  assert.is(one('host').action, 2);
});

test('directions', () => {
  assert.is(one('pass in').dir, 1);
  assert.is(one('pass out').dir, 2);
  assert.is(one('pass any').dir, 0);
});

test('protocols fix family and protocol number', () => {
  const cases: [string, number, number][] = [['any', 0, 0xff], ['ip4', 4, 0xff], ['ip6', 6, 0xff], ['tcp', 0, 6], ['udp', 0, 17], ['icmp', 4, 1], ['icmp6', 6, 58]];
  for (const [word, family, proto] of cases) {
    const r = one(`drop in ${word}`);
    assert.is(r.family, family, word);
    assert.is(r.proto, proto, word);
  }
});

test('IPv4 addresses with and without prefix, host bits cleared', () => {
  let r = one('pass from 10.1.2.3');
  assert.is(r.family, 4);
  assert.equal(r.src, pad16(v4('10.1.2.3')));
  assert.equal(r.srcMask, mask(32, 4));
  r = one('pass to 10.1.2.3/8');
  assert.equal(r.dst, pad16([10, 0, 0, 0]));
  assert.equal(r.dstMask, mask(8, 4));
  r = one('pass from 192.168.1.77/27 to 0.0.0.0/0');
  assert.equal(r.src, pad16([192, 168, 1, 64]));
  assert.equal(r.srcMask, mask(27, 4));
  assert.equal(r.dstMask, zero16);
  assert.is(r.family, 4);
});

test('IPv6 addresses: every :: form and a v4-mapped tail, compared with node:net', () => {
  const forms = ['::', '::1', '1::', '2001:db8::1', 'fe80::1:2:3:4', '2001:db8:0:0:1:0:0:1', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8',
    '::ffff:192.0.2.1', '64:ff9b::10.0.0.1', '1:2:3:4:5:6:1.2.3.4', 'ABCD:EF01::Ff'];
  for (const form of forms) {
    const r = one(`pass to ${form}`);
    assert.is(r.family, 6, form);
    assert.equal(r.dst, v6(form), form);
    assert.equal(r.dstMask, mask(128, 16), form);
  }
  const r = one('pass from 2001:db8:abcd:12ff::/52');
  assert.equal(r.src, v6('2001:db8:abcd:1000::'));
  assert.equal(r.srcMask, mask(52, 16));
  assert.equal(one('pass from ::/0').srcMask, zero16);
  assert.is(one('pass from ::/0').family, 6);
});

test('ports: single, range, on both sides, full range', () => {
  let r = one('pass tcp from any port 80');
  assert.equal([r.sportLo, r.sportHi, r.dportLo, r.dportHi, r.flags], [80, 80, 0, 65535, 1]);
  r = one('pass udp to any port 1024-65535');
  assert.equal([r.sportLo, r.sportHi, r.dportLo, r.dportHi, r.flags], [0, 65535, 1024, 65535, 1]);
  r = one('drop in tcp from 10.0.0.0/8 port 0-0 to 2001:db8::/32 port 22'.replace('2001:db8::/32', '10.9.9.9'));
  assert.equal([r.sportLo, r.sportHi, r.dportLo, r.dportHi, r.flags, r.dir, r.family, r.proto], [0, 0, 22, 22, 1, 1, 4, 6]);
  r = one('pass tcp from 2001:db8::/32 port 1-2 to 2001:db8:1::/48 port 443');
  assert.equal([r.sportLo, r.sportHi, r.dportLo, r.dportHi, r.family], [1, 2, 443, 443, 6]);
});

test('comments, blank lines, tabs, CRLF, default line and rule order', () => {
  const { h, rc } = compile('# header\r\n\r\n\tpass\ttcp   # trailing comment\r\n   \ndrop udp\n# default pass\ndefault host\r\nhost icmp');
  assert.is(rc, 0, h.logs.join(' | '));
  const list = rules(h);
  assert.equal(list.map((r) => [r.action, r.proto]), [[1, 6], [0, 17], [2, 1]]);
  assert.is(h.fn('firewall_default')!(), 2);
  assert.equal(h.logs, ['firewall: 3 rules, default host']);
});

test('empty config: no rules, default drop', () => {
  const { h, rc } = compile('');
  assert.is(rc, 0);
  assert.is(h.fn('firewall_rule_count')!(), 0);
  assert.is(h.fn('firewall_default')!(), 0);
  assert.is(compile('default pass').h.fn('firewall_default')!(), 1);
});

test('16384 rules are accepted, 16385 are not', () => {
  assert.is(compile('pass\n'.repeat(16384)).rc, 0);
  const { h, rc } = compile('pass\n'.repeat(16384) + 'drop\n');
  assert.is(rc, 1);
  assert.equal(h.logs, ["line 16385: too many rules (at most 16384) at 'drop'"]);
  assert.is(h.fn('firewall_rule_count')!(), 0);
});

const errors: [string, string][] = [
  ['allow tcp', "line 1: unknown action 'allow' (expected pass, drop, host, default or flow-verdicts)"],
  ['pass\n\nPASS', "line 3: unknown action 'PASS' (expected pass, drop, host, default or flow-verdicts)"],
  ['pass tcpx', "line 1: unexpected word 'tcpx' (expected <action> [in|out] [<proto>] [from <addr> [port <range>]] [to <addr> [port <range>]])"],
  ['pass tcp in', "line 1: unexpected word 'in' (expected <action> [in|out] [<proto>] [from <addr> [port <range>]] [to <addr> [port <range>]])"],
  ['pass to any from any', "line 1: unexpected word 'from' (expected <action> [in|out] [<proto>] [from <addr> [port <range>]] [to <addr> [port <range>]])"],
  ['pass from', "line 1: missing address after 'from' at end of line (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to # nothing', "line 1: missing address after 'to' at end of line (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass from 10.0.0.256', "line 1: bad address '10.0.0.256' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass from 10.0.0', "line 1: bad address '10.0.0' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass from 10.00.0.1', "line 1: bad address '10.00.0.1' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass from 10.0.0.0/33', "line 1: bad address '10.0.0.0/33' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass from 10.0.0.0/', "line 1: bad address '10.0.0.0/' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to ::/129', "line 1: bad address '::/129' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to 1::2::3', "line 1: bad address '1::2::3' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to 1:2:3:4:5:6:7:8:9', "line 1: bad address '1:2:3:4:5:6:7:8:9' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to 12345::', "line 1: bad address '12345::' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to :1::', "line 1: bad address ':1::' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to 1:2:3:4:5:6:7:', "line 1: bad address '1:2:3:4:5:6:7:' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to ::g', "line 1: bad address '::g' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass to 1:2:3:4:5:6:7:1.2.3.4', "line 1: bad address '1:2:3:4:5:6:7:1.2.3.4' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"],
  ['pass ip4 to ::1', "line 1: IPv6 address in an IPv4 rule '::1'"],
  ['pass icmp6 from 10.0.0.1', "line 1: IPv4 address in an IPv6 rule '10.0.0.1'"],
  ['pass from 10.0.0.1 to ::1', "line 1: IPv6 address in an IPv4 rule '::1'"],
  ['pass from any port 80', "line 1: port condition needs proto tcp or udp before 'port'"],
  ['pass icmp to any port 80', "line 1: port condition needs proto tcp or udp before 'port'"],
  ['pass tcp to any port', "line 1: missing port range after 'port' at end of line (expected N or N-M, 0 <= N <= M <= 65535)"],
  ['pass tcp to any port 80-20', "line 1: bad port range '80-20' (expected N or N-M, 0 <= N <= M <= 65535)"],
  ['pass tcp to any port 65536', "line 1: bad port range '65536' (expected N or N-M, 0 <= N <= M <= 65535)"],
  ['pass tcp to any port -5', "line 1: bad port range '-5' (expected N or N-M, 0 <= N <= M <= 65535)"],
  ['pass tcp to any port 1-', "line 1: bad port range '1-' (expected N or N-M, 0 <= N <= M <= 65535)"],
  ['pass tcp port 80', "line 1: unexpected word 'port' (expected <action> [in|out] [<proto>] [from <addr> [port <range>]] [to <addr> [port <range>]])"],
  ['default', "line 1: missing action after 'default' at end of line (expected pass, drop or host)"],
  ['default allow', "line 1: unknown default action 'allow' (expected pass, drop or host)"],
  ['default pass now', "line 1: unexpected word after default action 'now'"],
  ['default pass\npass\ndefault drop', "line 3: second default line at 'default'"],
];

test('every error names the line and the word, rejects, and leaves no rules', () => {
  for (const [text, message] of errors) {
    const { h, rc } = compile(text);
    assert.is(rc, 1, text);
    assert.equal(h.logs, [message], text);
    assert.is(h.fn('firewall_rule_count')!(), 0, text);
    assert.is(h.fn('firewall_default')!(), 0, text);
  }
});

test('an error after good rules still rejects the whole file', () => {
  const { h, rc } = compile('pass tcp\npass udp\ndrop from 1.2.3.4/99\n');
  assert.is(rc, 1);
  assert.equal(h.logs, ["line 3: bad address '1.2.3.4/99' (expected any, IPv4 address[/0..32] or IPv6 address[/0..128])"]);
});

test('the example rules file compiles', async () => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(new URL('../../filters/packages/firewall/example.rules', import.meta.url), 'utf8');
  const { h, rc } = compile(text);
  assert.is(rc, 0, h.logs.join(' | '));
  assert.is(rules(h).length, 8);
});

test('flow-verdicts: pass and drop of an unfragmented IPv4/IPv6 flow carry the flow bit 0x40, nothing else does', () => {
  const frames = [
    udp4('10.0.0.1', '10.0.0.2', 1000, 53), // pass udp
    tcp4('10.0.0.1', '10.0.0.2', 1000, 80), // default drop
    udp6('fd00::1', 'fd00::2', 1000, 53), // pass udp
    eth(ETH_IPV4, ipv4('10.0.0.1', '10.0.0.2', udp(1000, 53), { proto: 17, mf: true })), // a first fragment (MF): no flow
    arp(), // no IP: no flow
  ];
  const { h, rc } = compile('pass udp\ndefault drop\nflow-verdicts\n');
  assert.is(rc, 0, h.logs.join(' | '));
  assert.equal(h.run(frames), [0x41, 0x40, 0x41, 0x01, 0x00]);
  const plain = compile('pass udp\ndefault drop\n');
  assert.equal(plain.h.run(frames), [0x01, 0x00, 0x01, 0x01, 0x00]);
  const bad = compile('flow-verdicts always\n');
  assert.is(bad.rc, 1);
  assert.match(bad.h.logs.join(' | '), /line 1: unexpected word after flow-verdicts 'always'/);
});

test.run();
