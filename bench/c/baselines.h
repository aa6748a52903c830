/* C baselines of the example filters, written the way a C programmer would write them
 * against the same ring ABI (docs/ABI.md), with the same outputs as the AssemblyScript
 * filters: the verdict byte of every slot, the counters of nmwasm_stats (same order, u64),
 * and for the reflector the rewritten frame bytes. bench/filters.mjs compares all three
 * byte for byte with the wasm filter's over the whole pool; docs/PERFORMANCE.md reviews
 * them line by line against the AssemblyScript sources.
 *   pass-all   filters/fixtures/pass.ts
 *   counter    filters/packages/counter/index.ts
 *   reflector  filters/packages/reflector/index.ts, configured `swap ports`
 * Signature: (ring, verdicts, first, count, stats) as nmwasm_process plus the counter block. */
#ifndef NMWASM_BENCH_BASELINES_H
#define NMWASM_BENCH_BASELINES_H

#include <stdint.h>
#include <string.h>

#include "harness.h"
#include "parse.h"

typedef void (*bl_filter)(uint8_t *ring, uint8_t *verdicts, uint32_t first, uint32_t count, uint64_t *stats);

#define BL_RING_NUM_SLOTS(ring) hr_rd32((ring) + 8)
#define BL_SLOT(ring, i) ((ring) + HR_RING_SLOTS_OFS + (size_t)(i) * HR_SLOT_SIZE)

static inline uint8_t *bl_buf(uint8_t *ring, uint32_t i, int64_t buf_ofs, uint32_t buf_size) {
  return ring + buf_ofs + (size_t)hr_rd32(BL_SLOT(ring, i)) * buf_size;
}

/** pass-all: PASS (1) for every slot of the batch; two memsets around the ring's end. */
static void bl_pass(uint8_t *ring, uint8_t *verdicts, uint32_t first, uint32_t count, uint64_t *stats) {
  (void)stats;
  const uint32_t n = BL_RING_NUM_SLOTS(ring);
  const uint32_t head = n - first < count ? n - first : count;
  memset(verdicts + first, 1, head);
  memset(verdicts, 1, count - head);
}

enum { CNT_PACKETS, CNT_BYTES, CNT_IPV4, CNT_IPV6, CNT_ARP, CNT_TCP, CNT_UDP, CNT_ICMP, CNT_ICMP6, CNT_OTHER, CNT_N };

/** counter: per-protocol counts (manifest order), PASS for every slot. Counts are kept in
 *  locals over the batch and added to `stats` once. */
static void bl_counter(uint8_t *ring, uint8_t *verdicts, uint32_t first, uint32_t count, uint64_t *stats) {
  const uint32_t n = BL_RING_NUM_SLOTS(ring), buf_size = hr_rd32(ring + 12);
  int64_t buf_ofs; memcpy(&buf_ofs, ring, 8);
  uint64_t bytes = 0, v4 = 0, v6 = 0, arp = 0, other = 0, tcp = 0, udp = 0, icmp = 0, icmp6 = 0;
  uint32_t slot = first;
  for (uint32_t k = 0; k < count; k++) {
    const int32_t len = hr_rd16(BL_SLOT(ring, slot) + 4);
    bytes += (uint32_t)len;
    const uint8_t *p = bl_buf(ring, slot, buf_ofs, buf_size);
    hp_hdr h;
    /* fast path: plain IPv4 / IPv6 right after Ethernet (as the AS counter), else hp_parse */
    const uint16_t type = len >= 14 ? hr_rd16(p + 12) : 0;
    if (type == 0x0008 && len >= 34 && p[14] == 0x45 && (hr_rd16(p + 16) == 0 || hp_be16(p, 16) >= 20)) {
      h.family = 4; h.proto = p[23]; h.eth_type = 0x0800;
    } else if (type == 0xDD86 && len >= 54 && (p[14] >> 4) == 6 && !hp_ipv6_ext(p[20])) {
      h.family = 6; h.proto = p[20]; h.eth_type = 0x86DD;
    } else {
      hp_parse(p, len, &h);
    }
    v4 += h.family == 4;
    v6 += h.family == 6;
    arp += h.family == 0 && h.eth_type == 0x0806;
    other += h.family == 0 && h.eth_type != 0x0806;
    tcp += h.proto == 6;
    udp += h.proto == 17;
    icmp += h.proto == 1 && h.family == 4;
    icmp6 += h.proto == 58 && h.family == 6;
    verdicts[slot] = 1;
    if (++slot == n) slot = 0;
  }
  stats[CNT_PACKETS] += count; stats[CNT_BYTES] += bytes;
  stats[CNT_IPV4] += v4; stats[CNT_IPV6] += v6; stats[CNT_ARP] += arp; stats[CNT_OTHER] += other;
  stats[CNT_TCP] += tcp; stats[CNT_UDP] += udp; stats[CNT_ICMP] += icmp; stats[CNT_ICMP6] += icmp6;
}

enum { RFL_PACKETS, RFL_SWAPPED_IP, RFL_SWAPPED_PORTS, RFL_N };

static inline void bl_swap(uint8_t *a, uint8_t *b, size_t n) {
  uint8_t t[16];
  memcpy(t, a, n); memcpy(a, b, n); memcpy(b, t, n);
}

/** reflector, `swap ports`: swaps the MACs (frames of >= 12 bytes), the IP addresses
 *  (a whole fixed IP header) and the TCP/UDP ports (both present); FORWARD to output 0. */
static void bl_reflector(uint8_t *ring, uint8_t *verdicts, uint32_t first, uint32_t count, uint64_t *stats) {
  const uint32_t n = BL_RING_NUM_SLOTS(ring), buf_size = hr_rd32(ring + 12);
  int64_t buf_ofs; memcpy(&buf_ofs, ring, 8);
  uint64_t ips = 0, ports = 0;
  uint32_t slot = first;
  for (uint32_t k = 0; k < count; k++) {
    uint8_t *p = bl_buf(ring, slot, buf_ofs, buf_size);
    const int32_t len = hr_rd16(BL_SLOT(ring, slot) + 4);
    if (len >= 12) bl_swap(p, p + 6, 6);
    if (len >= 14) {
      /* fast path: plain IPv4 / IPv6 right after Ethernet (as the AS reflector), else hp_parse */
      int32_t family = 0, l3 = 14, l4 = 0, ports_ok = 0;
      const uint16_t type = hr_rd16(p + 12);
      if (type == 0x0008 && len >= 34 && p[14] == 0x45 && (hr_rd16(p + 16) == 0 || hp_be16(p, 16) >= 20)) {
        const int32_t total = hp_be16(p, 16), end = total != 0 && 14 + total <= len ? 14 + total : len;
        family = 4; l4 = 34;
        ports_ok = (hr_rd16(p + 20) & 0xFF1F) == 0 && end >= 38 && (p[23] == 6 || p[23] == 17);
      } else if (type == 0xDD86 && len >= 54 && (p[14] >> 4) == 6 && !hp_ipv6_ext(p[20])) {
        const int32_t payload = hp_be16(p, 18), end = payload != 0 && 54 + payload <= len ? 54 + payload : len;
        family = 6; l4 = 54;
        ports_ok = end >= 58 && (p[20] == 6 || p[20] == 17);
      } else {
        hp_hdr h;
        hp_parse(p, len, &h);
        family = h.family; l3 = h.l3; l4 = h.l4;
        ports_ok = h.family != 0 && h.sport >= 0 && h.dport >= 0 && (h.proto == 6 || h.proto == 17);
      }
      if (family == 4) { bl_swap(p + l3 + 12, p + l3 + 16, 4); ips++; }
      else if (family == 6) { bl_swap(p + l3 + 8, p + l3 + 24, 16); ips++; }
      if (ports_ok) { bl_swap(p + l4, p + l4 + 2, 2); ports++; }
    }
    verdicts[slot] = 0x80;
    if (++slot == n) slot = 0;
  }
  stats[RFL_PACKETS] += count; stats[RFL_SWAPPED_IP] += ips; stats[RFL_SWAPPED_PORTS] += ports;
}

typedef struct bl_entry { const char *name; bl_filter fn; uint32_t stats; } bl_entry;
static const bl_entry bl_filters[] = {
  {"pass", bl_pass, 0},
  {"counter", bl_counter, CNT_N},
  {"reflector", bl_reflector, RFL_N},
};

#endif
