/* Baseline for bench/gen.mjs: one ring's work in C, what nmwasm's host does beside the source
 * and the filter, written the way a C packet loop would do it.
 *
 *   ring_work PACKETS   prints "ns_per_packet PACKETS" (CPU time of this thread)
 *
 * The memory is nmwasm's ring layout (docs/ABI.md): a 1024-slot netmap ring of 16-byte slots
 * {buf_idx, len, flags, ptr}, a verdict byte per slot, buffers 2112 bytes apart; the slots are
 * filled once (buf_idx, len 60) and never change, so the source costs nothing here. Per batch
 * of 1023 slots (one slot stays empty, as in nmwasm) from head: read each slot's buf_idx and
 * len, check the buf_idx is in range, write a PASS verdict, count packets, bytes and passes,
 * advance head. No copies, no system calls, no second thread.
 *
 * Compiled by the bench with `cc -O2`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define SLOTS 1024u
#define BUF_SIZE 2112u
#define PASS 1

struct slot {
  uint32_t buf_idx;
  uint16_t len;
  uint16_t flags;
  uint64_t ptr;
};

static uint64_t thread_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv) {
  const uint64_t packets = argc > 1 ? strtoull(argv[1], NULL, 10) : 100000000ull;
  struct slot *slots = aligned_alloc(64, SLOTS * sizeof *slots);
  uint8_t *verdicts = aligned_alloc(64, SLOTS);
  if (slots == NULL || verdicts == NULL) return 1;
  for (uint32_t i = 0; i < SLOTS; i++) slots[i] = (struct slot){i, 60, 0, 0};
  uint64_t done = 0, bytes = 0, pass = 0, bad = 0;
  uint32_t head = 0;
  const uint64_t start = thread_ns();
  while (done < packets) {
    const uint32_t batch = SLOTS - 1;
    uint32_t i = head;
    for (uint32_t k = 0; k < batch; k++) {
      const struct slot s = slots[i];
      bad += s.buf_idx >= SLOTS;
      bytes += s.len;
      verdicts[i] = PASS;
      pass++;
      if (++i == SLOTS) i = 0;
    }
    head = i;
    done += batch;
  }
  const uint64_t elapsed = thread_ns() - start;
  /* The counts (and a verdict) are printed so that the compiler cannot drop the loop. */
  printf("%.4f %llu %llu %llu %llu %u\n", (double)elapsed / (double)done, (unsigned long long)done, (unsigned long long)bytes,
         (unsigned long long)pass, (unsigned long long)bad, verdicts[head]);
  return 0;
}
