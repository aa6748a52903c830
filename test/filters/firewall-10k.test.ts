// The firewall at 10,000 rules (filters/packages/firewall/README.md "Limits" and "How a
// packet finds its rule"): generated rule sets (IPv4/IPv6, prefixes of every length, single
// ports and ranges, every protocol and direction) give, packet by packet, the verdict and
// the per-rule hit a plain first-match scan (test/lib/rules-reference.ts) gives, on random
// packets built to hit and miss those rules and on the IPv4/IPv6 TCP/UDP packets of the
// tcpdump capture corpus; more than the maximum is refused; hostile configs are refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { load, Harness } from './harness.ts';
import * as f from './frames.ts';
import { readCapture, LINKTYPE_ETHERNET } from './pcap.ts';
import { parseRules, firstMatch, type RuleSet, type PacketHeaders } from '../lib/rules-reference.ts';

const MAX_RULES = 16384;
const NUM_SLOTS = 1024;

/** Deterministic PRNG (mulberry32), so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Packet { bytes: Uint8Array; headers: PacketHeaders }

const v4text = (b: Uint8Array): string => Array.from(b).join('.');
const v6text = (b: Uint8Array): string => Array.from({ length: 8 }, (_, i) => ((b[2 * i]! << 8) | b[2 * i + 1]!).toString(16)).join(':');

/** A random address near one of `pool` (same leading bits up to a random length), or fully random. */
function address(r: () => number, pool: Uint8Array[], bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) out[i] = Math.floor(r() * 256);
  if (r() < 0.85 && pool.length) {
    const base = pool[Math.floor(r() * pool.length)]!;
    const keep = r() < 0.5 ? bytes * 8 : Math.floor(r() * (bytes * 8 + 1));
    for (let bit = 0; bit < keep; bit++) {
      const byte = bit >> 3, m = 0x80 >> (bit & 7);
      out[byte] = (out[byte]! & ~m) | (base[byte]! & m);
    }
  }
  return out;
}

/** Address pools: a few networks so that rules and packets share prefixes. */
function pools(r: () => number): { v4: Uint8Array[]; v6: Uint8Array[] } {
  const v4: Uint8Array[] = [], v6: Uint8Array[] = [];
  for (let i = 0; i < 256; i++) v4.push(address(r, [], 4));
  for (let i = 0; i < 256; i++) v6.push(address(r, [], 16));
  return { v4, v6 };
}

const PORTS = [22, 53, 80, 443, 1024, 8080, 65535, 0];
function port(r: () => number): number {
  return r() < 0.6 ? PORTS[Math.floor(r() * PORTS.length)]! : Math.floor(r() * 65536);
}

/** One generated rule line of the README's language. */
function ruleLine(r: () => number, p: { v4: Uint8Array[]; v6: Uint8Array[] }): string {
  const action = ['pass', 'drop', 'host'][Math.floor(r() * 3)]!;
  const dir = ['', ' in', ' out'][Math.floor(r() * 3)]!;
  const proto = ['', ' any', ' ip4', ' ip6', ' tcp', ' tcp', ' udp', ' udp', ' icmp', ' icmp6'][Math.floor(r() * 10)]!;
  let family = proto === ' ip4' || proto === ' icmp' ? 4 : proto === ' ip6' || proto === ' icmp6' ? 6 : r() < 0.5 ? 4 : 6;
  const ports = proto === ' tcp' || proto === ' udp';
  let line = action + dir + proto;
  // Every prefix length 0..32 / 0..128 on one side of a tenth of the rules (the other side
  // then long, so that packets also miss); mostly long prefixes otherwise.
  const shortSide = r() < 0.1 ? Math.floor(r() * 2) : -1;
  const sides = shortSide >= 0 ? ['from', 'to'] : r() < 0.4 ? ['from'] : r() < 0.67 ? ['to'] : ['from', 'to'];
  for (const [k, side] of sides.entries()) {
    if (shortSide < 0 && sides.length === 2 && k === 0 && r() < 0.1) line += ` ${side} any`;
    else {
      const bytes = family === 4 ? 4 : 16;
      const a = address(r, family === 4 ? p.v4 : p.v6, bytes);
      const len = k === shortSide ? Math.floor(r() * (bytes * 8 + 1)) : bytes * 8 - Math.floor(r() * 9);
      line += ` ${side} ${family === 4 ? v4text(a) : v6text(a)}/${len}`;
    }
    if (ports && r() < 0.5) {
      const lo = port(r);
      const hi = r() < 0.5 ? lo : Math.min(65535, lo + Math.floor(r() * 2000));
      line += ` port ${lo === hi ? lo : `${lo}-${hi}`}`;
    }
  }
  void family;
  return line;
}

/** A random packet (TCP/UDP/ICMP over IPv4 or IPv6, or ARP) with the headers the README says are matched. */
function randomPacket(r: () => number, p: { v4: Uint8Array[]; v6: Uint8Array[] }): Packet {
  const kind = Math.floor(r() * 20);
  if (kind === 0) return { bytes: f.arp(), headers: { family: 0, src: new Uint8Array(0), dst: new Uint8Array(0), proto: -1, sport: -1, dport: -1 } };
  const six = kind % 2 === 1;
  const src = address(r, six ? p.v6 : p.v4, six ? 16 : 4), dst = address(r, six ? p.v6 : p.v4, six ? 16 : 4);
  const s = six ? v6text(src) : v4text(src), d = six ? v6text(dst) : v4text(dst);
  const sport = port(r), dport = port(r);
  const which = Math.floor(r() * 5);
  if (which <= 1) return { bytes: six ? f.tcp6(s, d, sport, dport) : f.tcp4(s, d, sport, dport), headers: { family: six ? 6 : 4, src, dst, proto: 6, sport, dport } };
  if (which <= 3) return { bytes: six ? f.udp6(s, d, sport, dport) : f.udp4(s, d, sport, dport), headers: { family: six ? 6 : 4, src, dst, proto: 17, sport, dport } };
  return six
    ? { bytes: f.icmp6(s, d), headers: { family: 6, src, dst, proto: 58, sport: -1, dport: -1 } }
    : { bytes: f.icmp4(s, d), headers: { family: 4, src, dst, proto: 1, sport: -1, dport: -1 } };
}

/** Untagged Ethernet IPv4 (complete, not a fragment) and IPv6 TCP/UDP packets of the capture corpus. */
function realPackets(): Packet[] {
  const dir = join(new URL('../pcaps/tcpdump-tests', import.meta.url).pathname);
  const out: Packet[] = [];
  for (const name of readdirSync(dir).sort()) {
    let cap;
    try { cap = readCapture(join(dir, name)); } catch { continue; }
    if (cap.linkType !== LINKTYPE_ETHERNET) continue;
    for (const b of cap.packets) {
      if (b.length < 14 + 40 || b.length > 2048) continue;
      const type = (b[12]! << 8) | b[13]!;
      if (type === 0x0800 && b[14] === 0x45) {
        const total = (b[16]! << 8) | b[17]!, proto = b[23]!, frag = ((b[20]! << 8) | b[21]!) & 0x3fff;
        if (frag !== 0 || total < 28 || 14 + total > b.length || (proto !== 6 && proto !== 17)) continue;
        out.push({ bytes: b, headers: { family: 4, src: b.slice(26, 30), dst: b.slice(30, 34), proto, sport: (b[34]! << 8) | b[35]!, dport: (b[36]! << 8) | b[37]! } });
      } else if (type === 0x86dd && (b[14]! >> 4) === 6) {
        const plen = (b[18]! << 8) | b[19]!, nh = b[20]!;
        if ((nh !== 6 && nh !== 17) || plen < 4 || 54 + plen > b.length) continue;
        out.push({ bytes: b, headers: { family: 6, src: b.slice(22, 38), dst: b.slice(38, 54), proto: nh, sport: (b[54]! << 8) | b[55]!, dport: (b[56]! << 8) | b[57]! } });
      }
    }
  }
  return out;
}

/** Rules text of `n` generated rules (plus a default), seeded. */
function generated(seed: number, n: number, extraPool: Packet[] = []): { text: string; pool: { v4: Uint8Array[]; v6: Uint8Array[] } } {
  const r = rng(seed);
  const pool = pools(r);
  for (const p of extraPool) (p.headers.family === 4 ? pool.v4 : pool.v6).push(p.headers.src, p.headers.dst);
  const lines = Array.from({ length: n }, () => ruleLine(r, pool));
  lines.push(`default ${['pass', 'drop', 'host'][seed % 3]}`);
  return { text: lines.join('\n') + '\n', pool };
}

/** Runs `packets` through the firewall on a ring of direction `dir` (a new instance, or `on`
 *  loaded again with `text`) and compares each verdict and every per-rule hit counter with
 *  the reference first-match scan. */
function agree(text: string, set: RuleSet, packets: Packet[], dir: 1 | 2, label: string, on?: Harness): void {
  const h: Harness = on ?? load('firewall', { dir, numSlots: NUM_SLOTS });
  assert.is(h.init(text), 0, h.logs.join(' | '));
  assert.is(h.fn('firewall_rule_count')!(), set.rules.length);
  const verdicts = h.run(packets.map((p) => p.bytes), NUM_SLOTS - 1);
  const expectedHits = new Array<number>(set.rules.length).fill(0);
  let defaulted = 0, wrong = 0;
  for (let i = 0; i < packets.length; i++) {
    const at = firstMatch(set, packets[i]!.headers, dir);
    const want = at < 0 ? set.defaultAction : set.rules[at]!.action;
    if (at < 0) defaulted++; else expectedHits[at]!++;
    if (verdicts[i] !== want && wrong++ < 5) {
      const hd = packets[i]!.headers;
      assert.unreachable(`${label}: packet ${i} (family ${hd.family} proto ${hd.proto} ${Array.from(hd.src)} -> ${Array.from(hd.dst)} ports ${hd.sport}/${hd.dport}) got verdict ${verdicts[i]}, first match is ${at < 0 ? 'none (default)' : `line ${set.rules[at]!.line}`} giving ${want}`);
    }
  }
  const hitsAt = h.fn('firewall_hits')!() >>> 0;
  const v = h.view();
  for (let i = 0; i < set.rules.length; i++) {
    const got = Number(v.getBigUint64(hitsAt + 8 * i, true));
    if (got !== expectedHits[i]) assert.unreachable(`${label}: rule on line ${set.rules[i]!.line} hit ${got} times, the reference scan says ${expectedHits[i]}`);
  }
  const stats = h.namedStats();
  assert.is(stats['packets'], BigInt(packets.length), label);
  assert.is(stats['defaulted'], BigInt(defaulted), label);
  assert.is(stats['dropped']! + stats['passed']! + stats['host']!, BigInt(packets.length), label);
}

test('10,000 generated rules: random packets get the verdicts and hits of a first-match scan, both directions', () => {
  for (const seed of [1]) {
    const { text, pool } = generated(seed, 10000);
    const set = parseRules(text);
    assert.is(set.rules.length, 10000);
    const r = rng(seed * 7919);
    const packets = Array.from({ length: 5000 }, () => randomPacket(r, pool));
    const hits = packets.filter((p) => firstMatch(set, p.headers, 1) >= 0).length;
    assert.ok(hits > 1000 && hits < 4900, `the generated packets both hit and miss the rules (${hits} of ${packets.length} hit)`);
    agree(text, set, packets, 1, `seed ${seed}, in`);
    agree(text, set, packets, 2, `seed ${seed}, out`);
  }
});

test('10,000 generated rules: the IPv4/IPv6 TCP/UDP packets of the capture corpus agree with a first-match scan', () => {
  const real = realPackets();
  assert.ok(real.length > 1000, `corpus packets: ${real.length}`);
  const { text } = generated(3, 10000, real);
  agree(text, parseRules(text), real, 1, 'corpus');
});

test('many rules of one shape: hosts, exact ports and long chains agree with a first-match scan', () => {
  // 9,000 rules in few tuples (the bench's kind of rule set) and 1,000 rules sharing one key.
  const r = rng(11);
  const pool = pools(r);
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) lines.push(`drop in from ${v4text(address(r, pool.v4, 4))}`);
  for (let i = 0; i < 3000; i++) lines.push(`pass tcp to ${v4text(address(r, pool.v4, 4))}/24 port ${port(r)}`);
  for (let i = 0; i < 2000; i++) lines.push(`host udp from ${v6text(address(r, pool.v6, 16))}/64 to any port ${port(r)}`);
  for (let i = 0; i < 1000; i++) lines.push(`drop tcp to any port ${1000 + (i % 7)}-${2000 + i}`); // one long chain
  lines.push('pass tcp from 0.0.0.0/0', 'default host');
  const text = lines.join('\n');
  const set = parseRules(text);
  const packets = Array.from({ length: 6000 }, () => randomPacket(r, pool));
  agree(text, set, packets, 1, 'shapes, in');
  agree(text, set, packets, 2, 'shapes, out');
});

test('flow cache: repeated packets agree with a first-match scan, and a reload forgets every cached verdict', () => {
  // The same summaries again and again (cache hits, and slots shared by several flows), then
  // the same packets after a load of the same rules with every action and the default
  // changed (a verdict surviving from the old tables would show), then the first set again.
  const { text, pool } = generated(6, 10000);
  const rotate: Record<string, string> = { pass: 'drop', drop: 'host', host: 'pass' };
  const other = text.replace(/^(pass|drop|host|default (?:pass|drop|host))\b/gm, (w) => w.startsWith('default') ? `default ${rotate[w.slice(8)]}` : rotate[w]!);
  assert.is.not(other, text);
  const r = rng(6007);
  const once = Array.from({ length: 1500 }, () => randomPacket(r, pool));
  const packets = [...once, ...once.slice().reverse(), ...once];
  for (const dir of [1, 2] as const) {
    const h = load('firewall', { dir, numSlots: NUM_SLOTS });
    agree(text, parseRules(text), packets, dir, `cache, dir ${dir}`, h);
    agree(other, parseRules(other), packets, dir, `cache after reload, dir ${dir}`, h);
    agree(text, parseRules(text), packets, dir, `cache after second reload, dir ${dir}`, h);
  }
});

test(`${MAX_RULES} rules load; one more is refused with one line naming the limit, leaving no rules`, () => {
  const { text } = generated(4, MAX_RULES);
  const h = load('firewall');
  assert.is(h.init(text), 0, h.logs.join(' | '));
  assert.is(h.fn('firewall_rule_count')!(), MAX_RULES);
  const over = text.replace(/default \w+\n$/, '') + 'pass tcp\n';
  const g = load('firewall');
  assert.is(g.init(over), 1);
  assert.equal(g.logs, [`line ${MAX_RULES + 1}: too many rules (at most ${MAX_RULES}) at 'pass'`]);
  assert.is(g.fn('firewall_rule_count')!(), 0);
  // refused tables behave as empty ones: the default (drop) for every packet
  assert.equal(g.batch([f.tcp4('10.0.0.1', '10.0.0.2', 1, 2), f.arp()]).verdicts, [0, 0]);
});

test('hostile configs are refused with one line, and a refused load after a good one leaves no rules', () => {
  const h = load('firewall');
  assert.is(h.init(generated(5, 10000).text), 0);
  const hostile: [Uint8Array | string, RegExp][] = [
    [new Uint8Array([0x70, 0x61, 0x73, 0x73, 0x20, 0xff, 0xfe, 0x00, 0x1b, 0x5b, 0x32, 0x4a]), /^line 1: unexpected word '.*'/],
    ['pass from ' + '1'.repeat(5000), /^line 1: bad address '1+/],
    ['pass tcp to any port ' + '9'.repeat(40), /^line 1: bad port range '9+/],
    ['drop\n'.repeat(MAX_RULES * 2), /^line 16385: too many rules \(at most 16384\)/],
    ['pass from 255.255.255.255/32\x00drop', /^line 1: bad address/],
  ];
  for (const [config, expected] of hostile) {
    h.logs.length = 0;
    assert.is(h.init(config), 1, String(expected));
    assert.is(h.logs.length, 1, String(expected));
    assert.match(h.logs[0]!, expected);
    assert.is(h.fn('firewall_rule_count')!(), 0);
    assert.equal(h.batch([f.tcp4('10.0.0.1', '10.0.0.2', 1, 2)]).verdicts, [0]);
  }
});

test.run();
