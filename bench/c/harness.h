/* Reusable batch-loop harness for C baselines (C99 and C++; header only, no dependency).
 *
 * What it gives a benchmark:
 * - an nmwasm ring image: struct netmap_ring + slots + a verdict array + 2048-byte
 *   buffers, laid out exactly as nmwasm lays them out in a filter's packet window
 *   (docs/ABI.md section 2), in any memory (C heap, or a wasm module's memory);
 * - a pool of pre-generated frames, much larger than a batch (default 16384), drawn
 *   from a fixed seed with nmwasm gen:'s default protocol mix (tcp4 40, udp4 30,
 *   icmp4 5, tcp6 10, udp6 10, icmp6 3, arp 2), 64-byte frames or imix 7:4:1
 *   (64/594/1518 on the wire; slot len = size - 4). Consecutive batches take
 *   consecutive pool frames, so the branch predictor cannot learn a batch;
 * - the batch loop: hr_loop_refill() counts the previous batch's verdicts (the host's
 *   verdict walk) and copies the next `batch` frames of the pool into the ring's buffers
 *   (a port's receive), then the filter runs over (ring, verdicts, first, count);
 * - hr_cpu_ns(): this thread's CPU time.
 *
 * Usage (see bench/c/filters_bench.c):
 *   hr_pool pool; hr_pool_make(&pool, 16384, HR_SIZE_64, 42);
 *   size_t need = hr_image_bytes(1024, HR_BUF_SIZE); uint8_t *mem = aligned_alloc(4096, need);
 *   hr_image_init(mem, 1024, HR_BUF_SIZE);           // ring + verdicts + 1024 buffers
 *   hr_loop loop; hr_loop_init(&loop, mem, &pool);
 *   for (;;) { uint32_t first = hr_loop_refill(&loop);
 *              my_filter(mem, loop.verdicts, first, loop.batch); }
 *   loop.counts[v] : packets per verdict byte value so far (after the next refill)
 * For an isolated measurement, lay the whole pool out as one big ring instead
 * (hr_image_init(mem, pool.n, HR_BUF_SIZE_SPREAD) then hr_image_fill(mem, &pool)) and
 * call the filter on windows of `batch` slots: no copy at all between calls.
 * NB: nmwasm's buffers are 2048 bytes apart: the first lines of more than ~1000 of them
 * share a few cache sets and miss L2 (bench/README.md, gen.mjs). A 1024-slot ring is at
 * that limit; a pool-sized image at 2048 would measure cache misses, not the filter, so
 * it uses HR_BUF_SIZE_SPREAD (filters read nr_buf_size from the ring). */
#ifndef NMWASM_BENCH_HARNESS_H
#define NMWASM_BENCH_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#define HR_RING_SLOTS_OFS 256u /* struct netmap_ring header size */
#define HR_SLOT_SIZE 16u
#define HR_BUF_SIZE 2048u
#define HR_BUF_SIZE_SPREAD 2112u /* 2048 + one line: see hr_image_init */
#define HR_POOL_STRIDE 1536u
#define HR_BATCH_MAX 1023u

enum hr_size { HR_SIZE_64 = 0, HR_SIZE_IMIX = 1 };

/* ---- ring image ---------------------------------------------------------------------- */

static inline uint32_t hr_rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline void hr_wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static inline uint16_t hr_rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline void hr_wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

/** Offset of the verdict array from the ring (num_slots bytes). */
static inline uint32_t hr_verdict_ofs(uint32_t num_slots) { return (HR_RING_SLOTS_OFS + num_slots * HR_SLOT_SIZE + 63u) & ~63u; }
/** Offset of buffer 0 from the ring (= the ring's buf_ofs). */
static inline uint32_t hr_bufs_ofs(uint32_t num_slots) { return (hr_verdict_ofs(num_slots) + num_slots + 4095u) & ~4095u; }
/** Bytes of an image of `num_slots` slots, one buffer of `buf_size` bytes per slot. */
static inline size_t hr_image_bytes(uint32_t num_slots, uint32_t buf_size) { return (size_t)hr_bufs_ofs(num_slots) + (size_t)num_slots * buf_size; }
/** Address of slot i's buffer in the image at `ring` (slot i owns buffer i). */
static inline uint8_t *hr_buf(uint8_t *ring, uint32_t i) {
  return ring + hr_bufs_ofs(hr_rd32(ring + 8)) + (size_t)i * hr_rd32(ring + 12);
}

/** Lays out an empty RX ring of `num_slots` slots at `ring` (hr_image_bytes() bytes,
 *  zeroed here): buf_ofs, num_slots, nr_buf_size `buf_size` (nmwasm: HR_BUF_SIZE, 2048;
 *  HR_BUF_SIZE_SPREAD keeps many buffers' first lines from sharing a few cache sets),
 *  dir rx, slot i -> buffer i, every verdict 0xff (unset). */
static inline void hr_image_init(uint8_t *ring, uint32_t num_slots, uint32_t buf_size) {
  memset(ring, 0, hr_image_bytes(num_slots, buf_size));
  int64_t buf_ofs = hr_bufs_ofs(num_slots);
  memcpy(ring, &buf_ofs, 8);
  hr_wr32(ring + 8, num_slots);
  hr_wr32(ring + 12, buf_size);
  hr_wr16(ring + 18, 1);
  for (uint32_t i = 0; i < num_slots; i++) hr_wr32(ring + HR_RING_SLOTS_OFS + i * HR_SLOT_SIZE, i);
  memset(ring + hr_verdict_ofs(num_slots), 0xff, num_slots);
}

/* ---- frame pool ---------------------------------------------------------------------- */

typedef struct hr_pool {
  uint32_t n;
  uint16_t *len;   /* slot len of frame i (on-wire size - 4) */
  uint8_t *data;   /* frame i at data + i * HR_POOL_STRIDE */
} hr_pool;

static inline uint64_t hr_rand(uint64_t *s) { /* xorshift64* */
  uint64_t x = *s;
  x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
  *s = x;
  return x * 0x2545F4914F6CDD1DULL;
}

static inline void hr_be16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }

/** Writes one frame of protocol `proto` (0 tcp4, 1 udp4, 2 icmp4, 3 tcp6, 4 udp6, 5 icmp6,
 *  6 arp) and slot length `len` (raised to its headers' size) at p; returns the length. */
static inline uint32_t hr_frame(uint8_t *p, int proto, uint32_t len, uint64_t *rng) {
  static const uint16_t well_known[4] = {22, 53, 80, 443};
  static const uint32_t min_len[7] = {54, 42, 42, 74, 62, 62, 42};
  if (len < min_len[proto]) len = min_len[proto];
  if (len < 60) len = 60;
  memset(p, 0, len);
  uint64_t r = hr_rand(rng);
  p[0] = 0x02; memcpy(p + 1, &r, 5);          /* locally administered MACs */
  p[6] = 0x02; memcpy(p + 7, (uint8_t *)&r + 3, 5);
  uint32_t l4 = 0, ip_proto = 0;
  int v6 = proto >= 3 && proto <= 5;
  if (proto == 6) {
    hr_be16(p + 12, 0x0806);
    hr_be16(p + 14, 1); hr_be16(p + 16, 0x0800); p[18] = 6; p[19] = 4; hr_be16(p + 20, 1);
    memcpy(p + 22, p + 6, 6);
    p[28] = 10; r = hr_rand(rng); memcpy(p + 29, &r, 3);
    p[38] = 10; memcpy(p + 39, (uint8_t *)&r + 4, 3);
    return len;
  }
  ip_proto = (proto % 3 == 0) ? 6 : (proto % 3 == 1) ? 17 : (v6 ? 58 : 1);
  if (!v6) {
    hr_be16(p + 12, 0x0800);
    p[14] = 0x45; hr_be16(p + 16, len - 14); hr_be16(p + 18, (uint32_t)hr_rand(rng));
    hr_be16(p + 20, 0x4000); p[22] = 64; p[23] = (uint8_t)ip_proto;
    r = hr_rand(rng);
    p[26] = 10; memcpy(p + 27, &r, 3); p[30] = 10; memcpy(p + 31, (uint8_t *)&r + 4, 3);
    l4 = 34;
  } else {
    hr_be16(p + 12, 0x86DD);
    p[14] = 0x60; hr_be16(p + 18, len - 54); p[20] = (uint8_t)ip_proto; p[21] = 64;
    r = hr_rand(rng);
    p[22] = 0xfd; memcpy(p + 23, &r, 8); memcpy(p + 31, (uint8_t *)&r + 1, 7);
    r = hr_rand(rng);
    p[38] = 0xfd; memcpy(p + 39, &r, 8); memcpy(p + 47, (uint8_t *)&r + 1, 7);
    l4 = 54;
  }
  r = hr_rand(rng);
  if (ip_proto == 6 || ip_proto == 17) {
    hr_be16(p + l4, 1024 + (uint32_t)(r % 64512));
    hr_be16(p + l4 + 2, (r >> 20) & 1 ? well_known[(r >> 21) & 3] : 1 + (uint32_t)((r >> 24) % 65535));
    if (ip_proto == 6) { hr_wr32(p + l4 + 4, (uint32_t)(r >> 32)); p[l4 + 12] = 0x50; p[l4 + 13] = 0x18; hr_be16(p + l4 + 14, 65535); }
    else hr_be16(p + l4 + 4, len - l4);
  } else {
    p[l4] = ip_proto == 1 ? 8 : 128;
    hr_be16(p + l4 + 4, (uint32_t)r); hr_be16(p + l4 + 6, (uint32_t)(r >> 16));
  }
  return len;
}

/** Fills `pool` with `n` frames (malloc'd; hr_pool_free) drawn from `seed`: protocol by
 *  gen:'s default mix, size 64 or imix 7:4:1. Deterministic: same arguments, same bytes. */
static inline int hr_pool_make(hr_pool *pool, uint32_t n, enum hr_size size, uint64_t seed) {
  static const uint32_t mix[7] = {40, 30, 5, 10, 10, 3, 2}; /* sums to 100 */
  uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + 1;
  pool->n = n;
  pool->len = (uint16_t *)malloc(n * sizeof(uint16_t));
  pool->data = (uint8_t *)malloc((size_t)n * HR_POOL_STRIDE);
  if (!pool->len || !pool->data) return -1;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t pick = (uint32_t)(hr_rand(&rng) % 100), proto = 0;
    while (pick >= mix[proto]) pick -= mix[proto++];
    uint32_t wire = 64;
    if (size == HR_SIZE_IMIX) { uint32_t k = (uint32_t)(hr_rand(&rng) % 12); wire = k < 7 ? 64 : k < 11 ? 594 : 1518; }
    pool->len[i] = (uint16_t)hr_frame(pool->data + (size_t)i * HR_POOL_STRIDE, (int)proto, wire - 4, &rng);
  }
  return 0;
}

static inline void hr_pool_free(hr_pool *pool) { free(pool->len); free(pool->data); pool->len = NULL; pool->data = NULL; }

/** Copies the whole pool into an image made by hr_image_init(ring, pool->n): slot i holds frame i. */
static inline void hr_image_fill(uint8_t *ring, const hr_pool *pool) {
  for (uint32_t i = 0; i < pool->n; i++) {
    memcpy(hr_buf(ring, i), pool->data + (size_t)i * HR_POOL_STRIDE, pool->len[i]);
    hr_wr16(ring + HR_RING_SLOTS_OFS + i * HR_SLOT_SIZE + 4, pool->len[i]);
  }
}

/* ---- the batch loop ------------------------------------------------------------------ */

typedef struct hr_loop {
  uint8_t *ring;        /* image of num_slots slots (hr_image_init) */
  uint8_t *verdicts;    /* ring + hr_verdict_ofs(num_slots) */
  const hr_pool *pool;
  uint32_t num_slots, batch, head, next; /* next: pool frame of the next refill */
  uint32_t pending;     /* slots of the previous batch still to count */
  uint64_t counts[256]; /* packets per verdict byte value */
  uint64_t packets;
} hr_loop;

/** Prepares a loop over the image at `ring` (hr_image_init'ed, >= 2 slots); the batch is
 *  num_slots - 1 slots (at most 1023), as nmwasm's rings. */
static inline void hr_loop_init(hr_loop *l, uint8_t *ring, const hr_pool *pool) {
  memset(l, 0, sizeof *l);
  l->ring = ring;
  l->num_slots = hr_rd32(ring + 8);
  l->verdicts = ring + hr_verdict_ofs(l->num_slots);
  l->pool = pool;
  l->batch = l->num_slots - 1 < HR_BATCH_MAX ? l->num_slots - 1 : HR_BATCH_MAX;
}

/** One turn of the host's loop: counts the verdicts of the previous batch (the host's
 *  verdict walk), releases those slots (head advances), then receives the next batch:
 *  copies the next l->batch pool frames into the slots' buffers and sets their lengths.
 *  Returns the batch's first slot; the filter then runs over (ring, verdicts, first, batch).
 *  NB: the copy is what a receiving port does; it costs ~len bytes per packet. */
static inline uint32_t hr_loop_refill(hr_loop *l) {
  uint32_t s = l->head;
  for (uint32_t k = 0; k < l->pending; k++) {
    l->counts[l->verdicts[s]]++;
    l->verdicts[s] = 0xff;
    if (++s == l->num_slots) s = 0;
  }
  l->packets += l->pending;
  l->head = s;
  const uint32_t first = s, bufs = hr_bufs_ofs(l->num_slots), buf_size = hr_rd32(l->ring + 12);
  for (uint32_t k = 0; k < l->batch; k++) {
    uint8_t *slot = l->ring + HR_RING_SLOTS_OFS + s * HR_SLOT_SIZE;
    const uint16_t len = l->pool->len[l->next];
    memcpy(l->ring + bufs + (size_t)hr_rd32(slot) * buf_size, l->pool->data + (size_t)l->next * HR_POOL_STRIDE, len);
    hr_wr16(slot + 4, len);
    if (++l->next == l->pool->n) l->next = 0;
    if (++s == l->num_slots) s = 0;
  }
  hr_wr32(l->ring + 20, first);                /* head */
  hr_wr32(l->ring + 24, first);                /* cur */
  hr_wr32(l->ring + 28, s);                    /* tail */
  l->pending = l->batch;
  return first;
}

#define HR_HUGE (2u << 20)
/** Asks for transparent huge pages over [p, p + bytes) (p 2 MiB-aligned, before the first
 *  touch): a pool-sized image spans thousands of 4 KiB pages, and a TLB miss per packet
 *  would be most of what a simple filter costs. Returns madvise's result (0: asked). */
static inline int hr_huge_pages(void *p, size_t bytes) {
#ifdef MADV_HUGEPAGE
  return madvise(p, bytes, MADV_HUGEPAGE);
#else
  (void)p; (void)bytes; return -1;
#endif
}

/** This thread's CPU time in ns. */
static inline uint64_t hr_cpu_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

#endif
