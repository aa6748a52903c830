// An independent reference for the firewall example (filters/packages/firewall/README.md):
// a parser of the rules language and a first-match evaluator over plain per-packet records
// (built from tshark's dissection by test/lib/tshark.ts). Written from the README alone, not
// from the AssemblyScript filter, so that the two can be compared packet by packet.
//
// Choices the README leaves open (kept in one place so they are easy to reconcile):
// - `#` starts a comment anywhere on a line; words are separated by spaces and tabs; keywords
//   are lower-case only.
// - An address may have host bits outside its prefix (10.1.2.3/8); it is masked at load.
// - IPv6 addresses: 1-4 hex digits per group, at most one `::`, and an optional trailing
//   dotted IPv4 part (::ffff:192.0.2.1). IPv4: exactly four decimal parts 0..255, no sign.
// - `default` lines do not count towards the 16384-rule limit.

export const DROP = 0, PASS = 1, HOST = 2;
export type Action = typeof DROP | typeof PASS | typeof HOST;
export type Family = 0 | 4 | 6;

/** An address condition: a packet address `a` matches when (a & mask) == addr, byte by byte. */
export interface AddressMatch {
  family: 4 | 6;
  addr: Uint8Array;
  mask: Uint8Array;
}

export interface Rule {
  line: number;
  action: Action;
  /** 0 any, 1 in (RX rings), 2 out (TX rings) */
  dir: 0 | 1 | 2;
  /** 0 when neither the protocol nor an address fixes the family */
  family: Family;
  /** IP protocol number, or -1 for any */
  proto: number;
  src: AddressMatch | null;
  dst: AddressMatch | null;
  sport: [number, number] | null;
  dport: [number, number] | null;
}

export interface RuleSet {
  rules: Rule[];
  defaultAction: Action;
}

/** What the firewall matches a packet on (see "What a packet is matched on" in the README). */
export interface PacketHeaders {
  /** 0 when the packet has no usable outermost IPv4/IPv6 header */
  family: Family;
  /** 4 or 16 bytes, network order (empty when family is 0) */
  src: Uint8Array;
  dst: Uint8Array;
  /** IPv4 protocol, or the IPv6 next header after the skipped extension headers; -1 unknown */
  proto: number;
  /** -1 when the port pair is not available (not TCP/UDP, truncated, non-first fragment) */
  sport: number;
  dport: number;
}

export class RulesError extends Error {
  constructor(readonly line: number, readonly word: string, what: string) {
    super(`line ${line}: ${what} '${word}'`);
  }
}

export const MAX_RULES = 16384;
const ACTIONS: Record<string, Action> = { pass: PASS, drop: DROP, host: HOST };
const PROTOS: Record<string, { family: Family; proto: number }> = {
  any: { family: 0, proto: -1 },
  ip4: { family: 4, proto: -1 },
  ip6: { family: 6, proto: -1 },
  tcp: { family: 0, proto: 6 },
  udp: { family: 0, proto: 17 },
  icmp: { family: 4, proto: 1 },
  icmp6: { family: 6, proto: 58 },
};

const DECIMAL = /^[0-9]+$/;

function parseDecimal(word: string, max: number): number {
  if (!DECIMAL.test(word) || word.length > 6) return -1;
  const n = Number(word);
  return n <= max ? n : -1;
}

/** Dotted-quad IPv4 into 4 bytes, or null. */
export function parseIPv4(text: string): Uint8Array | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const n = parseDecimal(parts[i]!, 255);
    if (n < 0 || parts[i]!.length > 3) return null;
    out[i] = n;
  }
  return out;
}

/** An IPv6 address in any RFC 4291 text form into 16 bytes, or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groupsOf = (part: string, allowV4: boolean): number[] | null => {
    if (part === '') return [];
    const words = part.split(':');
    const out: number[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i]!;
      if (allowV4 && i === words.length - 1 && w.includes('.')) {
        const v4 = parseIPv4(w);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(w)) return null;
        out.push(parseInt(w, 16));
      }
    }
    return out;
  };
  let groups: number[];
  if (halves.length === 1) {
    const all = groupsOf(halves[0]!, true);
    if (!all || all.length !== 8) return null;
    groups = all;
  } else {
    const head = groupsOf(halves[0]!, false);
    const tail = groupsOf(halves[1]!, true);
    if (!head || !tail || head.length + tail.length > 7) return null;
    groups = [...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail];
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function prefixMask(bytes: number, len: number): Uint8Array {
  const mask = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) {
    const bits = Math.max(0, Math.min(8, len - 8 * i));
    mask[i] = (0xff00 >> bits) & 0xff;
  }
  return mask;
}

/** `any` (null), `a.b.c.d[/len]` or an IPv6 address `[/len]`; undefined when not an address. */
export function parseAddress(word: string): AddressMatch | null | undefined {
  if (word === 'any') return null;
  const slash = word.indexOf('/');
  const text = slash < 0 ? word : word.slice(0, slash);
  const v4 = text.includes(':') ? null : parseIPv4(text);
  const addr = v4 ?? (text.includes(':') ? parseIPv6(text) : null);
  if (!addr) return undefined;
  const family = addr.length === 4 ? 4 : 6;
  const bits = addr.length * 8;
  let len = bits;
  if (slash >= 0) {
    len = parseDecimal(word.slice(slash + 1), bits);
    if (len < 0) return undefined;
  }
  const mask = prefixMask(addr.length, len);
  for (let i = 0; i < addr.length; i++) addr[i]! &= mask[i]!;
  return { family, addr, mask };
}

/** `N` or `N-M` with 0 <= N <= M <= 65535; undefined when malformed. */
export function parsePortRange(word: string): [number, number] | undefined {
  const dash = word.indexOf('-');
  const lo = parseDecimal(dash < 0 ? word : word.slice(0, dash), 65535);
  const hi = dash < 0 ? lo : parseDecimal(word.slice(dash + 1), 65535);
  if (lo < 0 || hi < 0 || lo > hi) return undefined;
  return [lo, hi];
}

/** Parses a whole rules file. Throws RulesError naming the line and the offending word. */
export function parseRules(text: string): RuleSet {
  const rules: Rule[] = [];
  let defaultAction: Action | undefined;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const hash = lines[i]!.indexOf('#');
    const words = (hash < 0 ? lines[i]! : lines[i]!.slice(0, hash)).split(/[ \t\r]+/).filter((w) => w !== '');
    if (words.length === 0) continue;
    let at = 0;
    const next = (): string | undefined => words[at++];
    const first = next()!;
    if (first === 'default') {
      const word = next();
      if (defaultAction !== undefined) throw new RulesError(line, first, 'second default line at');
      if (word === undefined) throw new RulesError(line, first, 'missing action after');
      if (!(word in ACTIONS)) throw new RulesError(line, word, 'unknown default action');
      const extra = next();
      if (extra !== undefined) throw new RulesError(line, extra, 'unexpected word');
      defaultAction = ACTIONS[word]!;
      continue;
    }
    if (!(first in ACTIONS)) throw new RulesError(line, first, 'unknown action');
    if (rules.length === MAX_RULES) throw new RulesError(line, first, `more than ${MAX_RULES} rules at`);
    const rule: Rule = { line, action: ACTIONS[first]!, dir: 0, family: 0, proto: -1, src: null, dst: null, sport: null, dport: null };
    let word = next();
    if (word === 'in' || word === 'out') {
      rule.dir = word === 'in' ? 1 : 2;
      word = next();
    }
    if (word !== undefined && word in PROTOS) {
      rule.family = PROTOS[word]!.family;
      rule.proto = PROTOS[word]!.proto;
      word = next();
    }
    for (const side of ['from', 'to'] as const) {
      if (word !== side) continue;
      const addrWord = next();
      if (addrWord === undefined) throw new RulesError(line, side, 'missing address after');
      const addr = parseAddress(addrWord);
      if (addr === undefined) throw new RulesError(line, addrWord, 'bad address');
      if (addr) {
        if (rule.family !== 0 && rule.family !== addr.family) throw new RulesError(line, addrWord, 'address family conflicts with the rule');
        rule.family = addr.family;
      }
      if (side === 'from') rule.src = addr;
      else rule.dst = addr;
      word = next();
      if (word === 'port') {
        if (rule.proto !== 6 && rule.proto !== 17) throw new RulesError(line, word, 'port needs tcp or udp');
        const rangeWord = next();
        if (rangeWord === undefined) throw new RulesError(line, word, 'missing range after');
        const range = parsePortRange(rangeWord);
        if (!range) throw new RulesError(line, rangeWord, 'bad port range');
        if (side === 'from') rule.sport = range;
        else rule.dport = range;
        word = next();
      }
    }
    if (word !== undefined) throw new RulesError(line, word, 'unexpected word');
    rules.push(rule);
  }
  return { rules, defaultAction: defaultAction ?? DROP };
}

function addressMatches(m: AddressMatch | null, a: Uint8Array): boolean {
  if (!m) return true;
  if (a.length !== m.addr.length) return false;
  for (let i = 0; i < a.length; i++) if ((a[i]! & m.mask[i]!) !== m.addr[i]) return false;
  return true;
}

/** Whether one rule matches a packet seen on a ring of direction `dir` (1 RX, 2 TX). */
export function ruleMatches(rule: Rule, p: PacketHeaders, dir: 1 | 2): boolean {
  if (rule.dir !== 0 && rule.dir !== dir) return false;
  const needsIp = rule.family !== 0 || rule.proto >= 0 || rule.src !== null || rule.dst !== null;
  if (!needsIp) return true;
  if (p.family === 0) return false;
  if (rule.family !== 0 && rule.family !== p.family) return false;
  if (rule.proto >= 0 && rule.proto !== p.proto) return false;
  if (!addressMatches(rule.src, p.src) || !addressMatches(rule.dst, p.dst)) return false;
  if (rule.sport || rule.dport) {
    if (p.sport < 0 || p.dport < 0) return false;
    if (rule.sport && (p.sport < rule.sport[0] || p.sport > rule.sport[1])) return false;
    if (rule.dport && (p.dport < rule.dport[0] || p.dport > rule.dport[1])) return false;
  }
  return true;
}

/** Index of the first matching rule, or -1 when the default applies. */
export function firstMatch(set: RuleSet, p: PacketHeaders, dir: 1 | 2 = 1): number {
  for (let i = 0; i < set.rules.length; i++) if (ruleMatches(set.rules[i]!, p, dir)) return i;
  return -1;
}

/** The verdict: 0 drop, 1 pass, 2 host. `dir` 1 for RX rings (every pcap port), 2 for TX. */
export function verdict(set: RuleSet, p: PacketHeaders, dir: 1 | 2 = 1): Action {
  const i = firstMatch(set, p, dir);
  return i < 0 ? set.defaultAction : set.rules[i]!.action;
}
