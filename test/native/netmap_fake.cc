// A fake netmap kernel for test/native/netmap_port.test.ts: implements the NetmapSys seam
// of native/netmap/netmap_session.h (open/ioctl/close) the way netmap 89607e1 behaved in the
// netmap guest for the requests the backend makes — NIOCCTRL (PORT_INFO_GET,
// POOLS_INFO_GET, REGISTER: plain, netmap lays netmap_if, rings and buffers out in its own
// region, a memfd standing for /dev/netmap's memory that the caller mmaps from the fd at
// offset 0; with the extmem option, in the user memory — refused with EOPNOTSUPP by a
// default build; a pipe whose peer is open answers with the peer's region, extmem or not),
// NIOCRXSYNC (takes back released slots, honours NS_FORWARD, delivers queued packets),
// NIOCTXSYNC (records what was sent). Then runs one scenario given on the command line
// and prints JSON. FAKE_BUILD=default|extmem (default: default) picks the module build;
// FAKE_PEER=1: the pipe's other end is already open (its region: id 4, 42369024 bytes).
//   netmap_fake register NAME MODE RINGID FLAGS MEMID TXS RXS TXR RXR HTXR HRXR
//   netmap_fake register-extmem NAME ...   (the same, asking for extmem)
//   netmap_fake rx COUNT        netmap_fake host        netmap_fake tx        netmap_fake absent
//   netmap_fake release         netmap_fake monitor FLAGS [noparent]         netmap_fake swap
//   netmap_fake donor TXR RXR HTXR HRXR TXSLOTS RXSLOTS [NICS]   (the allocator donor's sizing, no I/O)
// A monitor register (NR_MONITOR_RX/TX, NR_ZCOPY_MON) behaves as netmap_monitor.c does: the
// monitored port must be in netmap mode (else EINVAL), the monitor gets max(RX, TX) RX rings
// and one TX ring in a private region of its own (no extmem, whatever the request says),
// which the session maps through NetmapSys::mmap; rxsync copies the monitored port's frames into it.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "netmap/netmap_session.h"

using namespace nmwasm::netmap;

namespace {

struct Fake {
  // The port every name resolves to.
  uint16_t txRings = 4, rxRings = 4, hostTx = 1, hostRx = 1;
  uint32_t slots = 64;
  int fd = -1;
  bool opened = false, devicePresent = true;
  bool extmemBuild = false;  // netmap configured with --enable-extmem
  bool peerOpen = false;     // a pipe's other end is already registered (its region)
  // The region of a plain register (netmap's own memory): a memfd standing for /dev/netmap's.
  uint8_t* kmem = nullptr;
  uint64_t kmemSize = 0;
  nmreq_pools_info kpools{};
  // What the register request carried.
  nmreq_header hdr{};
  nmreq_register reg{};
  bool sawExtmem = false;
  uint64_t extmemSize = 0, extmemPtr = 0;
  std::string error;
  // Layout.
  uint8_t* base = nullptr;
  netmap_if* nif = nullptr;
  std::vector<netmap_ring*> rxBound, txBound;
  std::vector<uint32_t> kernelRx;  // per bound rx ring: first slot not yet given back
  std::vector<uint32_t> kernelTx;  // per bound tx ring: first slot not yet sent
  std::vector<std::vector<uint16_t>> pending;  // per bound rx ring: lengths still to deliver
  std::vector<uint32_t> forwarded;             // buf_idx of slots released with NS_FORWARD
  std::vector<std::string> sent;               // "len:firstbyte" of transmitted slots
  std::vector<uint32_t> txChanged, rxChanged;  // buf_idx of TX slots sent / RX slots given back with NS_BUF_CHANGED
  uint32_t syncs = 0;
  uint32_t registers = 0;  // NETMAP_REQ_REGISTER requests seen
  bool parentOpen = true;  // the monitored port is in netmap mode (another process holds it)
  bool monitor = false;
  int mmaps = 0, munmaps = 0;  // NetmapSys::mmap/munmap calls (the session mapping a monitor's region)
  // FAKE_TX=held: NIOCTXSYNC sends nothing and frees no slot (a pipe whose reader is behind);
  // a poll(POLLOUT) lets the reader drain the ring. FAKE_TX=stuck: the reader never drains.
  std::string txMode;
  int polls = 0;
};

netmap_slot* slotOf(netmap_ring* r, uint32_t i) { return reinterpret_cast<netmap_slot*>(reinterpret_cast<uint8_t*>(r) + sizeof(netmap_ring)) + i; }
uint8_t* bufOf(netmap_ring* r, uint32_t idx) { return reinterpret_cast<uint8_t*>(r) + r->buf_ofs + uint64_t{idx} * r->nr_buf_size; }
uint64_t pageUp(uint64_t v) { return (v + 4095) / 4096 * 4096; }

int fakeOpen(void* ctx, const char* path, int) {
  Fake& f = *static_cast<Fake*>(ctx);
  if (!f.devicePresent || std::string(path) != "/dev/netmap") {
    errno = ENOENT;
    return -1;
  }
  f.opened = true;
  return f.fd = memfd_create("fake-netmap", MFD_CLOEXEC);  // mmap of the fd shows the region
}

int fakeClose(void* ctx, int fd) {
  Fake& f = *static_cast<Fake*>(ctx);
  if (f.kmem) munmap(f.kmem, f.kmemSize);
  f.kmem = nullptr;
  f.fd = fd == f.fd ? -1 : -2;
  return close(fd);
}

void* fakeMmap(void* ctx, int fd, size_t len) {
  Fake& f = *static_cast<Fake*>(ctx);
  // The session maps a region itself only for a monitor (other ports: the caller's
  // PacketMemory maps the fd, or extmem lives in the caller's memory already). The fake's
  // own view of the region stands for the mapping, so buffer addresses compare.
  if (fd != f.fd || !f.monitor || !f.kmem || len != f.kmemSize) {
    errno = EINVAL;
    return nullptr;
  }
  f.mmaps++;
  return f.kmem;
}

int fakeMunmap(void* ctx, void*, size_t) {
  static_cast<Fake*>(ctx)->munmaps++;
  return 0;
}

int refuse(Fake& f, int err, const char* why) {
  f.error = why;
  errno = err;
  return -1;
}

/** Pools of a private allocator for the port, as netmap_mem_private_new sizes them. */
nmreq_pools_info privatePools(const Fake& f) {
  nmreq_pools_info p{};
  const uint32_t rings = f.txRings + f.rxRings + f.hostTx + f.hostRx;
  p.nr_if_pool_objtotal = 2;
  p.nr_if_pool_objsize = 1024;
  p.nr_ring_pool_objtotal = rings;
  p.nr_ring_pool_objsize = static_cast<uint32_t>(pageUp(sizeof(netmap_ring) + f.slots * sizeof(netmap_slot)));
  p.nr_buf_pool_objtotal = f.slots * rings + 2;
  p.nr_buf_pool_objsize = 2048;
  p.nr_memsize = pageUp(2 * 1024) + pageUp(uint64_t{rings} * p.nr_ring_pool_objsize) + pageUp(uint64_t{p.nr_buf_pool_objtotal} * 2048);
  return p;
}

/** NETMAP_REQ_REGISTER: lay the port out like netmap does (if pool, ring pool, buffer pool;
 * buffers 0 and 1 reserved) in its own region (plain; a pipe whose peer is open: the peer's
 * region) or in the extmem region (an extmem build), bind the rings the mode selects. */
int doRegister(Fake& f, nmreq_header* h) {
  f.registers++;
  f.hdr = *h;
  f.reg = *reinterpret_cast<nmreq_register*>(h->nr_body);
  nmreq_opt_extmem* ext = nullptr;
  for (uint64_t o = h->nr_options; o != 0; o = reinterpret_cast<nmreq_option*>(o)->nro_next)
    if (reinterpret_cast<nmreq_option*>(o)->nro_reqtype == NETMAP_REQ_OPT_EXTMEM) ext = reinterpret_cast<nmreq_opt_extmem*>(o);
  if (ext && !f.extmemBuild) {
    ext->nro_opt.nro_status = EOPNOTSUPP;
    return refuse(f, EOPNOTSUPP, "no extmem in this build");
  }  // netmap.c without WITH_EXTMEM: unknown option
  f.monitor = (f.reg.nr_flags & (NR_MONITOR_RX | NR_MONITOR_TX | NR_ZCOPY_MON)) != 0;
  const bool pipe = std::string(h->nr_name).find_first_of("{}") != std::string::npos;
  uint16_t memId = 3;
  nmreq_pools_info plain{};
  nmreq_pools_info* pp = &plain;
  if (f.monitor) {
    // netmap_get_monitor_na: the parent must be in netmap mode; the monitor has max(rx, tx)
    // RX rings and one TX ring, in a private allocator (an extmem option is not used for it).
    if (!f.parentOpen) return refuse(f, EINVAL, "not in netmap mode");
    if (f.txRings > f.rxRings) f.rxRings = f.txRings;
    f.txRings = 1;
    if (ext) ext->nro_opt.nro_status = 0;
    ext = nullptr;
    plain = privatePools(f);
    memId = 5;
  } else if (pipe && f.peerOpen) {
    // The peer's allocator (a private one sized for the parent's pipes): the extmem option is ignored.
    plain = privatePools(f);
    plain.nr_buf_pool_objtotal = static_cast<uint32_t>((42369024 - pageUp(2 * 1024) - pageUp(uint64_t{plain.nr_ring_pool_objtotal} * plain.nr_ring_pool_objsize)) / 2048);
    plain.nr_memsize = 42369024;
    memId = 4;
    ext = nullptr;
  } else if (ext) {
    f.sawExtmem = true;
    f.extmemPtr = ext->nro_usrptr;
    f.extmemSize = ext->nro_info.nr_memsize;
    pp = &ext->nro_info;
  } else {
    plain = privatePools(f);
    memId = 2;
  }
  nmreq_pools_info& p = *pp;
  const uint32_t rings = f.txRings + f.rxRings + f.hostTx + f.hostRx;
  const uint64_t needSlots = uint64_t{f.slots} * rings + 2;
  if (p.nr_ring_pool_objtotal < rings || p.nr_ring_pool_objsize < sizeof(netmap_ring) + f.slots * sizeof(netmap_slot) ||
      p.nr_buf_pool_objtotal < needSlots || p.nr_if_pool_objsize < sizeof(netmap_if) + 8 * rings)
    return refuse(f, ENOMEM, "extmem pools too small");
  p.nr_if_pool_offset = 0;
  p.nr_ring_pool_offset = pageUp(uint64_t{p.nr_if_pool_objtotal} * p.nr_if_pool_objsize);
  p.nr_buf_pool_offset = p.nr_ring_pool_offset + pageUp(uint64_t{p.nr_ring_pool_objtotal} * p.nr_ring_pool_objsize);
  if (p.nr_buf_pool_offset + uint64_t{p.nr_buf_pool_objtotal} * p.nr_buf_pool_objsize > p.nr_memsize) return refuse(f, EINVAL, "nr_memsize too small");
  if (!ext) {
    if (ftruncate(f.fd, static_cast<off_t>(p.nr_memsize)) != 0) return refuse(f, errno, "ftruncate");
    void* k = mmap(nullptr, p.nr_memsize, PROT_READ | PROT_WRITE, MAP_SHARED, f.fd, 0);
    if (k == MAP_FAILED) return refuse(f, errno, "mmap");
    f.kmem = static_cast<uint8_t*>(k);
    f.kmemSize = p.nr_memsize;
    f.kpools = p;
  }
  f.base = ext ? reinterpret_cast<uint8_t*>(ext->nro_usrptr) : f.kmem;
  f.nif = reinterpret_cast<netmap_if*>(f.base + p.nr_if_pool_offset);
  netmap_if& nif = *f.nif;
  std::memcpy(nif.ni_name, h->nr_name, sizeof nif.ni_name - 1);  // netmap keeps the first 15 characters
  nif.ni_version = NETMAP_API;
  nif.ni_tx_rings = f.txRings;
  nif.ni_rx_rings = f.rxRings;
  nif.ni_host_tx_rings = f.hostTx;
  nif.ni_host_rx_rings = f.hostRx;
  auto* ringOfs = reinterpret_cast<int64_t*>(f.base + p.nr_if_pool_offset + sizeof(netmap_if));
  uint32_t nextBuf = 2;
  // ring_ofs order: tx hw, tx host, rx hw, rx host.
  for (uint32_t k = 0; k < rings; k++) {
    auto* r = reinterpret_cast<netmap_ring*>(f.base + p.nr_ring_pool_offset + uint64_t{k} * p.nr_ring_pool_objsize);
    ringOfs[k] = reinterpret_cast<uint8_t*>(r) - reinterpret_cast<uint8_t*>(f.nif);
    const bool rx = k >= uint32_t{f.txRings} + f.hostTx;
    r->buf_ofs = static_cast<int64_t>(f.base + p.nr_buf_pool_offset - reinterpret_cast<uint8_t*>(r));
    r->num_slots = f.slots;
    r->nr_buf_size = p.nr_buf_pool_objsize;
    r->dir = rx ? 1 : 0;
    r->head = r->cur = 0;
    r->tail = rx ? 0 : f.slots - 1;
    for (uint32_t i = 0; i < f.slots; i++) slotOf(r, i)->buf_idx = nextBuf++;
  }
  auto ringAt = [&](bool rx, bool host, uint32_t i) { return reinterpret_cast<netmap_ring*>(reinterpret_cast<uint8_t*>(f.nif) + ringOfs[ring_ofs_index(nif, rx, host, i)]); };
  const nmreq_register& reg = f.reg;
  for (int side = 0; side < 2; side++) {
    const bool rx = side == 1;
    if (reg.nr_flags & (rx ? NR_TX_RINGS_ONLY : NR_RX_RINGS_ONLY)) continue;
    auto& out = rx ? f.rxBound : f.txBound;
    const uint32_t hw = rx ? f.rxRings : f.txRings, host = rx ? f.hostRx : f.hostTx;
    switch (reg.nr_mode) {
      case NR_REG_ONE_NIC: if (reg.nr_ringid >= hw) return refuse(f, EINVAL, "ringid"); out.push_back(ringAt(rx, false, reg.nr_ringid)); break;
      case NR_REG_ONE_SW: if (reg.nr_ringid >= host) return refuse(f, EINVAL, "ringid"); out.push_back(ringAt(rx, true, reg.nr_ringid)); break;
      case NR_REG_SW: for (uint32_t i = 0; i < host; i++) out.push_back(ringAt(rx, true, i)); break;
      case NR_REG_NIC_SW: for (uint32_t i = 0; i < hw; i++) out.push_back(ringAt(rx, false, i)); for (uint32_t i = 0; i < host; i++) out.push_back(ringAt(rx, true, i)); break;
      case NR_REG_ALL_NIC: case NR_REG_DEFAULT: for (uint32_t i = 0; i < hw; i++) out.push_back(ringAt(rx, false, i)); break;
      default: return refuse(f, EINVAL, "nr_mode");
    }
  }
  f.kernelRx.assign(f.rxBound.size(), 0);
  f.kernelTx.assign(f.txBound.size(), 0);
  f.pending.resize(f.rxBound.size());
  auto* out = reinterpret_cast<nmreq_register*>(h->nr_body);
  out->nr_offset = p.nr_if_pool_offset;
  out->nr_memsize = p.nr_memsize;
  out->nr_tx_rings = f.txRings;
  out->nr_rx_rings = f.rxRings;
  out->nr_host_tx_rings = f.hostTx;
  out->nr_host_rx_rings = f.hostRx;
  out->nr_tx_slots = out->nr_rx_slots = f.slots;
  out->nr_mem_id = memId;
  f.reg.nr_memsize = p.nr_memsize;
  if (ext) ext->nro_opt.nro_status = 0;
  return 0;
}

/** NIOCRXSYNC: take back [kernel, head) (NS_FORWARD ones are forwarded), then fill [tail, head-1) from pending. */
void rxsync(Fake& f) {
  for (size_t r = 0; r < f.rxBound.size(); r++) {
    netmap_ring* ring = f.rxBound[r];
    for (uint32_t& k = f.kernelRx[r]; k != ring->head; k = (k + 1) % ring->num_slots) {
      netmap_slot* s = slotOf(ring, k);
      if ((s->flags & NS_FORWARD) && (ring->flags & NR_FORWARD)) f.forwarded.push_back(s->buf_idx);
      if (s->flags & NS_BUF_CHANGED) f.rxChanged.push_back(s->buf_idx);
      s->flags = 0;
    }
    const uint32_t stop = (ring->head + ring->num_slots - 1) % ring->num_slots;
    auto& q = f.pending[r];
    size_t taken = 0;
    while (ring->tail != stop && taken < q.size()) {
      netmap_slot* s = slotOf(ring, ring->tail);
      s->len = q[taken];
      uint8_t* b = bufOf(ring, s->buf_idx);
      for (uint32_t i = 0; i < s->len; i++) b[i] = static_cast<uint8_t>(s->buf_idx + i);
      ring->tail = (ring->tail + 1) % ring->num_slots;
      taken++;
    }
    q.erase(q.begin(), q.begin() + static_cast<long>(taken));
  }
}

void txsync(Fake& f) {
  if (f.txMode == "held" || f.txMode == "stuck") return;
  for (size_t r = 0; r < f.txBound.size(); r++) {
    netmap_ring* ring = f.txBound[r];
    for (uint32_t& k = f.kernelTx[r]; k != ring->head; k = (k + 1) % ring->num_slots) {
      netmap_slot* s = slotOf(ring, k);
      f.sent.push_back(std::to_string(s->len) + ":" + std::to_string(bufOf(ring, s->buf_idx)[0]));
      if (s->flags & NS_BUF_CHANGED) f.txChanged.push_back(s->buf_idx);
      s->flags = 0;
    }
    ring->tail = (ring->head + ring->num_slots - 1) % ring->num_slots;
  }
}

/** poll(POLLOUT): in FAKE_TX=held the reader drains every TX ring (sent, all slots free);
 * in FAKE_TX=stuck it times out. */
int fakePoll(void* ctx, int fd, short events, int) {
  Fake& f = *static_cast<Fake*>(ctx);
  f.polls++;
  if (fd != f.fd || !(events & POLLOUT) || f.txMode == "stuck") return 0;
  const std::string mode = f.txMode;
  f.txMode.clear();
  txsync(f);
  f.txMode = mode;
  return 1;
}

int fakeIoctl(void* ctx, int fd, unsigned long request, void* arg) {
  Fake& f = *static_cast<Fake*>(ctx);
  if (fd != f.fd || !f.opened) return refuse(f, EBADF, "fd");
  f.syncs++;
  if (request == NIOCRXSYNC) return rxsync(f), 0;
  if (request == NIOCTXSYNC) return txsync(f), 0;
  if (request != NIOCCTRL) return refuse(f, ENOTTY, "request");
  auto* h = static_cast<nmreq_header*>(arg);
  if (h->nr_version != NETMAP_API) return refuse(f, EINVAL, "nr_version");
  if (h->nr_reserved != 0 || h->nr_body == 0) return refuse(f, EINVAL, "header");
  if (h->nr_reqtype == NETMAP_REQ_PORT_INFO_GET) {
    auto* info = reinterpret_cast<nmreq_port_info_get*>(h->nr_body);
    info->nr_tx_rings = f.txRings;
    info->nr_rx_rings = f.rxRings;
    info->nr_host_tx_rings = f.hostTx;
    info->nr_host_rx_rings = f.hostRx;
    info->nr_tx_slots = info->nr_rx_slots = f.slots;
    return 0;
  }
  if (h->nr_reqtype == NETMAP_REQ_REGISTER) return doRegister(f, h);
  if (h->nr_reqtype == NETMAP_REQ_POOLS_INFO_GET) {
    if (!f.kmem) return refuse(f, EINVAL, "pools of an unregistered port");
    *reinterpret_cast<nmreq_pools_info*>(h->nr_body) = f.kpools;
    return 0;
  }
  return refuse(f, EOPNOTSUPP, "reqtype");
}

/** The PacketMemory stand-in: page-aligned, zeroed. */
struct Region {
  uint8_t* base;
  explicit Region(uint64_t size) : base(static_cast<uint8_t*>(std::aligned_alloc(4096, pageUp(size)))) { std::memset(base, 0, pageUp(size)); }
  ~Region() { std::free(base); }
};

RegisterPlan planOf(char** a, std::string& name) {
  name = a[0];
  RegisterPlan p{};
  p.name = name.c_str();
  p.mode = static_cast<uint32_t>(std::strtoul(a[1], nullptr, 0));
  p.ringid = static_cast<uint16_t>(std::strtoul(a[2], nullptr, 0));
  p.flags = std::strtoull(a[3], nullptr, 0);
  p.mem_id = static_cast<uint16_t>(std::strtoul(a[4], nullptr, 0));
  p.tx_slots = static_cast<uint32_t>(std::strtoul(a[5], nullptr, 0));
  p.rx_slots = static_cast<uint32_t>(std::strtoul(a[6], nullptr, 0));
  p.tx_rings = static_cast<uint16_t>(std::strtoul(a[7], nullptr, 0));
  p.rx_rings = static_cast<uint16_t>(std::strtoul(a[8], nullptr, 0));
  p.host_tx_rings = static_cast<uint16_t>(std::strtoul(a[9], nullptr, 0));
  p.host_rx_rings = static_cast<uint16_t>(std::strtoul(a[10], nullptr, 0));
  return p;
}

RegisterPlan simplePlan(const char* name, uint32_t mode) {
  RegisterPlan p{};
  p.name = name;
  p.mode = mode;
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string cmd = argv[1];
  Fake f;
  f.extmemBuild = getenv("FAKE_BUILD") && std::string(getenv("FAKE_BUILD")) == "extmem";
  f.peerOpen = getenv("FAKE_PEER") && std::string(getenv("FAKE_PEER")) == "1";
  if (getenv("FAKE_TX")) f.txMode = getenv("FAKE_TX");
  NetmapSys sys{fakeOpen, fakeIoctl, fakeClose, &f, fakeMmap, fakeMunmap, fakePoll};
  std::string name;
  const bool wantExtmem = cmd == "register-extmem";
  const bool reg = cmd == "register" || wantExtmem;
  RegisterPlan plan = reg && argc == 13 ? planOf(argv + 2, name) : simplePlan("eth0", cmd == "host" ? NR_REG_NIC_SW : NR_REG_ALL_NIC);
  if (cmd == "host-one") {
    // eth0-2/R: one hardware ring, RX only (the firewall on one bypassed queue).
    plan = simplePlan("eth0", NR_REG_ONE_NIC);
    plan.ringid = 2;
    plan.flags = NR_RX_RINGS_ONLY;
  }
  if (cmd == "absent") f.devicePresent = false;
  if (cmd == "size") {
    // size RX_RINGS TX_RINGS SLOTS GUEST_RINGS GUEST_SLOTS: packet memory of such a port.
    const auto n = [&](int i) { return static_cast<uint32_t>(std::strtoul(argv[i], nullptr, 0)); };
    const PortCounts c{n(3), n(2), 0, 0, n(4), n(4)};
    std::printf("{\"bytes\":%llu}\n", static_cast<unsigned long long>(packetMemoryBytes(n(5), n(6), extmemPools(c, 2048, 0))));
    return 0;
  }
  if (cmd == "donor") {
    // donor TXR RXR HTXR HRXR TXSLOTS RXSLOTS [NICS]: the allocator donor sized for NICS such NICs.
    const auto n = [&](int i) { return static_cast<uint32_t>(std::strtoul(argv[i], nullptr, 0)); };
    DonorRequest d{};
    const bool ok = donorRequest(PortCounts{n(2), n(3), n(4), n(5), n(6), n(7)}, argc > 8 ? n(8) : 1, &d);
    std::printf("{\"ok\":%s,\"rings\":%u,\"txSlots\":%u,\"rxSlots\":%u,\"extraBufs\":%u,\"bytes\":%llu}\n", ok ? "true" : "false", d.rings, d.txSlots, d.rxSlots,
                d.extraBufs, static_cast<unsigned long long>(d.bytes));
    return 0;
  }
  if (cmd == "monitor") {
    // monitor FLAGS [noparent]: eth0 (4 RX, 6 TX rings) monitored as an input (RX rings only),
    // registered as native/netmap/port_netmap.cc's openMonitor does; 5 frames on monitor ring 0.
    f.txRings = 6;
    if (argc > 3 && std::string(argv[3]) == "noparent") f.parentOpen = false;
    plan = simplePlan("eth0", NR_REG_ALL_NIC);
    plan.flags = std::strtoull(argv[2], nullptr, 0) | NR_RX_RINGS_ONLY;
    int rx = -1, tx = -1, got = 0, bad = 0, outside = 0;
    bool forwards = true, mapped = false;
    try {
      NetmapSession s(sys);
      s.openDevice("/dev/netmap");
      s.portInfo(plan.name);
      s.registerMapped(plan);
      rx = static_cast<int>(s.rxRings());
      tx = static_cast<int>(s.txRings());
      forwards = s.forwards();
      mapped = s.mapped();
      for (int i = 0; i < 5; i++) f.pending[0].push_back(static_cast<uint16_t>(60 + i));
      s.takeReceived(0, 16, [&](netmap_slot* k) {
        const uint8_t* b = NetmapSession::bufferOf(s.rxRing(0), k->buf_idx);
        if (k->len != 60 + got || b[0] != static_cast<uint8_t>(k->buf_idx)) bad++;
        if (b < f.base || b + 2048 > f.base + f.reg.nr_memsize) outside++;
        got++;
      });
      s.release(0, static_cast<uint32_t>(got));
    } catch (const NetmapFailure& e) {
      std::printf("{\"failure\":{\"syscall\":\"%s\",\"errno\":%d,\"what\":\"%s\"},\"fake\":\"%s\",\"closed\":%s,\"munmaps\":%d}\n", e.syscall.c_str(), e.err, e.what(),
                  f.error.c_str(), f.fd == -1 ? "true" : "false", f.munmaps);
      return 0;
    }
    std::printf("{\"flags\":%llu,\"extmem\":%s,\"mapped\":%s,\"mmaps\":%d,\"munmaps\":%d,\"closed\":%s,\"boundRx\":%d,\"boundTx\":%d,\"forwards\":%s,"
                "\"received\":%d,\"bad\":%d,\"outside\":%d,\"boundRings\":%u}\n",
                static_cast<unsigned long long>(f.reg.nr_flags), f.sawExtmem ? "true" : "false", mapped ? "true" : "false", f.mmaps, f.munmaps,
                f.fd == -1 ? "true" : "false", rx, tx, forwards ? "true" : "false", got, bad, outside,
                NetmapSession::boundRings(plan, PortCounts{1, 6, 1, 1, 64, 64}, true));
    return 0;
  }
  try {
    NetmapSession s(sys);
    // The stages of the backend's open (native/netmap/port_netmap.cc).
    s.openDevice("/dev/netmap");
    const PortCounts counts = s.portInfo(plan.name);
    NetmapSession::checkRing(plan, counts);
    const nmreq_pools_info pools = extmemPools(counts, 2048, 0);
    Region mem(pools.nr_memsize);
    // The region the port sees: the extmem memory, or netmap's own mapped from the fd (as
    // native/core/packet_memory.cc's device-backed memory does).
    uint8_t* region = mem.base;
    uint64_t regionSize = pools.nr_memsize;
    if (wantExtmem) {
      s.registerExtmem(plan, mem.base, pools);
    } else {
      s.registerPlain(plan);
      void* r = mmap(nullptr, s.regionBytes(), PROT_READ | PROT_WRITE, MAP_SHARED, s.fd(), 0);
      if (r == MAP_FAILED) return std::printf("{\"error\":\"mmap of the fd failed\"}\n"), 1;
      region = static_cast<uint8_t*>(r);
      regionSize = s.regionBytes();
      s.attach(plan, region);
    }
    if (s.rxRings() != NetmapSession::boundRings(plan, counts, true) || s.txRings() != NetmapSession::boundRings(plan, counts, false)) {
      std::printf("{\"error\":\"boundRings disagrees with the rings found\"}\n");
      return 1;
    }
    if (reg) {
      nmreq_pools_info info{};
      const bool haveInfo = !wantExtmem && s.poolsInfo(plan.name, &info);
      std::printf("{\"name\":\"%s\",\"version\":%u,\"reqtype\":%u,\"mode\":%u,\"ringid\":%u,\"flags\":%llu,\"memId\":%u,"
                  "\"slots\":[%u,%u],\"rings\":[%u,%u,%u,%u],\"extmem\":%s,\"extmemAtRegion\":%s,\"extmemSize\":%llu,\"poolBytes\":%llu,"
                  "\"boundRx\":%u,\"boundTx\":%u,\"forwards\":%s,\"replyMemId\":%u,\"regionBytes\":%llu,\"ringsInRegion\":%s,\"poolsInfoBufs\":%u}\n",
                  f.hdr.nr_name, f.hdr.nr_version, f.hdr.nr_reqtype, f.reg.nr_mode, f.reg.nr_ringid, static_cast<unsigned long long>(f.reg.nr_flags), f.reg.nr_mem_id,
                  f.reg.nr_tx_slots, f.reg.nr_rx_slots, f.reg.nr_tx_rings, f.reg.nr_rx_rings, f.reg.nr_host_tx_rings, f.reg.nr_host_rx_rings,
                  f.sawExtmem ? "true" : "false", f.extmemPtr == reinterpret_cast<uintptr_t>(mem.base) ? "true" : "false",
                  static_cast<unsigned long long>(f.extmemSize), static_cast<unsigned long long>(extmemBytes(pools)), s.rxRings(), s.txRings(),
                  s.forwards() ? "true" : "false", s.reply().nr_mem_id, static_cast<unsigned long long>(s.regionBytes()),
                  (s.rxRings() == 0 || (reinterpret_cast<uint8_t*>(s.rxRing(0)) > region && reinterpret_cast<uint8_t*>(s.rxRing(0)) < region + regionSize)) ? "true" : "false",
                  haveInfo ? info.nr_buf_pool_objtotal : 0);
      return 0;
    }
    if (cmd == "rx") {
      // N packets on RX ring 0 through a small shadow (16 slots), releasing each batch.
      const uint32_t n = static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 0));
      for (uint32_t i = 0; i < n; i++) f.pending[0].push_back(static_cast<uint16_t>(60 + i % 1400));
      uint32_t got = 0, bad = 0, batches = 0;
      std::vector<uint32_t> seenBufs;
      for (int round = 0; round < 10000 && got < n; round++) {
        uint32_t inBatch = s.takeReceived(0, 16, [&](netmap_slot* k) {
          const uint8_t* b = NetmapSession::bufferOf(s.rxRing(0), k->buf_idx);
          if (k->len != 60 + got % 1400 || b[0] != static_cast<uint8_t>(k->buf_idx) || b[k->len - 1] != static_cast<uint8_t>(k->buf_idx + k->len - 1)) bad++;
          seenBufs.push_back(k->buf_idx);
          got++;
        });
        if (inBatch) batches++;
        s.release(0, inBatch);
      }
      uint32_t outside = 0;  // buffers must lie inside the registered region
      for (uint32_t b : seenBufs) {
        const uint8_t* at = NetmapSession::bufferOf(s.rxRing(0), b);
        if (at < region || at + 2048 > region + regionSize) outside++;
      }
      std::printf("{\"received\":%u,\"bad\":%u,\"outside\":%u,\"batches\":%u,\"pendingLeft\":%zu,\"head\":%u}\n", got, bad, outside, batches,
                  f.pending[0].size(), s.rxRing(0)->head);
      return 0;
    }
    if (cmd == "release") {
      // 40 frames wait on RX ring 0; the filter takes 16, releases them, takes again: the
      // kernel must have the 16 back after that second take (not only once all 40 are taken),
      // or a VALE sender finds the ring full meanwhile.
      for (int i = 0; i < 40; i++) f.pending[0].push_back(100);
      uint32_t first = s.takeReceived(0, 16, [](netmap_slot*) {});
      s.release(0, first);
      const uint32_t syncsBefore = f.syncs;
      uint32_t second = s.takeReceived(0, 16, [](netmap_slot*) {});
      const uint32_t afterSecond = f.kernelRx[0], syncsSecond = f.syncs - syncsBefore;
      uint32_t third = s.takeReceived(0, 16, [](netmap_slot*) {});  // nothing released since: no sync needed
      std::printf("{\"first\":%u,\"second\":%u,\"third\":%u,\"kernelHasBack\":%u,\"syncsForSecond\":%u,\"syncsForThird\":%u}\n", first, second, third,
                  afterSecond, syncsSecond, f.syncs - syncsBefore - syncsSecond);
      return 0;
    }
    if (cmd == "swap") {
      // The bridge: 4 frames received on RX ring 0 leave on TX ring 0 by buffer swap; the RX
      // slots get the TX slots' old buffers back (NS_BUF_CHANGED on both sides).
      struct Shadow { uint32_t bufIdx; };
      struct Pkt { Shadow* slot; uint32_t len; };
      for (int i = 0; i < 4; i++) f.pending[0].push_back(static_cast<uint16_t>(100 + i));
      Shadow sh[4];
      Pkt pkts[4];
      std::vector<uint32_t> rxBufs, txOld;
      uint32_t n = 0;
      s.takeReceived(0, 16, [&](netmap_slot* k) { sh[n] = Shadow{k->buf_idx}; pkts[n] = Pkt{&sh[n], k->len}; rxBufs.push_back(k->buf_idx); n++; });
      netmap_ring* tx = s.txRing(0);
      for (uint32_t i = 0; i < n; i++) txOld.push_back(slotOf(tx, (tx->head + i) % tx->num_slots)->buf_idx);
      const uint32_t sent = s.transmitSwap(pkts, n);
      for (uint32_t k = 0; k < n; k++) s.swapBack(0, k, sh[k].bufIdx);
      s.release(0, n);
      s.takeReceived(0, 16, [](netmap_slot*) {});  // the next sync takes the released slots back
      auto list = [](const std::vector<uint32_t>& v) { std::string o; for (uint32_t x : v) o += (o.empty() ? "" : ",") + std::to_string(x); return "[" + o + "]"; };
      std::printf("{\"sent\":%u,\"rxBufs\":%s,\"txChanged\":%s,\"txOld\":%s,\"rxChanged\":%s,\"firstBytes\":[\"%s\",\"%s\"]}\n", sent, list(rxBufs).c_str(),
                  list(f.txChanged).c_str(), list(txOld).c_str(), list(f.rxChanged).c_str(), f.sent.at(0).c_str(), f.sent.at(3).c_str());
      return 0;
    }
    if (cmd == "host" || cmd == "host-one") {
      // 6 packets on hardware RX ring 0; verdicts HOST for the 2nd and 5th: NS_FORWARD on those.
      for (int i = 0; i < 6; i++) f.pending[0].push_back(100);
      std::vector<uint32_t> bufs;
      s.takeReceived(0, 16, [&](netmap_slot* k) { bufs.push_back(k->buf_idx); });
      uint32_t cursor = s.releaseStart(0);
      const bool a = s.markForward(0, bufs.at(1), &cursor), b = s.markForward(0, bufs.at(4), &cursor);
      const bool notTaken = s.markForward(0, 9999, &cursor);
      s.release(0, static_cast<uint32_t>(bufs.size()));
      s.takeReceived(0, 16, [](netmap_slot*) {});  // the next sync hands the released slots back
      std::printf("{\"taken\":%zu,\"marked\":[%s,%s,%s],\"forwarded\":[%u,%u],\"expected\":[%u,%u],\"count\":%zu,\"ringForward\":%s}\n", bufs.size(),
                  a ? "true" : "false", b ? "true" : "false", notTaken ? "true" : "false", f.forwarded.size() > 0 ? f.forwarded[0] : 0,
                  f.forwarded.size() > 1 ? f.forwarded[1] : 0, bufs.at(1), bufs.at(4), f.forwarded.size(), (s.rxRing(0)->flags & NR_FORWARD) ? "true" : "false");
      return 0;
    }
    if (cmd == "tx") {
      struct Pkt { const uint8_t* data; uint32_t len; };
      static uint8_t bytes[3][1600];
      Pkt pkts[3];
      const uint32_t lens[3] = {60, 1514, 200};
      for (int i = 0; i < 3; i++) {
        std::memset(bytes[i], 0xA0 + i, sizeof bytes[i]);
        pkts[i] = Pkt{bytes[i], lens[i]};
      }
      uint32_t sent = s.transmit(pkts, 3);
      // Fill the ring past its size: the transmit syncs and goes on.
      std::vector<Pkt> many(100, Pkt{bytes[0], 64});
      uint32_t more = s.transmit(many.data(), 100);
      // A reader behind (FAKE_TX=held/stuck): 300 more into the 64-slot ring.
      std::vector<Pkt> burst(300, Pkt{bytes[1], 64});
      uint32_t burstSent = s.transmit(burst.data(), 300);
      auto at = [&](size_t i) { return i < f.sent.size() ? f.sent[i] : std::string("-"); };
      const uint32_t queued = (f.txBound[0]->head + f.txBound[0]->num_slots - f.kernelTx[0]) % f.txBound[0]->num_slots;  // in the ring, not taken yet
      std::printf("{\"sent\":%u,\"first\":[\"%s\",\"%s\",\"%s\"],\"kernelSent\":%zu,\"more\":%u,\"burst\":%u,\"polls\":%d,\"queued\":%u}\n", sent, at(0).c_str(), at(1).c_str(),
                  at(2).c_str(), f.sent.size(), more, burstSent, f.polls, queued);
      return 0;
    }
    std::printf("{\"error\":\"unknown command\"}\n");
    return 2;
  } catch (const NetmapFailure& e) {
    std::printf("{\"failure\":{\"syscall\":\"%s\",\"errno\":%d,\"what\":\"%s\"},\"fake\":\"%s\",\"closed\":%s,\"registers\":%u}\n", e.syscall.c_str(), e.err, e.what(),
                f.error.c_str(), f.fd == -1 ? "true" : "false", f.registers);
    return 0;
  }
}
