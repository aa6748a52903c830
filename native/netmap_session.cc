// netmap kernel session: register with extmem, locate rings, move slots (netmap_session.h).
#include "netmap_session.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace nmwasm {
namespace netmap {

namespace {

int realOpen(void*, const char* path, int flags) { return ::open(path, flags); }
int realIoctl(void*, int fd, unsigned long request, void* arg) { return ::ioctl(fd, request, arg); }
int realClose(void*, int fd) { return ::close(fd); }
void* realMmap(void*, int fd, size_t len) {
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  return p == MAP_FAILED ? nullptr : p;
}
int realMunmap(void*, void* addr, size_t len) { return ::munmap(addr, len); }

constexpr uint64_t kPage = 4096;
uint64_t pageUp(uint64_t v) { return (v + kPage - 1) / kPage * kPage; }

}  // namespace

NetmapSys realNetmapSys() { return NetmapSys{realOpen, realIoctl, realClose, nullptr, realMmap, realMunmap}; }

nmreq_pools_info extmemPools(const PortCounts& c, uint32_t bufSize, uint32_t extraBufs) {
  nmreq_pools_info p{};
  const uint32_t rings = c.txRings + c.rxRings + c.hostTxRings + c.hostRxRings;
  const uint32_t maxSlots = c.txSlots > c.rxSlots ? c.txSlots : c.rxSlots;
  p.nr_if_pool_objtotal = 1;
  p.nr_if_pool_objsize = static_cast<uint32_t>(pageUp(sizeof(netmap_if) + sizeof(int64_t) * rings));
  p.nr_ring_pool_objtotal = rings;
  p.nr_ring_pool_objsize = static_cast<uint32_t>(pageUp(sizeof(netmap_ring) + uint64_t{maxSlots} * sizeof(netmap_slot)));
  const uint64_t slots = uint64_t{c.txSlots} * (c.txRings + c.hostTxRings) + uint64_t{c.rxSlots} * (c.rxRings + c.hostRxRings);
  p.nr_buf_pool_objtotal = static_cast<uint32_t>(2 + slots + extraBufs);  // buffers 0 and 1 are netmap's
  p.nr_buf_pool_objsize = bufSize;
  p.nr_memsize = extmemBytes(p);
  return p;
}

uint64_t extmemBytes(const nmreq_pools_info& p) {
  return pageUp(uint64_t{p.nr_if_pool_objtotal} * p.nr_if_pool_objsize) + pageUp(uint64_t{p.nr_ring_pool_objtotal} * p.nr_ring_pool_objsize) +
         pageUp(uint64_t{p.nr_buf_pool_objtotal} * p.nr_buf_pool_objsize);
}

uint64_t packetMemoryBytes(uint32_t guestRings, uint32_t numSlots, const nmreq_pools_info& pools) {
  const uint64_t perRing = (sizeof(netmap_ring) + uint64_t{numSlots} * (sizeof(netmap_slot) + 1) + 127) / 128 * 128;  // + verdicts
  return pageUp(perRing * guestRings) + extmemBytes(pools);
}

NetmapSession::NetmapSession(const NetmapSys& sys) : sys_(sys) {}

NetmapSession::~NetmapSession() {
  if (mapped_) sys_.munmap(sys_.ctx, mapped_, mappedLen_);
  if (fd_ >= 0) sys_.close(sys_.ctx, fd_);
}

void NetmapSession::fail(const char* syscall, int err, const std::string& what) const { throw NetmapFailure(syscall, err, what); }

void NetmapSession::openDevice(const char* path) {
  fd_ = sys_.open(sys_.ctx, path, O_RDWR | O_CLOEXEC);
  if (fd_ < 0) fail("open", errno, std::string("opening ") + path);
}

PortCounts NetmapSession::portInfo(const char* name) {
  nmreq_header hdr;
  nmreq_port_info_get info;
  if (!fill_port_info_request(&hdr, &info, name)) fail("", EINVAL, "the netmap name does not fit nr_name");
  if (sys_.ioctl(sys_.ctx, fd_, NIOCCTRL, &hdr) != 0) fail("ioctl", errno, "asking netmap for the port's rings (NETMAP_REQ_PORT_INFO_GET)");
  return PortCounts{info.nr_tx_rings, info.nr_rx_rings, info.nr_host_tx_rings, info.nr_host_rx_rings, info.nr_tx_slots, info.nr_rx_slots};
}

void NetmapSession::registerPort(const RegisterPlan& plan, uint8_t* base, const nmreq_pools_info& pools) {
  nmreq_header hdr;
  nmreq_opt_extmem ext;
  if (!fill_register_request(&hdr, &reg_, plan)) fail("", EINVAL, "the netmap name does not fit nr_name");
  push_extmem_option(&hdr, &ext, base, pools.nr_memsize);
  ext.nro_info = pools;
  if (sys_.ioctl(sys_.ctx, fd_, NIOCCTRL, &hdr) != 0) fail("ioctl", errno, "registering the port (NETMAP_REQ_REGISTER with extmem)");
  if (ext.nro_opt.nro_status != 0) fail("ioctl", static_cast<int>(ext.nro_opt.nro_status), "netmap refused the extmem option");
  if (reg_.nr_offset + sizeof(netmap_if) > pools.nr_memsize) fail("ioctl", EPROTO, "netmap's reply puts netmap_if outside the registered memory");
  base_ = base;
  nif_ = reinterpret_cast<netmap_if*>(base + reg_.nr_offset);
  locateRings(plan);
}

void NetmapSession::registerMapped(const RegisterPlan& plan) {
  nmreq_header hdr;
  if (!fill_register_request(&hdr, &reg_, plan)) fail("", EINVAL, "the netmap name does not fit nr_name");
  if (sys_.ioctl(sys_.ctx, fd_, NIOCCTRL, &hdr) != 0) fail("ioctl", errno, "registering the port (NETMAP_REQ_REGISTER)");
  if (reg_.nr_memsize == 0 || reg_.nr_offset + sizeof(netmap_if) > reg_.nr_memsize) fail("ioctl", EPROTO, "netmap's reply puts netmap_if outside its memory");
  void* p = sys_.mmap(sys_.ctx, fd_, static_cast<size_t>(reg_.nr_memsize));
  if (p == nullptr) fail("mmap", errno, "mapping netmap's memory (" + std::to_string(reg_.nr_memsize >> 20) + " MiB)");
  mapped_ = static_cast<uint8_t*>(p);
  mappedLen_ = reg_.nr_memsize;
  base_ = mapped_;
  nif_ = reinterpret_cast<netmap_if*>(mapped_ + reg_.nr_offset);
  locateRings(plan);
}

void NetmapSession::locateRings(const RegisterPlan& plan) {
  const netmap_if& nif = *nif_;
  const auto* ringOfs = reinterpret_cast<const int64_t*>(reinterpret_cast<const uint8_t*>(nif_) + sizeof(netmap_if));
  const bool rxOnly = plan.flags & NR_RX_RINGS_ONLY, txOnly = plan.flags & NR_TX_RINGS_ONLY;
  // An interface's hardware RX rings hand what the filter passes (PASS without an output,
  // HOST) to the host stack: NR_FORWARD on the ring, NS_FORWARD on the slot, and netmap
  // copies the slot up at the next rxsync (transparent mode; its nm_may_forward_up needs
  // host rings to exist on the adapter, not to be bound). VALE ports and pipes have no
  // host stack. With eth0* the host RX rings get NR_FORWARD too (as before: to the NIC).
  // A monitor only sees copies: nothing it releases goes anywhere.
  const bool stack = hasHostStack(plan.name) && !isMonitor(plan);
  auto add = [&](bool rx, bool host, uint32_t first, uint32_t last) {
    for (uint32_t i = first; i < last; i++) {
      auto* ring = reinterpret_cast<netmap_ring*>(reinterpret_cast<uint8_t*>(nif_) + ringOfs[ring_ofs_index(nif, rx, host, i)]);
      if (rx) rx_.push_back(RxState{ring, ring->head, stack && (!host || plan.mode == NR_REG_NIC_SW)});
      else tx_.push_back(TxState{ring});
    }
  };
  auto bind = [&](bool host, bool one) {
    const uint32_t rxCount = host ? nif.ni_host_rx_rings : nif.ni_rx_rings;
    const uint32_t txCount = host ? nif.ni_host_tx_rings : nif.ni_tx_rings;
    if (one && ((!txOnly && plan.ringid >= rxCount) || (!rxOnly && plan.ringid >= txCount))) fail("ioctl", EINVAL, "ring " + std::to_string(plan.ringid) + " is out of range");
    if (!txOnly) add(true, host, one ? plan.ringid : 0, one ? plan.ringid + 1u : rxCount);
    if (!rxOnly) add(false, host, one ? plan.ringid : 0, one ? plan.ringid + 1u : txCount);
  };
  switch (plan.mode) {
    case NR_REG_ONE_NIC: bind(false, true); break;
    case NR_REG_SW: bind(true, false); break;
    case NR_REG_ONE_SW: bind(true, true); break;
    case NR_REG_NIC_SW: bind(false, false); bind(true, false); break;
    default: bind(false, false); break;
  }
  forward_ = false;
  for (RxState& s : rx_)
    if (s.forward) {
      s.ring->flags |= NR_FORWARD;
      forward_ = true;
    }
}

bool NetmapSession::hasHostStack(const char* name) {
  const std::string n = name;
  return n.rfind("vale", 0) != 0 && n.find_first_of("{}") == std::string::npos;
}

void NetmapSession::sync(unsigned long request) noexcept {
  std::lock_guard<std::mutex> lock(syncMu_);
  sys_.ioctl(sys_.ctx, fd_, request, nullptr);  // NB: a failed sync shows as no progress; poll() reports errors
}

bool NetmapSession::markForward(uint32_t r, uint32_t bufIdx, uint32_t* cursor) noexcept {
  RxState& s = rx_[r];
  if (!s.forward) return false;
  for (uint32_t i = *cursor; i != s.taken; i = i + 1 == s.ring->num_slots ? 0 : i + 1) {
    netmap_slot* slot = ringSlot(s.ring, i);
    if (slot->buf_idx == bufIdx) {
      slot->flags |= NS_FORWARD;
      *cursor = i + 1 == s.ring->num_slots ? 0 : i + 1;
      return true;
    }
  }
  return false;
}

void NetmapSession::release(uint32_t r, uint32_t count) noexcept {
  netmap_ring* ring = rx_[r].ring;
  uint32_t head = ring->head + count;
  if (head >= ring->num_slots) head -= ring->num_slots;
  ring->cur = head;
  __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);  // the kernel takes them at the next sync
  if (count > 0) rx_[r].released = true;
}

uint32_t NetmapSession::boundRings(const RegisterPlan& plan, const PortCounts& c, bool rx) {
  if (plan.flags & (rx ? NR_TX_RINGS_ONLY : NR_RX_RINGS_ONLY)) return 0;
  const uint32_t hw = rx ? c.rxRings : c.txRings, host = rx ? c.hostRxRings : c.hostTxRings;
  switch (plan.mode) {
    case NR_REG_ONE_NIC:
    case NR_REG_ONE_SW: return 1;
    case NR_REG_SW: return host;
    case NR_REG_NIC_SW: return hw + host;
    default: return hw;
  }
}

}  // namespace netmap
}  // namespace nmwasm
