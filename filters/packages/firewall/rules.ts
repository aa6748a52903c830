// Firewall rules language (README.md): parses the rules text into the fixed 80-byte rule
// table (exported for inspection and the C benchmark) and into the match tables the
// per-packet loop uses (same rules, split by direction and family, laid out for matching
// with few branches).
import {
  ConfigReader, parseAddressPrefix, parseDecimal, log,
  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6,
} from "../../sdk";

export const MAX_RULES: i32 = 256;

// ---- the fixed compiled rule table (README "Compiled rule table") ----
export const RULE_SIZE: usize = 80;
export const R_ACTION: usize = 0, R_DIR: usize = 1, R_FAMILY: usize = 2, R_PROTO: usize = 3;
export const R_SPORT_LO: usize = 4, R_SPORT_HI: usize = 6, R_DPORT_LO: usize = 8, R_DPORT_HI: usize = 10;
export const R_FLAGS: usize = 12, R_SRC: usize = 16, R_SRC_MASK: usize = 32, R_DST: usize = 48, R_DST_MASK: usize = 64;
export const RULE_FLAG_PORTS: u32 = 1;
export const PROTO_ANY: u8 = 0xFF;
export const ACTION_DROP: u8 = 0, ACTION_PASS: u8 = 1, ACTION_HOST: u8 = 2;
export const DIR_ANY: u8 = 0, DIR_IN: u8 = 1, DIR_OUT: u8 = 2;

export const ruleTable: usize = memory.data(<i32>(MAX_RULES * <i32>RULE_SIZE), 16);

// ---- the match tables: one per ring direction (in, out) and packet family (4, 6) ----
// Each holds, in rule order, only the rules that can match such a packet (direction any
// or equal, family any or equal), so the per-packet loop neither tests direction nor
// family and an IPv4 packet never walks the IPv6 rules. One 96-byte entry per rule:
//   (proto & protoMask) == protoValue (packet proto 0xFFFF when unknown),
//   (sport - sLo) <= sSpan, (dport - dLo) <= dSpan (unsigned),
//   (src & srcMask) == srcRule, (dst & dstMask) == dstRule (IPv4: the first u32 only;
//   IPv6: both u64 halves).
// "No port condition" is lo 0, span 0x10000, so absent ports (0x10000) still match.
// A packet without an IP header matches only rules with family any and proto any: the
// first such rule per direction is `noIpRule` (-1 when none).
export const MATCH_SIZE: usize = 96;
export const M_PROTO_MASK: usize = 0, M_PROTO_VALUE: usize = 4, M_SPORT_LO: usize = 8, M_SPORT_SPAN: usize = 12;
export const M_DPORT_LO: usize = 16, M_DPORT_SPAN: usize = 20, M_ACTION: usize = 24, M_RULE: usize = 28;
export const M_SRC: usize = 32, M_SRC_MASK: usize = 48, M_DST: usize = 64, M_DST_MASK: usize = 80;
export const PORT_ABSENT: u32 = 0x10000;
export const MATCH_TABLE_SIZE: usize = <usize>MAX_RULES * MATCH_SIZE;

/** Match tables, in order: in/IPv4, in/IPv6, out/IPv4, out/IPv6 (see matchTableFor). */
export const matchTables: usize = memory.data(4 * MAX_RULES * <i32>MATCH_SIZE, 16);
/** Entry counts of the four match tables (i32 each). */
const matchCounts: usize = memory.data(4 * 4, 4);
/** First rule matching a packet without an IP header, per direction (in, out), or -1. */
const noIpRules: usize = memory.data(4 * 2, 4);

/** Index (0..3) of the match table for ring direction `dir` (DIR_IN/DIR_OUT) and family 4 or 6. */
// @ts-ignore: decorator
@inline export function matchTableIndex(dir: u32, family: u32): u32 { return ((dir - 1) << 1) | <u32>(family == 6); }
/** Address of match table `index`. */
// @ts-ignore: decorator
@inline export function matchTableAt(index: u32): usize { return matchTables + <usize>index * MATCH_TABLE_SIZE; }
/** Entry count of match table `index`. */
// @ts-ignore: decorator
@inline export function matchCountAt(index: u32): i32 { return load<i32>(matchCounts + (<usize>index << 2)); }
/** First rule matching a packet without an IP header on a ring of direction `dir`, or -1. */
// @ts-ignore: decorator
@inline export function noIpRule(dir: u32): i32 { return load<i32>(noIpRules + (<usize>(dir - 1) << 2)); }

export let ruleCount: i32 = 0;
export let defaultAction: u8 = ACTION_DROP;
/** A `flow-verdicts` line: PASS and DROP of a packet whose flow (addresses, protocol, ports) is
 *  all the rules see are marked for the whole flow (VERDICT_FLOW; docs/ABI.md "Flow verdicts"). */
export let flowVerdicts: bool = false;

function actionOf(r: ConfigReader): i32 {
  if (r.wordIs("pass")) return ACTION_PASS;
  if (r.wordIs("drop")) return ACTION_DROP;
  if (r.wordIs("host")) return ACTION_HOST;
  return -1;
}

/** Parses `port N` / `port N-M` (current word is the range) into rule fields at `lo`/`hi`. */
function parsePortRange(r: ConfigReader, rule: usize, lo: usize, hi: usize): bool {
  let dash = -1;
  for (let i = 0; i < r.wordLen; i++) if (load<u8>(r.wordPtr + <usize>i) == 0x2D) { dash = i; break; }
  const first = parseDecimal(r.wordPtr, dash < 0 ? r.wordLen : dash, 65535);
  const last = dash < 0 ? first : parseDecimal(r.wordPtr + <usize>dash + 1, r.wordLen - dash - 1, 65535);
  if (first < 0 || last < 0 || first > last) return false;
  store<u16>(rule + lo, <u16>first);
  store<u16>(rule + hi, <u16>last);
  return true;
}

const ADDR_EXPECTED = "any, IPv4 address[/0..32] or IPv6 address[/0..128]";

/** Parses the address word after from/to into the rule; returns 0 or the error result. */
function parseAddress(r: ConfigReader, rule: usize, addr: usize, mask: usize, keyword: string): i32 {
  if (!r.nextWord()) return r.error("missing address after '" + keyword + "'", ADDR_EXPECTED);
  if (r.wordIs("any")) return 0;
  const family = parseAddressPrefix(r.wordPtr, r.wordLen, rule + addr, rule + mask);
  if (family == 0) return r.error("bad address", ADDR_EXPECTED);
  const ruleFamily = <i32>load<u8>(rule, R_FAMILY);
  if (ruleFamily != 0 && ruleFamily != family) {
    return r.error(family == 4 ? "IPv4 address in an IPv6 rule" : "IPv6 address in an IPv4 rule");
  }
  store<u8>(rule, <u8>family, R_FAMILY);
  return 0;
}

/** Parses one rule line (the action word is current) into the rule at `rule`. */
function parseRule(r: ConfigReader, rule: usize, action: i32): i32 {
  memory.fill(rule, 0, RULE_SIZE);
  store<u8>(rule, <u8>action, R_ACTION);
  store<u8>(rule, PROTO_ANY, R_PROTO);
  store<u16>(rule, 65535, R_SPORT_HI);
  store<u16>(rule, 65535, R_DPORT_HI);
  let have = r.nextWord();
  if (have && (r.wordIs("in") || r.wordIs("out"))) {
    store<u8>(rule, r.wordIs("in") ? DIR_IN : DIR_OUT, R_DIR);
    have = r.nextWord();
  }
  if (have) {
    let proto = -2, family = 0;
    if (r.wordIs("any")) proto = PROTO_ANY;
    else if (r.wordIs("ip4")) { proto = PROTO_ANY; family = 4; }
    else if (r.wordIs("ip6")) { proto = PROTO_ANY; family = 6; }
    else if (r.wordIs("tcp")) proto = IPPROTO_TCP;
    else if (r.wordIs("udp")) proto = IPPROTO_UDP;
    else if (r.wordIs("icmp")) { proto = IPPROTO_ICMP; family = 4; }
    else if (r.wordIs("icmp6")) { proto = IPPROTO_ICMPV6; family = 6; }
    if (proto != -2) {
      store<u8>(rule, <u8>proto, R_PROTO);
      store<u8>(rule, <u8>family, R_FAMILY);
      have = r.nextWord();
    }
  }
  const proto = <i32>load<u8>(rule, R_PROTO);
  const portsAllowed = proto == IPPROTO_TCP || proto == IPPROTO_UDP;
  for (let side = 0; side < 2 && have; side++) {
    const keyword = side == 0 ? "from" : "to";
    if (!r.wordIs(keyword)) continue;
    const err = parseAddress(r, rule, side == 0 ? R_SRC : R_DST, side == 0 ? R_SRC_MASK : R_DST_MASK, keyword);
    if (err != 0) return err;
    have = r.nextWord();
    if (have && r.wordIs("port")) {
      if (!portsAllowed) return r.error("port condition needs proto tcp or udp before");
      if (!r.nextWord()) return r.error("missing port range after 'port'", "N or N-M, 0 <= N <= M <= 65535");
      if (!parsePortRange(r, rule, side == 0 ? R_SPORT_LO : R_DPORT_LO, side == 0 ? R_SPORT_HI : R_DPORT_HI)) {
        return r.error("bad port range", "N or N-M, 0 <= N <= M <= 65535");
      }
      store<u32>(rule, RULE_FLAG_PORTS, R_FLAGS);
      have = r.nextWord();
    }
  }
  if (have) return r.error("unexpected word", "<action> [in|out] [<proto>] [from <addr> [port <range>]] [to <addr> [port <range>]]");
  return 0;
}

/** Writes the match entry for the compiled rule number `index` at `m`. */
function compileMatch(index: i32, m: usize): void {
  const rule = ruleTable + <usize>index * RULE_SIZE;
  const proto = <u32>load<u8>(rule, R_PROTO);
  store<u32>(m, proto != PROTO_ANY ? 0xFFFF : 0, M_PROTO_MASK);
  store<u32>(m, proto != PROTO_ANY ? proto : 0, M_PROTO_VALUE);
  const ports = (load<u32>(rule, R_FLAGS) & RULE_FLAG_PORTS) != 0;
  const sLo = <u32>load<u16>(rule, R_SPORT_LO), sHi = <u32>load<u16>(rule, R_SPORT_HI);
  const dLo = <u32>load<u16>(rule, R_DPORT_LO), dHi = <u32>load<u16>(rule, R_DPORT_HI);
  store<u32>(m, ports ? sLo : 0, M_SPORT_LO);
  store<u32>(m, ports ? sHi - sLo : PORT_ABSENT, M_SPORT_SPAN);
  store<u32>(m, ports ? dLo : 0, M_DPORT_LO);
  store<u32>(m, ports ? dHi - dLo : PORT_ABSENT, M_DPORT_SPAN);
  store<u32>(m, <u32>load<u8>(rule, R_ACTION), M_ACTION);
  store<u32>(m, <u32>index, M_RULE);
  memory.copy(m + M_SRC, rule + R_SRC, 64); // src, src mask, dst, dst mask: same order
}

/** Rebuilds the match tables and noIpRules from the first `ruleCount` compiled rules. */
function buildMatchTables(): void {
  for (let dir: u32 = DIR_IN; dir <= DIR_OUT; dir++) {
    let noIp = -1;
    for (let family: u32 = 4; family <= 6; family += 2) {
      const t = matchTableIndex(dir, family);
      let count = 0;
      for (let i = 0; i < ruleCount; i++) {
        const rule = ruleTable + <usize>i * RULE_SIZE;
        const ruleDir = <u32>load<u8>(rule, R_DIR), ruleFamily = <u32>load<u8>(rule, R_FAMILY);
        if (ruleDir != DIR_ANY && ruleDir != dir) continue;
        if (noIp < 0 && ruleFamily == 0 && load<u8>(rule, R_PROTO) == PROTO_ANY) noIp = i;
        if (ruleFamily != 0 && ruleFamily != family) continue;
        compileMatch(i, matchTableAt(t) + <usize>count * MATCH_SIZE);
        count++;
      }
      store<i32>(matchCounts + (<usize>t << 2), count);
    }
    store<i32>(noIpRules + (<usize>(dir - 1) << 2), noIp);
  }
}

/** Parses the rules text at `ptr` (`len` bytes) into the tables. Returns 0, or 1 after
 *  logging "line N: ... '<word>'" for the first error (the tables are then empty). */
export function loadRules(ptr: usize, len: i32): i32 {
  ruleCount = 0;
  defaultAction = ACTION_DROP;
  flowVerdicts = false;
  let sawDefault = false;
  const r = new ConfigReader(ptr, len);
  while (r.nextLine()) {
    if (!r.nextWord()) continue;
    if (r.wordIs("default")) {
      if (sawDefault) return fail(r.error("second default line at"));
      if (!r.nextWord()) return fail(r.error("missing action after 'default'", "pass, drop or host"));
      const action = actionOf(r);
      if (action < 0) return fail(r.error("unknown default action", "pass, drop or host"));
      if (r.nextWord()) return fail(r.error("unexpected word after default action"));
      defaultAction = <u8>action;
      sawDefault = true;
      continue;
    }
    if (r.wordIs("flow-verdicts")) {
      if (r.nextWord()) return fail(r.error("unexpected word after flow-verdicts"));
      flowVerdicts = true;
      continue;
    }
    const action = actionOf(r);
    if (action < 0) return fail(r.error("unknown action", "pass, drop, host, default or flow-verdicts"));
    if (ruleCount == MAX_RULES) return fail(r.error("too many rules (at most 256) at"));
    const rule = ruleTable + <usize>ruleCount * RULE_SIZE;
    const err = parseRule(r, rule, action);
    if (err != 0) return fail(err);
    ruleCount++;
  }
  buildMatchTables();
  return 0;
}

function fail(err: i32): i32 {
  ruleCount = 0;
  defaultAction = ACTION_DROP;
  flowVerdicts = false;
  buildMatchTables();
  return err;
}

/** Logs a one-line summary of the loaded rules. */
export function logSummary(): void {
  log("firewall: " + ruleCount.toString() + " rules, default " + (defaultAction == ACTION_PASS ? "pass" : defaultAction == ACTION_HOST ? "host" : "drop"));
}
