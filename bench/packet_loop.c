/* Baseline for bench/ports-vs-c.mjs: the minimal C loop on the socket type nmwasm's
 * AF_PACKET backend uses (TPACKET_V2 ring on a SOCK_RAW socket, PACKET_IGNORE_OUTGOING),
 * and the traffic source.
 *
 *   packet_loop rx IF SECONDS   receive for SECONDS: copy every frame into a 2048-byte
 *                               buffer (the one copy nmwasm makes), print "rx PACKETS BYTES"
 *   packet_loop tx IF SECONDS   send 60-byte UDP frames (64 on the wire) through a TPACKET_V2
 *                               TX ring as fast as the kernel takes them, print "tx PACKETS"
 *
 * Compiled by the bench with `cc -O2`. Needs root (CAP_NET_RAW). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
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

#define FRAME 2048u
#define BLOCK 65536u
#define FRAMES 4096u

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what) {
  fprintf(stderr, "packet_loop: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint8_t *ring(int fd, int option) {
  struct tpacket_req req;
  req.tp_block_size = BLOCK;
  req.tp_block_nr = FRAMES / (BLOCK / FRAME);
  req.tp_frame_size = FRAME;
  req.tp_frame_nr = FRAMES;
  if (setsockopt(fd, SOL_PACKET, option, &req, sizeof req) != 0) die("ring");
  void *m = mmap(NULL, (size_t)BLOCK * req.tp_block_nr, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) die("mmap");
  return m;
}

static int open_socket(const char *ifname, int protocol, int option, uint8_t **map) {
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) die("socket");
  int v = TPACKET_V2, one = 1;
  if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &v, sizeof v) != 0) die("version");
  if (option == PACKET_RX_RING) setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  else setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one); /* the sender: as fast as it goes */
  *map = ring(fd, option);
  struct sockaddr_ll a = {0};
  a.sll_family = AF_PACKET;
  a.sll_protocol = (uint16_t)protocol;
  a.sll_ifindex = (int)if_nametoindex(ifname);
  if (a.sll_ifindex == 0) die(ifname);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0) die("bind");
  return fd;
}

static int rx(const char *ifname, double seconds) {
  uint8_t *map;
  int fd = open_socket(ifname, htons(ETH_P_ALL), PACKET_RX_RING, &map);
  static uint8_t buffer[FRAME];
  uint64_t packets = 0, bytes = 0;
  unsigned next = 0;
  double end = now() + seconds;
  while (now() < end) {
    struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)next * FRAME);
    if (!(__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) & TP_STATUS_USER)) {
      struct pollfd p = {fd, POLLIN, 0};
      poll(&p, 1, 10);
      continue;
    }
    memcpy(buffer, (uint8_t *)h + h->tp_mac, h->tp_snaplen);
    packets++;
    bytes += h->tp_snaplen;
    __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
    next = (next + 1) % FRAMES;
  }
  printf("rx %llu %llu\n", (unsigned long long)packets, (unsigned long long)bytes);
  return 0;
}

static int tx(const char *ifname, double seconds) {
  uint8_t *map;
  int fd = open_socket(ifname, 0, PACKET_TX_RING, &map);
  uint8_t frame[60] = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00, /* IPv4 */
                       0x45, 0, 0, 46, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, /* UDP */
                       0x30, 0x39, 0x1f, 0x40, 0, 26, 0, 0};
  const unsigned data = TPACKET2_HDRLEN - sizeof(struct sockaddr_ll);
  uint64_t packets = 0;
  unsigned next = 0;
  double end = now() + seconds;
  while (now() < end) {
    for (int burst = 0; burst < 256; burst++) {
      struct tpacket2_hdr *h = (struct tpacket2_hdr *)(map + (size_t)next * FRAME);
      if (__atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE) != TP_STATUS_AVAILABLE) break;
      frame[41] = (uint8_t)packets; /* vary the source port a little */
      memcpy((uint8_t *)h + data, frame, sizeof frame);
      h->tp_len = sizeof frame;
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      next = (next + 1) % FRAMES;
      packets++;
    }
    if (send(fd, NULL, 0, MSG_DONTWAIT) < 0 && errno != ENOBUFS && errno != EAGAIN) die("send");
  }
  printf("tx %llu\n", (unsigned long long)packets);
  return 0;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: packet_loop rx|tx IF SECONDS\n");
    return 2;
  }
  double seconds = atof(argv[3]);
  return strcmp(argv[1], "rx") == 0 ? rx(argv[2], seconds) : tx(argv[2], seconds);
}
