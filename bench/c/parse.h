/* The header parse of the AssemblyScript SDK (filters/sdk/parse.ts) in C, for the C
 * baselines: same inputs, same results for the fields the baselines read (ethType,
 * l3, family, proto, l4, sport, dport), every read checked against len exactly as there.
 * Written the way a C programmer would: a struct on the stack (registers after
 * inlining), big-endian loads, the common case (IPv4/IPv6 straight after Ethernet)
 * first; the encapsulations (VLAN, LLC/SNAP, MPLS, PPPoE) and IPv6 extension headers
 * are handled as the SDK handles them. */
#ifndef NMWASM_BENCH_PARSE_H
#define NMWASM_BENCH_PARSE_H

#include <stdint.h>

typedef struct hp_hdr {
  int32_t eth_type, l3, family, proto, l4, sport, dport;
} hp_hdr;

static inline int32_t hp_be16(const uint8_t *p, int32_t off) { return (p[off] << 8) | p[off + 1]; }

static inline void hp_transport(const uint8_t *p, int32_t end, int32_t off, hp_hdr *h) {
  h->l4 = off;
  if ((h->proto == 6 || h->proto == 17) && off + 4 <= end) { h->sport = hp_be16(p, off); h->dport = hp_be16(p, off + 2); }
}

static inline void hp_ipv4(const uint8_t *p, int32_t len, int32_t off, hp_hdr *h) {
  if (off + 20 > len) return;
  const int32_t vihl = p[off], ihl = (vihl & 0xF) << 2, total = hp_be16(p, off + 2);
  if ((vihl >> 4) != 4 || ihl < 20 || (total != 0 && total < ihl)) return;
  h->family = 4;
  h->proto = p[off + 9];
  const int32_t end = total != 0 && off + total <= len ? off + total : len;
  const int32_t frag_ofs = (hp_be16(p, off + 6) & 0x1FFF) << 3;
  if (frag_ofs == 0 && off + ihl < end) hp_transport(p, end, off + ihl, h);
}

/** The next-header values the SDK's IPv6 parse skips (hop-by-hop, routing, destination
 *  options, mobility, AH) or treats as a fragment header. */
static inline int hp_ipv6_ext(int32_t nh) { return nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 51 || nh == 44; }

static inline void hp_ipv6(const uint8_t *p, int32_t len, int32_t off, hp_hdr *h) {
  if (off + 40 > len || (p[off] >> 4) != 6) return;
  const int32_t payload = hp_be16(p, off + 4);
  h->family = 6;
  const int32_t end = payload != 0 && off + 40 + payload <= len ? off + 40 + payload : len;
  int32_t nh = p[off + 6], at = off + 40;
  for (int i = 0; i < 16; i++) {
    if (nh == 0 || nh == 43 || nh == 60 || nh == 135 || nh == 51) {
      if (at + 2 > end) return;
      const int32_t size = nh == 51 ? (p[at + 1] + 2) << 2 : (p[at + 1] + 1) << 3;
      nh = p[at];
      at += size;
      if (at > end) return;
      continue;
    }
    if (nh == 44) {
      if (at + 8 > end) return;
      const int32_t frag_ofs = hp_be16(p, at + 2) & 0xFFF8;
      nh = p[at];
      at += 8;
      if (frag_ofs != 0) { h->proto = nh; return; }
      continue;
    }
    h->proto = nh;
    if (at < end) hp_transport(p, end, at, h);
    return;
  }
}

/** Parses the len-byte frame at p into *h (fields -1/0 when absent, as the SDK's hdr). */
static inline void hp_parse(const uint8_t *p, int32_t len, hp_hdr *h) {
  h->eth_type = -1; h->l3 = -1; h->family = 0; h->proto = -1; h->l4 = -1; h->sport = -1; h->dport = -1;
  if (len < 14) return;
  int32_t type = hp_be16(p, 12), off = 14;
  for (;;) {
    if (type == 0x0800 || type == 0x86DD || type == 0x0806) break;
    if (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
      if (off + 4 > len) { h->eth_type = type; return; }
      type = hp_be16(p, off + 2); off += 4;
      continue;
    }
    if (type < 0x0600) {
      if (off + 8 <= len && p[off] == 0xAA && p[off + 1] == 0xAA && p[off + 2] == 0x03) { type = hp_be16(p, off + 6); off += 8; continue; }
      h->eth_type = type; return;
    }
    if (type == 0x8847 || type == 0x8848) {
      int bottom = 0;
      while (off + 4 <= len) { bottom = p[off + 2] & 1; off += 4; if (bottom) break; }
      if (!bottom || off >= len) { h->eth_type = type; return; }
      const int32_t nibble = p[off] >> 4;
      if (nibble == 4) type = 0x0800;
      else if (nibble == 6) type = 0x86DD;
      else { h->eth_type = type; return; }
      break;
    }
    if (type == 0x8864) {
      if (off + 8 > len) { h->eth_type = type; return; }
      const int32_t ppp = hp_be16(p, off + 6);
      off += 8;
      if (ppp == 0x0021) type = 0x0800;
      else if (ppp == 0x0057) type = 0x86DD;
      else { h->eth_type = type; return; }
      break;
    }
    h->eth_type = type; return;
  }
  h->eth_type = type;
  h->l3 = off;
  if (type == 0x0800) hp_ipv4(p, len, off, h);
  else if (type == 0x86DD) hp_ipv6(p, len, off, h);
}

#endif
