// netmap kernel session: register (plain or extmem), locate rings, move slots (netmap_session.h).
#include "netmap/netmap_session.h"

#include <fcntl.h>
#include <poll.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
int realPoll(void*, int fd, short events, int timeoutMs) {
  struct pollfd p = {fd, events, 0};
  return ::poll(&p, 1, timeoutMs);
}

constexpr uint64_t kPage = 4096;
uint64_t pageUp(uint64_t v) { return (v + kPage - 1) / kPage * kPage; }
template <typename T>
T c_max(T a, T b) { return a > b ? a : b; }

}  // namespace

NetmapSys realNetmapSys() { return NetmapSys{realOpen, realIoctl, realClose, nullptr, realMmap, realMunmap, realPoll}; }

int64_t NetmapSession::monotonicMs() noexcept {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

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

bool donorRequest(const PortCounts& nic, uint32_t nics, DonorRequest* out) {
  // netmap_mem_private_new(txr, txd, rxr, rxd, extra, npipes = 2) for a VALE port
  // (netmap_vale.c): ring objects max(4, (txr+1) + (rxr+1) + 8*2) of max(5 pages, ring +
  // 16 * max(txd, rxd)) bytes; buffers max(4098, (8 + rxr+1) * rxd + (8 + txr+1) * txd + 2 + extra)
  // of 2048; if objects 2+8 of 1024 (enough for ~120 ring offsets).
  constexpr uint32_t kMaxSlots = 4096, kMaxRings = 16, kMaxExtra = 128 * 4096, kOwnSlots = 64;
  const uint32_t slots = c_max(nic.txSlots, nic.rxSlots);
  if (slots == 0 || slots > kMaxSlots) return false;
  const uint32_t nicRings = nics * (nic.txRings + nic.rxRings + nic.hostTxRings + nic.hostRxRings);
  const uint64_t nicBufs = nics * (uint64_t{nic.txSlots} * (nic.txRings + nic.hostTxRings) + uint64_t{nic.rxSlots} * (nic.rxRings + nic.hostRxRings));
  // The donor's own registration binds one RX ring of kOwnSlots.
  const uint32_t needRings = nicRings + 1;
  const uint32_t pairs = needRings > 18 ? (needRings - 18 + 1) / 2 : 1;
  if (pairs > kMaxRings) return false;
  const uint64_t base = uint64_t{8 + pairs + 1} * kOwnSlots + uint64_t{8 + pairs + 1} * slots + 2;
  const uint64_t need = nicBufs + kOwnSlots + 2;
  const uint64_t extra = need > base ? need - base : 0;
  if (extra > kMaxExtra) return false;
  const uint64_t ringObj = c_max<uint64_t>(5 * kPage, pageUp(sizeof(netmap_ring) + uint64_t{slots} * sizeof(netmap_slot)));
  const uint64_t ringNum = 2 * (pairs + 1) + 16;
  const uint64_t bufs = c_max<uint64_t>(4098, base + extra);
  out->rings = static_cast<uint16_t>(pairs);
  out->txSlots = slots;
  out->rxSlots = kOwnSlots;
  out->extraBufs = static_cast<uint32_t>(extra);
  out->bytes = pageUp(10 * 1024) + pageUp(ringNum * ringObj) + pageUp(bufs * 2048);
  return true;
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

void NetmapSession::reset() {
  if (mapped_) sys_.munmap(sys_.ctx, mapped_, mappedLen_);
  mapped_ = nullptr;
  mappedLen_ = 0;
  if (fd_ >= 0) sys_.close(sys_.ctx, fd_);
  fd_ = -1;
  reg_ = nmreq_register{};
  nif_ = nullptr;
  forward_ = false;
  rx_.clear();
  tx_.clear();
}

void NetmapSession::checkRing(const RegisterPlan& plan, const PortCounts& c) {
  if (plan.mode != NR_REG_ONE_NIC && plan.mode != NR_REG_ONE_SW) return;
  const bool host = plan.mode == NR_REG_ONE_SW;
  const bool rxOnly = plan.flags & NR_RX_RINGS_ONLY, txOnly = plan.flags & NR_TX_RINGS_ONLY;
  const uint32_t rx = host ? c.hostRxRings : c.rxRings, tx = host ? c.hostTxRings : c.txRings;
  uint32_t n = txOnly ? tx : rxOnly ? rx : (rx < tx ? rx : tx);
  if (plan.ringid < n) return;
  const std::string sign = host ? "^" : "-";
  const std::string kind = host ? "host ring" : "ring";
  std::string what = std::string(plan.name) + " has " + std::to_string(n) + " " + kind + (n == 1 ? "" : "s") + ", no " + sign + std::to_string(plan.ringid);
  if (n > 0) what += ": use " + sign + "0.." + sign + std::to_string(n - 1);
  throw NetmapFailure("", ERANGE, what);
}

void NetmapSession::registerPlain(const RegisterPlan& plan) {
  nmreq_header hdr;
  if (!fill_register_request(&hdr, &reg_, plan)) fail("", EINVAL, "the netmap name does not fit nr_name");
  if (sys_.ioctl(sys_.ctx, fd_, NIOCCTRL, &hdr) != 0) fail("ioctl", errno, "registering the port (NETMAP_REQ_REGISTER)");
  if (reg_.nr_memsize == 0 || reg_.nr_offset + sizeof(netmap_if) > reg_.nr_memsize)
    fail("ioctl", EPROTO, "netmap's register reply names no usable memory region (nr_memsize " + std::to_string(reg_.nr_memsize) + ", nr_offset " +
                              std::to_string(reg_.nr_offset) + ")");
}

void NetmapSession::registerExtmem(const RegisterPlan& plan, uint8_t* base, const nmreq_pools_info& pools) {
  nmreq_header hdr;
  nmreq_opt_extmem ext;
  if (!fill_register_request(&hdr, &reg_, plan)) fail("", EINVAL, "the netmap name does not fit nr_name");
  push_extmem_option(&hdr, &ext, base, pools.nr_memsize);
  ext.nro_info = pools;
  if (sys_.ioctl(sys_.ctx, fd_, NIOCCTRL, &hdr) != 0) {
    const int err = errno;
    // NB: a netmap built without extmem leaves the option unparsed: the register fails with
    // EOPNOTSUPP and nro_status stays 0 (or netmap marks the option itself).
    if (err == EOPNOTSUPP || ext.nro_opt.nro_status == EOPNOTSUPP) fail("ioctl", EOPNOTSUPP, "registering the port with extmem: this netmap lacks extmem (built without --enable-extmem)");
    fail("ioctl", err, "registering the port (NETMAP_REQ_REGISTER with extmem)");
  }
  if (ext.nro_opt.nro_status != 0) fail("ioctl", static_cast<int>(ext.nro_opt.nro_status), "netmap refused the extmem option");
  // A pipe whose peer is already open (and any port netmap keeps in its allocator) ignores
  // the option: the reply then names that region, not the memory offered.
  if (reg_.nr_memsize != pools.nr_memsize)
    fail("ioctl", EPROTO, "netmap placed the port in its memory region " + std::to_string(reg_.nr_mem_id) + " (" + std::to_string(reg_.nr_memsize) +
                              " bytes), not in the " + std::to_string(pools.nr_memsize) + " bytes offered");
  if (reg_.nr_offset + sizeof(netmap_if) > pools.nr_memsize) fail("ioctl", EPROTO, "netmap's reply puts netmap_if outside the registered memory");
  attach(plan, base);
}

bool NetmapSession::poolsInfo(const char* name, nmreq_pools_info* out) {
  nmreq_header hdr;
  nmreq_port_info_get unused;
  if (!fill_port_info_request(&hdr, &unused, name)) return false;
  std::memset(out, 0, sizeof(*out));
  hdr.nr_reqtype = NETMAP_REQ_POOLS_INFO_GET;
  hdr.nr_body = reinterpret_cast<uintptr_t>(out);
  return sys_.ioctl(sys_.ctx, fd_, NIOCCTRL, &hdr) == 0;
}

void NetmapSession::attach(const RegisterPlan& plan, uint8_t* region) {
  nif_ = reinterpret_cast<netmap_if*>(region + reg_.nr_offset);
  // NB: a region that is not the registered one (zeros, another allocator) shows here: the
  // ring counts disagree with the reply, or a ring lies outside the region.
  if (nif_->ni_tx_rings != reg_.nr_tx_rings || nif_->ni_rx_rings != reg_.nr_rx_rings || nif_->ni_tx_rings + nif_->ni_rx_rings == 0)
    fail("ioctl", EPROTO, "the mapped region holds no netmap_if for the port at nr_offset " + std::to_string(reg_.nr_offset) + " (rings " +
                              std::to_string(nif_->ni_tx_rings) + "/" + std::to_string(nif_->ni_rx_rings) + ", the reply says " +
                              std::to_string(reg_.nr_tx_rings) + "/" + std::to_string(reg_.nr_rx_rings) + ")");
  const auto* ringOfs = reinterpret_cast<const int64_t*>(reinterpret_cast<const uint8_t*>(nif_) + sizeof(netmap_if));
  const uint32_t all = nif_->ni_tx_rings + nif_->ni_rx_rings + nif_->ni_host_tx_rings + nif_->ni_host_rx_rings;
  for (uint32_t i = 0; i < all; i++) {
    const int64_t at = static_cast<int64_t>(reg_.nr_offset) + ringOfs[i];
    if (at < 0 || static_cast<uint64_t>(at) + sizeof(netmap_ring) > reg_.nr_memsize)
      fail("ioctl", EPROTO, "netmap_if puts ring " + std::to_string(i) + " outside the region of " + std::to_string(reg_.nr_memsize) + " bytes");
  }
  locateRings(plan);
}

void NetmapSession::registerMapped(const RegisterPlan& plan) {
  registerPlain(plan);
  void* p = sys_.mmap(sys_.ctx, fd_, static_cast<size_t>(reg_.nr_memsize));
  if (p == nullptr) fail("mmap", errno, "mapping netmap's memory (" + std::to_string(reg_.nr_memsize >> 20) + " MiB)");
  mapped_ = static_cast<uint8_t*>(p);
  mappedLen_ = reg_.nr_memsize;
  attach(plan, mapped_);
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
