/* Baseline for bench/ports-vs-c.mjs: the minimal C receive loop on the socket type nmwasm's
 * AF_XDP backend uses (native/ports/port_xdp.cc), with the same geometry:
 *   UMEM of 8192 + 1024 frames of 2048 bytes (page aligned, mmap), no frame headroom;
 *   fill ring and RX ring of 8192 slots; XDP_COPY | XDP_USE_NEED_WAKEUP (veth has no
 *   zero-copy); one socket on queue 0.
 *
 *   xdp_loop rx IF SECONDS    receive for SECONDS, read each frame's ethertype (nmwasm's
 *                             filters read the headers), hand the frame straight back to
 *                             the fill ring; print "rx PACKETS BYTES"
 *   xdp_loop rx IF SECONDS busy   the same with busy polling, as nmwasm's --busy-poll:
 *                             SO_PREFER_BUSY_POLL, SO_BUSY_POLL 20 us, SO_BUSY_POLL_BUDGET 64
 *
 * Attach method (differs from nmwasm, on purpose kept minimal): libxdp's default XSK
 * program (it redirects every frame of a queue with a socket to that socket through an
 * XSKMAP), attached in native (driver) mode, XDP_FLAGS_DRV_MODE, as nmwasm's program is on
 * veth. nmwasm's own program (native/ports/xdp_program.cc) first passes ARP/ICMP/ICMPv6 to the
 * kernel: a handful of extra BPF instructions per frame, which the benchmark's UDP traffic
 * pays and this baseline does not.
 *
 * Compiled by the bench with `cc -O2 ... -lxdp -lbpf`. Needs root. */
#include <errno.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <xdp/xsk.h>

#define FRAME 2048u
#define RING 8192u
#define FRAMES (RING + 1024u)
#define BATCH 256u

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, int err) {
  fprintf(stderr, "xdp_loop: %s: %s\n", what, strerror(err));
  exit(1);
}

/* Puts up to `n` frames from the free stack into the fill ring; returns how many. */
static unsigned refill(struct xsk_ring_prod *fill, uint64_t *free_addrs, unsigned *free_count) {
  unsigned n = *free_count;
  unsigned room = xsk_prod_nb_free(fill, n);
  if (n > room) n = room;
  uint32_t idx = 0;
  if (n == 0 || xsk_ring_prod__reserve(fill, n, &idx) != n) return 0;
  for (unsigned k = 0; k < n; k++) *xsk_ring_prod__fill_addr(fill, idx + k) = free_addrs[--*free_count];
  xsk_ring_prod__submit(fill, n);
  return n;
}

static int rx(const char *ifname, double seconds, int busy) {
  size_t size = (size_t)FRAMES * FRAME;
  void *area = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (area == MAP_FAILED) die("mmap", errno);
  /* NB: libxdp keeps pointers to these ring structs: static storage, zero-initialised. */
  static struct xsk_ring_prod fill;
  static struct xsk_ring_cons comp, rxr;
  struct xsk_umem_config ucfg = {.fill_size = RING, .comp_size = 64, .frame_size = FRAME, .frame_headroom = 0, .flags = 0};
  struct xsk_umem *umem = NULL;
  int err = xsk_umem__create(&umem, area, size, &fill, &comp, &ucfg);
  if (err) die("xsk_umem__create", -err);
  struct xsk_socket_config cfg = {.rx_size = RING, .tx_size = 0, .libxdp_flags = 0, .xdp_flags = XDP_FLAGS_DRV_MODE,
                                  .bind_flags = XDP_COPY | XDP_USE_NEED_WAKEUP};
  struct xsk_socket *xsk = NULL;
  for (int attempt = 0;; attempt++) { /* a queue stays busy ~1 s after its last socket closed */
    err = xsk_socket__create(&xsk, ifname, 0, umem, &rxr, NULL, &cfg);
    if (err != -EBUSY || attempt >= 30) break;
    usleep(100000);
  }
  if (err) die("xsk_socket__create", -err);
  int fd = xsk_socket__fd(xsk);
  if (busy) {
    const int on = 1, usecs = 20, budget = 64;
    if (setsockopt(fd, SOL_SOCKET, SO_PREFER_BUSY_POLL, &on, sizeof on) || setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof usecs) ||
        setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof budget))
      die("setsockopt (busy polling)", errno);
  }

  static uint64_t free_addrs[FRAMES];
  unsigned free_count = 0;
  for (unsigned f = FRAMES; f-- > 0;) free_addrs[free_count++] = (uint64_t)f * FRAME;
  refill(&fill, free_addrs, &free_count);
  fprintf(stderr, "xdp_loop: ready on %s queue 0\n", ifname);

  uint64_t packets = 0, bytes = 0, ethertypes = 0;
  double end = now() + seconds;
  while (now() < end) {
    uint32_t idx = 0;
    unsigned n = xsk_ring_cons__peek(&rxr, BATCH, &idx);
    if (n == 0) {
      /* NB: with XDP_USE_NEED_WAKEUP the kernel stops pulling from the fill ring until woken. */
      if (xsk_ring_prod__needs_wakeup(&fill)) recvfrom(fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
      struct pollfd p = {fd, POLLIN, 0};
      poll(&p, 1, 10);
      continue;
    }
    for (unsigned k = 0; k < n; k++) {
      const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rxr, idx + k);
      const uint8_t *frame = xsk_umem__get_data(area, d->addr);
      ethertypes += (uint64_t)frame[12] << 8 | frame[13];
      bytes += d->len;
      free_addrs[free_count++] = xsk_umem__extract_addr(d->addr);
    }
    xsk_ring_cons__release(&rxr, n);
    packets += n;
    refill(&fill, free_addrs, &free_count);
  }
  printf("rx %llu %llu\n", (unsigned long long)packets, (unsigned long long)bytes);
  fprintf(stderr, "xdp_loop: ethertype sum %llu\n", (unsigned long long)ethertypes);
  xsk_socket__delete(xsk); /* also detaches libxdp's program */
  xsk_umem__delete(umem);
  return 0;
}

int main(int argc, char **argv) {
  if ((argc != 4 && !(argc == 5 && strcmp(argv[4], "busy") == 0)) || strcmp(argv[1], "rx") != 0) {
    fprintf(stderr, "usage: xdp_loop rx IF SECONDS [busy]\n");
    return 2;
  }
  if (if_nametoindex(argv[2]) == 0) die(argv[2], errno);
  return rx(argv[2], atof(argv[3]), argc == 5);
}
