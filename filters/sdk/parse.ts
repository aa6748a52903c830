// One-pass header parser: Ethernet (+ any number of 802.1Q/802.1ad/0x9100 tags),
// LLC/SNAP, MPLS label stacks, PPPoE session, then ARP, IPv4 (options, fragments) or
// IPv6 (extension headers), then TCP/UDP ports and ICMP/ICMPv6 type/code.
// Results go to the global `hdr` (wasm globals: no allocation, no memory traffic).
// Every read is checked against the packet length first; a field whose bytes are not
// all inside the packet reads as -1 ("absent").
// NB: parse and its helpers are @inline: inlined into a filter's batch loop, a packet
// costs no wasm call and binaryen drops the hdr fields the filter never reads (about
// 5% of the firewall's time per packet, npm run bench).
import { swap16 } from "./packet";
import { Packet } from "./packet";

export const ETH_IPV4: i32 = 0x0800;
export const ETH_ARP: i32 = 0x0806;
export const ETH_IPV6: i32 = 0x86DD;
export const ETH_VLAN: i32 = 0x8100;
export const ETH_QINQ: i32 = 0x88A8;
export const ETH_VLAN_9100: i32 = 0x9100;
export const ETH_MPLS: i32 = 0x8847;
export const ETH_MPLS_MC: i32 = 0x8848;
export const ETH_PPPOE_SESSION: i32 = 0x8864;
export const PPP_IPV4: i32 = 0x0021;
export const PPP_IPV6: i32 = 0x0057;

export const IPPROTO_HOPOPTS: i32 = 0;
export const IPPROTO_ICMP: i32 = 1;
export const IPPROTO_TCP: i32 = 6;
export const IPPROTO_UDP: i32 = 17;
export const IPPROTO_IPV6: i32 = 41;
export const IPPROTO_ROUTING: i32 = 43;
export const IPPROTO_FRAGMENT: i32 = 44;
export const IPPROTO_AH: i32 = 51;
export const IPPROTO_ICMPV6: i32 = 58;
export const IPPROTO_NONE: i32 = 59;
export const IPPROTO_DSTOPTS: i32 = 60;
export const IPPROTO_MOBILITY: i32 = 135;

/** Bits of hdr.l2flags. */
export const L2_VLAN: i32 = 1;
export const L2_MPLS: i32 = 2;
export const L2_PPPOE: i32 = 4;
export const L2_SNAP: i32 = 8;

/** At most this many IPv6 extension headers are skipped; more reads as a truncated chain. */
export const IPV6_MAX_EXT_HEADERS: i32 = 16;

/** Results of the last parse(). Offsets are from the first byte of the packet. */
export namespace hdr {
  /** Ethertype of the network layer after VLAN/SNAP/MPLS/PPPoE (MPLS and PPPoE payloads
   *  are reported as ETH_IPV4/ETH_IPV6); the raw ethertype otherwise; -1 under 14 bytes. */
  export let ethType: i32 = -1;
  /** L2_* bits for the encapsulations crossed. */
  export let l2flags: i32 = 0;
  /** Number of VLAN tags skipped. */
  export let vlans: i32 = 0;
  /** Number of MPLS labels skipped. */
  export let mplsLabels: i32 = 0;
  /** Offset of the network header (IP or ARP), or -1. */
  export let l3: i32 = -1;
  /** 4 or 6 when a whole fixed IP header (right version) is present; 0 otherwise. */
  export let family: i32 = 0;
  /** One past the last byte of the IP datagram: min(packet length, header's total length). */
  export let l3End: i32 = 0;
  /** IPv4 header length (IHL * 4) or IPv6 40 + extension headers; 0 when absent. */
  export let ipHdrLen: i32 = 0;
  /** IPv4 total length / IPv6 40 + payload length field; -1 when absent. */
  export let ipTotalLen: i32 = -1;
  /** IPv4 TTL / IPv6 hop limit; -1 when absent. */
  export let ttl: i32 = -1;
  /** IPv4 protocol, or the IPv6 next header after the extension headers; -1 when
   *  there is no IP header or the IPv6 extension chain is truncated. */
  export let proto: i32 = -1;
  /** Fragment offset in bytes (0 when not a fragment). */
  export let fragOffset: i32 = 0;
  /** True for any fragment (more-fragments set or offset != 0). */
  export let isFragment: bool = false;
  /** Offset of the transport header, or -1 (none, non-first fragment, or past the end). */
  export let l4: i32 = -1;
  /** TCP/UDP source and destination ports (host order); -1 unless both fit. */
  export let sport: i32 = -1;
  export let dport: i32 = -1;
  /** TCP flags byte; -1 unless TCP with its flags byte present. */
  export let tcpFlags: i32 = -1;
  /** ICMP (IPv4) / ICMPv6 type and code; -1 when absent. */
  export let icmpType: i32 = -1;
  export let icmpCode: i32 = -1;
  /** ARP opcode; -1 unless an Ethernet/IPv4 ARP header (28 bytes) is present. */
  export let arpOp: i32 = -1;
  /** Offsets of the ARP sender / target protocol (IPv4) addresses, or -1. */
  export let arpSpa: i32 = -1;
  export let arpTpa: i32 = -1;
}

// @ts-ignore: decorator
@inline function u8at(p: usize, off: i32): i32 { return <i32>load<u8>(p + <usize>off); }
// @ts-ignore: decorator
@inline function be16at(p: usize, off: i32): i32 { return <i32>swap16(<u32>load<u16>(p + <usize>off)); }

function reset(): void {
  hdr.ethType = -1; hdr.l2flags = 0; hdr.vlans = 0; hdr.mplsLabels = 0;
  hdr.l3 = -1; hdr.family = 0; hdr.l3End = 0; hdr.ipHdrLen = 0; hdr.ipTotalLen = -1; hdr.ttl = -1;
  hdr.proto = -1; hdr.fragOffset = 0; hdr.isFragment = false; hdr.l4 = -1;
  hdr.sport = -1; hdr.dport = -1; hdr.tcpFlags = -1; hdr.icmpType = -1; hdr.icmpCode = -1;
  hdr.arpOp = -1; hdr.arpSpa = -1; hdr.arpTpa = -1;
}

/** Parses the `len`-byte Ethernet frame at `p` into `hdr`. Reads only bytes [0, len). */
// @ts-ignore: decorator
@inline export function parse(p: usize, len: i32): void {
  reset();
  if (len < 14) return;
  let type = be16at(p, 12);
  let off = 14;
  // L2 decapsulation; each step consumes bytes, so the loop ends within len.
  while (true) {
    if (type == ETH_IPV4 || type == ETH_IPV6 || type == ETH_ARP) break;
    if (type == ETH_VLAN || type == ETH_QINQ || type == ETH_VLAN_9100) {
      if (off + 4 > len) { hdr.ethType = type; return; }
      type = be16at(p, off + 2); off += 4; hdr.vlans++; hdr.l2flags |= L2_VLAN;
      continue;
    }
    if (type < 0x0600) { // 802.3 length field: LLC, maybe SNAP
      if (off + 8 <= len && u8at(p, off) == 0xAA && u8at(p, off + 1) == 0xAA && u8at(p, off + 2) == 0x03) {
        type = be16at(p, off + 6); off += 8; hdr.l2flags |= L2_SNAP;
        continue;
      }
      hdr.ethType = type; return;
    }
    if (type == ETH_MPLS || type == ETH_MPLS_MC) {
      hdr.l2flags |= L2_MPLS;
      let bottom = false;
      while (off + 4 <= len) {
        bottom = (u8at(p, off + 2) & 1) != 0;
        off += 4; hdr.mplsLabels++;
        if (bottom) break;
      }
      if (!bottom || off >= len) { hdr.ethType = type; return; }
      const nibble = u8at(p, off) >> 4;
      if (nibble == 4) type = ETH_IPV4;
      else if (nibble == 6) type = ETH_IPV6;
      else { hdr.ethType = type; return; }
      break;
    }
    if (type == ETH_PPPOE_SESSION) {
      hdr.l2flags |= L2_PPPOE;
      if (off + 8 > len) { hdr.ethType = type; return; }
      const ppp = be16at(p, off + 6);
      off += 8;
      if (ppp == PPP_IPV4) type = ETH_IPV4;
      else if (ppp == PPP_IPV6) type = ETH_IPV6;
      else { hdr.ethType = type; return; }
      break;
    }
    hdr.ethType = type; return;
  }
  hdr.ethType = type;
  hdr.l3 = off;
  if (type == ETH_IPV4) parseIPv4(p, len, off);
  else if (type == ETH_IPV6) parseIPv6(p, len, off);
  else parseArp(p, len, off);
}

/** parse() for a Packet view. */
// @ts-ignore: decorator
@inline export function parsePacket(pkt: Packet): void { parse(pkt.ptr, <i32>pkt.len); }

function parseArp(p: usize, len: i32, off: i32): void {
  if (off + 8 > len) return;
  hdr.arpOp = be16at(p, off + 6);
  // Ethernet/IPv4 ARP: htype 1, ptype 0x0800, hlen 6, plen 4, 28 bytes.
  if (off + 28 <= len && be16at(p, off) == 1 && be16at(p, off + 2) == ETH_IPV4 && u8at(p, off + 4) == 6 && u8at(p, off + 5) == 4) {
    hdr.arpSpa = off + 14;
    hdr.arpTpa = off + 24;
  }
}

// @ts-ignore: decorator
@inline function parseIPv4(p: usize, len: i32, off: i32): void {
  if (off + 20 > len) return;
  const vihl = u8at(p, off);
  const ihl = (vihl & 0xF) << 2;
  const total = be16at(p, off + 2);
  // A total length shorter than the header itself is not an IPv4 header (tshark: "Bogus IP length");
  // 0 is what TSO/BIG TCP senders write: the datagram then runs to the end of the packet.
  if ((vihl >> 4) != 4 || ihl < 20 || (total != 0 && total < ihl)) return;
  hdr.family = 4;
  hdr.ipHdrLen = ihl;
  hdr.ipTotalLen = total;
  hdr.ttl = u8at(p, off + 8);
  hdr.proto = u8at(p, off + 9);
  // Ethernet pads short frames: the datagram ends at its total length when that is sane.
  const end = total != 0 && off + total <= len ? off + total : len;
  hdr.l3End = end;
  const frag = be16at(p, off + 6);
  hdr.fragOffset = (frag & 0x1FFF) << 3;
  hdr.isFragment = (frag & 0x3FFF) != 0;
  if (hdr.fragOffset == 0 && off + ihl < end) transport(p, end, off + ihl);
}

// @ts-ignore: decorator
@inline function isSkippableExt(nh: i32): bool {
  return nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS || nh == IPPROTO_MOBILITY;
}

// @ts-ignore: decorator
@inline function parseIPv6(p: usize, len: i32, off: i32): void {
  if (off + 40 > len) return;
  if ((u8at(p, off) >> 4) != 6) return;
  const payload = be16at(p, off + 4);
  hdr.family = 6;
  hdr.ipTotalLen = 40 + payload;
  hdr.ttl = u8at(p, off + 7);
  const end = payload != 0 && off + 40 + payload <= len ? off + 40 + payload : len;
  hdr.l3End = end;
  let nh = u8at(p, off + 6);
  let at = off + 40;
  for (let i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
    if (isSkippableExt(nh) || nh == IPPROTO_AH) {
      if (at + 2 > end) { hdr.ipHdrLen = at - off; return; } // truncated chain: proto stays -1
      const size = nh == IPPROTO_AH ? (u8at(p, at + 1) + 2) << 2 : (u8at(p, at + 1) + 1) << 3;
      nh = u8at(p, at);
      at += size;
      if (at > end) { hdr.ipHdrLen = at - off; return; } // runs past the datagram: truncated
      continue;
    }
    if (nh == IPPROTO_FRAGMENT) {
      if (at + 8 > end) { hdr.ipHdrLen = at - off; return; }
      const frag = be16at(p, at + 2);
      hdr.fragOffset = frag & 0xFFF8;
      hdr.isFragment = true;
      nh = u8at(p, at);
      at += 8;
      if (hdr.fragOffset != 0) { hdr.proto = nh; hdr.ipHdrLen = at - off; return; }
      continue;
    }
    hdr.proto = nh;
    hdr.ipHdrLen = at - off;
    if (at < end) transport(p, end, at);
    return;
  }
  hdr.ipHdrLen = at - off; // too many extension headers: treated as truncated
}

// @ts-ignore: decorator
@inline function transport(p: usize, end: i32, off: i32): void {
  hdr.l4 = off;
  const proto = hdr.proto;
  if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
    if (off + 4 <= end) { hdr.sport = be16at(p, off); hdr.dport = be16at(p, off + 2); }
    if (proto == IPPROTO_TCP && off + 14 <= end) hdr.tcpFlags = u8at(p, off + 13);
  } else if ((proto == IPPROTO_ICMP && hdr.family == 4) || (proto == IPPROTO_ICMPV6 && hdr.family == 6)) {
    if (off + 2 <= end) { hdr.icmpType = u8at(p, off); hdr.icmpCode = u8at(p, off + 1); }
  }
}

/** Source address offset of the parsed IP header (4 or 16 bytes by hdr.family), or -1. */
// @ts-ignore: decorator
@inline export function srcAddrOffset(): i32 {
  return hdr.family == 4 ? hdr.l3 + 12 : hdr.family == 6 ? hdr.l3 + 8 : -1;
}

/** Destination address offset of the parsed IP header, or -1. */
// @ts-ignore: decorator
@inline export function dstAddrOffset(): i32 {
  return hdr.family == 4 ? hdr.l3 + 16 : hdr.family == 6 ? hdr.l3 + 24 : -1;
}
