// netmap backend (netmap:IF..., VALE ports, pipes; docs/PORTS.md "netmap backend").
//
// Open stages, each undone on failure (the NetmapSession member closes the fd, the Port
// base frees the packet memory; the member goes first, so netmap lets go of the memory
// before it is unmapped):
//   1. open /dev/netmap (absent: one line naming the module and suggesting xdp:IF);
//   2. NETMAP_REQ_PORT_INFO_GET: ring and slot counts (@conf counts override them);
//   3. size the extmem pools (if, rings, one buffer per slot); refuse when they and the
//      guest rings exceed the 63 MiB packet window, suggesting fewer slots/rings;
//   4. setupRings: the guest rings plus a free tail big enough for the pools;
//   5. NETMAP_REQ_REGISTER with the extmem option pointing at that tail: netmap lays its
//      netmap_if, rings and buffers out inside the port's PacketMemory, so the filter's
//      packet window shows the kernel's own buffers (no copy on receive);
//   6. per ring: the shadow's buffersOfs = the kernel buffer pool (ring + buf_ofs).
// A monitor (/r /t /z) is the exception: netmap keeps it in memory of its own whatever
// the request says (netmap_monitor.c: a private allocator for a copy monitor, the
// monitored port's for /z), so stage 5 registers without extmem, mmaps /dev/netmap
// natively and rxsync copies each frame into the port's own buffers (setupRings' layout).
// rxsync takes kernel slots [cur, tail) into the shadow with buf_idx = the kernel's;
// rxrelease gives them back (head = cur); toHost (HOST, and PASS without an output) marks
// NS_FORWARD on an interface's hardware RX rings, which carry NR_FORWARD, so netmap hands
// the packet to the host stack at the next rxsync; transmit copies into TX ring 0.
#include "port_netmap.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "errors.h"
#include "netmap_session.h"

namespace nmwasm {

namespace {

constexpr uint64_t kWindowBytes = 63ull << 20;  // NMWASM_DATA_BASE - NMWASM_WINDOW_BASE (host/module.ts)

class NetmapPort : public Port {
 public:
  NetmapPort(const NetmapPortSpec& spec, const PortOptions& opts, const netmap::NetmapSys& sys)
      : Port(spec.name, "netmap"), spec_(spec), session_(sys) {
    try {
      open(opts);
    } catch (const netmap::NetmapFailure& e) {
      fail(e);
    }
  }

  int pollFd(uint32_t) const override { return session_.fd(); }
  bool canTransmit() const override { return spec_.tx && session_.txRings() > 0; }

  uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept override {
    *exhausted = false;
    RingShadow& sh = shadow(ring);
    netmap::netmap_ring* k = session_.rxRing(ring);
    const uint64_t tsNs = static_cast<uint64_t>(k->ts.tv_sec) * 1000000000u + static_cast<uint64_t>(k->ts.tv_usec) * 1000u;
    uint32_t i = first;
    if (session_.mapped()) {
      // Monitor: copy out of netmap's own memory into the slot's buffer in the window.
      return session_.takeReceived(ring, count, [&](netmap::netmap_slot* slot) {
        ShadowSlot& s = sh.slots[i];
        const uint32_t len = slot->len < sh.geo.bufSize ? slot->len : sh.geo.bufSize;
        std::memcpy(bufferAt(sh.geo, s.bufIdx), netmap::NetmapSession::bufferOf(k, slot->buf_idx), len);  // NB: one copy per frame
        s.len = static_cast<uint16_t>(len);
        s.origLen = slot->len;
        s.flags = 0;
        s.tsNs = tsNs;
        if (++i == sh.geo.numSlots) i = 0;
      });
    }
    return session_.takeReceived(ring, count, [&](netmap::netmap_slot* slot) {
      ShadowSlot& s = sh.slots[i];
      s.bufIdx = slot->buf_idx;  // the filter sees the kernel's buffer itself
      s.len = slot->len < sh.geo.bufSize ? slot->len : static_cast<uint16_t>(sh.geo.bufSize);
      s.origLen = slot->len;
      s.flags = 0;
      s.tsNs = tsNs;
      if (++i == sh.geo.numSlots) i = 0;
    });
  }

  void rxrelease(uint32_t ring, uint32_t first, uint32_t count) noexcept override {
    if (!session_.mapped()) {
      // NB: one compare per slot: a buffer an output took by swap (transmitSwap) is replaced
      // by the one it gave back, so the kernel slot gets that one (NS_BUF_CHANGED).
      const RingShadow& sh = shadow(ring);
      uint32_t i = first;
      for (uint32_t k = 0; k < count; k++) {
        session_.swapBack(ring, k, sh.slots[i].bufIdx);
        if (++i == sh.geo.numSlots) i = 0;
      }
    }
    session_.release(ring, count);
  }

  uint32_t toHost(uint32_t ring, const TxPacket* pkts, uint32_t count) noexcept override {
    const RingGeometry& geo = shadow(ring).geo;
    const uint8_t* buffers = memory()->base() + geo.buffersOfs;
    uint32_t cursor = session_.releaseStart(ring);
    uint32_t marked = 0;
    for (uint32_t i = 0; i < count; i++) {
      const uint32_t bufIdx = static_cast<uint32_t>((pkts[i].data - buffers) / geo.bufSize);
      if (session_.markForward(ring, bufIdx, &cursor)) marked++;
    }
    return marked;
  }

  uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept override { return session_.transmit(pkts, count); }

  /** Buffers move by index between two netmap ports of one allocator (same nr_mem_id, as
   * netmap's global allocator gives two interfaces): the tutorial's bridge/nic2nic. Not a
   * monitor (its frames are nmwasm's copies) and not extmem ports (one allocator each). */
  bool canSwapWith(const Port& from) const override {
    const auto* in = dynamic_cast<const NetmapPort*>(&from);
    return in != nullptr && canTransmit() && !session_.mapped() && !in->session_.mapped() && session_.reply().nr_mem_id != 0 &&
           session_.reply().nr_mem_id == in->session_.reply().nr_mem_id && !extmem_ && !in->extmem_;
  }

  uint32_t transmitSwap(const SwapPacket* pkts, uint32_t count, uint32_t* swapped) noexcept override {
    const uint32_t sent = session_.transmitSwap(pkts, count);
    *swapped = sent;
    return sent;
  }

  bool passesToHost() const override { return spec_.rx && session_.forwards(); }

 private:
  netmap::RegisterPlan plan() const {
    netmap::RegisterPlan p{};
    p.name = spec_.nrName.c_str();
    p.mode = spec_.nrMode;
    p.ringid = static_cast<uint16_t>(spec_.nrRingid);
    // An input port binds its RX rings, an output port its TX rings.
    p.flags = spec_.nrFlags | (spec_.rx && !spec_.tx ? netmap::NR_RX_RINGS_ONLY : 0) | (spec_.tx && !spec_.rx ? netmap::NR_TX_RINGS_ONLY : 0);
    p.mem_id = static_cast<uint16_t>(spec_.nrMemId);
    p.tx_slots = spec_.txSlots;
    p.rx_slots = spec_.rxSlots;
    p.tx_rings = static_cast<uint16_t>(spec_.txRings);
    p.rx_rings = static_cast<uint16_t>(spec_.rxRings);
    p.host_tx_rings = static_cast<uint16_t>(spec_.hostTxRings);
    p.host_rx_rings = static_cast<uint16_t>(spec_.hostRxRings);
    return p;
  }

  void open(const PortOptions& opts) {
    session_.openDevice("/dev/netmap");
    netmap::PortCounts c = session_.portInfo(spec_.nrName.c_str());
    if (spec_.txSlots) c.txSlots = spec_.txSlots;
    if (spec_.rxSlots) c.rxSlots = spec_.rxSlots;
    if (spec_.txRings) c.txRings = spec_.txRings;
    if (spec_.rxRings) c.rxRings = spec_.rxRings;
    if (spec_.hostTxRings) c.hostTxRings = spec_.hostTxRings;
    if (spec_.hostRxRings) c.hostRxRings = spec_.hostRxRings;
    const netmap::RegisterPlan p = plan();
    if (netmap::NetmapSession::isMonitor(p)) return openMonitor(opts, p, c);
    const uint32_t rings = netmap::NetmapSession::boundRings(p, c, true);
    const netmap::nmreq_pools_info pools = netmap::extmemPools(c, opts.bufSize, 0);
    const uint64_t total = netmap::packetMemoryBytes(rings, opts.numSlots, pools);
    if (total > kWindowBytes) {
      throw NativeError("E2BIG", name(), "", 0,
                        "netmap needs " + std::to_string(total >> 20) + " MiB of packet memory (" + std::to_string(c.rxRings + c.hostRxRings) + " RX and " +
                            std::to_string(c.txRings + c.hostTxRings) + " TX rings of " + std::to_string(c.rxSlots) + "/" + std::to_string(c.txSlots) +
                            " slots), more than the 63 MiB packet window: ask for fewer slots or rings with @conf:rings=N,slots=N (a NIC: ethtool -L/-G), or bind one ring (" +
                            spec_.nrName + "-0)");
    }
    setupRings(rings, opts.numSlots, opts.bufSize, (pools.nr_memsize + opts.bufSize - 1) / opts.bufSize);
    const uint64_t extOfs = rings ? shadow(0).geo.buffersOfs : 0;
    session_.registerPort(p, memory()->base() + extOfs, pools);
    extmem_ = true;
    if (session_.rxRings() != rings) throw NativeError("EPROTO", name(), "ioctl", 0, "netmap bound " + std::to_string(session_.rxRings()) + " RX rings, expected " + std::to_string(rings) + ": report it with the port name");
    for (uint32_t r = 0; r < rings; r++) {
      RingGeometry& geo = shadow(r).geo;
      netmap::netmap_ring* k = session_.rxRing(r);
      geo.buffersOfs = static_cast<uint64_t>(reinterpret_cast<uint8_t*>(k) + k->buf_ofs - memory()->base());
      geo.bufSize = k->nr_buf_size;
      guestRing(geo)->buf_ofs = static_cast<int64_t>(geo.buffersOfs - geo.ringOfs);
      guestRing(geo)->nr_buf_size = geo.bufSize;
    }
  }

  /** A monitor of the port `c` describes: netmap gives it max(RX, TX) RX rings of the
   * monitored port and one TX ring (netmap_get_monitor_na); its own buffers in the window. */
  void openMonitor(const PortOptions& opts, const netmap::RegisterPlan& p, netmap::PortCounts c) {
    if (c.txRings > c.rxRings) c.rxRings = c.txRings;
    c.txRings = 1;
    const uint32_t rings = netmap::NetmapSession::boundRings(p, c, true);
    setupRings(rings, opts.numSlots, opts.bufSize);
    session_.registerMapped(p);
    if (session_.rxRings() != rings) throw NativeError("EPROTO", name(), "ioctl", 0, "netmap bound " + std::to_string(session_.rxRings()) + " monitor RX rings, expected " + std::to_string(rings) + ": report it with the port name");
  }

  [[noreturn]] void fail(const netmap::NetmapFailure& e) {
    std::string advice = "check the port with pkt-gen -i " + spec_.nrName;
    if (e.syscall == "open" && e.err == ENOENT) advice = "the netmap kernel module is not loaded: load it (modprobe netmap) or use xdp:" + spec_.nrName;
    else if (e.err == EPERM || e.err == EACCES) advice = "netmap needs root (or read/write access to /dev/netmap)";
    else if (e.err == ENXIO || e.err == ENODEV) advice = "netmap has no port named " + spec_.nrName + " (is its driver netmap-enabled? list with ip link)";
    else if (e.err == EINVAL && netmap::NetmapSession::isMonitor(plan())) advice = "netmap monitors only a port that another process holds in netmap mode: start that process first (for example pkt-gen -i " + spec_.nrName + " -f rx)";
    else if (e.err == EOPNOTSUPP || e.err == EINVAL) advice = "this netmap may lack extmem support (build netmap with extmem) or refuse the ring selection";
    if (e.syscall.empty()) throw NativeError("EINVAL", name(), "", e.err, std::string(e.what()) + "; " + advice);
    throwSyscallError(name(), e.syscall.c_str(), e.err, e.what(), advice);
  }

  NetmapPortSpec spec_;
  bool extmem_ = false;  // registered with the extmem option: an allocator of its own, never shared
  netmap::NetmapSession session_;  // NB: declared last among owners: closes before the Port base frees the memory
};

}  // namespace

bool netmapPresent() {
  struct stat st;
  return ::stat("/dev/netmap", &st) == 0;
}

std::shared_ptr<Port> openNetmapPort(const NetmapPortSpec& spec, const PortOptions& opts) {
  return std::make_shared<NetmapPort>(spec, opts, netmap::realNetmapSys());
}

}  // namespace nmwasm
