/* The C side of bench/filters.mjs: the C baselines (baselines.h) on the harness's frames.
 * Usage: filters_bench FILTER SIZE MODE ARGS   (FILTER pass|counter|reflector, SIZE 64|imix)
 *   image PATH N        writes the isolated image (N-slot ring, verdicts, buffers of 2112 bytes
 *                       holding the pool's N frames) to PATH: the wasm side maps these bytes
 *   outputs PATH N      runs the filter once over the image's N slots in batches of 1023 and
 *                       writes the image after it (verdicts, rewritten frames) + the counters
 *   iso N PASSES        times PASSES passes over the N-slot image (isolated: filter only)
 *   loop N BATCHES      times BATCHES turns of the harness loop (1024-slot ring fed from an
 *                       N-frame pool: verdict walk + receive copy + filter)
 * iso/loop print one JSON line: {"ns": CPU ns per packet, "packets", "counts": {verdict: n}}.
 * NB: the time is this thread's CPU time, taken around the timed loop only (pool and image
 * set-up and one warm-up pass are outside it). */
#include <stdio.h>
#include <sys/mman.h>

#include "baselines.h"

#define SEED 42

static int die(const char *msg) { fprintf(stderr, "filters_bench: %s\n", msg); return 2; }

/** An image on transparent huge pages (as the wasm side's, bench/native/bench_loop.cc). */
static uint8_t *alloc_image(uint32_t n, uint32_t buf_size) {
  const size_t bytes = (hr_image_bytes(n, buf_size) + HR_HUGE - 1) & ~(size_t)(HR_HUGE - 1);
  uint8_t *mem = (uint8_t *)aligned_alloc(HR_HUGE, bytes);
  if (!mem) return NULL;
  hr_huge_pages(mem, bytes);
  hr_image_init(mem, n, buf_size);
  return mem;
}

/** One pass of `f` over all n slots of the image, in batches of at most 1023. */
static void pass_over(const bl_entry *f, uint8_t *ring, uint32_t n, uint64_t *stats) {
  uint8_t *verdicts = ring + hr_verdict_ofs(n);
  for (uint32_t first = 0; first < n; first += HR_BATCH_MAX) {
    const uint32_t count = n - first < HR_BATCH_MAX ? n - first : HR_BATCH_MAX;
    f->fn(ring, verdicts, first, count, stats);
  }
}

static void print_counts(double ns, uint64_t packets, const uint64_t *counts) {
  printf("{\"ns\":%.4f,\"packets\":%llu,\"counts\":{", ns, (unsigned long long)packets);
  const char *sep = "";
  for (int v = 0; v < 256; v++) if (counts[v]) { printf("%s\"%d\":%llu", sep, v, (unsigned long long)counts[v]); sep = ","; }
  printf("}}\n");
}

int main(int argc, char **argv) {
  if (argc < 6) return die("usage: filters_bench pass|counter|reflector 64|imix image|outputs|iso|loop ARG N");
  const bl_entry *f = NULL;
  for (size_t i = 0; i < sizeof bl_filters / sizeof bl_filters[0]; i++) if (!strcmp(argv[1], bl_filters[i].name)) f = &bl_filters[i];
  if (!f) return die("unknown filter (expected pass, counter or reflector)");
  const enum hr_size size = !strcmp(argv[2], "imix") ? HR_SIZE_IMIX : HR_SIZE_64;
  const char *mode = argv[3];
  const uint32_t n = (uint32_t)strtoul(!strcmp(mode, "image") || !strcmp(mode, "outputs") ? argv[5] : argv[4], NULL, 10);
  const uint64_t reps = strtoull(argv[5], NULL, 10);
  if (n < 2 || n > 30000) return die("N: expected 2..30000 frames");
  hr_pool pool;
  if (hr_pool_make(&pool, n, size, SEED)) return die("out of memory");
  uint64_t stats[16] = {0};

  if (!strcmp(mode, "image") || !strcmp(mode, "outputs") || !strcmp(mode, "iso")) {
    uint8_t *ring = alloc_image(n, HR_BUF_SIZE_SPREAD);
    if (!ring) return die("out of memory");
    hr_image_fill(ring, &pool);
    const size_t bytes = hr_image_bytes(n, HR_BUF_SIZE_SPREAD);
    if (!strcmp(mode, "iso")) {
      pass_over(f, ring, n, stats); /* warm-up */
      const uint64_t t0 = hr_cpu_ns();
      for (uint64_t r = 0; r < reps; r++) pass_over(f, ring, n, stats);
      const uint64_t t1 = hr_cpu_ns();
      uint64_t counts[256] = {0};
      const uint8_t *v = ring + hr_verdict_ofs(n);
      for (uint32_t i = 0; i < n; i++) counts[v[i]]++;
      print_counts((double)(t1 - t0) / ((double)reps * n), (uint64_t)n, counts);
      return 0;
    }
    if (!strcmp(mode, "outputs")) pass_over(f, ring, n, stats);
    FILE *out = fopen(argv[4], "wb");
    if (!out) return die("cannot write the output file");
    int ok = fwrite(ring, 1, bytes, out) == bytes;
    if (!strcmp(mode, "outputs")) ok = ok && fwrite(stats, 8, f->stats, out) == f->stats;
    if (fclose(out) || !ok) return die("short write to the output file");
    return 0;
  }
  if (!strcmp(mode, "loop")) {
    uint8_t *ring = alloc_image(1024, HR_BUF_SIZE);
    if (!ring) return die("out of memory");
    hr_loop loop;
    hr_loop_init(&loop, ring, &pool);
    for (uint32_t b = 0; b < 64; b++) { const uint32_t first = hr_loop_refill(&loop); f->fn(ring, loop.verdicts, first, loop.batch, stats); }
    hr_loop_init(&loop, ring, &pool);
    const uint64_t t0 = hr_cpu_ns();
    for (uint64_t b = 0; b < reps; b++) { const uint32_t first = hr_loop_refill(&loop); f->fn(ring, loop.verdicts, first, loop.batch, stats); }
    hr_loop_refill(&loop); /* counts the last batch's verdicts */
    const uint64_t t1 = hr_cpu_ns();
    print_counts((double)(t1 - t0) / (double)loop.packets, loop.packets, loop.counts);
    return 0;
  }
  return die("unknown mode (expected image, outputs, iso or loop)");
}
