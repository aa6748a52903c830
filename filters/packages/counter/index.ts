// counter: counts packets by protocol and passes everything.
import {
  parse, hdr, ringNumSlots, ringBufBase, ringBufSize, slotAddr, slotBufAt, nextSlot, statAdd, expectNoConfig, log,
  swap16, SLOT_LEN, ETH_ARP, ETH_IPV4, ETH_IPV6, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, IPPROTO_ICMPV6, VERDICT_PASS,
  IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_MOBILITY, IPPROTO_AH, IPPROTO_FRAGMENT,
} from "../../sdk";
export { nmwasm_abi_v1 } from "../../sdk";

// Same order as manifest.json "stats".
const PACKETS: u32 = 0, BYTES: u32 = 1, IPV4: u32 = 2, IPV6: u32 = 3, ARP: u32 = 4;
const TCP: u32 = 5, UDP: u32 = 6, ICMP: u32 = 7, ICMP6: u32 = 8, OTHER: u32 = 9;
const stats: usize = memory.data(8 * 10, 8);

export function nmwasm_stats(): usize { return stats; }

/** Takes no config: 1 (after logging the line) when the config holds a setting. */
export function nmwasm_init(config: usize, configLen: i32): i32 {
  memory.fill(stats, 0, 8 * 10);
  return expectNoConfig(config, configLen, "counter");
}

// ---- state (docs/ABI.md section 8): the totals, carried to the next version ----
const STATE_MAGIC: u32 = 0x31544E43; // "CNT1"
const state: usize = memory.data(12 + 8 * 10, 8); // length u32, magic u32, count u32, counters

/** Address of the u32-length-prefixed blob: magic, counter count, the counters. */
export function nmwasm_state_save(): usize {
  store<u32>(state, 8 + 8 * 10);
  store<u32>(state, STATE_MAGIC, 4);
  store<u32>(state, 10, 8);
  memory.copy(state + 12, stats, 8 * 10);
  return state;
}

/** Adds the totals of a saved blob to this instance's counters; 1 when it is not one. */
export function nmwasm_state_load(ptr: usize, len: i32): i32 {
  if (len != 8 + 8 * 10 || load<u32>(ptr) != STATE_MAGIC || load<u32>(ptr, 4) != 10) {
    log("state: not a counter state blob (expected magic CNT1 and 10 counters)");
    return 1;
  }
  for (let i: u32 = 0; i < 10; i++) statAdd(stats, i, load<u64>(ptr + 8 + (<usize>i << 3)));
  return 0;
}

const ETH_IPV4_NET: u32 = 0x0008, ETH_IPV6_NET: u32 = 0xDD86; // ETH_IPV4/ETH_IPV6 as load<u16> reads them

/** The IPv6 next-header values parse() skips or treats as a fragment header. */
// @ts-ignore: decorator
@inline function isIPv6ExtHeader(nh: i32): bool {
  return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_MOBILITY || nh == IPPROTO_AH || nh == IPPROTO_FRAGMENT;
}

/** parse() for the frames the fast path does not take, packed: family | (proto + 1) << 4 |
 *  (ARP ? 1 << 16 : 0). NB: deliberately not @inline: out of the loop's body, the general
 *  parser (and its globals) does not weigh on the fast path's registers. */
function classifyOther(p: usize, len: i32): i32 {
  parse(p, len);
  return hdr.family | ((hdr.proto + 1) << 4) | (hdr.ethType == ETH_ARP ? 1 << 16 : 0);
}

/** Counts each packet of the batch and passes it. The counts are kept in locals over the
 *  batch (branch-free adds) and added to the counters once: NB a statInc per packet is a
 *  load and a store to memory, which the verdict stores keep the compiler from merging. */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  const bufBase = ringBufBase(ring), bufSize = <usize>ringBufSize(ring);
  let bytes: u64 = 0;
  let v4: u32 = 0, v6: u32 = 0, arp: u32 = 0, other: u32 = 0, tcp: u32 = 0, udp: u32 = 0, icmp: u32 = 0, icmp6: u32 = 0;
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    const len = <i32>load<u16>(slotAddr(ring, slot), SLOT_LEN);
    bytes += <u64>len;
    const p = slotBufAt(ring, bufBase, bufSize, slot);
    // Fast path: plain IPv4 (no options) or IPv6 (no extension header) right after the
    // Ethernet header, tested in network order; the result is what parse() gives for them.
    // Everything else takes the SDK's parse. NB: parse() keeps its results in globals (a
    // store per field per packet); the fast path keeps them in locals.
    let family = 0, proto = -1, isArp = false;
    const type = len >= 14 ? <u32>load<u16>(p, 12) : 0;
    if (type == ETH_IPV4_NET && len >= 34 && load<u8>(p, 14) == 0x45 && (load<u16>(p, 16) == 0 || swap16(<u32>load<u16>(p, 16)) >= 20)) {
      family = 4; proto = <i32>load<u8>(p, 23);
    } else if (type == ETH_IPV6_NET && len >= 54 && (load<u8>(p, 14) >> 4) == 6 && !isIPv6ExtHeader(<i32>load<u8>(p, 20))) {
      family = 6; proto = <i32>load<u8>(p, 20);
    } else {
      const c = classifyOther(p, len);
      family = c & 0xF; proto = ((c >> 4) & 0x1FF) - 1; isArp = (c >> 16) != 0;
    }
    const noIp = family == 0;
    v4 += <u32>(family == 4);
    v6 += <u32>(family == 6);
    arp += <u32>(noIp & isArp);
    other += <u32>(noIp & !isArp);
    tcp += <u32>(proto == IPPROTO_TCP);
    udp += <u32>(proto == IPPROTO_UDP);
    icmp += <u32>((proto == IPPROTO_ICMP) & (family == 4));
    icmp6 += <u32>((proto == IPPROTO_ICMPV6) & (family == 6));
    store<u8>(verdicts + <usize>slot, VERDICT_PASS);
    slot = nextSlot(slot, numSlots);
  }
  statAdd(stats, PACKETS, <u64>count);
  statAdd(stats, BYTES, bytes);
  statAdd(stats, IPV4, <u64>v4); statAdd(stats, IPV6, <u64>v6); statAdd(stats, ARP, <u64>arp); statAdd(stats, OTHER, <u64>other);
  statAdd(stats, TCP, <u64>tcp); statAdd(stats, UDP, <u64>udp); statAdd(stats, ICMP, <u64>icmp); statAdd(stats, ICMP6, <u64>icmp6);
  return 0;
}
