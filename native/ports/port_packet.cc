// AF_PACKET backend (packet:IF, packet:IF-N; chosen for a bare name when neither
// netmap nor AF_XDP is available). See docs/PORTS.md "AF_PACKET".
//
// Receive: one SOCK_RAW socket per input ring with a TPACKET_V2 RX ring mmap()ed
// from the kernel. rxsync copies each frame into the slot's buffer in the port's
// packet memory (one copy: the kernel ring cannot be the packet window, its frames
// start at a variable tp_mac offset) and hands the kernel frame back at once.
//   - IF (every queue): `rings` sockets in one fanout group, PACKET_FANOUT_QM when the
//     interface has several RX queues (member q % rings gets queue q), else
//     PACKET_FANOUT_HASH (flows spread over the rings);
//   - IF-N: one socket per RX queue joins a PACKET_FANOUT_QM group in queue order;
//     member N is the ring, the others are sinks whose filter drops everything.
//   A socket receives everything between bind() and joining its fanout group, so every
//   socket starts with a drop-all filter that is removed only after all joined.
//   PACKET_IGNORE_OUTGOING: a ring never sees frames sent on its interface (a bridge
//   would otherwise loop its own output back in).
// Transmit: one socket bound with protocol 0 (it receives nothing) and a TPACKET_V2 TX
// ring; transmit() copies each packet into a free frame, marks it SEND_REQUEST and
// kicks the kernel once per batch with send(MSG_DONTWAIT).
//
// AF_PACKET cannot take packets away from the kernel: the stack still gets its own copy
// of every received frame (the host prints this at start when the filter drops/forwards).
// Link: the kernel marks the sockets ENETDOWN when the link goes down or the interface is
// deleted (POLLERR, handled in pollError); LinkWatch tells down, up again and deleted apart.
#include <arpa/inet.h>
#include <linux/ethtool.h>
#include <linux/filter.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>

#include "core/errors.h"
#include "ports/link_watch.h"
#include "ports/port.h"

namespace nmwasm {

namespace {

constexpr uint32_t kFrameSize = 2048;               // a 1518-byte frame + tpacket2 header fits
// Where the kernel puts an Ethernet frame in an RX frame: TPACKET_ALIGN(TPACKET2_HDRLEN + 16) - 14
// (tpacket_rcv's macoff): received frames longer than kFrameSize - kRxDataOffset are cut.
constexpr uint32_t kRxDataOffset = TPACKET_ALIGN(TPACKET2_HDRLEN + 16) - ETH_HLEN;
constexpr uint32_t kBlockSize = 1u << 16;           // 32 frames a block
constexpr uint32_t kDefaultRxFrames = 4096;
constexpr uint32_t kDefaultTxFrames = 2048;
constexpr uint32_t kMaxFrames = 1u << 18;

/** A kernel TPACKET_V2 ring mmap()ed from a socket. */
struct KernelRing {
  uint8_t* base = nullptr;
  size_t bytes = 0;
  uint32_t frames = 0;
  uint32_t next = 0;  // next frame to read (RX) or fill (TX)
  tpacket2_hdr* frame(uint32_t i) const { return reinterpret_cast<tpacket2_hdr*>(base + size_t{i} * kFrameSize); }
};

/** Frames for a requested slot count: at least one block, a whole number of blocks. */
uint32_t frameCount(uint32_t requested, uint32_t fallback) {
  uint32_t n = requested ? requested : fallback;
  const uint32_t perBlock = kBlockSize / kFrameSize;
  if (n > kMaxFrames) n = kMaxFrames;
  return (n + perBlock - 1) / perBlock * perBlock;
}

/** Number of entries named prefix* in /sys/class/net/IF/queues (0 if unknown). */
uint32_t countQueues(const std::string& ifname, const char* prefix) {
  std::string dir = "/sys/class/net/" + ifname + "/queues";
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  uint32_t n = 0;
  while (dirent* e = readdir(d)) {
    if (std::strncmp(e->d_name, prefix, std::strlen(prefix)) == 0) n++;
  }
  closedir(d);
  return n;
}

class PacketPort : public Port {
 public:
  PacketPort(const LivePortSpec& spec, const PortOptions& opts) : Port(spec.name, "packet"), spec_(spec) {
    try {
      open(opts);
    } catch (...) {
      release();
      throw;
    }
  }
  ~PacketPort() override { release(); }

  int pollFd(uint32_t ring) const override { return ring < rx_.size() && !link_.gone() ? rxFd_[ring] : -1; }
  uint8_t checkLink() noexcept override { return link_.check(); }
  bool linkGone() const noexcept override { return link_.gone(); }
  /** The kernel sets ENETDOWN on the socket when the link goes down or the interface is deleted
   * (packet_notifier): poll() then reports POLLERR until SO_ERROR is read. */
  void pollError(uint32_t ring) noexcept override {
    if (ring < rxFd_.size()) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(rxFd_[ring], SOL_SOCKET, SO_ERROR, &err, &len);
    }
    link_.check();
  }
  std::vector<std::string> notices() const override { return notices_; }
  bool canTransmit() const override { return txFd_ >= 0; }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    *exhausted = false;
    KernelRing& k = rx_[ring];
    RingShadow& sh = shadow(ring);
    const RingGeometry& geo = sh.geo;
    uint32_t filled = 0;
    uint32_t slot = first;
    while (filled < count) {
      tpacket2_hdr* h = k.frame(k.next);
      const uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if ((status & TP_STATUS_USER) == 0) break;
      const auto* from = reinterpret_cast<const sockaddr_ll*>(reinterpret_cast<uint8_t*>(h) + TPACKET_ALIGN(sizeof(tpacket2_hdr)));
      if (from->sll_pkttype != PACKET_OUTGOING) {  // NB: belt and braces to PACKET_IGNORE_OUTGOING
        ShadowSlot& s = sh.slots[slot];
        s.len = static_cast<uint16_t>(copyFrame(h, status, bufferAt(geo, s.bufIdx), geo.bufSize));
        s.origLen = h->tp_len + (s.len > h->tp_snaplen ? 4 : 0);
        if (s.origLen < s.len) s.origLen = s.len;
        s.flags = 0;
        s.tsNs = uint64_t{h->tp_sec} * 1000000000u + h->tp_nsec;
        filled++;
        slot = slot + 1 == geo.numSlots ? 0 : slot + 1;
      }
      __atomic_store_n(&h->tp_status, TP_STATUS_KERNEL, __ATOMIC_RELEASE);
      k.next = k.next + 1 == k.frames ? 0 : k.next + 1;
    }
    return filled;
  }

  uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    const uint32_t dataOfs = TPACKET2_HDRLEN - sizeof(sockaddr_ll);
    const uint32_t room = kFrameSize - dataOfs;
    uint32_t sent = 0;
    bool kicked = false;
    for (uint32_t i = 0; i < count; i++) {
      const TxPacket& p = pkts[i];
      if (p.len < ETH_HLEN || p.len > room) continue;  // the kernel would refuse it: not sent
      tpacket2_hdr* h = tx_.frame(tx_.next);
      uint32_t status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      if (status != TP_STATUS_AVAILABLE && !kicked) {
        // Ring full: let the kernel send what is queued, then look again once.
        ::send(txFd_, nullptr, 0, MSG_DONTWAIT);
        kicked = true;
        status = __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
      }
      if (status == TP_STATUS_WRONG_FORMAT) status = TP_STATUS_AVAILABLE;  // skipped earlier (PACKET_LOSS)
      if (status != TP_STATUS_AVAILABLE) break;
      std::memcpy(reinterpret_cast<uint8_t*>(h) + dataOfs, p.data, p.len);
      h->tp_len = p.len;
      __atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
      tx_.next = tx_.next + 1 == tx_.frames ? 0 : tx_.next + 1;
      sent++;
    }
    if (sent > 0) ::send(txFd_, nullptr, 0, MSG_DONTWAIT);
    return sent;
  }

 protected:
  void onClose() override {
    if (txFd_ >= 0) ::send(txFd_, nullptr, 0, 0);  // flush what is queued
  }

 private:
  /** Copies a received frame into `to` (at most `cap` bytes), re-inserting a VLAN tag the
   * kernel moved out of the frame. Returns the bytes written. */
  static uint32_t copyFrame(const tpacket2_hdr* h, uint32_t status, uint8_t* to, uint32_t cap) {
    const uint8_t* data = reinterpret_cast<const uint8_t*>(h) + h->tp_mac;
    uint32_t len = h->tp_snaplen;
    if ((status & TP_STATUS_VLAN_VALID) && len >= 12 && cap >= 16) {
      const uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : ETH_P_8021Q;
      std::memcpy(to, data, 12);
      to[12] = static_cast<uint8_t>(tpid >> 8);
      to[13] = static_cast<uint8_t>(tpid);
      to[14] = static_cast<uint8_t>(h->tp_vlan_tci >> 8);
      to[15] = static_cast<uint8_t>(h->tp_vlan_tci);
      const uint32_t rest = len - 12 > cap - 16 ? cap - 16 : len - 12;
      std::memcpy(to + 16, data + 12, rest);
      return 16 + rest;
    }
    if (len > cap) len = cap;
    std::memcpy(to, data, len);
    return len;
  }

  [[noreturn]] void fail(const char* syscall, int err, const std::string& what) {
    std::string advice = "check the interface with ip link show " + spec_.ifname;
    if (err == EPERM || err == EACCES) advice = "AF_PACKET needs root or CAP_NET_RAW: run as root or give node the capability (setcap cap_net_raw+ep)";
    throwSyscallError(name(), syscall, err, what, advice);
  }

  int newSocket(int protocol) {
    const int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, protocol);
    if (fd < 0) fail("socket", errno, "opening an AF_PACKET socket");
    fds_.push_back(fd);
    const int version = TPACKET_V2;
    if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &version, sizeof version) != 0) fail("setsockopt", errno, "selecting TPACKET_V2");
    return fd;
  }

  void setFilter(int fd, bool dropAll) {
    if (!dropAll) {
      int dummy = 0;
      if (setsockopt(fd, SOL_SOCKET, SO_DETACH_FILTER, &dummy, sizeof dummy) != 0 && errno != ENOENT) fail("setsockopt", errno, "removing the start-up filter");
      return;
    }
    static sock_filter dropEverything[] = {{BPF_RET | BPF_K, 0, 0, 0}};
    sock_fprog prog{1, dropEverything};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog) != 0) fail("setsockopt", errno, "attaching the start-up filter");
  }

  KernelRing mapRing(int fd, int option, uint32_t frames) {
    tpacket_req req{};
    req.tp_block_size = kBlockSize;
    req.tp_frame_size = kFrameSize;
    req.tp_frame_nr = frames;
    req.tp_block_nr = frames / (kBlockSize / kFrameSize);
    if (setsockopt(fd, SOL_PACKET, option, &req, sizeof req) != 0) fail("setsockopt", errno, option == PACKET_RX_RING ? "creating the RX ring" : "creating the TX ring");
    KernelRing k;
    k.bytes = size_t{req.tp_block_size} * req.tp_block_nr;
    void* at = mmap(nullptr, k.bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_LOCKED | MAP_POPULATE, fd, 0);
    if (at == MAP_FAILED) at = mmap(nullptr, k.bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (at == MAP_FAILED) fail("mmap", errno, "mapping the kernel ring");
    k.base = static_cast<uint8_t*>(at);
    k.frames = frames;
    maps_.push_back({k.base, k.bytes});
    return k;
  }

  void bindTo(int fd, int protocol) {
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = static_cast<uint16_t>(protocol);
    addr.sll_ifindex = static_cast<int>(ifindex_);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) fail("bind", errno, "binding to " + spec_.ifname);
  }

  void checkInterface() {
    ifindex_ = if_nametoindex(spec_.ifname.c_str());
    if (ifindex_ == 0) throw NativeError("ENODEV", name(), "if_nametoindex", errno, "no interface named " + spec_.ifname + ": list them with ip link");
    link_.watch(spec_.ifname, ifindex_);
    const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, spec_.ifname.c_str(), IFNAMSIZ - 1);
    const bool up = ioctl(fd, SIOCGIFFLAGS, &ifr) != 0 || (ifr.ifr_flags & IFF_UP) != 0;
    // Offloads that merge frames: the filter would see super-frames cut to one buffer.
    ethtool_value gro{ETHTOOL_GGRO, 0};
    ifr.ifr_data = reinterpret_cast<char*>(&gro);
    const bool groOn = ioctl(fd, SIOCETHTOOL, &ifr) == 0 && gro.data != 0;
    ethtool_value flags{ETHTOOL_GFLAGS, 0};
    ifr.ifr_data = reinterpret_cast<char*>(&flags);
    const bool lroOn = ioctl(fd, SIOCETHTOOL, &ifr) == 0 && (flags.data & ETH_FLAG_LRO) != 0;
    ifr.ifr_data = nullptr;
    const int mtu = ioctl(fd, SIOCGIFMTU, &ifr) == 0 ? ifr.ifr_mtu : 0;
    ::close(fd);
    // NB: the kernel puts a frame's data kRxDataOffset bytes into a 2048-byte ring frame and
    // cuts what does not fit: with a larger MTU the filter (and a --to port) get cut frames.
    const int maxMtu = static_cast<int>(kFrameSize - kRxDataOffset) - ETH_HLEN;
    if (spec_.rx && mtu > maxMtu)
      notices_.push_back(name() + ": MTU " + std::to_string(mtu) + " of " + spec_.ifname + ": frames over " + std::to_string(kFrameSize - kRxDataOffset) +
                         " bytes reach the filter cut to that length (2048-byte AF_PACKET ring frames); lower it: ip link set " + spec_.ifname + " mtu " +
                         std::to_string(maxMtu));
    if (!up) throw NativeError("ENETDOWN", name(), "", 0, "interface " + spec_.ifname + " is down: bring it up with ip link set " + spec_.ifname + " up");
    if (spec_.rx && (groOn || lroOn)) {
      notices_.push_back(name() + ": " + (groOn && lroOn ? "GRO and LRO are" : groOn ? "GRO is" : "LRO is") + " on for " + spec_.ifname +
                         ": the filter may see merged super-frames, cut to one buffer; turn off: ethtool -K " + spec_.ifname +
                         (groOn ? " gro off" : "") + (lroOn ? " lro off" : ""));
    }
  }

  void open(const PortOptions& opts) {
    checkInterface();
    if (spec_.rx) openReceive(opts);
    if (spec_.tx) openTransmit();
  }

  void openReceive(const PortOptions& opts) {
    const uint32_t rxQueues = countQueues(spec_.ifname, "rx-");
    const bool oneQueue = spec_.queue >= 0;
    if (oneQueue && rxQueues > 0 && static_cast<uint32_t>(spec_.queue) >= rxQueues)
      throw NativeError("EINVAL", name(), "", 0, "queue " + std::to_string(spec_.queue) + " is out of range: " + spec_.ifname + " has " + std::to_string(rxQueues) + " RX queue(s)");
    const uint32_t rings = oneQueue ? 1 : (spec_.rings ? spec_.rings : 1);
    const uint32_t members = oneQueue ? (rxQueues ? rxQueues : 1) : rings;  // fanout group size
    const uint32_t frames = frameCount(spec_.rxSlots, kDefaultRxFrames);
    const int one = 1;
    std::vector<int> group;
    for (uint32_t m = 0; m < members; m++) {
      const bool isRing = oneQueue ? m == static_cast<uint32_t>(spec_.queue) : true;
      const int fd = newSocket(0);
      setFilter(fd, true);
      if (setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0) fail("setsockopt", errno, "ignoring outgoing frames");
      if (isRing) {
        rx_.push_back(mapRing(fd, PACKET_RX_RING, frames));
        rxFd_.push_back(fd);
      }
      bindTo(fd, htons(ETH_P_ALL));
      group.push_back(fd);
    }
    if (members > 1) joinFanout(group, oneQueue || rxQueues > 1 ? PACKET_FANOUT_QM : PACKET_FANOUT_HASH);
    for (int fd : rxFd_) setFilter(fd, false);  // every member joined: start receiving
    setupRings(static_cast<uint32_t>(rx_.size()), opts.numSlots, opts.bufSize);
  }

  void joinFanout(const std::vector<int>& group, int type) {
    int arg = (type | PACKET_FANOUT_FLAG_UNIQUEID) << 16;
    if (setsockopt(group[0], SOL_PACKET, PACKET_FANOUT, &arg, sizeof arg) != 0) fail("setsockopt", errno, "creating the fanout group");
    int current = 0;
    socklen_t len = sizeof current;
    if (getsockopt(group[0], SOL_PACKET, PACKET_FANOUT, &current, &len) != 0) fail("getsockopt", errno, "reading the fanout group id");
    const int join = (current & 0xffff) | (type << 16);
    for (size_t i = 1; i < group.size(); i++) {
      if (setsockopt(group[i], SOL_PACKET, PACKET_FANOUT, &join, sizeof join) != 0) fail("setsockopt", errno, "joining the fanout group");
    }
  }

  void openTransmit() {
    txFd_ = newSocket(0);
    const int one = 1;
    if (setsockopt(txFd_, SOL_PACKET, PACKET_LOSS, &one, sizeof one) != 0) fail("setsockopt", errno, "setting PACKET_LOSS");
    tx_ = mapRing(txFd_, PACKET_TX_RING, frameCount(spec_.txSlots, kDefaultTxFrames));
    bindTo(txFd_, 0);  // protocol 0: this socket receives nothing
  }

  void release() noexcept {
    for (auto& m : maps_) munmap(m.first, m.second);
    maps_.clear();
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }

  LivePortSpec spec_;
  unsigned ifindex_ = 0;
  std::vector<KernelRing> rx_;  // one per input ring
  std::vector<int> rxFd_;
  int txFd_ = -1;
  KernelRing tx_;
  std::mutex txMu_;
  std::vector<int> fds_;  // every socket (rings, sinks, tx), closed at destruction
  std::vector<std::pair<uint8_t*, size_t>> maps_;
  std::vector<std::string> notices_;
  LinkWatch link_;
};

}  // namespace

std::shared_ptr<Port> openPacketPort(const LivePortSpec& spec, const PortOptions& opts) {
  return std::make_shared<PacketPort>(spec, opts);
}

}  // namespace nmwasm
