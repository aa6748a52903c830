// ratelimit: a token bucket per source address (IPv4 or IPv6), with rate and burst per
// source prefix from the config (README.md). Time is the packet's receive timestamp
// (slot ptr, ns), so a capture replays exactly as it was received. Over the limit: DROP.
// The buckets survive a hot-swap to a new version of the filter through
// nmwasm_state_save / nmwasm_state_load (docs/ABI.md section 8).
import {
  ConfigReader, parse, hdr, srcAddrOffset, parseAddressPrefix, parseDecimal, ringNumSlots,
  slotAddr, slotBuf, nextSlot, statAdd, statInc, log, logBegin, logStr, logU32, logEnd, now,
  SLOT_LEN, SLOT_PTR, VERDICT_PASS, VERDICT_DROP, NMWASM_CONFIG_MAX,
} from "../../sdk";
export { nmwasm_abi_v1 } from "../../sdk";

// Counters (manifest.json "stats").
const PACKETS: u32 = 0, PASSED: u32 = 1, DROPPED: u32 = 2, UNMATCHED: u32 = 3, EVICTED: u32 = 4;
const stats: usize = memory.data(8 * 5, 8);

// ---- rules: first match wins; `default` matches every source ----
const MAX_RULES: i32 = 1024;
const RULE_SIZE: usize = 48; // addr[16] mask[16] family u32, pad u32, rate f64 (tokens/ns)
const R_ADDR: usize = 0, R_MASK: usize = 16, R_FAMILY: usize = 32, R_RATE: usize = 40;
const rules: usize = memory.data(<i32>RULE_SIZE * MAX_RULES, 8);
const bursts: usize = memory.data(8 * MAX_RULES, 8); // f64 per rule
let ruleCount: i32 = 0;

// ---- buckets: open addressing, PROBE slots per key, the least recently seen evicted ----
const TABLE_BITS: u32 = 16;
const TABLE_SIZE: u32 = 1 << TABLE_BITS;
const PROBE: u32 = 8;
const B_SIZE: usize = 48; // k0 u64, k1 u64, last ns u64, tokens f64, family u32, rule u32, pad
const B_K0: usize = 0, B_K1: usize = 8, B_LAST: usize = 16, B_TOKENS: usize = 24, B_FAMILY: usize = 32, B_RULE: usize = 36;
const table: usize = heap.alloc(<usize>TABLE_SIZE * B_SIZE); // once, at instantiation
memory.fill(table, 0, <usize>TABLE_SIZE * B_SIZE);

// @ts-ignore: decorator
@inline function bucketAt(i: u32): usize { return table + <usize>(i & (TABLE_SIZE - 1)) * B_SIZE; }

// @ts-ignore: decorator
@inline function hashKey(k0: u64, k1: u64, family: u32): u32 {
  let h = (k0 ^ (k1 * 0x9E3779B97F4A7C15) ^ <u64>family) * 0xFF51AFD7ED558CCD;
  h ^= h >> 33;
  return <u32>h;
}

/** The first rule matching the address (k0, k1) of `family`, or -1. */
function matchRule(k0: u64, k1: u64, family: u32): i32 {
  for (let r = 0; r < ruleCount; r++) {
    const p = rules + <usize>r * RULE_SIZE;
    const rf = load<u32>(p, R_FAMILY);
    if (rf == 0) return r; // default
    if (rf != family) continue;
    if ((k0 & load<u64>(p, R_MASK)) == load<u64>(p, R_ADDR) && (k1 & load<u64>(p, R_MASK + 8)) == load<u64>(p, R_ADDR + 8)) return r;
  }
  return -1;
}

/** The bucket of (k0, k1, family), created full (tokens = the rule's burst) when absent;
 *  0 when no rule matches the address. NB: the rules are matched only for a new bucket. */
function findBucket(k0: u64, k1: u64, family: u32, t: u64): usize {
  const h = hashKey(k0, k1, family);
  let victim: usize = bucketAt(h);
  let oldest: u64 = U64.MAX_VALUE;
  for (let i: u32 = 0; i < PROBE; i++) {
    const b = bucketAt(h + i);
    const f = load<u32>(b, B_FAMILY);
    if (f == family && load<u64>(b, B_K0) == k0 && load<u64>(b, B_K1) == k1) return b;
    if (f == 0) { if (oldest != 0) { victim = b; oldest = 0; } continue; }
    const last = load<u64>(b, B_LAST);
    if (last < oldest) { victim = b; oldest = last; }
  }
  const r = matchRule(k0, k1, family);
  if (r < 0) return 0;
  if (load<u32>(victim, B_FAMILY) != 0) statInc(stats, EVICTED);
  store<u64>(victim, k0, B_K0);
  store<u64>(victim, k1, B_K1);
  store<u64>(victim, t, B_LAST);
  store<f64>(victim, load<f64>(bursts + (<usize>r << 3)), B_TOKENS);
  store<u32>(victim, family, B_FAMILY);
  store<u32>(victim, <u32>r, B_RULE);
  return victim;
}

/** Refills bucket `b` up to time `t` and takes one token: true when there was one. */
// @ts-ignore: decorator
@inline function take(b: usize, t: u64): bool {
  const r = <usize>load<u32>(b, B_RULE);
  const last = load<u64>(b, B_LAST);
  let tokens = load<f64>(b, B_TOKENS);
  if (t > last) {
    tokens += <f64>(t - last) * load<f64>(rules + r * RULE_SIZE, R_RATE);
    const burst = load<f64>(bursts + (r << 3));
    if (tokens > burst) tokens = burst;
    store<u64>(b, t, B_LAST);
  }
  const ok = tokens >= 1.0;
  store<f64>(b, ok ? tokens - 1.0 : tokens, B_TOKENS);
  return ok;
}

// ---- config ----
const addrBuf: usize = memory.data(16, 8);
const maskBuf: usize = memory.data(16, 8);

/** Parses the rules (README "Config"); 0 on success, 1 after logging the first error. */
export function nmwasm_init(config: usize, configLen: i32): i32 {
  memory.fill(stats, 0, 8 * 5);
  memory.fill(table, 0, <usize>TABLE_SIZE * B_SIZE);
  ruleCount = 0;
  const rd = new ConfigReader(config, configLen);
  while (rd.nextLine()) {
    if (!rd.nextWord()) continue;
    if (ruleCount == MAX_RULES) return rd.error("too many rules", "at most 1024");
    const p = rules + <usize>ruleCount * RULE_SIZE;
    let family: u32 = 0;
    if (rd.wordIs("default")) {
      memory.fill(p, 0, 32);
    } else {
      const f = parseAddressPrefix(rd.wordPtr, rd.wordLen, addrBuf, maskBuf);
      if (f == 0) return rd.error("bad source prefix", "an IPv4 or IPv6 address with an optional /length, or 'default'");
      family = <u32>f;
      memory.copy(p + R_ADDR, addrBuf, 16);
      memory.copy(p + R_MASK, maskBuf, 16);
    }
    store<u32>(p, family, R_FAMILY);
    let rate: i64 = -1, burst: i64 = -1;
    while (rd.nextWord()) {
      const isRate = rd.wordIs("rate");
      if (!isRate && !rd.wordIs("burst")) return rd.error("unknown field", "rate N or burst N");
      if ((isRate ? rate : burst) >= 0) return rd.error(isRate ? "rate given twice" : "burst given twice");
      if (!rd.nextWord()) return rd.error(isRate ? "missing value after 'rate'" : "missing value after 'burst'", "an integer 1..1000000000");
      const v = parseDecimal(rd.wordPtr, rd.wordLen, 1000000000);
      if (v < 1) return rd.error(isRate ? "bad rate" : "bad burst", isRate ? "packets per second, 1..1000000000" : "packets, 1..1000000000");
      if (isRate) rate = v; else burst = v;
    }
    if (rate < 0) return rd.error("missing field rate", "rate N (packets per second)");
    store<f64>(p, <f64>rate / 1e9, R_RATE);
    store<f64>(bursts + (<usize>ruleCount << 3), <f64>(burst < 0 ? rate : burst));
    ruleCount++;
  }
  if (ruleCount == 0) { log("no rules: expected at least one line '<prefix|default> rate N [burst N]'"); return 1; }
  logBegin(); logStr("ratelimit: "); logU32(<u32>ruleCount); logStr(ruleCount == 1 ? " rule" : " rules"); logEnd();
  return 0;
}

export function nmwasm_stats(): usize { return stats; }

/** One verdict per slot: PASS while the source's bucket has a token, else DROP; PASS for
 *  packets without an IP header or whose source matches no rule. */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  const fallback = <u64>(now() * 1e6); // NB: one host call per batch, for slots without a timestamp
  let passed: u64 = 0;
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    const s = slotAddr(ring, slot);
    const p = slotBuf(ring, slot);
    parse(p, <i32>load<u16>(s, SLOT_LEN));
    let verdict = VERDICT_PASS;
    const family = <u32>hdr.family;
    if (family != 0) {
      const a = p + <usize>srcAddrOffset();
      const k0: u64 = family == 4 ? <u64>load<u32>(a) : load<u64>(a);
      const k1: u64 = family == 4 ? 0 : load<u64>(a, 8);
      let t = load<u64>(s, SLOT_PTR);
      if (t == 0) t = fallback;
      const b = findBucket(k0, k1, family, t);
      if (b == 0) statInc(stats, UNMATCHED);
      else if (!take(b, t)) verdict = VERDICT_DROP;
    } else statInc(stats, UNMATCHED);
    if (verdict == VERDICT_PASS) passed++;
    store<u8>(verdicts + <usize>slot, verdict);
    slot = nextSlot(slot, numSlots);
  }
  statAdd(stats, PACKETS, <u64>count);
  statAdd(stats, PASSED, passed);
  statAdd(stats, DROPPED, <u64>count - passed);
  return 0;
}

// ---- state (docs/ABI.md section 8): the buckets, re-matched against the new rules ----
const STATE_MAGIC: u32 = 0x31534C52; // "RLS1"
const S_ENTRY: usize = 40; // family u32, pad u32, k0 u64, k1 u64, last u64, tokens f64
const S_HEAD: usize = 12;  // length u32, magic u32, count u32
/** Buckets that fit the host's state area (NMWASM_CONFIG_MAX bytes). */
const S_MAX: u32 = <u32>((NMWASM_CONFIG_MAX - S_HEAD) / S_ENTRY);
let stateBuf: usize = 0;

/** Address of the u32-length-prefixed state blob: every bucket (at most S_MAX; the rest
 *  would start full in the next instance). */
export function nmwasm_state_save(): usize {
  if (stateBuf == 0) stateBuf = heap.alloc(S_HEAD + <usize>S_MAX * S_ENTRY); // once
  let n: u32 = 0;
  for (let i: u32 = 0; i < TABLE_SIZE && n < S_MAX; i++) {
    const b = bucketAt(i);
    const f = load<u32>(b, B_FAMILY);
    if (f == 0) continue;
    const e = stateBuf + S_HEAD + <usize>n * S_ENTRY;
    store<u32>(e, f);
    store<u32>(e, 0, 4);
    store<u64>(e, load<u64>(b, B_K0), 8);
    store<u64>(e, load<u64>(b, B_K1), 16);
    store<u64>(e, load<u64>(b, B_LAST), 24);
    store<f64>(e, load<f64>(b, B_TOKENS), 32);
    n++;
  }
  store<u32>(stateBuf, <u32>(S_HEAD - 4 + <usize>n * S_ENTRY));
  store<u32>(stateBuf, STATE_MAGIC, 4);
  store<u32>(stateBuf, n, 8);
  return stateBuf;
}

/** Loads a blob written by nmwasm_state_save (the `len` bytes after its length prefix):
 *  each bucket is matched against the current rules (dropped when none matches) and its
 *  tokens capped at the new burst. 0 on success, 1 after logging why the blob is refused. */
export function nmwasm_state_load(ptr: usize, len: i32): i32 {
  if (len < 8 || load<u32>(ptr) != STATE_MAGIC) { log("state: not a ratelimit state blob (expected magic RLS1)"); return 1; }
  const n = load<u32>(ptr, 4);
  if (<u64>len != 8 + <u64>n * <u64>S_ENTRY) { log("state: blob length does not match its bucket count"); return 1; }
  for (let i: u32 = 0; i < n; i++) {
    const e = ptr + 8 + <usize>i * S_ENTRY;
    const f = load<u32>(e);
    if (f != 4 && f != 6) { log("state: bad address family in a bucket"); return 1; }
  }
  for (let i: u32 = 0; i < n; i++) {
    const e = ptr + 8 + <usize>i * S_ENTRY;
    const last = load<u64>(e, 24);
    const b = findBucket(load<u64>(e, 8), load<u64>(e, 16), load<u32>(e), last);
    if (b == 0) continue;
    const burst = load<f64>(bursts + (<usize>load<u32>(b, B_RULE) << 3));
    const tokens = load<f64>(e, 32);
    store<f64>(b, tokens < burst ? (tokens > 0 ? tokens : 0) : burst, B_TOKENS);
    store<u64>(b, last, B_LAST);
  }
  return 0;
}
