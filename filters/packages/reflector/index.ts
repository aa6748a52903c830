// reflector: sends every frame back where it came from, the classic benchmark filter
// (pkt-gen's counterpart): swaps the Ethernet source and destination and, as configured,
// the IP addresses and the TCP/UDP ports, then FORWARDs the frame to output 0 (run it
// with --to set to the input port: the frame leaves on the port it arrived on). Swapping
// two fields of a checksummed sum keeps every checksum valid, so none is recomputed.
// Config (README.md): `swap mac` (default), `swap ip` (MACs and IP addresses), or
// `swap ports` (MACs, IP addresses, TCP/UDP ports); `output N` (0..127, default 0).
import {
  ConfigReader, parseDecimal, parse, hdr, ringNumSlots, ringBufBase, ringBufSize,
  slotAddr, slotBufAt, nextSlot, statAdd, verdictForward,
  swap16 as bswap16, SLOT_LEN, IPPROTO_TCP, IPPROTO_UDP,
  IPPROTO_HOPOPTS, IPPROTO_ROUTING, IPPROTO_DSTOPTS, IPPROTO_MOBILITY, IPPROTO_AH, IPPROTO_FRAGMENT,
} from "../../sdk";
export { nmwasm_abi_v1 } from "../../sdk";

const PACKETS: u32 = 0, SWAPPED_IP: u32 = 1, SWAPPED_PORTS: u32 = 2;
const stats: usize = memory.data(8 * 3, 8);

const MODE_MAC: u32 = 0, MODE_IP: u32 = 1, MODE_PORTS: u32 = 2;
let mode: u32 = MODE_MAC;
let verdict: u8 = verdictForward(0);

/** Parses `swap mac|ip|ports` and `output N`; 1 after logging an error naming the line. */
export function nmwasm_init(config: usize, configLen: i32): i32 {
  memory.fill(stats, 0, 8 * 3);
  mode = MODE_MAC; verdict = verdictForward(0);
  const r = new ConfigReader(config, configLen);
  while (r.nextLine()) {
    while (r.nextWord()) {
      if (r.wordIs("swap")) {
        if (!r.nextWord()) return r.error("missing value after 'swap'", "mac, ip or ports");
        if (r.wordIs("mac")) mode = MODE_MAC;
        else if (r.wordIs("ip")) mode = MODE_IP;
        else if (r.wordIs("ports")) mode = MODE_PORTS;
        else return r.error("bad swap", "mac, ip or ports");
      } else if (r.wordIs("output")) {
        if (!r.nextWord()) return r.error("missing value after 'output'", "an output port number 0..127");
        const n = parseDecimal(r.wordPtr, r.wordLen, 127);
        if (n < 0) return r.error("bad output", "an output port number 0..127");
        verdict = verdictForward(<u32>n);
      } else return r.error("unknown field", "swap mac|ip|ports or output N");
    }
  }
  return 0;
}

export function nmwasm_stats(): usize { return stats; }

// Swaps of 2, 4, 6 and 16 bytes: straight loads and stores (no loop, no call).
// @ts-ignore: decorator
@inline function swap2(a: usize, b: usize): void { const t = load<u16>(a); store<u16>(a, load<u16>(b)); store<u16>(b, t); }
// @ts-ignore: decorator
@inline function swap4(a: usize, b: usize): void { const t = load<u32>(a); store<u32>(a, load<u32>(b)); store<u32>(b, t); }
// @ts-ignore: decorator
@inline function swap6(a: usize, b: usize): void { swap4(a, b); swap2(a + 4, b + 4); }
// @ts-ignore: decorator
@inline function swap16(a: usize, b: usize): void {
  const t0 = load<u64>(a), t1 = load<u64>(a, 8);
  store<u64>(a, load<u64>(b)); store<u64>(a, load<u64>(b, 8), 8);
  store<u64>(b, t0); store<u64>(b, t1, 8);
}

const ETH_IPV4_NET: u32 = 0x0008, ETH_IPV6_NET: u32 = 0xDD86; // ETH_IPV4/ETH_IPV6 as load<u16> reads them

/** The IPv6 next-header values parse() skips or treats as a fragment header. */
// @ts-ignore: decorator
@inline function isIPv6ExtHeader(nh: i32): bool {
  return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_MOBILITY || nh == IPPROTO_AH || nh == IPPROTO_FRAGMENT;
}

/** parse() for the frames the fast path does not take, packed: family | l3 << 8 | l4 << 32 |
 *  (TCP/UDP with both ports ? 1 << 63 : 0).
 *  NB: deliberately not @inline: out of the loop's body, the general parser (and its
 *  globals) does not weigh on the fast path's registers. */
function classifyOther(p: usize, len: i32): u64 {
  parse(p, len);
  if (hdr.family == 0) return 0;
  const portsOk = hdr.sport >= 0 && hdr.dport >= 0 && (hdr.proto == IPPROTO_TCP || hdr.proto == IPPROTO_UDP);
  return <u64>hdr.family | (<u64><u32>hdr.l3 << 8) | (portsOk ? (<u64><u32>hdr.l4 << 32) | (<u64>1 << 63) : 0);
}

/** Rewrites every frame of the batch and FORWARDs it (verdict 0x80 | output). The
 *  configuration and the ring's buffer geometry are read once per batch, the counts kept
 *  in locals and added to the counters once (NB: globals and ring fields read in the loop
 *  are reloaded per packet, the frame stores may alias them as far as the compiler knows). */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  const bufBase = ringBufBase(ring), bufSize = <usize>ringBufSize(ring);
  const m = mode, v = verdict;
  let ips: u32 = 0, ports: u32 = 0;
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    const p = slotBufAt(ring, bufBase, bufSize, slot);
    const len = <i32>load<u16>(slotAddr(ring, slot), SLOT_LEN);
    if (len >= 12) swap6(p, p + 6); // a runt (captures have them) goes back as it came
    if (m != MODE_MAC && len >= 14) {
      // Fast path (network-order compares, results in locals): plain IPv4 (no options) or
      // IPv6 (no extension header) right after Ethernet; what parse() gives for them.
      // Everything else: the SDK's parse, out of line (classifyOther).
      let family = 0, l3 = 14, l4 = 0, portsOk = false;
      const type = <u32>load<u16>(p, 12);
      if (type == ETH_IPV4_NET && len >= 34 && load<u8>(p, 14) == 0x45 && (load<u16>(p, 16) == 0 || bswap16(<u32>load<u16>(p, 16)) >= 20)) {
        const total = <i32>bswap16(<u32>load<u16>(p, 16));
        const end = total != 0 && 14 + total <= len ? 14 + total : len;
        const proto = <i32>load<u8>(p, 23);
        family = 4; l4 = 34;
        portsOk = (load<u16>(p, 20) & 0xFF1F) == 0 && end >= 38 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP);
      } else if (type == ETH_IPV6_NET && len >= 54 && (load<u8>(p, 14) >> 4) == 6 && !isIPv6ExtHeader(<i32>load<u8>(p, 20))) {
        const payload = <i32>bswap16(<u32>load<u16>(p, 18));
        const end = payload != 0 && 54 + payload <= len ? 54 + payload : len;
        const proto = <i32>load<u8>(p, 20);
        family = 6; l4 = 54;
        portsOk = end >= 58 && (proto == IPPROTO_TCP || proto == IPPROTO_UDP);
      } else {
        const c = classifyOther(p, len);
        family = <i32>(c & 0xFF); l3 = <i32>((c >> 8) & 0xFFFFFF); l4 = <i32>((c >> 32) & 0x7FFFFFFF); portsOk = (c >> 63) != 0;
      }
      if (family != 0) { // a whole fixed IP header: both addresses are inside the frame
        const a = p + <usize>l3;
        if (family == 4) swap4(a + 12, a + 16);
        else swap16(a + 8, a + 24);
        ips++;
        if (m == MODE_PORTS && portsOk) {
          const b = p + <usize>l4;
          swap2(b, b + 2);
          ports++;
        }
      }
    }
    store<u8>(verdicts + <usize>slot, v);
    slot = nextSlot(slot, numSlots);
  }
  statAdd(stats, PACKETS, <u64>count);
  statAdd(stats, SWAPPED_IP, <u64>ips);
  statAdd(stats, SWAPPED_PORTS, <u64>ports);
  return 0;
}
