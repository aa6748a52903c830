/* Traffic source for bench/ports-vs-c.mjs, faster than packet_loop's TX ring: the kernel's
 * BPF_PROG_RUN "live frames" mode (BPF_F_TEST_XDP_LIVE_FRAMES, kernel >= 5.18). The kernel
 * builds XDP frames from one template in a page pool, runs a tiny XDP program on each and
 * carries out its verdict for real; the program redirects every frame to the veth `IF`, so
 * the frames leave through the veth's ndo_xdp_xmit and land in its peer's receive queue.
 * No skb is built on the sending side and no system call is made per frame.
 *
 *   xdp_gen tx IF SECONDS   send the 60-byte UDP frame of packet_loop tx (64 on the wire)
 *                           for SECONDS; print "tx PACKETS" (frames the program redirected)
 *   xdp_gen tx IF SECONDS new-flows
 *                           the same, but every frame a new flow: a 32-bit counter of the
 *                           program goes into the source port and the low 16 bits of the
 *                           source address (bench/xdp-fast.mjs, first-packet behaviour)
 *   xdp_gen probe CPU CPU   time a cache line's round trip between two threads pinned to
 *                           the two CPUs (20 samples of 20,000 trips, 0.1-0.2 s); print
 *                           "probe NANOSECONDS", the median sample. The source and the
 *                           receiving veth's NAPI run on different CPUs, so every frame
 *                           crosses between them: on a VM the cost of that moves with where
 *                           the host places the vCPUs (120 vs 470 ns here, for seconds to
 *                           minutes at a time), and every rate with it.
 *
 * Must run in IF's network namespace (`ip netns exec`): bpf_redirect resolves the ifindex
 * in the namespace of the process calling BPF_PROG_RUN.
 * NB: veth's ndo_xdp_xmit delivers only when the peer runs NAPI: the peer has an XDP program
 * attached, or GRO enabled (`ethtool -K PEER gro on`); otherwise every frame is refused
 * (-ENXIO) without a trace in either veth's counters (checked on kernel 6.18). Frames that
 * find the peer's 256-slot queue full are dropped (the peer's rx_dropped): "tx" counts the
 * frames offered to the veth, not the ones it took.
 * The program is written as raw BPF instructions (no clang needed). Compiled by the bench
 * with `cc -O2 ... -lbpf -pthread`. Needs root (CAP_BPF, CAP_NET_ADMIN) for tx. */
#define _GNU_SOURCE
#include <bpf/bpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* NB: every BPF_PROG_RUN call sets up a fresh page pool with the template copied in: with a
 * repeat of 1024 the source made < 1 Mpps here. 65536 frames take a few ms at 10-30 Mpps,
 * short enough to keep to the duration. Pacing a lower rate would need small calls (slow)
 * or sleeps between long bursts, which overflow the peer's 256-slot queue: not done. */
#define REPEAT 65536u
#define BATCH 256u    /* frames per page-pool batch, the kernel's maximum */

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err) {
  fprintf(stderr, "xdp_gen: %s: %s\n", what, strerror(err));
  exit(1);
}

/* Loads `r0 = bpf_redirect(ifindex, 0); exit` as an XDP program; returns its fd. */
static int load_redirect_program(int ifindex) {
  struct bpf_insn program[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_1, .imm = ifindex}, /* r1 = ifindex */
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_2, .imm = 0},       /* r2 = flags */
      {.code = BPF_JMP | BPF_CALL, .imm = BPF_FUNC_redirect},                     /* r0 = XDP_REDIRECT */
      {.code = BPF_JMP | BPF_EXIT},
  };
  static char log[4096];
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof log, .log_level = 0);
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_gen", "GPL", program, sizeof program / sizeof program[0], &opts);
  if (fd < 0) {
    int err = errno;
    if (log[0]) fprintf(stderr, "xdp_gen: verifier: %s\n", log);
    die("bpf_prog_load", err);
  }
  return fd;
}

/* The new-flows program: numbers each frame (a per-CPU counter), writes the number into the
 * source port (bytes 34-35) and source address bytes 28-29, then redirects as above. */
static int load_new_flows_program(int ifindex) {
  int counter = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "xdp_gen_flows", 4, 8, 1, NULL);
  if (counter < 0) die("bpf_map_create", errno);
#define I(c, d, s, o, i) {.code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i)}
  struct bpf_insn program[] = {
      I(BPF_ALU64 | BPF_MOV | BPF_X, 6, 1, 0, 0),                       /* r6 = ctx */
      I(BPF_ST | BPF_W | BPF_MEM, 10, 0, -4, 0),                        /* key 0 */
      I(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, counter), I(0, 0, 0, 0, 0),
      I(BPF_ALU64 | BPF_MOV | BPF_X, 2, 10, 0, 0),
      I(BPF_ALU64 | BPF_ADD | BPF_K, 2, 0, 0, -4),
      I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_map_lookup_elem),
      I(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 0, 0),                         /* no counter: send as is */
      I(BPF_LDX | BPF_DW | BPF_MEM, 7, 0, 0, 0),
      I(BPF_ALU64 | BPF_ADD | BPF_K, 7, 0, 0, 1),
      I(BPF_STX | BPF_DW | BPF_MEM, 0, 7, 0, 0),
      I(BPF_LDX | BPF_W | BPF_MEM, 2, 6, offsetof(struct xdp_md, data), 0),
      I(BPF_LDX | BPF_W | BPF_MEM, 3, 6, offsetof(struct xdp_md, data_end), 0),
      I(BPF_ALU64 | BPF_MOV | BPF_X, 4, 2, 0, 0),
      I(BPF_ALU64 | BPF_ADD | BPF_K, 4, 0, 0, 36),
      I(BPF_JMP | BPF_JGT | BPF_X, 4, 3, 0, 0),                         /* too short: send as is */
      I(BPF_STX | BPF_H | BPF_MEM, 2, 7, 34, 0),                        /* source port */
      I(BPF_ALU64 | BPF_RSH | BPF_K, 7, 0, 0, 16),
      I(BPF_STX | BPF_H | BPF_MEM, 2, 7, 28, 0),                        /* source address bytes 28-29 */
      I(BPF_ALU64 | BPF_MOV | BPF_K, 1, 0, 0, ifindex),
      I(BPF_ALU64 | BPF_MOV | BPF_K, 2, 0, 0, 0),
      I(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_redirect),
      I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0),
  };
#undef I
  /* the two jumps above go to the redirect (instruction 19), counted from the next instruction */
  program[7].off = 19 - 8;   /* the null check */
  program[15].off = 19 - 16; /* the length check */
  static char log[4096];
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof log, .log_level = 0);
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_gen_flows", "GPL", program, sizeof program / sizeof program[0], &opts);
  if (fd < 0) {
    int err = errno;
    opts.log_level = 1;
    bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_gen_flows", "GPL", program, sizeof program / sizeof program[0], &opts);
    fprintf(stderr, "xdp_gen: verifier: %s\n", log);
    die("bpf_prog_load", err);
  }
  return fd;
}

static int tx(const char *ifname, double seconds, int newFlows) {
  int ifindex = (int)if_nametoindex(ifname);
  if (ifindex == 0) die(ifname, errno);
  int prog = newFlows ? load_new_flows_program(ifindex) : load_redirect_program(ifindex);
  /* the frame of packet_loop tx: 02:00:00:00:00:01 -> 02:00:00:00:00:02, 10.0.0.1:12345 ->
   * 10.0.0.2:8000 UDP, 18 zero bytes of payload; every frame the same (packet_loop varies
   * the source port's low byte, which no receiver of the bench looks at) */
  uint8_t frame[60] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, /* IPv4 */
                       0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, /* UDP */
                       0x30, 0x39, 0x1f, 0x40, 0, 26, 0, 0};
  uint64_t packets = 0;
  double end = now() + seconds;
  while (now() < end) {
    LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame, .data_size_in = sizeof frame, .repeat = REPEAT,
                .batch_size = BATCH, .flags = BPF_F_TEST_XDP_LIVE_FRAMES);
    /* NB: in live-frames mode retval is not the program's verdict (it stays 0). */
    if (bpf_prog_test_run_opts(prog, &run) != 0) die("BPF_PROG_RUN (live frames)", errno);
    packets += REPEAT;
  }
  printf("tx %llu\n", (unsigned long long)packets);
  close(prog);
  return 0;
}

/* ---- probe: a cache line bounced between two CPUs ---- */
static _Atomic long bounce __attribute__((aligned(64)));
#define PROBE_SAMPLES 20
#define PROBE_TRIPS 20000L /* round trips per sample: 5 ms at 250 ns */

static void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  int err = pthread_setaffinity_np(pthread_self(), sizeof set, &set);
  if (err) die("pthread_setaffinity_np", err);
}

/* The far end: turns every odd value into the next even one, until it sees -1. */
static void *answer(void *cpu) {
  pin((int)(intptr_t)cpu);
  for (;;) {
    long v = atomic_load_explicit(&bounce, memory_order_acquire);
    if (v < 0) return NULL;
    if (v & 1) atomic_store_explicit(&bounce, v + 1, memory_order_release);
  }
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int probe(int cpu_a, int cpu_b) {
  pthread_t far;
  int err = pthread_create(&far, NULL, answer, (void *)(intptr_t)cpu_b);
  if (err) die("pthread_create", err);
  pin(cpu_a);
  double samples[PROBE_SAMPLES];
  long v = 0;
  for (int s = 0; s < PROBE_SAMPLES; s++) {
    double start = now();
    for (long k = 0; k < PROBE_TRIPS; k++) {
      atomic_store_explicit(&bounce, ++v, memory_order_release); /* odd: the far end's turn */
      while (atomic_load_explicit(&bounce, memory_order_acquire) == v) {}
      v++;
    }
    samples[s] = (now() - start) / PROBE_TRIPS * 1e9;
  }
  atomic_store_explicit(&bounce, -1, memory_order_release);
  pthread_join(far, NULL);
  qsort(samples, PROBE_SAMPLES, sizeof samples[0], compare);
  printf("probe %.0f\n", samples[PROBE_SAMPLES / 2]);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "tx") == 0) return tx(argv[2], atof(argv[3]), 0);
  if (argc == 5 && strcmp(argv[1], "tx") == 0 && strcmp(argv[4], "new-flows") == 0) return tx(argv[2], atof(argv[3]), 1);
  if (argc == 4 && strcmp(argv[1], "probe") == 0) return probe(atoi(argv[2]), atoi(argv[3]));
  fprintf(stderr, "usage: xdp_gen tx IF SECONDS [new-flows] | xdp_gen probe CPU CPU\n");
  return 2;
}
