/* Baseline of bench/xdp-fast.mjs: the 8 rules of bench/bench.rules as an XDP eBPF program,
 * the way a C programmer would write it for XDP (first match wins, as the example firewall):
 *
 *   drop in from 192.0.2.0/24
 *   drop in from 2001:db8::/32
 *   pass in tcp to 10.0.0.0/8 port 22
 *   pass in tcp to 10.0.0.0/8 port 80-443
 *   pass in udp to 10.0.0.0/8 port 53
 *   pass in tcp from fd00::/8 to fd00::/8 port 443
 *   pass in udp from fd00::/8 port 1024-65535 to fd00::/8 port 53
 *   pass icmp
 *   default drop
 *
 * pass -> XDP_PASS (the kernel stack), drop -> XDP_DROP, each verdict counted in a per-CPU
 * array (as nmwasm's flow path counts what it decides). Parsing as the firewall's fast path:
 * untagged Ethernet, IPv4 (version 4, header length >= 20) or IPv6; ports of TCP/UDP when the
 * port pair lies in the frame and the IPv4 fragment offset is 0. Not done (the bench's traffic
 * has none): VLAN tags, IPv6 extension headers (the firewall skips them).
 *
 *   xdp_rules IF SECONDS   attach to IF (native/driver mode) for SECONDS, print "ready" once
 *                          attached and "drop N pass M" at the end; detached at exit
 *   xdp_rules run IF N     run the XDP program attached to IF (whichever: this one or
 *                          nmwasm's) N times over the bench's frame (xdp_gen's) with
 *                          BPF_PROG_RUN and print "run NS ACTION": the kernel's mean time per
 *                          run and the program's verdict; the program alone, without the
 *                          receive path around it
 *
 * Written as raw BPF instructions (no clang needed), like xdp_gen.c. Compiled by the bench with
 * `cc -O2 ... -lbpf`. Needs root. */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void die(const char *what, int err) {
  fprintf(stderr, "xdp_rules: %s: %s\n", what, strerror(err));
  exit(1);
}

/* ---- a tiny assembler with forward labels ---- */
static struct bpf_insn prog[256];
static int n;
static int labels[32];
static struct { int at, label; } fixups[128];
static int nfix;

static void emit(uint8_t code, int dst, int src, int16_t off, int32_t imm) {
  prog[n++] = (struct bpf_insn){.code = code, .dst_reg = dst, .src_reg = src, .off = off, .imm = imm};
}
static void jump(uint8_t code, int dst, int src, int32_t imm, int label) {
  fixups[nfix].at = n;
  fixups[nfix++].label = label;
  emit(code, dst, src, 0, imm);
}
#define LDX(size, dst, src, off) emit(BPF_LDX | (size) | BPF_MEM, dst, src, off, 0)
#define STX(size, dst, src, off) emit(BPF_STX | (size) | BPF_MEM, dst, src, off, 0)
#define MOV(dst, src) emit(BPF_ALU64 | BPF_MOV | BPF_X, dst, src, 0, 0)
#define MOVI(dst, imm) emit(BPF_ALU64 | BPF_MOV | BPF_K, dst, 0, 0, imm)
#define ADDI(dst, imm) emit(BPF_ALU64 | BPF_ADD | BPF_K, dst, 0, 0, imm)
#define ADD(dst, src) emit(BPF_ALU64 | BPF_ADD | BPF_X, dst, src, 0, 0)
#define ANDI(dst, imm) emit(BPF_ALU64 | BPF_AND | BPF_K, dst, 0, 0, imm)
#define LSHI(dst, imm) emit(BPF_ALU64 | BPF_LSH | BPF_K, dst, 0, 0, imm)
#define RSHI(dst, imm) emit(BPF_ALU64 | BPF_RSH | BPF_K, dst, 0, 0, imm)
#define BE16(dst) emit(BPF_ALU | BPF_END | BPF_TO_BE, dst, 0, 0, 16)
#define JEQI(dst, imm, l) jump(BPF_JMP | BPF_JEQ | BPF_K, dst, 0, imm, l)
#define JEQI32(dst, imm, l) jump(BPF_JMP32 | BPF_JEQ | BPF_K, dst, 0, imm, l)
#define JNEI(dst, imm, l) jump(BPF_JMP | BPF_JNE | BPF_K, dst, 0, imm, l)
#define JLTI(dst, imm, l) jump(BPF_JMP | BPF_JLT | BPF_K, dst, 0, imm, l)
#define JLEI(dst, imm, l) jump(BPF_JMP | BPF_JLE | BPF_K, dst, 0, imm, l)
#define JGTI(dst, imm, l) jump(BPF_JMP | BPF_JGT | BPF_K, dst, 0, imm, l)
#define JGT(dst, src, l) jump(BPF_JMP | BPF_JGT | BPF_X, dst, src, 0, l)
#define JA(l) jump(BPF_JMP | BPF_JA, 0, 0, 0, l)
#define LABEL(l) (labels[l] = n)
#define CALL(f) emit(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() emit(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

enum { L_DROP, L_PASS, L_COUNT, L_V4, L_V6, L_P4, L_RULES4, L_R5, L_R8, L_P6, L_RULES6, L_R7, L_COUNTED };
#define ABSENT 0x10000 /* a port that is not there: matches no port range */

/* r6 ctx; r2 data, r3 data_end; r7 proto, r8 source (IPv4 address / first 4 bytes of IPv6),
 * r9 destination (IPv4 address / first byte of IPv6), r0 source port, r1 destination port. */
static void build(int counts) {
  MOV(6, 1);
  LDX(BPF_W, 2, 6, offsetof(struct xdp_md, data));
  LDX(BPF_W, 3, 6, offsetof(struct xdp_md, data_end));
  MOV(4, 2), ADDI(4, 14), JGT(4, 3, L_DROP);
  LDX(BPF_H, 4, 2, 12);   /* ethertype, read little-endian */
  JEQI(4, 0x0008, L_V4);
  JEQI(4, 0xdd86, L_V6);
  JA(L_DROP);             /* no rule matches a frame without IP */

  LABEL(L_V4);
  MOV(4, 2), ADDI(4, 34), JGT(4, 3, L_DROP);
  LDX(BPF_B, 5, 2, 14);
  MOV(4, 5), RSHI(4, 4), JNEI(4, 4, L_DROP);
  ANDI(5, 0x0F), LSHI(5, 2), JLTI(5, 20, L_DROP);
  LDX(BPF_B, 7, 2, 23);
  LDX(BPF_W, 8, 2, 26);
  LDX(BPF_W, 9, 2, 30);
  MOVI(0, ABSENT), MOVI(1, ABSENT);
  LDX(BPF_H, 4, 2, 20), ANDI(4, 0xFF1F), JNEI(4, 0, L_RULES4); /* a later fragment: no ports */
  JEQI(7, 6, L_P4);
  JEQI(7, 17, L_P4);
  JA(L_RULES4);
  LABEL(L_P4);
  MOV(4, 2), ADD(4, 5);
  MOV(5, 4), ADDI(5, 18), JGT(5, 3, L_RULES4);
  LDX(BPF_H, 0, 4, 14), BE16(0);
  LDX(BPF_H, 1, 4, 16), BE16(1);
  LABEL(L_RULES4);
  MOV(4, 8), ANDI(4, 0x00FFFFFF), JEQI(4, 0x000200C0, L_DROP); /* from 192.0.2.0/24 */
  JNEI(7, 6, L_R5);                                            /* tcp to 10/8 port 22, 80-443 */
  MOV(4, 9), ANDI(4, 0xFF), JNEI(4, 10, L_R5);
  JEQI(1, 22, L_PASS);
  JLTI(1, 80, L_R5);
  JLEI(1, 443, L_PASS);
  LABEL(L_R5);                                                 /* udp to 10/8 port 53 */
  JNEI(7, 17, L_R8);
  MOV(4, 9), ANDI(4, 0xFF), JNEI(4, 10, L_R8);
  JEQI(1, 53, L_PASS);
  LABEL(L_R8);
  JEQI(7, 1, L_PASS);                                          /* icmp */
  JA(L_DROP);

  LABEL(L_V6);
  MOV(4, 2), ADDI(4, 54), JGT(4, 3, L_DROP);
  LDX(BPF_B, 5, 2, 14), RSHI(5, 4), JNEI(5, 6, L_DROP);
  LDX(BPF_B, 7, 2, 20);
  LDX(BPF_W, 8, 2, 22);
  LDX(BPF_B, 9, 2, 38);
  MOVI(0, ABSENT), MOVI(1, ABSENT);
  JEQI(7, 6, L_P6);
  JEQI(7, 17, L_P6);
  JA(L_RULES6);
  LABEL(L_P6);
  MOV(4, 2), ADDI(4, 58), JGT(4, 3, L_RULES6);
  LDX(BPF_H, 0, 2, 54), BE16(0);
  LDX(BPF_H, 1, 2, 56), BE16(1);
  LABEL(L_RULES6);
  JEQI32(8, (int32_t)0xB80D0120, L_DROP);                      /* from 2001:db8::/32 */
  JNEI(7, 6, L_R7);                                            /* tcp fd00::/8 -> fd00::/8 port 443 */
  MOV(4, 8), ANDI(4, 0xFF), JNEI(4, 0xFD, L_R7);
  JNEI(9, 0xFD, L_R7);
  JEQI(1, 443, L_PASS);
  LABEL(L_R7);                                                 /* udp fd00::/8 port 1024-65535 -> fd00::/8 port 53 */
  JNEI(7, 17, L_DROP);
  MOV(4, 8), ANDI(4, 0xFF), JNEI(4, 0xFD, L_DROP);
  JNEI(9, 0xFD, L_DROP);
  JLTI(0, 1024, L_DROP);
  JGTI(0, 65535, L_DROP);
  JEQI(1, 53, L_PASS);
  JA(L_DROP);

  LABEL(L_PASS);
  MOVI(8, 1), JA(L_COUNT);
  LABEL(L_DROP);
  MOVI(8, 0);
  LABEL(L_COUNT);
  STX(BPF_W, 10, 8, -4);
  emit(BPF_LD | BPF_DW | BPF_IMM, 1, BPF_PSEUDO_MAP_FD, 0, counts), emit(0, 0, 0, 0, 0);
  MOV(2, 10), ADDI(2, -4);
  CALL(BPF_FUNC_map_lookup_elem);
  JEQI(0, 0, L_COUNTED);
  LDX(BPF_DW, 1, 0, 0), ADDI(1, 1), STX(BPF_DW, 0, 1, 0);
  LABEL(L_COUNTED);
  MOV(0, 8), ADDI(0, 1); /* 0 -> XDP_DROP (1), 1 -> XDP_PASS (2) */
  EXIT();
  for (int k = 0; k < nfix; k++) prog[fixups[k].at].off = (int16_t)(labels[fixups[k].label] - fixups[k].at - 1);
}

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig, stop = 1; }

/* BPF_PROG_RUN of the program attached to `ifname`, `repeat` times, over xdp_gen's frame. */
static int run(const char *ifname, unsigned repeat) {
  int ifindex = (int)if_nametoindex(ifname);
  if (ifindex == 0) die(ifname, errno);
  uint32_t id = 0;
  if (bpf_xdp_query_id(ifindex, 0, &id) != 0 || id == 0) die("no XDP program attached", ENOENT);
  int fd = bpf_prog_get_fd_by_id(id);
  if (fd < 0) die("bpf_prog_get_fd_by_id", errno);
  uint8_t frame[60] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, 0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
                       0x30, 0x39, 0x1f, 0x40, 0, 26, 0, 0};
  uint8_t out[128];
  LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = sizeof frame, .data_out = out, .data_size_out = sizeof out, .repeat = repeat);
  if (bpf_prog_test_run_opts(fd, &opts) != 0) die("BPF_PROG_RUN", errno);
  printf("run %u %u\n", opts.duration, opts.retval);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "run") == 0) return run(argv[2], (unsigned)atoi(argv[3]));
  if (argc != 3) {
    fprintf(stderr, "usage: xdp_rules IF SECONDS | xdp_rules run IF N\n");
    return 2;
  }
  int ifindex = (int)if_nametoindex(argv[1]);
  if (ifindex == 0) die(argv[1], errno);
  int counts = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "xdp_rules_cnt", 4, 8, 2, NULL);
  if (counts < 0) die("bpf_map_create", errno);
  build(counts);
  static char log[65536];
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .log_buf = log, .log_size = sizeof log, .log_level = 0);
  int fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_rules", "GPL", prog, n, &opts);
  if (fd < 0) {
    int err = errno;
    opts.log_level = 1;
    bpf_prog_load(BPF_PROG_TYPE_XDP, "xdp_rules", "GPL", prog, n, &opts);
    fprintf(stderr, "xdp_rules: verifier: %s\n", log);
    die("bpf_prog_load", err);
  }
  if (bpf_xdp_attach(ifindex, fd, XDP_FLAGS_DRV_MODE, NULL) != 0) die("bpf_xdp_attach (native mode)", errno);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);
  printf("xdp_rules: ready\n");
  fflush(stdout);
  for (double left = atof(argv[2]); left > 0 && !stop; left -= 0.05) usleep(50000);
  bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, NULL);
  int cpus = libbpf_num_possible_cpus();
  uint64_t sums[2] = {0, 0}, per[1024];
  for (uint32_t key = 0; key < 2 && cpus > 0 && cpus <= 1024; key++)
    if (bpf_map_lookup_elem(counts, &key, per) == 0)
      for (int c = 0; c < cpus; c++) sums[key] += per[c];
  printf("drop %llu pass %llu\n", (unsigned long long)sums[0], (unsigned long long)sums[1]);
  return 0;
}
