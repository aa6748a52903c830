// C baseline of the example firewall (filters/packages/firewall), written the competent way
// over the SAME tables: bench/firewall.mjs dumps the firewall module's linear memory (the
// packet window with a ring of NUM_SLOTS slots, and the module's data with the compiled
// lookup tables of lookup.ts) into two files; this program loads them at the same offsets
// of one buffer, so a wasm address A is mem + A, and runs the same lookup as index.ts:
// per packet a summary (the same fast path for untagged Ethernet IPv4/IPv6, a general
// parser otherwise), then the in-order scan of a small class, or for a larger one the
// module's flow cache (same slots, same entries, filled and read the same way) and on a miss
// one hash probe per tuple with rule-order pruning; one verdict byte per slot, the same counters (packets, bytes,
// per verdict, defaulted) and per-rule hits.
//
// Usage: firewall WINDOW_FILE DATA_FILE RING VERDICTS BATCH LOOKUP DEFAULT RULE_TABLE RULE_COUNT
//   (RING, VERDICTS, LOOKUP, RULE_TABLE: wasm addresses; LOOKUP = firewall_lookup().)
// Commands on stdin, one per line, answers on stdout:
//   verify OUT   one pass over every slot from slot 0 with zeroed counters and empty flow
//                caches (as after nmwasm_init); writes the
//                verdicts, the 6 counters and the hits (u64 LE) to OUT; answers "ok"
//   time CALLS   CALLS batches of BATCH slots, continuing round the ring; answers the
//                CPU ns/packet of this thread (CLOCK_THREAD_CPUTIME_ID)
//   quit
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WINDOW_BASE 0x100000u
#define DATA_BASE 0x4000000u
#define MATCH_SIZE 96
#define TUPLE_SIZE 64
#define CLASS_SIZE 16
#define PORT_ABSENT 0x10000u
#define FLOW_SHIFT 52
#define FLOW_SLOTS 4096

static uint8_t *mem;
static uint64_t stats[6];
static uint64_t *hits;

static inline uint32_t ld32(uint64_t a) { uint32_t v; memcpy(&v, mem + a, 4); return v; }
static inline uint64_t ld64(uint64_t a) { uint64_t v; memcpy(&v, mem + a, 8); return v; }
static inline uint16_t ld16(uint64_t a) { uint16_t v; memcpy(&v, mem + a, 2); return v; }
static inline uint32_t be16(const uint8_t *p) { return ((uint32_t)p[0] << 8) | p[1]; }

#define H1 0x9E3779B97F4A7C15ull
#define H2 0xC2B2AE3D27D4EB4Full
#define H3 0x165667B19E3779F9ull
#define H4 0xD6E8FEB86659FD93ull
#define H5 0xFF51AFD7ED558CCDull

static inline uint32_t key_hash(uint64_t s0, uint64_t s1, uint64_t d0, uint64_t d1, uint64_t k, uint32_t shift) {
  return (uint32_t)((s0 * H1 ^ s1 * H2 ^ d0 * H3 ^ d1 * H4 ^ k * H5) >> shift);
}
static inline uint32_t key_hash4(uint32_t s, uint32_t d, uint64_t k, uint32_t shift) {
  return (uint32_t)(((uint64_t)s * H1 ^ (uint64_t)d * H3 ^ k * H5) >> shift);
}

// One match entry (lookup.ts), as stored.
struct entry {
  uint32_t proto_mask, proto_value, sport_lo, sport_span, dport_lo, dport_span, action;
  int32_t rule;
  uint64_t src[2], src_mask[2], dst[2], dst_mask[2];
};
struct tuple {
  uint64_t src_mask[2], dst_mask[2], key_mask;
  uint32_t buckets, hash_shift;
  int32_t first_rule;
  uint32_t pad;
  uint64_t protos;
};
// Flow cache entries (lookup.ts "flow cache").
struct flow4 { uint64_t addrs, key; int32_t rule; uint32_t verdict; uint64_t pad; };
struct flow6 { uint64_t src[2], dst[2], key; int32_t rule; uint32_t verdict; uint64_t pad[2]; };
_Static_assert(sizeof(struct flow4) == 32, "flow4 layout");
_Static_assert(sizeof(struct flow6) == 64, "flow6 layout");
static inline uint64_t flow_key(uint32_t proto, uint32_t sport, uint32_t dport, uint32_t dir) {
  return (uint64_t)proto | ((uint64_t)sport << 16) | ((uint64_t)dport << 33) | ((uint64_t)dir << 50) | (1ull << 62);
}
_Static_assert(sizeof(struct entry) == MATCH_SIZE, "match entry layout");
_Static_assert(sizeof(struct tuple) == TUPLE_SIZE, "tuple layout");

static inline int match4(const struct entry *m, uint32_t proto, uint32_t sport, uint32_t dport, uint32_t src, uint32_t dst) {
  if ((proto & m->proto_mask) != m->proto_value) return 0;
  if ((sport - m->sport_lo > m->sport_span) | (dport - m->dport_lo > m->dport_span)) return 0;
  return (((src & (uint32_t)m->src_mask[0]) ^ (uint32_t)m->src[0]) | ((dst & (uint32_t)m->dst_mask[0]) ^ (uint32_t)m->dst[0])) == 0;
}
static inline int match6(const struct entry *m, uint32_t proto, uint32_t sport, uint32_t dport, const uint64_t *src, const uint64_t *dst) {
  if ((proto & m->proto_mask) != m->proto_value) return 0;
  if ((sport - m->sport_lo > m->sport_span) | (dport - m->dport_lo > m->dport_span)) return 0;
  if (((src[0] & m->src_mask[0]) ^ m->src[0]) | ((src[1] & m->src_mask[1]) ^ m->src[1])) return 0;
  return (((dst[0] & m->dst_mask[0]) ^ m->dst[0]) | ((dst[1] & m->dst_mask[1]) ^ m->dst[1])) == 0;
}

// General parser for what the fast path does not take (the SDK's parse(): VLAN tags, LLC/SNAP,
// MPLS, PPPoE, IPv4 validity, IPv6 extension headers). Sets family (0 when no IP header).
static void parse_slow(const uint8_t *p, uint32_t len, uint32_t *family, uint32_t *proto, uint32_t *sport, uint32_t *dport,
                       uint64_t *src, uint64_t *dst) {
  *family = 0;
  if (len < 14) return;
  uint32_t off = 12, type = be16(p + off);
  while ((type == 0x8100 || type == 0x88A8 || type == 0x9100) && off + 6 <= len) { off += 4; type = be16(p + off); }
  uint32_t l3 = off + 2;
  if (type <= 1500 && l3 + 8 <= len && p[l3] == 0xAA && p[l3 + 1] == 0xAA && p[l3 + 2] == 0x03) { type = be16(p + l3 + 6); l3 += 8; }
  if (type == 0x8847 || type == 0x8848) {
    while (l3 + 4 <= len && !(p[l3 + 2] & 1)) l3 += 4;
    l3 += 4;
    if (l3 >= len) return;
    type = (p[l3] >> 4) == 4 ? 0x0800 : (p[l3] >> 4) == 6 ? 0x86DD : 0;
  } else if (type == 0x8864) {
    if (l3 + 8 > len) return;
    uint32_t ppp = be16(p + l3 + 6);
    type = ppp == 0x0021 ? 0x0800 : ppp == 0x0057 ? 0x86DD : 0;
    l3 += 8;
  }
  int first_fragment = 1;
  uint32_t l4, end = len;
  if (type == 0x0800) {
    if (l3 + 20 > len) return;
    uint32_t ihl = (p[l3] & 0x0F) * 4u, total = be16(p + l3 + 2);
    if ((p[l3] >> 4) != 4 || ihl < 20 || (total != 0 && total < ihl) || l3 + ihl > len) return;
    if (total != 0 && l3 + total < len) end = l3 + total;
    *family = 4;
    *proto = p[l3 + 9];
    first_fragment = (be16(p + l3 + 6) & 0x1FFF) == 0;
    uint32_t s, d;
    memcpy(&s, p + l3 + 12, 4);
    memcpy(&d, p + l3 + 16, 4);
    src[0] = s; dst[0] = d; src[1] = dst[1] = 0;
    l4 = l3 + ihl;
  } else if (type == 0x86DD) {
    if (l3 + 40 > len || (p[l3] >> 4) != 6) return;
    uint32_t payload = be16(p + l3 + 4);
    if (payload != 0 && l3 + 40 + payload < len) end = l3 + 40 + payload;
    *family = 6;
    uint32_t nh = p[l3 + 6];
    memcpy(src, p + l3 + 8, 16);
    memcpy(dst, p + l3 + 24, 16);
    l4 = l3 + 40;
    for (int guard = 0; guard < 16; guard++) {
      uint32_t ext;
      if (nh == 0 || nh == 43 || nh == 60 || nh == 135) { if (l4 + 2 > end) break; ext = (p[l4 + 1] + 1u) * 8; }
      else if (nh == 44) { if (l4 + 8 > end) break; if (be16(p + l4 + 2) & 0xFFF8) first_fragment = 0; ext = 8; }
      else if (nh == 51) { if (l4 + 2 > end) break; ext = (p[l4 + 1] + 2u) * 4; }
      else break;
      nh = p[l4];
      l4 += ext;
    }
    *proto = nh;
  } else {
    return;
  }
  if ((*proto == 6 || *proto == 17) && first_fragment && l4 + 4 <= end) { *sport = be16(p + l4); *dport = be16(p + l4 + 2); }
}

static uint32_t lookup[6];
static uint32_t ring_addr, verdicts_addr, batch;
static uint32_t default_action, rule_table, rule_count;

/** One batch, as index.ts nmwasm_process. */
static void process(uint32_t first, uint32_t count) {
  const uint64_t ring = ring_addr;
  const uint32_t num_slots = ld32(ring + 8), buf_size = ld32(ring + 12);
  const uint8_t *buf_base = mem + ring + ld64(ring);
  const uint32_t dir = ld16(ring + 18) == 1 ? 1 : 2;
  uint8_t *verdicts = mem + verdicts_addr;
  const uint8_t *entries = mem + lookup[0];
  const int32_t *next = (const int32_t *)(mem + lookup[1]);
  const uint64_t c4 = lookup[2] + (uint64_t)(((dir - 1) << 1) | 0) * CLASS_SIZE, c6 = lookup[2] + (uint64_t)(((dir - 1) << 1) | 1) * CLASS_SIZE;
  const struct entry *entries4 = (const struct entry *)(entries + (uint64_t)ld32(c4) * MATCH_SIZE);
  const int32_t count4 = (int32_t)ld32(c4 + 4), tuple_count4 = (int32_t)ld32(c4 + 12);
  const struct tuple *tuples4 = (const struct tuple *)(mem + ld32(c4 + 8));
  const struct entry *entries6 = (const struct entry *)(entries + (uint64_t)ld32(c6) * MATCH_SIZE);
  const int32_t count6 = (int32_t)ld32(c6 + 4), tuple_count6 = (int32_t)ld32(c6 + 12);
  const struct tuple *tuples6 = (const struct tuple *)(mem + ld32(c6 + 8));
  const int32_t no_ip = (int32_t)ld32(lookup[3] + (dir - 1) * 4);
  const uint32_t no_ip_verdict = no_ip >= 0 ? mem[rule_table + (uint64_t)no_ip * 80] : 0;
  struct flow4 *flows4 = (struct flow4 *)(mem + lookup[4]);
  struct flow6 *flows6 = (struct flow6 *)(mem + lookup[5]);
  uint64_t bytes = 0;
  uint32_t slot = first;
  for (uint32_t k = 0; k < count; k++) {
    const uint64_t s = ring + 256 + ((uint64_t)slot << 4);
    const uint8_t *p = buf_base + (uint64_t)ld32(s) * buf_size;
    const uint32_t len = ld16(s + 4);
    bytes += len;
    uint32_t family = 0, proto = 0xFFFF, sport = PORT_ABSENT, dport = PORT_ABSENT;
    uint64_t src[2] = {0, 0}, dst[2] = {0, 0};
    int fast = 0;
    const uint32_t type = (uint32_t)p[12] | ((uint32_t)p[13] << 8);
    if (type == 0x0008 && len >= 34) {
      const uint32_t vihl = p[14], ihl = (vihl & 0xF) << 2, total = be16(p + 16);
      if ((vihl >> 4) == 4 && ihl >= 20 && (total == 0 || total >= ihl)) {
        fast = 1;
        family = 4;
        proto = p[23];
        const uint32_t end = total != 0 && total + 14 <= len ? total + 14 : len, l4 = ihl + 14;
        if ((((uint32_t)p[20] | ((uint32_t)p[21] << 8)) & 0xFF1F) == 0 && (proto == 6 || proto == 17) && l4 + 4 <= end) {
          sport = be16(p + l4);
          dport = be16(p + l4 + 2);
        }
        uint32_t a, b;
        memcpy(&a, p + 26, 4);
        memcpy(&b, p + 30, 4);
        src[0] = a; dst[0] = b;
      }
    } else if (type == 0xDD86 && len >= 54) {
      const uint32_t nh = p[20];
      if ((p[14] >> 4) == 6 && (nh == 6 || nh == 17 || nh == 58)) {
        fast = 1;
        family = 6;
        proto = nh;
        const uint32_t payload = be16(p + 18), end = payload != 0 && payload + 54 <= len ? payload + 54 : len;
        if (nh != 58 && end >= 58) { sport = be16(p + 54); dport = be16(p + 56); }
        memcpy(src, p + 22, 16);
        memcpy(dst, p + 38, 16);
      }
    }
    if (!fast) {
      uint32_t pr = 0xFFFF, sp = PORT_ABSENT, dp = PORT_ABSENT;
      parse_slow(p, len, &family, &pr, &sp, &dp, src, dst);
      if (family) { proto = pr; sport = sp; dport = dp; }
    }
    uint32_t verdict = default_action;
    int32_t hit = -1;
    if (family == 4) {
      const uint32_t s4 = (uint32_t)src[0], d4 = (uint32_t)dst[0];
      if (tuple_count4 == 0) {
        for (int32_t i = 0; i < count4; i++) {
          const struct entry *m = entries4 + i;
          if (!match4(m, proto, sport, dport, s4, d4)) continue;
          hit = m->rule; verdict = m->action;
          break;
        }
      } else {
        const uint64_t addrs = (uint64_t)s4 | ((uint64_t)d4 << 32), fkey = flow_key(proto, sport, dport, dir);
        struct flow4 *fe = flows4 + key_hash4(s4, d4, fkey, FLOW_SHIFT);
        if (fe->addrs == addrs && fe->key == fkey) {
          hit = fe->rule; verdict = fe->verdict;
        } else {
        const uint64_t key = ((uint64_t)proto << 17) | dport;
        const uint64_t bit = 1ull << (proto & 63);
        int32_t best = INT32_MAX;
        for (int32_t t = 0; t < tuple_count4; t++) {
          const struct tuple *tp = tuples4 + t;
          if (tp->first_rule >= best) break;
          if (!(tp->protos & bit)) continue;
          const uint32_t h = key_hash4(s4 & (uint32_t)tp->src_mask[0], d4 & (uint32_t)tp->dst_mask[0], key & tp->key_mask, tp->hash_shift);
          int32_t e = *(const int32_t *)(mem + tp->buckets + ((uint64_t)h << 2));
          while (e >= 0) {
            const struct entry *m = (const struct entry *)(entries + (uint64_t)e * MATCH_SIZE);
            if (m->rule >= best) break;
            if (match4(m, proto, sport, dport, s4, d4)) { best = m->rule; verdict = m->action; break; }
            e = next[e];
          }
        }
        if (best != INT32_MAX) hit = best;
        fe->addrs = addrs; fe->key = fkey; fe->rule = hit; fe->verdict = verdict;
        }
      }
    } else if (family == 6) {
      if (tuple_count6 == 0) {
        for (int32_t i = 0; i < count6; i++) {
          const struct entry *m = entries6 + i;
          if (!match6(m, proto, sport, dport, src, dst)) continue;
          hit = m->rule; verdict = m->action;
          break;
        }
      } else {
        const uint64_t fkey = flow_key(proto, sport, dport, dir);
        struct flow6 *fe = flows6 + key_hash(src[0], src[1], dst[0], dst[1], fkey, FLOW_SHIFT);
        if (((fe->src[0] ^ src[0]) | (fe->src[1] ^ src[1]) | (fe->dst[0] ^ dst[0]) | (fe->dst[1] ^ dst[1]) | (fe->key ^ fkey)) == 0) {
          hit = fe->rule; verdict = fe->verdict;
        } else {
        const uint64_t key = ((uint64_t)proto << 17) | dport;
        const uint64_t bit = 1ull << (proto & 63);
        int32_t best = INT32_MAX;
        for (int32_t t = 0; t < tuple_count6; t++) {
          const struct tuple *tp = tuples6 + t;
          if (tp->first_rule >= best) break;
          if (!(tp->protos & bit)) continue;
          const uint32_t h = key_hash(src[0] & tp->src_mask[0], src[1] & tp->src_mask[1], dst[0] & tp->dst_mask[0],
                                      dst[1] & tp->dst_mask[1], key & tp->key_mask, tp->hash_shift);
          int32_t e = *(const int32_t *)(mem + tp->buckets + ((uint64_t)h << 2));
          while (e >= 0) {
            const struct entry *m = (const struct entry *)(entries + (uint64_t)e * MATCH_SIZE);
            if (m->rule >= best) break;
            if (match6(m, proto, sport, dport, src, dst)) { best = m->rule; verdict = m->action; break; }
            e = next[e];
          }
        }
        if (best != INT32_MAX) hit = best;
        fe->src[0] = src[0]; fe->src[1] = src[1]; fe->dst[0] = dst[0]; fe->dst[1] = dst[1];
        fe->key = fkey; fe->rule = hit; fe->verdict = verdict;
        }
      }
    } else if (no_ip >= 0) {
      hit = no_ip;
      verdict = no_ip_verdict;
    }
    if (hit >= 0) hits[hit]++; else stats[5]++;
    stats[2 + verdict]++;
    verdicts[slot] = (uint8_t)verdict;
    slot = slot + 1 == num_slots ? 0 : slot + 1;
  }
  stats[0] += count;
  stats[1] += bytes;
}

static uint64_t thread_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/** Reads the whole file at `path` into mem + at; exits on error. Returns its size. */
static size_t load_file(const char *path, uint64_t at, size_t room) {
  FILE *f = fopen(path, "rb");
  if (!f) { fprintf(stderr, "firewall: cannot open %s\n", path); exit(2); }
  size_t n = fread(mem + at, 1, room, f);
  fclose(f);
  return n;
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr, "usage: firewall WINDOW_FILE DATA_FILE RING VERDICTS BATCH LOOKUP DEFAULT RULE_TABLE RULE_COUNT\n");
    return 2;
  }
  const size_t data_room = 64u << 20;
  mem = calloc(1, (size_t)DATA_BASE + data_room);
  if (!mem) { fprintf(stderr, "firewall: out of memory\n"); return 2; }
  load_file(argv[1], WINDOW_BASE, DATA_BASE - WINDOW_BASE);
  load_file(argv[2], DATA_BASE, data_room);
  ring_addr = (uint32_t)strtoul(argv[3], 0, 0);
  verdicts_addr = (uint32_t)strtoul(argv[4], 0, 0);
  batch = (uint32_t)strtoul(argv[5], 0, 0);
  memcpy(lookup, mem + strtoul(argv[6], 0, 0), sizeof lookup);
  default_action = (uint32_t)strtoul(argv[7], 0, 0);
  rule_table = (uint32_t)strtoul(argv[8], 0, 0);
  rule_count = (uint32_t)strtoul(argv[9], 0, 0);
  hits = calloc(rule_count + 1, 8);
  const uint32_t num_slots = ld32(ring_addr + 8);
  uint32_t first = 0;
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    if (!strncmp(line, "verify ", 7)) {
      line[strcspn(line, "\n")] = 0;
      memset(stats, 0, sizeof stats);
      memset(hits, 0, (size_t)rule_count * 8);
      // as nmwasm_init: empty flow caches (the dump holds the module's, filled by its own pass)
      memset(mem + lookup[4], 0, FLOW_SLOTS * sizeof(struct flow4));
      memset(mem + lookup[5], 0, FLOW_SLOTS * sizeof(struct flow6));
      for (uint32_t at = 0; at < num_slots; at += batch) process(at, at + batch <= num_slots ? batch : num_slots - at);
      FILE *f = fopen(line + 7, "wb");
      if (!f) { fprintf(stderr, "firewall: cannot write %s\n", line + 7); return 2; }
      fwrite(mem + verdicts_addr, 1, num_slots, f);
      fwrite(stats, 8, 6, f);
      fwrite(hits, 8, rule_count, f);
      fclose(f);
      printf("ok\n");
    } else if (!strncmp(line, "time ", 5)) {
      const unsigned long calls = strtoul(line + 5, 0, 10);
      const uint64_t t0 = thread_ns();
      for (unsigned long i = 0; i < calls; i++) {
        process(first, batch);
        first = (first + batch) % num_slots;
      }
      printf("%.4f\n", (double)(thread_ns() - t0) / ((double)calls * batch));
    } else {
      break;
    }
    fflush(stdout);
  }
  return 0;
}
