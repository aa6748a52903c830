// Firewall lookup tables (README "How a packet finds its rule"): built once at load from the
// compiled 80-byte rule table, read per packet by index.ts. First match in rule order is
// kept exactly: every structure here only narrows the set of rules a packet is tested
// against, and each candidate is still tested on all its conditions.
//
// Four classes, one per ring direction (in, out) and packet family (4, 6). A class holds,
// in rule order, one 96-byte match entry per rule that can match such a packet (direction
// any or equal, family any or equal):
//   (proto & protoMask) == protoValue (packet proto 0xFFFF when unknown),
//   (sport - sLo) <= sSpan, (dport - dLo) <= dSpan (unsigned),
//   (src & srcMask) == srcRule, (dst & dstMask) == dstRule (IPv4: the first u32 only;
//   IPv6: both u64 halves).
// "No port condition" is lo 0, span 0x10000, so absent ports (0x10000) still match.
//
// A class of at most LINEAR_MAX entries is scanned in order. A larger one is searched by
// tuple space: its rules are grouped into tuples by shape (source prefix length,
// destination prefix length, key kind: none, protocol, or protocol + exact destination
// port; a shape within MERGE_BITS of a shorter one of the same kind joins its tuple); each
// tuple is a hash table keyed on (src & srcMask, dst & dstMask, the packet's
// (proto << 17 | dport) & keyMask) whose buckets chain entries in rule order. Tuples are
// ordered by their first rule; a packet skips a tuple none of whose entries has its protocol
// (a 64-bit set of protocol & 63), probes one bucket per other tuple, walks its chain until
// a full match or a rule after the best found, and stops at the first tuple whose first rule
// comes after the best found. Hash collisions cost time, never a wrong verdict. In front of
// the tuple search: a per-summary flow cache (below), emptied at every load.
// The C baseline (bench/c/firewall.c) reads these same tables; keep the layouts in step.
import { RULE_SIZE, R_ACTION, R_DIR, R_FAMILY, R_PROTO, R_FLAGS, R_SRC, R_SPORT_LO, R_SPORT_HI, R_DPORT_LO, R_DPORT_HI,
  RULE_FLAG_PORTS, PROTO_ANY, DIR_ANY, DIR_IN, DIR_OUT, MAX_RULES, ruleTable } from "./rules";
import { prefixMask } from "../../sdk";

/** Classes of at most this many entries are scanned in order (faster than hashing for few rules). */
export const LINEAR_MAX: i32 = 16;
/** A shape hashes under a shorter one of the same kind when both lengths are at most this much longer. */
export const MERGE_BITS: i32 = 8;

// ---- match entries ----
export const MATCH_SIZE: usize = 96;
export const M_PROTO_MASK: usize = 0, M_PROTO_VALUE: usize = 4, M_SPORT_LO: usize = 8, M_SPORT_SPAN: usize = 12;
export const M_DPORT_LO: usize = 16, M_DPORT_SPAN: usize = 20, M_ACTION: usize = 24, M_RULE: usize = 28;
export const M_SRC: usize = 32, M_SRC_MASK: usize = 48, M_DST: usize = 64, M_DST_MASK: usize = 80;
export const PORT_ABSENT: u32 = 0x10000;

// ---- tuples: 64 bytes each ----
export const TUPLE_SIZE: usize = 64;
export const T_SRC_MASK: usize = 0, T_DST_MASK: usize = 16, T_KEY_MASK: usize = 32, T_BUCKETS: usize = 40;
export const T_HASH_SHIFT: usize = 44, T_FIRST_RULE: usize = 48, T_PROTOS: usize = 56;
/** Bit of a protocol in T_PROTOS (u64): protocol & 63; a packet of unknown protocol (0xFFFF) has bit 63. */
// @ts-ignore: decorator
@inline export function protoBit(proto: u32): u64 { return <u64>1 << <u64>(proto & 63); }
/** Key masks over a packet's (proto << 17 | dport): none, protocol, protocol and destination port. */
export const KEY_NONE: u64 = 0, KEY_PROTO: u64 = <u64>0xFFFF << 17, KEY_PROTO_DPORT: u64 = (<u64>0xFFFF << 17) | 0x1FFFF;

// ---- class descriptors: 16 bytes each, in order in/IPv4, in/IPv6, out/IPv4, out/IPv6 ----
export const CLASS_SIZE: usize = 16;
export const C_ENTRIES: usize = 0, C_COUNT: usize = 4, C_TUPLES: usize = 8, C_TUPLE_COUNT: usize = 12;

const ENTRIES_PER_CLASS: usize = <usize>MAX_RULES;
const BUCKETS_PER_CLASS: usize = 8 * <usize>MAX_RULES + 8 * <usize>MAX_RULES; // each tuple: a power of two >= max(4n, 8), so < 8n + 8 in all
/** All match entries (entry index e at matchEntries + e * MATCH_SIZE; class c from c * MAX_RULES). */
export const matchEntries: usize = memory.data(<i32>(4 * ENTRIES_PER_CLASS * MATCH_SIZE), 16);
/** Next entry in the same bucket (rule order), or -1; one i32 per entry. */
export const chainNext: usize = memory.data(<i32>(4 * ENTRIES_PER_CLASS * 4), 4);
/** Tuples of all classes (class c from c * MAX_RULES). */
export const tuples: usize = memory.data(<i32>(4 * ENTRIES_PER_CLASS * TUPLE_SIZE), 16);
/** Buckets: the first entry index of the chain, or -1 (class c from c * BUCKETS_PER_CLASS). */
export const buckets: usize = memory.data(<i32>(4 * BUCKETS_PER_CLASS * 4), 4);
/** The four class descriptors. */
export const classes: usize = memory.data(<i32>(4 * CLASS_SIZE), 8);
// ---- flow cache: the answer of the tuple search per packet summary ----
// The verdict and hit of a packet are a function of its ring direction and summary (family,
// protocol, ports, addresses) alone, and the tables change only at load: a class searched by
// tuple space (above LINEAR_MAX entries) keeps the last answer per summary in a direct-mapped
// cache, emptied by every load (buildLookup). A packet whose summary is in its slot costs one
// hash and two (IPv4) or five (IPv6) compares instead of the tuple probes; any other packet
// costs those too, then the search, then a store into the slot. Never a different answer: an
// entry holds the whole summary it was computed for. Scanned classes use no cache.
//   IPv4 entries, 32 bytes: u64 src | dst << 32 @0, u64 key @8, i32 rule or -1 @16, u32 verdict @20.
//   IPv6 entries, 64 bytes: u64 src halves @0 @8, u64 dst halves @16 @24, u64 key @32, i32 rule @40, u32 verdict @44.
//   key = proto | sport << 16 | dport << 33 | dir << 50 | 1 << 62 (never 0: an empty slot never matches).
// Slot: keyHash4/keyHash of (addresses, key) with shift FLOW_SHIFT.
export const FLOW_SLOTS: i32 = 4096;
export const FLOW_SHIFT: u32 = 52; // 64 - log2(FLOW_SLOTS)
export const FLOW4_SIZE: usize = 32, FLOW6_SIZE: usize = 64;
export const F4_ADDRS: usize = 0, F4_KEY: usize = 8, F4_RULE: usize = 16, F4_VERDICT: usize = 20;
export const F6_SRC: usize = 0, F6_DST: usize = 16, F6_KEY: usize = 32, F6_RULE: usize = 40, F6_VERDICT: usize = 44;
export const flowCache4: usize = memory.data(<i32>(<usize>FLOW_SLOTS * FLOW4_SIZE), 64);
export const flowCache6: usize = memory.data(<i32>(<usize>FLOW_SLOTS * FLOW6_SIZE), 64);
/** The flow cache key of a packet summary on a ring of direction `dir` (DIR_IN/DIR_OUT). */
// @ts-ignore: decorator
@inline export function flowKey(proto: u32, sport: u32, dport: u32, dir: u32): u64 {
  return <u64>proto | (<u64>sport << 16) | (<u64>dport << 33) | (<u64>dir << 50) | (<u64>1 << 62);
}

/** First rule matching a packet without an IP header, per direction (in, out), or -1. */
const noIpRules: usize = memory.data(4 * 2, 4);
export const noIpRulesAt: usize = noIpRules;

// Build scratch: tuple of each (srcLen, dstLen, kind) of the class being built, tuple of each entry.
const SHAPES: i32 = 129 * 129 * 3;
const shapeTuple: usize = memory.data(SHAPES * 4, 4);
const entryTuple: usize = memory.data(<i32>(ENTRIES_PER_CLASS * 4), 4);

/** Index (0..3) of the class for ring direction `dir` (DIR_IN/DIR_OUT) and family 4 or 6. */
// @ts-ignore: decorator
@inline export function classIndex(dir: u32, family: u32): u32 { return ((dir - 1) << 1) | <u32>(family == 6); }
/** Address of the descriptor of class `index`. */
// @ts-ignore: decorator
@inline export function classAt(index: u32): usize { return classes + <usize>index * CLASS_SIZE; }
/** First rule matching a packet without an IP header on a ring of direction `dir`, or -1. */
// @ts-ignore: decorator
@inline export function noIpRule(dir: u32): i32 { return load<i32>(noIpRules + (<usize>(dir - 1) << 2)); }

const H1: u64 = 0x9E3779B97F4A7C15, H2: u64 = 0xC2B2AE3D27D4EB4F, H3: u64 = 0x165667B19E3779F9;
const H4: u64 = 0xD6E8FEB86659FD93, H5: u64 = 0xFF51AFD7ED558CCD;

/** Bucket of a masked key in a table of 2^(64 - shift) buckets (IPv4: s1 = d1 = 0; addresses
 *  as loaded, network order): multiplicative hashing, the top bits of a xor of products.
 *  NB: independent multiplies, one shift: short latency per probe. The C baseline computes
 *  the same function. */
// @ts-ignore: decorator
@inline export function keyHash(s0: u64, s1: u64, d0: u64, d1: u64, k: u64, shift: u32): u32 {
  return <u32>((s0 * H1 ^ s1 * H2 ^ d0 * H3 ^ d1 * H4 ^ k * H5) >> <u64>shift);
}
/** keyHash for IPv4 (the two upper address halves are 0): two multiplies fewer. */
// @ts-ignore: decorator
@inline export function keyHash4(s: u32, d: u32, k: u64, shift: u32): u32 {
  return <u32>((<u64>s * H1 ^ <u64>d * H3 ^ k * H5) >> <u64>shift);
}

function prefixLength(mask: usize): i32 {
  return <i32>(popcnt<u64>(load<u64>(mask)) + popcnt<u64>(load<u64>(mask, 8)));
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

/** Shape index of a match entry: (source prefix length * 129 + destination prefix length) * 3 + key kind. */
function shapeOf(m: usize): i32 {
  const keyMask = keyMaskOf(m);
  const kind = keyMask == KEY_NONE ? 0 : keyMask == KEY_PROTO ? 1 : 2;
  return (prefixLength(m + M_SRC_MASK) * 129 + prefixLength(m + M_DST_MASK)) * 3 + kind;
}

/** The key kind of a match entry: which of (proto << 17 | dport) every packet it matches shares. */
function keyMaskOf(m: usize): u64 {
  if (load<u32>(m, M_PROTO_MASK) == 0) return KEY_NONE;
  if (load<u32>(m, M_DPORT_SPAN) == 0) return KEY_PROTO_DPORT;
  return KEY_PROTO;
}

/** The packet key value a match entry requires, under its key mask. */
function keyValueOf(m: usize): u64 {
  return (<u64>load<u32>(m, M_PROTO_VALUE) << 17) | <u64>load<u32>(m, M_DPORT_LO);
}

/** Builds class `c` (direction `dir`, family 4 or 6) from the first `ruleCount` rules. */
function buildClass(c: u32, dir: u32, family: u32, ruleCount: i32): void {
  const desc = classAt(c);
  const firstEntry = <i32>(<usize>c * ENTRIES_PER_CLASS);
  const tupleBase = tuples + <usize>c * ENTRIES_PER_CLASS * TUPLE_SIZE;
  let count = 0;
  for (let i = 0; i < ruleCount; i++) {
    const rule = ruleTable + <usize>i * RULE_SIZE;
    const ruleDir = <u32>load<u8>(rule, R_DIR), ruleFamily = <u32>load<u8>(rule, R_FAMILY);
    if (ruleDir != DIR_ANY && ruleDir != dir) continue;
    if (ruleFamily != 0 && ruleFamily != family) continue;
    compileMatch(i, matchEntries + <usize>(firstEntry + count) * MATCH_SIZE);
    count++;
  }
  store<i32>(desc, firstEntry, C_ENTRIES);
  store<i32>(desc, count, C_COUNT);
  store<u32>(desc, <u32>tupleBase, C_TUPLES);
  store<i32>(desc, 0, C_TUPLE_COUNT);
  if (count <= LINEAR_MAX) return;

  // Shapes: (source prefix length, destination prefix length, key kind) of every entry.
  // Merge: a shape hashes under a shorter "root" shape of the same kind present in the class
  // when both its lengths are at most MERGE_BITS longer (a /32 rule under a /24 tuple
  // chains with the other rules of its /24): fewer tuples to probe per packet, a few more
  // entries per chain. Roots are chosen shortest first, so every shape maps to a root directly.
  memory.fill(shapeTuple, 0, <usize>SHAPES * 4); // 0 absent, 1 present (then: root shape + 2)
  for (let e = 0; e < count; e++) {
    const shape = shapeOf(matchEntries + <usize>(firstEntry + e) * MATCH_SIZE);
    store<i32>(entryTuple + (<usize>e << 2), shape);
    store<i32>(shapeTuple + (<usize>shape << 2), 1);
  }
  const maxLen = family == 4 ? 32 : 128;
  for (let sum = 0; sum <= 2 * maxLen; sum++) {
    for (let srcLen = max(0, sum - maxLen); srcLen <= min(sum, maxLen); srcLen++) {
      const dstLen = sum - srcLen;
      for (let kind = 0; kind < 3; kind++) {
        const shape = (srcLen * 129 + dstLen) * 3 + kind;
        if (load<i32>(shapeTuple + (<usize>shape << 2)) != 1) continue;
        let root = shape; // itself, unless a shorter root lies within MERGE_BITS on both sides
        for (let rs = max(0, srcLen - MERGE_BITS); rs <= srcLen && root == shape; rs++) {
          for (let rd = max(0, dstLen - MERGE_BITS); rd <= dstLen; rd++) {
            const candidate = (rs * 129 + rd) * 3 + kind;
            if (candidate != shape && load<i32>(shapeTuple + (<usize>candidate << 2)) - 2 == candidate) { root = candidate; break; }
          }
        }
        store<i32>(shapeTuple + (<usize>shape << 2), root + 2);
      }
    }
  }
  // Pass 1, in rule order: the tuple of each entry (tuples thus ordered by first rule);
  // T_HASH_SHIFT counts the tuple's entries meanwhile. shapeTuple of a root then holds
  // -(tuple + 1) once its tuple exists.
  let tupleCount = 0;
  for (let e = 0; e < count; e++) {
    const m = matchEntries + <usize>(firstEntry + e) * MATCH_SIZE;
    const shape = load<i32>(entryTuple + (<usize>e << 2));
    const root = load<i32>(shapeTuple + (<usize>shape << 2)) - 2;
    const rootSlot = shapeTuple + (<usize>(root >= 0 ? root : shape) << 2);
    let t: i32;
    if (root >= 0 && load<i32>(rootSlot) - 2 == root) {
      // the root's tuple does not exist yet: create it (root lengths, this entry's kind)
      t = tupleCount++;
      const tp = tupleBase + <usize>t * TUPLE_SIZE;
      const srcLen = root / 3 / 129, dstLen = root / 3 % 129;
      prefixMask(tp + T_SRC_MASK, srcLen, 16);
      prefixMask(tp + T_DST_MASK, dstLen, 16);
      store<u64>(tp, keyMaskOf(m), T_KEY_MASK);
      store<u32>(tp, 0, T_HASH_SHIFT);
      store<i32>(tp, load<i32>(m, M_RULE), T_FIRST_RULE);
      store<u64>(tp, 0, T_PROTOS);
      store<i32>(rootSlot, -(t + 1));
    } else {
      t = -load<i32>(rootSlot) - 1;
    }
    const tp = tupleBase + <usize>t * TUPLE_SIZE;
    store<u32>(tp, load<u32>(tp, T_HASH_SHIFT) + 1, T_HASH_SHIFT);
    // the protocols its entries can match (all for an entry without a protocol)
    store<u64>(tp, load<u64>(tp, T_PROTOS) | (load<u32>(m, M_PROTO_MASK) != 0 ? protoBit(load<u32>(m, M_PROTO_VALUE)) : <u64>-1), T_PROTOS);
    store<i32>(entryTuple + (<usize>e << 2), t);
  }
  // Buckets: a power of two >= max(4n, 8) per tuple (load <= 1/4: a probe that misses
  // mostly finds an empty bucket instead of testing an entry), all empty.
  let bucket = buckets + <usize>c * BUCKETS_PER_CLASS * 4;
  for (let t = 0; t < tupleCount; t++) {
    const tp = tupleBase + <usize>t * TUPLE_SIZE;
    const n = load<u32>(tp, T_HASH_SHIFT);
    const size: u32 = n <= 2 ? 8 : <u32>1 << (32 - clz<u32>(4 * n - 1));
    store<u32>(tp, <u32>bucket, T_BUCKETS);
    store<u32>(tp, 33 + clz<u32>(size), T_HASH_SHIFT); // 64 - log2(size)
    memory.fill(bucket, 0xFF, <usize>size << 2);
    bucket += <usize>size << 2;
  }
  // Pass 2, in reverse rule order: push each entry onto its bucket, so chains run in rule order.
  for (let e = count - 1; e >= 0; e--) {
    const index = firstEntry + e;
    const m = matchEntries + <usize>index * MATCH_SIZE;
    const tp = tupleBase + <usize>load<i32>(entryTuple + (<usize>e << 2)) * TUPLE_SIZE;
    const keyMask = load<u64>(tp, T_KEY_MASK), shift = load<u32>(tp, T_HASH_SHIFT);
    const h = family == 4
      ? keyHash4(load<u32>(m, M_SRC) & load<u32>(tp, T_SRC_MASK), load<u32>(m, M_DST) & load<u32>(tp, T_DST_MASK), keyValueOf(m) & keyMask, shift)
      : keyHash(load<u64>(m, M_SRC) & load<u64>(tp, T_SRC_MASK), load<u64>(m, M_SRC + 8) & load<u64>(tp, T_SRC_MASK + 8),
        load<u64>(m, M_DST) & load<u64>(tp, T_DST_MASK), load<u64>(m, M_DST + 8) & load<u64>(tp, T_DST_MASK + 8), keyValueOf(m) & keyMask, shift);
    const slot = <usize>load<u32>(tp, T_BUCKETS) + (<usize>h << 2);
    store<i32>(chainNext + (<usize>index << 2), load<i32>(slot));
    store<i32>(slot, index);
  }
  store<i32>(desc, tupleCount, C_TUPLE_COUNT);
}

/** Rebuilds every class and the no-IP rules from the first `ruleCount` compiled rules. */
export function buildLookup(ruleCount: i32): void {
  memory.fill(flowCache4, 0, <usize>FLOW_SLOTS * FLOW4_SIZE); // no answer of the old tables survives
  memory.fill(flowCache6, 0, <usize>FLOW_SLOTS * FLOW6_SIZE);
  for (let dir: u32 = DIR_IN; dir <= DIR_OUT; dir++) {
    let noIp = -1;
    for (let i = 0; i < ruleCount && noIp < 0; i++) {
      const rule = ruleTable + <usize>i * RULE_SIZE;
      const ruleDir = <u32>load<u8>(rule, R_DIR);
      if ((ruleDir == DIR_ANY || ruleDir == dir) && load<u8>(rule, R_FAMILY) == 0 && load<u8>(rule, R_PROTO) == PROTO_ANY) noIp = i;
    }
    store<i32>(noIpRules + (<usize>(dir - 1) << 2), noIp);
    buildClass(classIndex(dir, 4), dir, 4, ruleCount);
    buildClass(classIndex(dir, 6), dir, 6, ruleCount);
  }
}
