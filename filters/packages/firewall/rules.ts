// Firewall rules language (README.md): parses the rules text into the fixed 80-byte rule
// table (exported for inspection and the C benchmark); lookup.ts builds the per-packet
// lookup tables from it.
import {
  ConfigReader, parseAddressPrefix, parseDecimal, log,
  IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6,
} from "../../sdk";

/** Most rules a rules file may hold (README "Limits"). */
export const MAX_RULES: i32 = 16384;

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

/** Parses the rules text at `ptr` (`len` bytes) into the rule table. Returns 0, or 1 after
 *  logging "line N: ... '<word>'" for the first error (the table is then empty). */
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
    if (ruleCount == MAX_RULES) return fail(r.error("too many rules (at most 16384) at"));
    const rule = ruleTable + <usize>ruleCount * RULE_SIZE;
    const err = parseRule(r, rule, action);
    if (err != 0) return fail(err);
    ruleCount++;
  }
  return 0;
}

function fail(err: i32): i32 {
  ruleCount = 0;
  defaultAction = ACTION_DROP;
  flowVerdicts = false;
  return err;
}

/** Logs a one-line summary of the loaded rules. */
export function logSummary(): void {
  log("firewall: " + ruleCount.toString() + " rules, default " + (defaultAction == ACTION_PASS ? "pass" : defaultAction == ACTION_HOST ? "host" : "drop"));
}
