// AF_XDP backend (xdp:IF, xdp:IF-N; chosen for a bare interface name when netmap is
// absent). See docs/PORTS.md "AF_XDP". Built only with NMWASM_HAVE_XDP (libxdp and
// libbpf found by pkg-config at configure time, see binding.gyp).
//
// Memory: the port's packet memory (a memfd, page aligned) is the UMEM, so the kernel
// writes received frames straight into the memory the filter sees: no userspace copy.
// One UMEM frame = one netmap buffer of nr_buf_size (2048) bytes; buf_idx = frame
// index. The kernel puts a frame's data XDP_PACKET_HEADROOM (256) bytes into the
// frame, so the rings' buf_ofs points 256 bytes past the first frame: buffer i is
// [frame i + 256, frame i+1 + 256), i.e. it runs into the next frame's headroom, which
// the kernel never writes in copy mode (one spare frame at the end keeps the last
// buffer inside the memory). A frame holds at most 2048 - 256 = 1792 bytes of packet.
//
// Frames: input ring r (queue q) owns frames [r*F, (r+1)*F) with F = R + num_slots,
// where R is the size of its fill ring and of its RX ring (default 8192 if it fits the
// 63 MiB packet window, else 4096, 2048; @conf:rx-slots sets it). Frames circulate
// fill ring -> kernel -> RX ring -> shadow slot (rxsync) -> the filter -> fill ring
// (rxrelease); frames that do not fit the fill ring wait in a free list and are pushed
// at the next sync. Transmit (an output port, --to/--out) has its own T frames
// (T = the TX ring size, 2048 or @conf:tx-slots) on queue max(N, 0)'s socket.
//
// Verdicts: DROP recycles the frame. PASS without an output and HOST re-inject it into
// the kernel stack of the interface (XdpInterface::inject: batched, one BPF_PROG_RUN for up
// to 256 frames; one a frame when the kernel refuses the batched program), then recycle it. ARP, ICMP and ICMPv6 never reach the
// filter: the XDP program passes them to the kernel (xdp_program.h).
// Size: an input refuses an interface whose MTU makes frames longer than 1792 bytes; frames
// the kernel still drops for their size (MTU raised later, VLAN tags) are counted
// (oversizeDrops). Link: LinkWatch, checked by the main thread's link monitor.
#include <net/if.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <xdp/xsk.h>

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <mutex>
#include <thread>

#include "core/errors.h"
#include "ports/link_watch.h"
#include "ports/port.h"
#include "ports/xdp_program.h"

namespace nmwasm {

namespace {

constexpr uint32_t kHeadroom = 256;  // XDP_PACKET_HEADROOM: where the kernel puts a frame's data
constexpr uint64_t kWindowBytes = 0x4000000 - 0x100000;  // ABI packet window (docs/ABI.md)
constexpr uint32_t kDefaultTxSlots = 2048;
constexpr uint32_t kMinCompSlots = 64;
constexpr int kBusyRetries = 30;  // x 100 ms: a queue can stay busy ~1 s after its last socket closed

/** One AF_XDP socket (one queue) and its rings. NB: the ring structs must stay put:
 * libxdp keeps pointers to them. */
struct XskQueue {
  uint32_t queueId = 0;
  xsk_socket* xsk = nullptr;
  int fd = -1;
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fill{};
  xsk_ring_cons comp{};
  std::vector<uint32_t> freeFrames;  // frames userspace holds that are not in a slot (capacity fixed at open)
};

/** RX queues of `ifname` (sysfs queues/rx-*), at least 1. */
uint32_t rxQueueCount(const std::string& ifname) {
  const std::string dir = "/sys/class/net/" + ifname + "/queues";
  DIR* d = opendir(dir.c_str());
  if (!d) return 1;
  uint32_t n = 0;
  while (dirent* e = readdir(d))
    if (std::strncmp(e->d_name, "rx-", 3) == 0) n++;
  closedir(d);
  return n > 0 ? n : 1;
}

bool isPowerOfTwo(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

inline uint64_t nowNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

class XdpPort : public Port {
 public:
  XdpPort(const LivePortSpec& spec, const PortOptions& opts) : Port(spec.name, "xdp"), spec_(spec), bufSize_(opts.bufSize) {
    if (!spec.rx && !spec.tx) throw NativeError("EINVAL", spec.name, "", 0, "an AF_XDP port needs its receive or its transmit side");
    const uint32_t ifQueues = rxQueueCount(spec.ifname);
    const unsigned ifindex = if_nametoindex(spec.ifname.c_str());
    if (ifindex == 0) throwSyscallError(spec.name, "if_nametoindex", errno, "looking up interface " + spec.ifname, "check the name with ip link show");
    link_.watch(spec.ifname, ifindex);
    if (spec.rx) checkMtu();
    std::vector<uint32_t> queueIds;
    if (spec.rx && spec.queue < 0)
      for (uint32_t q = 0; q < spec.rings; q++) queueIds.push_back(q);
    else
      queueIds.push_back(spec.queue < 0 ? 0 : static_cast<uint32_t>(spec.queue));
    const uint32_t rings = spec.rx ? static_cast<uint32_t>(queueIds.size()) : 0;
    const uint32_t numSlots = opts.numSlots;
    txSlots_ = spec.tx ? (spec.txSlots ? spec.txSlots : kDefaultTxSlots) : 0;
    rxSlots_ = spec.rx ? chooseRxSlots(rings, numSlots) : 0;
    framesPerRing_ = rxSlots_ + numSlots;
    txFirst_ = uint64_t{rings} * framesPerRing_;
    uint64_t frames = txFirst_ + txSlots_ + 1;  // + the spare frame under the last buffer's tail
    if (frames & 1) frames++;                    // NB: keeps the UMEM a whole number of pages
    setupRings(rings, numSlots, bufSize_, frames);
    umemOfs_ = rings > 0 ? shadow(0).geo.buffersOfs : 0;
    for (uint32_t r = 0; r < rings; r++) {
      RingGeometry& geo = shadow(r).geo;
      geo.buffersOfs = umemOfs_ + kHeadroom;
      guestRing(geo)->buf_ofs = static_cast<int64_t>(geo.buffersOfs - geo.ringOfs);
    }
    try {
      openSockets(queueIds, rings, frames, ifQueues);
    } catch (...) {
      teardown();
      throw;
    }
  }

  ~XdpPort() override { teardown(); }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    *exhausted = false;
    if (torn_) return 0;
    XskQueue& q = *queues_[ring];
    RingShadow& sh = shadow(ring);
    refill(q);
    uint32_t idx = 0;
    const uint32_t n = xsk_ring_cons__peek(&q.rx, count, &idx);
    if (n == 0) {
      // NB: with XDP_USE_NEED_WAKEUP the kernel stops pulling from the fill ring until woken.
      if (xsk_ring_prod__needs_wakeup(&q.fill)) recvfrom(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
      return 0;
    }
    const uint64_t ts = nowNs();
    uint8_t* umem = memory()->base() + umemOfs_;
    const uint32_t maxLen = bufSize_ - kHeadroom;
    uint32_t i = first;
    for (uint32_t k = 0; k < n; k++) {
      const xdp_desc* d = xsk_ring_cons__rx_desc(&q.rx, idx + k);
      const uint32_t frame = static_cast<uint32_t>(d->addr / bufSize_);
      const uint32_t at = static_cast<uint32_t>(d->addr % bufSize_);
      const uint32_t len = d->len < maxLen ? d->len : maxLen;
      // NB: copy mode always delivers at +256; only an unusual zero-copy driver would not.
      if (at != kHeadroom) std::memmove(umem + uint64_t{frame} * bufSize_ + kHeadroom, umem + d->addr, len);
      ShadowSlot& s = sh.slots[i];
      s.bufIdx = frame;
      s.len = static_cast<uint16_t>(len);
      s.origLen = d->len;
      s.flags = 0;
      s.tsNs = ts;
      if (++i == sh.geo.numSlots) i = 0;
    }
    xsk_ring_cons__release(&q.rx, n);
    return n;
  }

  void rxrelease(uint32_t ring, uint32_t first, uint32_t count) noexcept override {
    if (torn_) return;
    XskQueue& q = *queues_[ring];
    RingShadow& sh = shadow(ring);
    uint32_t i = first;
    for (uint32_t k = 0; k < count; k++) {
      q.freeFrames.push_back(sh.slots[i].bufIdx);  // NB: within the capacity reserved at open: no allocation
      if (++i == sh.geo.numSlots) i = 0;
    }
    refill(q);
  }

  bool canTransmit() const override { return txQueue_ != nullptr; }

  uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    if (torn_ || !txQueue_) return 0;
    XskQueue& q = *txQueue_;
    reclaimCompletions(q);
    // NB: with an RX side the socket's freeFrames belong to its RX ring (another thread):
    // TX frames come from txFree_ only.
    std::vector<uint32_t>& pool = txSeparate_ ? txFree_ : q.freeFrames;
    const uint32_t maxLen = bufSize_ - kHeadroom;
    const uint32_t window = count < pool.size() ? count : static_cast<uint32_t>(pool.size());
    // NB: a packet longer than a frame's 1792 data bytes is refused (the caller counts it in
    // out drops), never cut: AF_XDP frames are 2048 bytes.
    uint32_t n = 0;
    for (uint32_t k = 0; k < window; k++) n += pkts[k].len <= maxLen ? 1 : 0;
    uint32_t idx = 0;
    while (n > 0 && xsk_ring_prod__reserve(&q.tx, n, &idx) != n) n /= 2;
    if (n == 0) return 0;
    uint8_t* umem = memory()->base() + umemOfs_;
    for (uint32_t k = 0, j = 0; j < n; k++) {
      if (pkts[k].len > maxLen) continue;
      const uint32_t frame = pool.back();
      pool.pop_back();
      const uint32_t len = pkts[k].len;
      const uint64_t addr = uint64_t{frame} * bufSize_ + kHeadroom;
      std::memcpy(umem + addr, pkts[k].data, len);
      xdp_desc* d = xsk_ring_prod__tx_desc(&q.tx, idx + j++);
      d->addr = addr;
      d->len = len;
      d->options = 0;
    }
    xsk_ring_prod__submit(&q.tx, n);
    kickTx(q);
    return n;
  }

  uint32_t toHost(uint32_t ring, const TxPacket* pkts, uint32_t count) noexcept override {
    if (torn_ || !iface_ || ring >= queues_.size()) return 0;
    return iface_->inject(queues_[ring]->queueId, pkts, count);
  }

  bool passesToHost() const override { return spec_.rx; }

  bool cachesFlows() const override { return flowTtlNs_ > 0; }

  void cacheFlows(uint32_t ring, const FlowVerdict* flows, uint32_t count) noexcept override {
    if (torn_ || flowTtlNs_ == 0 || ring >= flowKeys_.size()) return;
    iface_->recordFlows(flows, count, flowTtlNs_, flowKeys_[ring].data(), flowValues_[ring].data());
  }

  void invalidateFlows() noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    if (!torn_ && iface_) iface_->invalidateFlows();
  }

  void kernelVerdicts(uint64_t* drop, uint64_t* pass) const noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    if (torn_) {
      *drop = kernelAtTeardown_[0], *pass = kernelAtTeardown_[1];
      return;
    }
    currentKernelVerdicts(drop, pass);
  }

  int pollFd(uint32_t ring) const override { return ring < rings() && !torn_ ? queues_[ring]->fd : -1; }

  // NB: a deleted interface unbinds the sockets without waking poll() (xsk_notifier): only
  // the main thread's periodic checkLink finds it.
  uint8_t checkLink() noexcept override { return link_.check(); }
  bool linkGone() const noexcept override { return link_.gone(); }
  void pollError(uint32_t ring) noexcept override { link_.check(); }

  /** Frames the kernel could not put in a frame of ours: rx_dropped minus the drops for an
   * empty fill ring (XDP_STATISTICS of each socket; copy mode: a frame over 1792 bytes). */
  uint64_t oversizeDrops() const noexcept override {
    std::lock_guard<std::mutex> lock(txMu_);
    if (torn_) return oversizeAtTeardown_;
    return currentOversize();
  }

  std::vector<std::string> notices() const override { return notices_; }

 protected:
  void onClose() override { teardown(); }
  void onAbort() noexcept override { teardown(); }

 private:
  void currentKernelVerdicts(uint64_t* drop, uint64_t* pass) const noexcept {
    *drop = 0, *pass = 0;
    if (!iface_ || !spec_.rx) return;
    for (const auto& q : queues_) {
      uint64_t d = 0, p = 0;
      iface_->flowCounts(q->queueId, &d, &p);
      *drop += d, *pass += p;
    }
  }

  uint64_t currentOversize() const noexcept {
    uint64_t sum = 0;
    for (const auto& q : queues_) {
      if (q->fd < 0) continue;
      xdp_statistics st{};
      socklen_t len = sizeof st;
      if (getsockopt(q->fd, SOL_XDP, XDP_STATISTICS, &st, &len) != 0) continue;
      if (st.rx_dropped > st.rx_fill_ring_empty_descs) sum += st.rx_dropped - st.rx_fill_ring_empty_descs;
    }
    return sum;
  }

  /** Refuses an interface whose MTU makes frames longer than a frame's 1792 data bytes: the
   * kernel would drop them (nobody, neither the filter nor the stack, would get them). */
  void checkMtu() const {
    const uint32_t mtu = link_.mtu();
    const uint32_t maxMtu = bufSize_ - kHeadroom - 14;  // the Ethernet header is not part of the MTU
    if (mtu <= maxMtu) return;
    throw NativeError("EINVAL", name(), "", 0,
                      "MTU " + std::to_string(mtu) + " of " + spec_.ifname + " is larger than AF_XDP frames hold (" + std::to_string(bufSize_) +
                          "-byte frames, " + std::to_string(bufSize_ - kHeadroom) + " bytes of packet: MTU at most " + std::to_string(maxMtu) +
                          "): lower it with ip link set " + spec_.ifname + " mtu " + std::to_string(maxMtu) + ", or use packet:" + spec_.ifname);
  }

  /** The RX/fill ring size: @conf rx-slots, else the largest of 8192/4096/2048 whose
   * frames fit the packet window. Throws NativeError when nothing fits. */
  uint32_t chooseRxSlots(uint32_t rings, uint32_t numSlots) const {
    const uint64_t ringArea = uint64_t{rings} * (kRingHeaderSize + 17ull * numSlots + 128) + 4096;
    auto fits = [&](uint32_t r) { return ringArea + (uint64_t{rings} * (r + numSlots) + txSlots_ + 2) * bufSize_ <= kWindowBytes; };
    if (spec_.rxSlots) {
      if (!isPowerOfTwo(spec_.rxSlots) || spec_.rxSlots < 64)
        throw NativeError("EINVAL", spec_.name, "", 0, "AF_XDP ring sizes must be powers of two of at least 64, got rx-slots=" + std::to_string(spec_.rxSlots));
      if (!fits(spec_.rxSlots))
        throw NativeError("ENOMEM", spec_.name, "", 0, "rx-slots=" + std::to_string(spec_.rxSlots) + " over " + std::to_string(rings) +
                                                           " queue(s) does not fit the 63 MiB packet window: lower @conf:rx-slots or --slots, or open one queue (IF-N)");
      return spec_.rxSlots;
    }
    for (uint32_t r : {8192u, 4096u, 2048u})
      if (fits(r)) return r;
    throw NativeError("ENOMEM", spec_.name, "", 0, std::to_string(rings) + " queues of AF_XDP frames do not fit the 63 MiB packet window: open fewer queues (IF-N) or lower --slots");
  }

  void openSockets(const std::vector<uint32_t>& queueIds, uint32_t rings, uint64_t frames, uint32_t ifQueues) {
    const uint32_t fillSize = rxSlots_ ? rxSlots_ : kMinCompSlots;
    const uint32_t compSize = txSlots_ > kMinCompSlots ? txSlots_ : kMinCompSlots;
    for (size_t k = 0; k < queueIds.size(); k++) {
      auto q = std::make_unique<XskQueue>();
      q->queueId = queueIds[k];
      queues_.push_back(std::move(q));
    }
    xsk_umem_config ucfg{};
    ucfg.fill_size = fillSize;
    ucfg.comp_size = compSize;
    ucfg.frame_size = bufSize_;
    ucfg.frame_headroom = 0;
    ucfg.flags = 0;
    int err = -xsk_umem__create(&umem_, memory()->base() + umemOfs_, frames * bufSize_, &queues_[0]->fill, &queues_[0]->comp, &ucfg);
    if (err != 0) throwSyscallError(name(), "xsk_umem__create", err, "registering the packet memory as AF_XDP UMEM", "run as root (CAP_NET_RAW) and check ulimit -l");

    XdpAttachMode mode = spec_.xdpAttach == "native" ? XdpAttachMode::Native : spec_.xdpAttach == "skb" ? XdpAttachMode::Skb : XdpAttachMode::Auto;
    if (spec_.rx) iface_ = acquireXdpInterface(name(), spec_.ifname, ifQueues, mode, spec_.xdpKernelClasses);
    if (spec_.rx && iface_->flowPath() && spec_.flowTtlMs > 0) {
      flowTtlNs_ = uint64_t{spec_.flowTtlMs} * 1000000ull;
      flowKeys_.resize(rings);
      flowValues_.resize(rings);
      for (uint32_t r = 0; r < rings; r++) {
        flowKeys_[r].resize(shadow(r).geo.numSlots);
        flowValues_[r].resize(shadow(r).geo.numSlots);
      }
    }

    for (size_t k = 0; k < queues_.size(); k++) {
      XskQueue& q = *queues_[k];
      createSocket(q, k == 0);
      if (spec_.rx) {
        q.freeFrames.reserve(framesPerRing_);
        const uint32_t firstFrame = static_cast<uint32_t>(k) * framesPerRing_;
        for (uint32_t f = framesPerRing_; f-- > 0;) q.freeFrames.push_back(firstFrame + f);
        refill(q);
        iface_->bindQueue(name(), q.queueId, q.fd);
      }
    }
    if (spec_.tx) {
      txQueue_ = queues_[0].get();
      txSeparate_ = spec_.rx;  // with an RX side, the socket's free list feeds its fill ring
      std::vector<uint32_t>& pool = txSeparate_ ? txFree_ : txQueue_->freeFrames;
      pool.reserve(txSlots_);
      for (uint32_t f = 0; f < txSlots_; f++) pool.push_back(static_cast<uint32_t>(txFirst_) + f);
    }
    notices_.push_back(spec_.ifname + ": AF_XDP " + (zeroCopy_ ? "zero-copy" : "copy") + " mode" +
                       (spec_.rx ? std::string(", XDP program in ") + (iface_->native() ? "native" : "skb (generic)") + " mode, " +
                                       std::to_string(rings) + " queue(s), fill/RX rings of " + std::to_string(rxSlots_) + " slots"
                                 : std::string(", transmit only")) +
                       (zeroCopyNote_.empty() ? "" : " (" + zeroCopyNote_ + ")") +
                       (spec_.rx ? std::string(iface_->batched() ? ", re-injection to the kernel stack batched (up to 256 frames a BPF_PROG_RUN)"
                                                                 : ", re-injection to the kernel stack one frame a system call (the batched program was refused by this kernel)")
                                 : std::string()) +
                       (spec_.rx ? flowNotice() : std::string()) + (spec_.busyPoll ? ", busy polling" : ""));
  }

  /** What the start-up line says about flow verdicts in the kernel. */
  std::string flowNotice() const {
    if (flowTtlNs_ > 0) return ", flow verdicts applied in the kernel for " + std::to_string(spec_.flowTtlMs) + " ms";
    if (!spec_.xdpKernelClasses) return "";  // a bridge: every frame goes to the filter
    if (spec_.flowTtlMs == 0) return ", flow verdicts not cached (--flow-ttl 0)";
    std::string why = iface_->flowRefusal();
    for (char& c : why)
      if (c < 0x20 || c > 0x7e) c = ' ';
    return ", flow verdicts not applied in the kernel (this kernel refused the flow path" + (why.empty() ? std::string() : ": " + why.substr(0, 200)) + ")";
  }

  /** Binds one socket, zero-copy first when allowed; retries EBUSY for ~3 s. Only the
   * first socket chooses the mode: the others share its UMEM and inherit it (the kernel
   * ignores their copy/zero-copy flags). Throws NativeError. */
  void createSocket(XskQueue& q, bool first) {
    xsk_socket_config cfg{};
    cfg.rx_size = spec_.rx ? rxSlots_ : 0;
    cfg.tx_size = spec_.tx ? txSlots_ : 0;
    cfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
    cfg.xdp_flags = 0;
    const bool tryZc = first ? spec_.xdpBind != "copy" : zeroCopy_;
    int err = 0;
    for (int attempt = 0;; attempt++) {
      bool zc = tryZc;
      cfg.bind_flags = XDP_USE_NEED_WAKEUP | (zc ? XDP_ZEROCOPY : XDP_COPY);
      err = -xsk_socket__create_shared(&q.xsk, spec_.ifname.c_str(), q.queueId, umem_, spec_.rx ? &q.rx : nullptr, spec_.tx ? &q.tx : nullptr, &q.fill, &q.comp, &cfg);
      if (err != 0 && first && zc && spec_.xdpBind.empty() && err != EBUSY) {
        zeroCopyNote_ = std::string("no zero-copy: ") + strerror(err);
        zc = false;
        cfg.bind_flags = XDP_USE_NEED_WAKEUP | XDP_COPY;
        err = -xsk_socket__create_shared(&q.xsk, spec_.ifname.c_str(), q.queueId, umem_, spec_.rx ? &q.rx : nullptr, spec_.tx ? &q.tx : nullptr, &q.fill, &q.comp, &cfg);
      }
      if (err == 0) {
        if (first) zeroCopy_ = zc;
        break;
      }
      if (err != EBUSY || attempt >= kBusyRetries) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    const std::string queue = "queue " + std::to_string(q.queueId) + " of " + spec_.ifname;
    if (err == EBUSY)
      throw NativeError("EBUSY", name(), "bind", EBUSY,
                        queue + " is busy: another AF_XDP socket is bound to it (another nmwasm?), or it was released a moment ago and stayed busy for 3 s: stop the other user and retry");
    if (err == EOPNOTSUPP && spec_.xdpBind == "zerocopy")
      throwSyscallError(name(), "bind", err, "binding an AF_XDP socket to " + queue + " in zero-copy mode", "the driver has no AF_XDP zero-copy: drop @zerocopy (copy mode works everywhere)");
    if (err != 0) throwSyscallError(name(), "bind", err, "binding an AF_XDP socket to " + queue, "run as root; check that the queue exists (ethtool -l " + spec_.ifname + ")");
    q.fd = xsk_socket__fd(q.xsk);
    if (spec_.busyPoll) setBusyPoll(q);
  }

  /** --busy-poll: the socket's receive and send calls run the interface's NAPI poll themselves
   * (SO_PREFER_BUSY_POLL, SO_BUSY_POLL 20 us, a budget of 64 frames) instead of waiting for
   * softirq work. Throws NativeError when the kernel refuses it. */
  void setBusyPoll(XskQueue& q) {
    const int on = 1, usecs = 20, budget = 64;
    const std::pair<int, const int*> opts[] = {{SO_PREFER_BUSY_POLL, &on}, {SO_BUSY_POLL, &usecs}, {SO_BUSY_POLL_BUDGET, &budget}};
    for (const auto& [opt, value] : opts)
      if (setsockopt(q.fd, SOL_SOCKET, opt, value, sizeof(int)) != 0)
        throwSyscallError(name(), "setsockopt", errno, "turning on busy polling (--busy-poll) on the AF_XDP socket of queue " + std::to_string(q.queueId) + " of " + spec_.ifname,
                          "run as root (SO_BUSY_POLL needs CAP_NET_ADMIN) on Linux 5.11+, or drop --busy-poll");
  }

  /** Pushes free frames into the fill ring (as many as it takes). */
  void refill(XskQueue& q) noexcept {
    uint32_t n = static_cast<uint32_t>(q.freeFrames.size());
    if (n == 0) return;
    const uint32_t room = xsk_prod_nb_free(&q.fill, n);
    if (n > room) n = room;
    uint32_t idx = 0;
    if (n == 0 || xsk_ring_prod__reserve(&q.fill, n, &idx) != n) return;
    for (uint32_t k = 0; k < n; k++) {
      *xsk_ring_prod__fill_addr(&q.fill, idx + k) = uint64_t{q.freeFrames.back()} * bufSize_;
      q.freeFrames.pop_back();
    }
    xsk_ring_prod__submit(&q.fill, n);
  }

  /** Makes the kernel send what the TX ring holds. NB: in copy mode a sendto() sends at most
   * 32 frames and answers EAGAIN while more wait, so it is repeated (bounded). */
  void kickTx(XskQueue& q) noexcept {
    if (zeroCopy_ && !xsk_ring_prod__needs_wakeup(&q.tx)) return;
    for (uint32_t k = 0; k <= txSlots_ / 32 + 1; k++)
      if (sendto(q.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0 || errno != EAGAIN) break;
  }

  /** Takes sent frames back from the completion ring. */
  void reclaimCompletions(XskQueue& q) noexcept {
    std::vector<uint32_t>& pool = txSeparate_ ? txFree_ : q.freeFrames;
    uint32_t idx = 0;
    const uint32_t n = xsk_ring_cons__peek(&q.comp, txSlots_, &idx);
    for (uint32_t k = 0; k < n; k++) pool.push_back(static_cast<uint32_t>(*xsk_ring_cons__comp_addr(&q.comp, idx + k) / bufSize_));
    if (n > 0) xsk_ring_cons__release(&q.comp, n);
  }

  /** Closes the sockets, the UMEM and our hold on the XDP program; idempotent, never throws. */
  void teardown() noexcept {
    std::vector<std::unique_lock<std::mutex>> locks;
    for (uint32_t r = 0; r < rings(); r++) locks.emplace_back(shadow(r).mu);
    std::lock_guard<std::mutex> txLock(txMu_);
    if (torn_) return;
    oversizeAtTeardown_ = currentOversize();
    currentKernelVerdicts(&kernelAtTeardown_[0], &kernelAtTeardown_[1]);
    torn_ = true;
    if (txQueue_ && txQueue_->xsk) kickTx(*txQueue_);  // what the last batch queued leaves before the socket closes
    for (auto& q : queues_) {
      if (q->xsk) xsk_socket__delete(q->xsk), q->xsk = nullptr, q->fd = -1;
    }
    if (umem_) xsk_umem__delete(umem_), umem_ = nullptr;
    iface_.reset();  // the last port on the interface detaches the program
  }

  LivePortSpec spec_;
  uint32_t bufSize_;
  uint32_t rxSlots_ = 0;
  uint32_t txSlots_ = 0;
  uint32_t framesPerRing_ = 0;
  uint64_t txFirst_ = 0;
  uint64_t umemOfs_ = 0;  // the first frame (page aligned)
  xsk_umem* umem_ = nullptr;
  std::vector<std::unique_ptr<XskQueue>> queues_;
  std::shared_ptr<XdpInterface> iface_;
  mutable std::mutex txMu_;
  XskQueue* txQueue_ = nullptr;
  bool txSeparate_ = false;       // TX frames live in txFree_ (the socket's free list feeds its fill ring)
  std::vector<uint32_t> txFree_;
  bool zeroCopy_ = false;
  std::string zeroCopyNote_;
  std::vector<std::string> notices_;
  std::atomic<bool> torn_{false};
  LinkWatch link_;
  uint64_t oversizeAtTeardown_ = 0;
  uint64_t kernelAtTeardown_[2] = {0, 0};  // flow verdicts applied by the kernel: dropped, passed
  uint64_t flowTtlNs_ = 0;                 // 0: flow verdicts are not cached
  std::vector<std::vector<XdpFlowKey>> flowKeys_;      // per ring, num_slots entries (cacheFlows' scratch)
  std::vector<std::vector<XdpFlowValue>> flowValues_;
};

}  // namespace

std::shared_ptr<Port> openXdpPort(const LivePortSpec& spec, const PortOptions& opts) {
  return std::make_shared<XdpPort>(spec, opts);
}

}  // namespace nmwasm
