// netmap backend (netmap:IF..., VALE ports, pipes; docs/PORTS.md "netmap backend").
//
// Open stages, each undone on failure (the NetmapSession member closes the fd, the Port
// base frees the packet memory; the member goes first, so netmap lets go of the memory
// before it is unmapped):
//   1. open /dev/netmap (absent: one line naming the module and suggesting xdp:IF);
//   2. NETMAP_REQ_PORT_INFO_GET: ring and slot counts (@conf counts override them); a
//      -N / ^N ring is range-checked against them here, before any register;
//   3. NETMAP_REQ_REGISTER without options (netmap's own memory model, what a default
//      netmap build offers); the reply names the region (nr_memsize, nr_mem_id): a VALE
//      port's or a pipe's private allocator, the peer's for a pipe whose peer is open, the
//      global allocator for a NIC;
//   4. the region fits the 63 MiB packet window behind the guest rings: the port's
//      PacketMemory is the guest rings (memfd) then the region mmapped from /dev/netmap, so
//      the filter's packet window shows the kernel's own buffers (no copy on receive);
//   4'. it does not (a NIC on the global allocator: hundreds of MiB by default): unregister,
//      have netmap make a private allocator of the right size for a VALE port of ours (the
//      donor) and register the NIC with its nr_mem_id (registerOnDonor, on every build);
//      failing that, the extmem option inside the port's PacketMemory where netmap has it;
//      else exit 2 naming the pool and the module parameter that shrinks it;
//   5. per ring: the shadow's buffersOfs = the kernel buffer pool (ring + buf_ofs).
// A monitor (/r /t /z) is the exception: netmap keeps it in memory of its own whatever
// the request says (netmap_monitor.c: a private allocator for a copy monitor, the
// monitored port's for /z), so it registers plainly, the session mmaps that region
// natively (outside the window) and rxsync copies each frame into the port's own buffers
// (setupRings' layout, a memfd like any port's).
// rxsync takes kernel slots [cur, tail) into the shadow with buf_idx = the kernel's;
// rxrelease gives them back (head = cur); toHost (HOST, and PASS without an output) marks
// NS_FORWARD on an interface's hardware RX rings, which carry NR_FORWARD, so netmap hands
// the packet to the host stack at the next rxsync; transmit copies into TX ring 0.
#include "netmap/port_netmap.h"

#include <sys/stat.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

#include "core/errors.h"
#include "netmap/netmap_session.h"

namespace nmwasm {

namespace {

constexpr uint64_t kWindowBytes = 63ull << 20;  // NMWASM_DATA_BASE - NMWASM_WINDOW_BASE (host/module/module.ts)

/** The allocator donors this process holds (registerOnDonor). An interface that needs one
 * first joins one already made, if its pools have room: then two interfaces of one run share
 * an allocator and forward by buffer swap (canSwapWith), the tutorial's nic2nic. */
struct DonorRecord {
  uint16_t memId;
  uint64_t bytes;
  std::string vale;
  std::weak_ptr<netmap::NetmapSession> session;
};
std::mutex donorsMu;
std::vector<DonorRecord> liveDonors;  // NB: guarded by donorsMu; ports open on the main thread

class NetmapPort : public Port {
 public:
  NetmapPort(const NetmapPortSpec& spec, const PortOptions& opts, const netmap::NetmapSys& sys)
      : Port(spec.name, "netmap"), spec_(spec), sys_(sys), session_(sys) {
    try {
      open(opts);
    } catch (const netmap::NetmapFailure& e) {
      fail(e);
    }
  }

  int pollFd(uint32_t) const override { return session_.fd(); }
  std::vector<std::string> notices() const override { return notices_; }
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
    netmap::NetmapSession::checkRing(p, c);  // -N / ^N out of range: before the kernel
    if (netmap::NetmapSession::isMonitor(p)) return openMonitor(opts, p, c);
    const uint32_t rings = netmap::NetmapSession::boundRings(p, c, true);
    // netmap's own memory model first (a default build has no extmem): register, then map
    // the region the reply names behind the guest rings. A region too big for the window
    // (a NIC on netmap's global allocator) moves to an allocator donor, else tries extmem.
    const std::vector<RingGeometry> geos = frontLayout(rings, opts.numSlots, opts.bufSize);
    const uint64_t front = frontBytes(geos);
    // An output interface joins this run's donor if there is one (buffer swap with its inputs).
    if (rings == 0 && netmap::NetmapSession::hasHostStack(p.name) && joinDonor(p, front)) {
      mapRegion(p, front, geos);
      return finishOpen(p, rings);
    }
    session_.registerPlain(p);
    const uint64_t region = session_.regionBytes();
    // NB: an output-only port (no input ring) is never mapped into a wasm window: any size fits.
    if (rings == 0 || front + region <= kWindowBytes) {
      mapRegion(p, front, geos);
    } else {
      netmap::nmreq_pools_info info{};
      const bool haveInfo = session_.poolsInfo(p.name, &info);
      const uint16_t memId = session_.reply().nr_mem_id;
      session_.reset();  // unregisters: netmap may place the port in another allocator
      session_.openDevice("/dev/netmap");
      if (joinDonor(p, front) || registerOnDonor(p, c, front, region, memId)) {
        mapRegion(p, front, geos);
      } else {
        const netmap::nmreq_pools_info pools = netmap::extmemPools(c, opts.bufSize, 0);
        const uint64_t total = netmap::packetMemoryBytes(rings, opts.numSlots, pools);
        if (total > kWindowBytes) regionTooBig(region, memId, front, haveInfo ? &info : nullptr, donorWhy_ + "; even netmap's extmem layout would need " + std::to_string(total >> 20) + " MiB");
        setupRings(rings, opts.numSlots, opts.bufSize, (pools.nr_memsize + opts.bufSize - 1) / opts.bufSize);
        const uint64_t extOfs = rings ? shadow(0).geo.buffersOfs : 0;
        try {
          session_.registerExtmem(p, memory()->base() + extOfs, pools);
        } catch (const netmap::NetmapFailure& e) {
          if (e.err == EOPNOTSUPP) regionTooBig(region, memId, front, haveInfo ? &info : nullptr, donorWhy_ + "; this netmap lacks extmem (built without --enable-extmem)", true);
          if (e.err == ENOMEM)
            regionTooBig(region, memId, front, haveInfo ? &info : nullptr,
                         donorWhy_ + "; extmem failed too (netmap needs each ring object physically contiguous: dmesg 'no objects available')");
          throw;
        }
        extmem_ = true;  // an allocator of its own: never swaps buffers with another port
      }
    }
    finishOpen(p, rings);
  }

  /** The registered region (regionBytes of the fd) behind the guest rings `geos` of `front`
   * bytes: the port's PacketMemory; then netmap_if and the rings are found there. */
  void mapRegion(const netmap::RegisterPlan& p, uint64_t front, const std::vector<RingGeometry>& geos) {
    adoptRings(std::make_shared<PacketMemory>(name(), front, session_.fd(), session_.regionBytes()), geos);
    session_.attach(p, memory()->base() + memory()->regionOfs());
  }

  /** Last open stage: the bound rings match the plan; each shadow points at the kernel's buffers. */
  void finishOpen(const netmap::RegisterPlan& p, uint32_t rings) {
    if (session_.rxRings() != rings) throw NativeError("EPROTO", name(), "ioctl", 0, "netmap bound " + std::to_string(session_.rxRings()) + " RX rings, expected " + std::to_string(rings) + ": report it with the port name");
    if (spec_.tx && session_.txRings() == 0) throw NativeError("EPROTO", name(), "ioctl", 0, "netmap bound no TX ring for this output: report it with the port name");
    if (spec_.rx && (p.mode == netmap::NR_REG_SW || p.mode == netmap::NR_REG_ONE_SW))
      notices_.push_back(name() + ": netmap puts what the stack sends into the host RX ring only while a hardware TX ring of " + spec_.nrName +
                         " is in netmap mode (netmap.h, host rings): alone, this port sees nothing; open netmap:" + spec_.nrName + "* or keep another netmap reader on " +
                         spec_.nrName);
    for (uint32_t r = 0; r < rings; r++) {
      RingGeometry& geo = shadow(r).geo;
      netmap::netmap_ring* k = session_.rxRing(r);
      geo.buffersOfs = static_cast<uint64_t>(reinterpret_cast<uint8_t*>(k) + k->buf_ofs - memory()->base());
      geo.bufSize = k->nr_buf_size;
      guestRing(geo)->buf_ofs = static_cast<int64_t>(geo.buffersOfs - geo.ringOfs);
      guestRing(geo)->nr_buf_size = geo.bufSize;
    }
  }

  /** A NIC whose allocator does not fit the window (netmap's global one, hundreds of MiB by
   * default) moves to a private allocator of the right size: netmap makes one for a VALE
   * port (donor_, registered on one 64-slot RX ring and never used), and registering the NIC
   * with its nr_mem_id moves the NIC there while no other process holds it in netmap mode
   * (netmap_get_hw_na; netmap returns to the global allocator when the last user closes).
   * Returns false, with donorWhy_ set and nothing left open, when that cannot be done. */
  bool registerOnDonor(const netmap::RegisterPlan& p, const netmap::PortCounts& c, uint64_t front, uint64_t region, uint16_t memId) {
    netmap::DonorRequest d{};
    // Room for a second interface like this one where the window allows (it joins: joinDonor).
    const bool roomForTwo = netmap::donorRequest(c, 2, &d) && front + d.bytes <= kWindowBytes;
    if (!netmap::NetmapSession::hasHostStack(p.name) || (!roomForTwo && !netmap::donorRequest(c, 1, &d))) {
      donorWhy_ = "no private allocator of netmap fits this port's rings and slots";
      return false;
    }
    if (front + d.bytes > kWindowBytes) {
      donorWhy_ = "a private allocator for its " + std::to_string(c.txRings) + "+" + std::to_string(c.rxRings) + " rings of " + std::to_string(c.rxSlots) +
                  " slots would need " + std::to_string(d.bytes >> 20) + " MiB";
      return false;
    }
    static std::atomic<uint32_t> donorCount{0};
    donorName_ = "valenmwasm:m" + std::to_string(::getpid()) + "_" + std::to_string(donorCount.fetch_add(1));
    netmap::RegisterPlan dp{};
    dp.name = donorName_.c_str();
    dp.mode = netmap::NR_REG_ONE_NIC;
    dp.flags = netmap::NR_RX_RINGS_ONLY;
    dp.tx_rings = dp.rx_rings = d.rings;
    dp.tx_slots = d.txSlots;
    dp.rx_slots = d.rxSlots;
    dp.extra_bufs = d.extraBufs;
    auto donor = std::make_shared<netmap::NetmapSession>(sys_);
    try {
      donor->openDevice("/dev/netmap");
      donor->registerPlain(dp);
    } catch (const netmap::NetmapFailure& e) {
      donorWhy_ = std::string("netmap refused a private allocator (VALE port ") + donorName_ + ": " + std::strerror(e.err) + ")";
      return false;
    }
    const uint16_t donorId = donor->reply().nr_mem_id;
    const uint64_t donorBytes = donor->regionBytes();
    if (front + donorBytes > kWindowBytes) {
      donorWhy_ = "netmap's private allocator for it came out at " + std::to_string(donorBytes >> 20) + " MiB";
      return false;
    }
    if (!registerOn(p, donorId)) {
      // The donor's pools came out short of what this driver allocates: the fallbacks.
      donorWhy_ = "its rings did not fit a private allocator of " + std::to_string(donorBytes >> 20) + " MiB (ENOMEM)";
      return false;
    }
    if (session_.reply().nr_mem_id != donorId) {
      const uint16_t held = session_.reply().nr_mem_id;
      const uint64_t heldBytes = session_.regionBytes();
      session_.reset();
      throw NativeError("ENETMAP_MEM", name(), "ioctl", 0,
                        spec_.nrName + " is already in netmap mode in another process, on netmap allocator " + std::to_string(held) + " (" + std::to_string(heldBytes >> 20) +
                            " MiB, more than the 63 MiB packet window holds): netmap moves an interface to a smaller allocator only while nobody holds it; start nmwasm on " +
                            spec_.nrName + " first, or lower netmap's buf_num with no netmap port open");
    }
    donor_ = donor;
    {
      std::lock_guard<std::mutex> lock(donorsMu);
      liveDonors.push_back(DonorRecord{donorId, donorBytes, donorName_, donor});
    }
    notices_.push_back(name() + ": netmap's allocator " + std::to_string(memId) + " for " + spec_.nrName + " is " + std::to_string(region >> 20) +
                       " MiB, more than the 63 MiB packet window: the interface runs on a private allocator of " + std::to_string(donorBytes >> 20) + " MiB (allocator " +
                       std::to_string(donorId) + ", held by VALE port " + donorName_ + ") while nmwasm holds it");
    return true;
  }

  /** Registers `p` asking for allocator `memId`. False on ENOMEM (its pools have no room),
   * session_ then open and unregistered; any other failure is the port's own (thrown: EBUSY,
   * EINVAL, ... which fail() explains). */
  bool registerOn(const netmap::RegisterPlan& p, uint16_t memId) {
    netmap::RegisterPlan onAllocator = p;
    onAllocator.mem_id = memId;
    try {
      session_.registerPlain(onAllocator);
      return true;
    } catch (const netmap::NetmapFailure& e) {
      if (e.err != ENOMEM) throw;
      session_.reset();
      session_.openDevice("/dev/netmap");
      return false;
    }
  }

  /** Registers the interface on a donor this process already holds (registerOnDonor), if
   * one fits the window behind `front` and has room in its pools: netmap moves an interface
   * nobody holds there. On ENOMEM (no room) the next; false, session_ open and unregistered,
   * when none takes it (or the interface stays where another holder put it). */
  bool joinDonor(const netmap::RegisterPlan& p, uint64_t front) {
    std::vector<std::pair<DonorRecord, std::shared_ptr<netmap::NetmapSession>>> candidates;
    {
      std::lock_guard<std::mutex> lock(donorsMu);
      for (auto it = liveDonors.begin(); it != liveDonors.end();) {
        std::shared_ptr<netmap::NetmapSession> live = it->session.lock();
        if (!live) {
          it = liveDonors.erase(it);
          continue;
        }
        if (front + it->bytes <= kWindowBytes) candidates.emplace_back(*it, live);
        ++it;
      }
    }
    for (auto& [rec, live] : candidates) {
      if (!registerOn(p, rec.memId)) continue;  // its pools are full: the next, or a donor of its own
      if (session_.reply().nr_mem_id != rec.memId) {
        session_.reset();
        session_.openDevice("/dev/netmap");
        return false;
      }
      donor_ = live;
      notices_.push_back(name() + ": " + spec_.nrName + " runs on the private allocator " + std::to_string(rec.memId) + " (" + std::to_string(rec.bytes >> 20) +
                         " MiB, VALE port " + rec.vale + ") that another interface of this run is on: buffers move between them by swap");
      return true;
    }
    return false;
  }

  /** The guest rings (Port::setupRings' layout) in front of netmap's region; buffers are set after attach. */
  static std::vector<RingGeometry> frontLayout(uint32_t rings, uint32_t numSlots, uint32_t bufSize) {
    std::vector<RingGeometry> geos(rings);
    uint64_t ofs = 0;
    for (RingGeometry& g : geos) {
      g.ringOfs = ofs;
      g.verdictOfs = ofs + kRingHeaderSize + uint64_t{numSlots} * sizeof(NetmapSlot);
      g.numSlots = numSlots;
      g.bufSize = bufSize;
      ofs = (g.verdictOfs + numSlots + 127) / 128 * 128;
    }
    return geos;
  }
  /** Page-rounded bytes of the front (at least one page: an output-only port has no guest ring). */
  static uint64_t frontBytes(const std::vector<RingGeometry>& geos) {
    const uint64_t page = PacketMemory::pageSize();
    const uint64_t end = geos.empty() ? 0 : (geos.back().verdictOfs + geos.back().numSlots);
    return end == 0 ? page : (end + page - 1) / page * page;
  }

  /** netmap's region for the port does not fit the packet window (exit 2): which pool, and the
   * module parameter that shrinks it (the global allocator, id 1), or fewer rings/slots. */
  [[noreturn]] void regionTooBig(uint64_t region, uint16_t memId, uint64_t front, const netmap::nmreq_pools_info* info, const std::string& also,
                                 bool lacksExtmem = false) {
    std::string msg = "netmap's memory region for " + spec_.nrName + " (allocator " + std::to_string(memId) + ") is " + std::to_string(region >> 20) +
                      " MiB, more than the 63 MiB packet window holds";
    if (info && info->nr_buf_pool_objsize > 0) {
      const uint64_t other = uint64_t{info->nr_if_pool_objtotal} * info->nr_if_pool_objsize + uint64_t{info->nr_ring_pool_objtotal} * info->nr_ring_pool_objsize;
      const uint64_t room = kWindowBytes > front + other + (1u << 20) ? kWindowBytes - front - other - (1u << 20) : 0;
      const uint64_t fit = room / info->nr_buf_pool_objsize / 1024 * 1024;
      msg += " (its buffer pool: " + std::to_string(info->nr_buf_pool_objtotal) + " buffers of " + std::to_string(info->nr_buf_pool_objsize) + " bytes)";
      if (memId == 1 && fit > 0)
        msg += "; " + also + ": lower netmap's global buffer pool with no netmap port open (echo " + std::to_string(fit) +
               " > /sys/module/netmap/parameters/buf_num)" + (lacksExtmem ? ", or build netmap with --enable-extmem" : "");
      else
        msg += "; " + also + ": ask for fewer rings or slots with @conf:rings=N,slots=N";
    } else {
      msg += "; " + also + ": lower netmap's buf_num (/sys/module/netmap/parameters/buf_num, with no netmap port open) or ask for fewer rings or slots with @conf:rings=N,slots=N";
    }
    throw NativeError("ENETMAP_MEM", name(), "ioctl", 0, msg);
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
    if (e.syscall.empty() && e.err == ERANGE) throw NativeError("ERANGE", name(), "", 0, e.what());
    if (e.syscall == "open" && e.err == ENOENT) advice = "the netmap kernel module is not loaded: load it (modprobe netmap) or use xdp:" + spec_.nrName;
    else if (e.err == EPERM || e.err == EACCES) advice = "netmap needs root (or read/write access to /dev/netmap)";
    else if (e.err == ENXIO || e.err == ENODEV) advice = "netmap has no port named " + spec_.nrName + " (is its driver netmap-enabled? list with ip link)";
    else if (e.err == EBUSY) advice = "another process holds the port exclusively (/x) or a kernel user (a VALE switch) owns it";
    else if (e.err == EINVAL && netmap::NetmapSession::isMonitor(plan())) advice = "netmap monitors only a port that another process holds in netmap mode: start that process first (for example pkt-gen -i " + spec_.nrName + " -f rx)";
    else if (e.err == EINVAL) advice = "netmap refused the ring selection or the flags (dmesg says why; try pkt-gen -i " + spec_.nrName + ")";
    else if (e.err == ENOMEM) {
      throw NativeError("ENETMAP_MEM", name(), e.syscall, e.err,
                        std::string(e.what()) + " failed: netmap ran out of memory objects (dmesg names the pool: 'NAME: no objects available'): close other netmap ports, "
                        "or raise the pool's module parameter with no netmap port open (/sys/module/netmap/parameters/: buf_num, ring_num, if_num for NICs; priv_buf_num, priv_ring_num, priv_if_num for VALE ports and pipes)");
    }
    if (e.syscall.empty()) throw NativeError("EINVAL", name(), "", e.err, std::string(e.what()) + "; " + advice);
    throwSyscallError(name(), e.syscall.c_str(), e.err, e.what(), advice);
  }

  NetmapPortSpec spec_;
  std::vector<std::string> notices_;
  std::string donorName_, donorWhy_;
  netmap::NetmapSys sys_;
  std::shared_ptr<netmap::NetmapSession> donor_;  // the allocator donor this port is on (shared); closes after session_
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
