// firewall: first-match-wins filter over the outermost IP header (README.md).
// Per packet: a family/protocol/port/address summary (fast path for plain Ethernet IPv4
// and IPv6, the SDK's parse() otherwise), then the candidate rules of the class for the
// ring's direction and the packet's family (lookup.ts: in order for a few rules, else the
// flow cache, then one hash probe per tuple) are tried in steps that reject early (protocol, ports, addresses);
// no allocation, no byte swap of addresses.
import {
  parse, hdr, ringNumSlots, ringBufSize, ringDir, slotAddr, nextSlot, statAdd, statInc,
  RING_BUF_OFS, SLOT_BUF_IDX, SLOT_LEN, RING_DIR_RX, VERDICT_FLOW,
} from "../../sdk";
import {
  loadRules, logSummary, ruleTable, ruleCount, defaultAction, MAX_RULES, RULE_SIZE, R_ACTION, DIR_IN, DIR_OUT, flowVerdicts,
} from "./rules";
import {
  buildLookup, classIndex, classAt, noIpRule, noIpRulesAt, classes, matchEntries, chainNext, keyHash, keyHash4,
  MATCH_SIZE, M_PROTO_MASK, M_PROTO_VALUE, M_SPORT_LO, M_SPORT_SPAN, M_DPORT_LO, M_DPORT_SPAN, M_ACTION, M_RULE,
  M_SRC, M_SRC_MASK, M_DST, M_DST_MASK, PORT_ABSENT, C_ENTRIES, C_COUNT, C_TUPLES, C_TUPLE_COUNT,
  TUPLE_SIZE, T_SRC_MASK, T_DST_MASK, T_KEY_MASK, T_BUCKETS, T_HASH_SHIFT, T_FIRST_RULE, T_PROTOS, protoBit,
  flowCache4, flowCache6, flowKey, FLOW_SHIFT, F4_ADDRS, F4_KEY, F4_RULE, F4_VERDICT, F6_SRC, F6_DST, F6_KEY, F6_RULE, F6_VERDICT,
} from "./lookup";
export { nmwasm_abi_v1 } from "../../sdk";

// Counters (manifest.json "stats"): packets, bytes, then per verdict: dropped, passed, host, then defaulted.
const STAT_PACKETS: u32 = 0, STAT_BYTES: u32 = 1, STAT_VERDICT0: u32 = 2, STAT_DEFAULTED: u32 = 5;
const stats: usize = memory.data(8 * 6, 8);
const hits: usize = memory.data(8 * MAX_RULES, 8);

/** Parses the rules text; 0 on success, 1 after logging the first error. */
export function nmwasm_init(config: usize, configLen: i32): i32 {
  memory.fill(stats, 0, 8 * 6);
  memory.fill(hits, 0, 8 * <usize>MAX_RULES);
  const err = loadRules(config, configLen);
  buildLookup(ruleCount); // after an error: empty tables
  if (err == 0) logSummary();
  return err;
}

export function nmwasm_stats(): usize { return stats; }

/** Address of the compiled 80-byte rule table (README "Compiled rule table"). */
export function firewall_rules(): usize { return ruleTable; }
/** Number of rules in the table. */
export function firewall_rule_count(): i32 { return ruleCount; }
/** Verdict when no rule matches: 0 drop, 1 pass, 2 host. */
export function firewall_default(): i32 { return defaultAction; }
/** Address of one u64 hit counter per rule. */
export function firewall_hits(): usize { return hits; }

const lookupTables: usize = memory.data(24, 4);
/** Address of six u32: the addresses of the match entries, chain links, class descriptors,
 *  no-IP rules and the IPv4 and IPv6 flow caches of lookup.ts (read by the C baseline,
 *  bench/c/firewall.c). */
export function firewall_lookup(): usize {
  store<u32>(lookupTables, <u32>matchEntries);
  store<u32>(lookupTables, <u32>chainNext, 4);
  store<u32>(lookupTables, <u32>classes, 8);
  store<u32>(lookupTables, <u32>noIpRulesAt, 12);
  store<u32>(lookupTables, <u32>flowCache4, 16);
  store<u32>(lookupTables, <u32>flowCache6, 20);
  return lookupTables;
}

// EtherTypes as a little-endian u16 load of the big-endian field reads them.
const ETHERTYPE_IPV4_LE: u32 = 0x0008, ETHERTYPE_IPV6_LE: u32 = 0xDD86;
const IPPROTO_TCP: u32 = 6, IPPROTO_UDP: u32 = 17, IPPROTO_ICMPV6: u32 = 58;

/** Big-endian u16 at `p + off`. */
// @ts-ignore: decorator
@inline function be16(p: usize, off: usize): u32 { const v = <u32>load<u16>(p + off); return ((v & 0xFF) << 8) | (v >> 8); }

/** The general parser into `hdr`, for packets the fast path in nmwasm_process does not take.
 *  NB: deliberately not @inline: keeps the hot loop small. */
function summariseSlow(p: usize, len: i32): void { parse(p, len); }

/** Whether the IPv4 match entry at `m` matches. NB: rejects early, as the C baseline does:
 *  protocol, then both port spans, then both addresses, each step one branch (a branch-free
 *  & of all conditions measured 1.6x slower at 8 rules). */
// @ts-ignore: decorator
@inline function match4(m: usize, proto: u32, sport: u32, dport: u32, src: u32, dst: u32): bool {
  if ((proto & load<u32>(m, M_PROTO_MASK)) != load<u32>(m, M_PROTO_VALUE)) return false;
  if (((sport - load<u32>(m, M_SPORT_LO)) > load<u32>(m, M_SPORT_SPAN)) | ((dport - load<u32>(m, M_DPORT_LO)) > load<u32>(m, M_DPORT_SPAN))) return false;
  return (((src & load<u32>(m, M_SRC_MASK)) ^ load<u32>(m, M_SRC)) | ((dst & load<u32>(m, M_DST_MASK)) ^ load<u32>(m, M_DST))) == 0;
}

/** Whether the IPv6 match entry at `m` matches (same steps as match4, addresses as two u64). */
// @ts-ignore: decorator
@inline function match6(m: usize, proto: u32, sport: u32, dport: u32, src0: u64, src1: u64, dst0: u64, dst1: u64): bool {
  if ((proto & load<u32>(m, M_PROTO_MASK)) != load<u32>(m, M_PROTO_VALUE)) return false;
  if (((sport - load<u32>(m, M_SPORT_LO)) > load<u32>(m, M_SPORT_SPAN)) | ((dport - load<u32>(m, M_DPORT_LO)) > load<u32>(m, M_DPORT_SPAN))) return false;
  if (((src0 & load<u64>(m, M_SRC_MASK)) ^ load<u64>(m, M_SRC)) | ((src1 & load<u64>(m, M_SRC_MASK + 8)) ^ load<u64>(m, M_SRC + 8))) return false;
  return (((dst0 & load<u64>(m, M_DST_MASK)) ^ load<u64>(m, M_DST)) | ((dst1 & load<u64>(m, M_DST_MASK + 8)) ^ load<u64>(m, M_DST + 8))) == 0;
}

/** Processes one batch: one verdict byte per slot. */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  const bufBase = ring + <usize>load<i64>(ring, RING_BUF_OFS);
  const bufSize = <usize>ringBufSize(ring);
  const dir: u32 = ringDir(ring) == RING_DIR_RX ? DIR_IN : DIR_OUT;
  const c4 = classAt(classIndex(dir, 4)), c6 = classAt(classIndex(dir, 6));
  const entries4 = matchEntries + <usize>load<i32>(c4, C_ENTRIES) * MATCH_SIZE, count4 = load<i32>(c4, C_COUNT);
  const tuples4 = <usize>load<u32>(c4, C_TUPLES), tupleCount4 = load<i32>(c4, C_TUPLE_COUNT);
  const entries6 = matchEntries + <usize>load<i32>(c6, C_ENTRIES) * MATCH_SIZE, count6 = load<i32>(c6, C_COUNT);
  const tuples6 = <usize>load<u32>(c6, C_TUPLES), tupleCount6 = load<i32>(c6, C_TUPLE_COUNT);
  const noIp = noIpRule(dir);
  const noIpVerdict: u32 = noIp >= 0 ? <u32>load<u8>(ruleTable + <usize>noIp * RULE_SIZE, R_ACTION) : 0;
  const fallback = <u32>defaultAction;
  let bytes: u64 = 0;
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    const s = slotAddr(ring, slot);
    const p = bufBase + <usize>load<u32>(s, SLOT_BUF_IDX) * bufSize;
    const len = <i32>load<u16>(s, SLOT_LEN);
    bytes += <u64>len;
    // Packet summary: family (0, 4, 6), proto (0xFFFF when unknown), ports
    // (PORT_ABSENT when absent), addresses as two u64 each.
    // NB: addresses are loaded as stored (network order) and compared with rule addresses
    // stored the same way: no byte swapping per packet.
    let family: u32 = 0, proto: u32 = 0xFFFF, sport: u32 = PORT_ABSENT, dport: u32 = PORT_ABSENT;
    let src0: u64 = 0, src1: u64 = 0, dst0: u64 = 0, dst1: u64 = 0;
    // NB: fast path for untagged Ethernet + IPv4, or IPv6 straight to TCP/UDP/ICMPv6 (the
    // bulk of real traffic): only locals, no write to the SDK's `hdr` globals, and the
    // same answers as parse() (README "What a packet is matched on"). Everything else
    // (VLAN, MPLS, PPPoE, SNAP, IPv6 extension headers, malformed IP, non-IP) takes
    // summariseSlow().
    let fast = false;
    let flow = false; // the verdict depends on the flow alone: it may be cached for it (docs/ABI.md "Flow verdicts")
    const etherType = <u32>load<u16>(p, 12); // little-endian load of a big-endian field
    if (etherType == ETHERTYPE_IPV4_LE && len >= 14 + 20) {
      const vihl = <u32>load<u8>(p, 14);
      const ihl = (vihl & 0xF) << 2;
      const total = be16(p, 16);
      if ((vihl >> 4) == 4 && ihl >= 20 && (total == 0 || total >= ihl)) {
        fast = true;
        family = 4;
        proto = <u32>load<u8>(p, 14 + 9);
        const end = total != 0 && total + 14 <= <u32>len ? total + 14 : <u32>len;
        const l4 = ihl + 14;
        // ports only in a first fragment (offset bits 0x1FFF, here in little-endian order) of TCP/UDP
        if ((load<u16>(p, 14 + 6) & 0xFF1F) == 0 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP) && l4 + 4 <= end) {
          sport = be16(p, <usize>l4);
          dport = be16(p, <usize>l4 + 2);
        }
        src0 = <u64>load<u32>(p, 14 + 12);
        dst0 = <u64>load<u32>(p, 14 + 16);
        flow = (load<u16>(p, 14 + 6) & 0xFF3F) == 0 && (sport != PORT_ABSENT || (proto != IPPROTO_TCP && proto != IPPROTO_UDP));
      }
    } else if (etherType == ETHERTYPE_IPV6_LE && len >= 14 + 40) {
      const nh = <u32>load<u8>(p, 14 + 6);
      if ((load<u8>(p, 14) >> 4) == 6 && (nh == IPPROTO_TCP || nh == IPPROTO_UDP || nh == IPPROTO_ICMPV6)) {
        fast = true;
        family = 6;
        proto = nh;
        const payload = be16(p, 14 + 4);
        const end = payload != 0 && payload + 14 + 40 <= <u32>len ? payload + 14 + 40 : <u32>len;
        if (nh != IPPROTO_ICMPV6 && end >= 14 + 40 + 4) {
          sport = be16(p, 14 + 40);
          dport = be16(p, 14 + 40 + 2);
        }
        src0 = load<u64>(p, 14 + 8); src1 = load<u64>(p, 14 + 16);
        dst0 = load<u64>(p, 14 + 24); dst1 = load<u64>(p, 14 + 32);
        flow = sport != PORT_ABSENT;
      }
    }
    if (!fast) {
      summariseSlow(p, len);
      family = <u32>hdr.family;
      if (hdr.proto >= 0) proto = <u32>hdr.proto;
      if (hdr.sport >= 0) sport = <u32>hdr.sport;
      if (hdr.dport >= 0) dport = <u32>hdr.dport;
      if (family == 4) {
        const ip = p + <usize>hdr.l3;
        src0 = <u64>load<u32>(ip, 12);
        dst0 = <u64>load<u32>(ip, 16);
      } else if (family == 6) {
        const ip = p + <usize>hdr.l3;
        src0 = load<u64>(ip, 8); src1 = load<u64>(ip, 16);
        dst0 = load<u64>(ip, 24); dst1 = load<u64>(ip, 32);
      }
    }

    let verdict = fallback;
    let hit = -1;
    if (family == 4) {
      const src = <u32>src0, dst = <u32>dst0;
      if (tupleCount4 == 0) {
        let m = entries4;
        for (let i = 0; i < count4; i++, m += MATCH_SIZE) {
          if (!match4(m, proto, sport, dport, src, dst)) continue;
          hit = load<i32>(m, M_RULE);
          verdict = load<u32>(m, M_ACTION);
          break;
        }
      } else {
        // The flow cache first (lookup.ts): the answer of an earlier packet with this summary.
        const addrs = <u64>src | (<u64>dst << 32);
        const fkey = flowKey(proto, sport, dport, dir);
        const fe = flowCache4 + (<usize>keyHash4(src, dst, fkey, FLOW_SHIFT) << 5);
        if (load<u64>(fe, F4_ADDRS) == addrs && load<u64>(fe, F4_KEY) == fkey) {
          hit = load<i32>(fe, F4_RULE);
          verdict = load<u32>(fe, F4_VERDICT);
        } else {
          // NB: one hash probe per tuple that has the packet's protocol, tuples in order of their
          // first rule; stops as soon as no later tuple can hold an earlier rule than the best found.
          const key = (<u64>proto << 17) | <u64>dport;
          const bit = protoBit(proto);
          let best = i32.MAX_VALUE;
          let tp = tuples4;
          for (let t = 0; t < tupleCount4; t++, tp += TUPLE_SIZE) {
            if (load<i32>(tp, T_FIRST_RULE) >= best) break;
            if ((load<u64>(tp, T_PROTOS) & bit) == 0) continue;
            const h = keyHash4(src & load<u32>(tp, T_SRC_MASK), dst & load<u32>(tp, T_DST_MASK), key & load<u64>(tp, T_KEY_MASK), load<u32>(tp, T_HASH_SHIFT));
            let e = load<i32>(<usize>load<u32>(tp, T_BUCKETS) + (<usize>h << 2));
            while (e >= 0) {
              const m = matchEntries + <usize>e * MATCH_SIZE;
              const rule = load<i32>(m, M_RULE);
              if (rule >= best) break;
              if (match4(m, proto, sport, dport, src, dst)) { best = rule; verdict = load<u32>(m, M_ACTION); break; }
              e = load<i32>(chainNext + (<usize>e << 2));
            }
          }
          if (best != i32.MAX_VALUE) hit = best;
          store<u64>(fe, addrs, F4_ADDRS);
          store<u64>(fe, fkey, F4_KEY);
          store<i32>(fe, hit, F4_RULE);
          store<u32>(fe, verdict, F4_VERDICT);
        }
      }
    } else if (family == 6) {
      if (tupleCount6 == 0) {
        let m = entries6;
        for (let i = 0; i < count6; i++, m += MATCH_SIZE) {
          if (!match6(m, proto, sport, dport, src0, src1, dst0, dst1)) continue;
          hit = load<i32>(m, M_RULE);
          verdict = load<u32>(m, M_ACTION);
          break;
        }
      } else {
        const fkey = flowKey(proto, sport, dport, dir);
        const fe = flowCache6 + (<usize>keyHash(src0, src1, dst0, dst1, fkey, FLOW_SHIFT) << 6);
        if (((load<u64>(fe, F6_SRC) ^ src0) | (load<u64>(fe, F6_SRC + 8) ^ src1) | (load<u64>(fe, F6_DST) ^ dst0)
          | (load<u64>(fe, F6_DST + 8) ^ dst1) | (load<u64>(fe, F6_KEY) ^ fkey)) == 0) {
          hit = load<i32>(fe, F6_RULE);
          verdict = load<u32>(fe, F6_VERDICT);
        } else {
          const key = (<u64>proto << 17) | <u64>dport;
          const bit = protoBit(proto);
          let best = i32.MAX_VALUE;
          let tp = tuples6;
          for (let t = 0; t < tupleCount6; t++, tp += TUPLE_SIZE) {
            if (load<i32>(tp, T_FIRST_RULE) >= best) break;
            if ((load<u64>(tp, T_PROTOS) & bit) == 0) continue;
            const h = keyHash(src0 & load<u64>(tp, T_SRC_MASK), src1 & load<u64>(tp, T_SRC_MASK + 8),
              dst0 & load<u64>(tp, T_DST_MASK), dst1 & load<u64>(tp, T_DST_MASK + 8), key & load<u64>(tp, T_KEY_MASK), load<u32>(tp, T_HASH_SHIFT));
            let e = load<i32>(<usize>load<u32>(tp, T_BUCKETS) + (<usize>h << 2));
            while (e >= 0) {
              const m = matchEntries + <usize>e * MATCH_SIZE;
              const rule = load<i32>(m, M_RULE);
              if (rule >= best) break;
              if (match6(m, proto, sport, dport, src0, src1, dst0, dst1)) { best = rule; verdict = load<u32>(m, M_ACTION); break; }
              e = load<i32>(chainNext + (<usize>e << 2));
            }
          }
          if (best != i32.MAX_VALUE) hit = best;
          store<u64>(fe, src0, F6_SRC);
          store<u64>(fe, src1, F6_SRC + 8);
          store<u64>(fe, dst0, F6_DST);
          store<u64>(fe, dst1, F6_DST + 8);
          store<u64>(fe, fkey, F6_KEY);
          store<i32>(fe, hit, F6_RULE);
          store<u32>(fe, verdict, F6_VERDICT);
        }
      }
    } else if (noIp >= 0) {
      hit = noIp;
      verdict = noIpVerdict;
    }
    if (hit >= 0) statInc(hits, <u32>hit); else statInc(stats, STAT_DEFAULTED);
    statInc(stats, STAT_VERDICT0 + verdict);
    store<u8>(verdicts + <usize>slot, <u8>(verdict | (flow && flowVerdicts && verdict <= 1 ? VERDICT_FLOW : 0)));
    slot = nextSlot(slot, numSlots);
  }
  statAdd(stats, STAT_PACKETS, <u64>count);
  statAdd(stats, STAT_BYTES, bytes);
  return 0;
}
