// Hand-built frames for filter tests: Ethernet with VLAN tags, MPLS, PPPoE, LLC/SNAP,
// ARP, IPv4 (options, fragments), IPv6 (extension headers), TCP, UDP, ICMP, ICMPv6.
// Checksums are left zero: the filters under test do not verify them.
import { isIPv4, isIPv6 } from 'node:net';

const MAC_A = [0x02, 0, 0, 0, 0, 0xaa];
const MAC_B = [0x02, 0, 0, 0, 0, 0xbb];

export function bytes(...parts: (number[] | Uint8Array)[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) out.push(...p);
  return Uint8Array.from(out);
}
const be16 = (v: number): number[] => [(v >> 8) & 0xff, v & 0xff];

/** IPv4 text to 4 bytes. */
export function v4(addr: string): number[] {
  if (!isIPv4(addr)) throw new Error(`not an IPv4 address: ${addr}`);
  return addr.split('.').map(Number);
}

/** IPv6 text (any form) to 16 bytes; an independent reference for the AS parser. */
export function v6(addr: string): number[] {
  if (!isIPv6(addr)) throw new Error(`not an IPv6 address: ${addr}`);
  let text = addr;
  const tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (tail) {
    const b = v4(tail[1]!);
    text = text.slice(0, -tail[1]!.length) + `${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => be16(parseInt(g, 16)));
}

export interface EthOpts { vlans?: number[]; tpid?: number }

/** Ethernet frame; `vlans` are VLAN ids (outer first) tagged with `tpid` (0x8100 default,
 *  the outer one 0x88a8 when tpid is 'qinq'). */
export function eth(type: number, payload: Uint8Array | number[], opts: EthOpts = {}): Uint8Array {
  const tags: number[] = [];
  for (const id of opts.vlans ?? []) tags.push(...be16(opts.tpid ?? 0x8100), ...be16(id));
  return bytes(MAC_B, MAC_A, tags, be16(type), payload);
}

export interface V4Opts { proto: number; ttl?: number; fragOffset?: number; mf?: boolean; options?: number[]; totalLen?: number }

export function ipv4(src: string, dst: string, payload: Uint8Array | number[], o: V4Opts): Uint8Array {
  const opts = o.options ?? [];
  if (opts.length % 4) throw new Error('IPv4 options must be a multiple of 4 bytes');
  const ihl = 5 + opts.length / 4;
  const total = o.totalLen ?? ihl * 4 + payload.length;
  const frag = ((o.fragOffset ?? 0) >> 3) | (o.mf ? 0x2000 : 0);
  return bytes([0x40 | ihl, 0], be16(total), [0, 1], be16(frag), [o.ttl ?? 64, o.proto, 0, 0], v4(src), v4(dst), opts, payload);
}

/** IPv6 header; `ext` are extension headers as [type, bytes-including-their-next-header]. */
export function ipv6(src: string, dst: string, nh: number, payload: Uint8Array | number[], ext: [number, number[]][] = []): Uint8Array {
  // Chain: header.nh = ext[0].type, ext[i].bytes[0] = ext[i+1].type (or nh).
  const chain: number[] = [];
  ext.forEach(([, b], i) => { const c = [...b]; c[0] = i + 1 < ext.length ? ext[i + 1]![0] : nh; chain.push(...c); });
  const first = ext.length ? ext[0]![0] : nh;
  const plen = chain.length + payload.length;
  return bytes([0x60, 0, 0, 0], be16(plen), [first, 64], v6(src), v6(dst), chain, payload);
}

/** Generic 8-byte extension header (hop-by-hop, routing, dst opts, mobility). */
export const ext8 = (): number[] => [0, 0, 0, 0, 0, 0, 0, 0];
/** Fragment extension header. */
export const fragExt = (offset: number, more: boolean): number[] => [0, 0, ...be16((offset & 0xfff8) | (more ? 1 : 0)), 0, 0, 0, 1];
/** AH header with a 12-byte ICV (length field 4 => (4+2)*4 = 24 bytes). */
export const ahExt = (): number[] => [0, 4, 0, 0, ...Array(20).fill(0)];

export const tcp = (sport: number, dport: number, flags = 0x02): number[] => [...be16(sport), ...be16(dport), 0, 0, 0, 0, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0];
export const udp = (sport: number, dport: number, data: number[] = [1, 2, 3, 4]): number[] => [...be16(sport), ...be16(dport), ...be16(8 + data.length), 0, 0, ...data];
export const icmp = (type: number, code: number): number[] => [type, code, 0, 0, 0, 1, 0, 1];

export const ETH_IPV4 = 0x0800, ETH_IPV6 = 0x86dd, ETH_ARP = 0x0806;

export const tcp4 = (src: string, dst: string, sport: number, dport: number, e: EthOpts = {}): Uint8Array =>
  eth(ETH_IPV4, ipv4(src, dst, tcp(sport, dport), { proto: 6 }), e);
export const udp4 = (src: string, dst: string, sport: number, dport: number, e: EthOpts = {}): Uint8Array =>
  eth(ETH_IPV4, ipv4(src, dst, udp(sport, dport), { proto: 17 }), e);
export const tcp6 = (src: string, dst: string, sport: number, dport: number, e: EthOpts = {}): Uint8Array =>
  eth(ETH_IPV6, ipv6(src, dst, 6, tcp(sport, dport)), e);
export const udp6 = (src: string, dst: string, sport: number, dport: number, e: EthOpts = {}): Uint8Array =>
  eth(ETH_IPV6, ipv6(src, dst, 17, udp(sport, dport)), e);
export const icmp4 = (src: string, dst: string, e: EthOpts = {}): Uint8Array => eth(ETH_IPV4, ipv4(src, dst, icmp(8, 0), { proto: 1 }), e);
export const icmp6 = (src: string, dst: string, type = 135): Uint8Array => eth(ETH_IPV6, ipv6(src, dst, 58, icmp(type, 0)));

export function arp(op = 1, e: EthOpts = {}): Uint8Array {
  return eth(ETH_ARP, [0, 1, 8, 0, 6, 4, ...be16(op), ...MAC_A, ...v4('10.0.0.1'), 0, 0, 0, 0, 0, 0, ...v4('10.0.0.2')], e);
}

/** MPLS: labels (last one bottom of stack) then `inner` (an IP packet without Ethernet). */
export function mpls(labels: number[], inner: Uint8Array): Uint8Array {
  const stack = labels.flatMap((l, i) => [(l >> 12) & 0xff, (l >> 4) & 0xff, ((l & 0xf) << 4) | (i === labels.length - 1 ? 1 : 0), 64]);
  return eth(0x8847, bytes(stack, inner));
}

/** PPPoE session frame carrying `inner` with PPP protocol `ppp` (0x0021 IPv4, 0x0057 IPv6). */
export function pppoe(ppp: number, inner: Uint8Array): Uint8Array {
  return eth(0x8864, bytes([0x11, 0, 0, 1], be16(inner.length + 2), be16(ppp), inner));
}

/** 802.3 + LLC/SNAP frame carrying `inner` with ethertype `type`. */
export function snap(type: number, inner: Uint8Array): Uint8Array {
  return eth(8 + inner.length, bytes([0xaa, 0xaa, 0x03, 0, 0, 0], be16(type), inner));
}

/** Strips the 14-byte Ethernet header (for MPLS/PPPoE/SNAP payloads). */
export const l3of = (frame: Uint8Array): Uint8Array => frame.subarray(14);
