// host-control: the single-RX-queue control-plane filter (Cloudflare's "ARP and ICMP to
// the kernel, everything else dropped" pattern). ARP, ICMP and ICMPv6 (including
// neighbour discovery) go to the host stack; every other packet is dropped.
import {
  parse, hdr, ringNumSlots, slotAddr, slotBuf, nextSlot, statInc, expectNoConfig,
  SLOT_LEN, ETH_ARP, IPPROTO_ICMP, IPPROTO_ICMPV6, VERDICT_HOST, VERDICT_DROP,
} from "../../sdk";
export { nmwasm_abi_v1 } from "../../sdk";

const STAT_ARP: u32 = 0, STAT_ICMP: u32 = 1, STAT_ICMP6: u32 = 2, STAT_DROPPED: u32 = 3;
const stats: usize = memory.data(8 * 4, 8);

export function nmwasm_stats(): usize { return stats; }

/** Takes no config: 1 (after logging the line) when the config holds a setting. */
export function nmwasm_init(config: usize, configLen: i32): i32 {
  memory.fill(stats, 0, 8 * 4);
  return expectNoConfig(config, configLen, "host-control");
}

/** One verdict per slot: HOST for ARP/ICMP/ICMPv6, DROP otherwise. */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    parse(slotBuf(ring, slot), <i32>load<u16>(slotAddr(ring, slot), SLOT_LEN));
    let verdict = VERDICT_HOST;
    // Fragments of ICMP datagrams go to the host too: it reassembles them.
    if (hdr.ethType == ETH_ARP) statInc(stats, STAT_ARP);
    else if (hdr.family == 4 && hdr.proto == IPPROTO_ICMP) statInc(stats, STAT_ICMP);
    else if (hdr.family == 6 && hdr.proto == IPPROTO_ICMPV6) statInc(stats, STAT_ICMP6);
    else { verdict = VERDICT_DROP; statInc(stats, STAT_DROPPED); }
    store<u8>(verdicts + <usize>slot, verdict);
    slot = nextSlot(slot, numSlots);
  }
  return 0;
}
