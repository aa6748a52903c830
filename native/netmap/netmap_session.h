// The kernel-facing half of the netmap backend (docs/PORTS.md "netmap backend"): opens
// /dev/netmap, registers a port with NIOCCTRL/NETMAP_REQ_REGISTER — plainly (netmap's own
// memory model: the caller then mmaps the region of nr_memsize bytes from the fd) or with
// the extmem option (netmap lays its objects out inside memory the caller owns) —, finds
// the bound rings through netmap_if.ring_ofs[] once the region is visible (attach), and
// moves slots: take received slots, give them back (NS_FORWARD for HOST verdicts), copy
// into TX slots, NIOCRXSYNC/NIOCTXSYNC. No N-API, no errors.h: test/native/netmap_port.test.ts
// drives it against a fake kernel through the NetmapSys seam.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "netmap/netmap_abi.h"

namespace nmwasm {
namespace netmap {

/** The system calls the session makes; the real ones or a test's fake kernel. */
struct NetmapSys {
  int (*open)(void* ctx, const char* path, int flags);           // -1 + errno on failure
  int (*ioctl)(void* ctx, int fd, unsigned long request, void* arg);  // -1 + errno on failure
  int (*close)(void* ctx, int fd);
  void* ctx;
  void* (*mmap)(void* ctx, int fd, size_t len);           // MAP_SHARED of fd [0, len); nullptr + errno on failure (registerMapped only)
  int (*munmap)(void* ctx, void* addr, size_t len);
  int (*poll)(void* ctx, int fd, short events, int timeoutMs);  // poll(2) of one fd: >0 ready, 0 timeout, -1 + errno
};
/** ::open / ::ioctl / ::close / ::mmap / ::munmap / ::poll. */
NetmapSys realNetmapSys();

/** A failed stage: the system call, its errno and what was being done (one line). */
struct NetmapFailure : std::runtime_error {
  std::string syscall;
  int err;
  NetmapFailure(std::string syscall, int err, const std::string& what) : std::runtime_error(what), syscall(std::move(syscall)), err(err) {}
};

/** Ring and slot counts of a port (NETMAP_REQ_PORT_INFO_GET, or the register reply). */
struct PortCounts {
  uint32_t txRings, rxRings, hostTxRings, hostRxRings;
  uint32_t txSlots, rxSlots;
};

/** Pool sizes for the extmem region holding every ring of `c` (buffers of `bufSize`
 * bytes, 2 reserved buffers + one per slot + `extraBufs`), page aligned. Pure. */
nmreq_pools_info extmemPools(const PortCounts& c, uint32_t bufSize, uint32_t extraBufs);
/** Bytes of the region `pools` describes (the three pools back to back). Pure. */
uint64_t extmemBytes(const nmreq_pools_info& pools);

/** Bytes of packet memory a netmap port needs: `guestRings` guest rings of `numSlots` slots
 * (Port::setupRings' layout) then the extmem pools. Compare with the 63 MiB window. Pure. */
uint64_t packetMemoryBytes(uint32_t guestRings, uint32_t numSlots, const nmreq_pools_info& pools);

/** An allocator donor: a VALE port nmwasm registers only so that netmap makes a private
 * allocator (netmap_mem_private_new) big enough for a NIC's rings, then registers the NIC
 * with that nr_mem_id (netmap_get_hw_na moves an interface nobody holds to the allocator
 * a request names, as it does for extmem). Sized by netmap's own formula: a VALE port of
 * `rings` ring pairs of txSlots/rxSlots with 2 pipes' worth of spare and `extraBufs`. */
struct DonorRequest {
  uint16_t rings;
  uint32_t txSlots, rxSlots, extraBufs;
  uint64_t bytes;  // netmap's region for it, estimated (the reply's nr_memsize decides)
};
/** Sizes a donor whose allocator holds every ring of `nics` NICs with counts `nic` (a netmap
 * ring object and one buffer per slot each) beside the donor's own single 64-slot RX ring.
 * False when VALE's limits (4096 slots, 16 ring pairs, 128*4096 extra buffers) cannot. Pure. */
bool donorRequest(const PortCounts& nic, uint32_t nics, DonorRequest* out);

/** One registered netmap port. Open stages run in the constructor and the methods below,
 * each undone by the destructor (close of the fd). Per-packet methods never throw. */
class NetmapSession {
 public:
  explicit NetmapSession(const NetmapSys& sys);
  ~NetmapSession();
  NetmapSession(const NetmapSession&) = delete;
  NetmapSession& operator=(const NetmapSession&) = delete;

  /** Stage 1: opens `path` (/dev/netmap). Throws NetmapFailure. */
  void openDevice(const char* path);
  /** Stage 2: NETMAP_REQ_PORT_INFO_GET for `name`. Throws NetmapFailure. */
  PortCounts portInfo(const char* name);
  /** Before any register: the ring `plan` names (-N, ^N) exists in `counts`; else throws
   * NetmapFailure("", ERANGE, what) naming the valid range. Pure but for the throw. */
  static void checkRing(const RegisterPlan& plan, const PortCounts& counts);
  /** Stage 3a: NETMAP_REQ_REGISTER of `plan` without options (netmap's own memory: a
   * default build has no extmem). Checks the reply (nr_memsize, nr_offset inside it); the
   * caller then maps regionBytes() of fd() at offset 0 and calls attach. Throws. */
  void registerPlain(const RegisterPlan& plan);
  /** Stage 3b: NETMAP_REQ_REGISTER with the extmem option: netmap places its objects inside
   * [base, base+pools.nr_memsize). Throws NetmapFailure (EOPNOTSUPP: this netmap has no
   * extmem; EPROTO: the reply names another region, e.g. a pipe whose peer is open). Then
   * attach(base) has run. */
  void registerExtmem(const RegisterPlan& plan, uint8_t* base, const nmreq_pools_info& pools);
  /** Bytes of the region the register reply names (nr_memsize). */
  uint64_t regionBytes() const { return reg_.nr_memsize; }
  /** NETMAP_REQ_POOLS_INFO_GET for `name`: the pools of the port's allocator (slow path,
   * for messages). Returns false when netmap refuses. */
  bool poolsInfo(const char* name, nmreq_pools_info* out);
  /** Stage 4: `region` shows the registered memory (byte 0 = the region's byte 0): locates
   * netmap_if (nr_offset) and the bound rings; sets NR_FORWARD on the RX rings that hand
   * packets to the host stack (an interface's hardware rings; with NR_REG_NIC_SW its host
   * rings too). Throws NetmapFailure (EPROTO) when the region holds no valid netmap_if. */
  void attach(const RegisterPlan& plan, uint8_t* region);
  /** Undoes the stages (closes the fd: netmap unregisters once no mapping is left). */
  void reset();
  /** Stage 3c, for a port netmap keeps in memory of its own whatever the request says (a
   * monitor: netmap_monitor.c gives a copy monitor a private allocator and a zero-copy one
   * the monitored port's): registerPlain, then NetmapSys::mmap of the reply's nr_memsize
   * bytes of the fd (native only, outside any wasm window: the caller copies packets into
   * the filter's window). Locates the rings there; never sets NR_FORWARD. Throws
   * NetmapFailure. The destructor and reset() unmap it. */
  void registerMapped(const RegisterPlan& plan);
  /** Whether the rings live in the session's own mapping of /dev/netmap (registerMapped). */
  bool mapped() const { return mapped_ != nullptr; }
  /** Whether `plan` asks for a monitor (NR_MONITOR_RX/TX, NR_ZCOPY_MON). Pure. */
  static bool isMonitor(const RegisterPlan& plan) { return (plan.flags & (NR_MONITOR_RX | NR_MONITOR_TX | NR_ZCOPY_MON)) != 0; }

  int fd() const { return fd_; }
  const nmreq_register& reply() const { return reg_; }
  uint32_t rxRings() const { return static_cast<uint32_t>(rx_.size()); }
  uint32_t txRings() const { return static_cast<uint32_t>(tx_.size()); }
  netmap_ring* rxRing(uint32_t i) const { return rx_[i].ring; }
  netmap_ring* txRing(uint32_t i) const { return tx_[i].ring; }
  /** Whether some bound RX ring forwards NS_FORWARD slots (forwardsRing). */
  bool forwards() const { return forward_; }
  /** Whether RX ring `r` has NR_FORWARD: markForward works there. */
  bool forwardsRing(uint32_t r) const { return rx_[r].forward; }
  /** Whether netmap port `name` has a host stack (an interface, not a VALE port or a pipe). Pure. */
  static bool hasHostStack(const char* name);
  /** Address of buffer `idx` of `ring` (trusted index). */
  static uint8_t* bufferOf(netmap_ring* ring, uint32_t idx) {
    return reinterpret_cast<uint8_t*>(ring) + ring->buf_ofs + static_cast<uint64_t>(idx) * ring->nr_buf_size;
  }

  // ---- per packet (never throw, never allocate) ---------------------------------------
  /** Hands out up to `max` received slots of RX ring `r` not yet taken (NIOCRXSYNC first
   * when none are left, or when slots were released since the last sync, so the kernel
   * gets them back at once): calls take(slot) for each, in ring order. Returns the count. */
  template <typename Take>
  uint32_t takeReceived(uint32_t r, uint32_t max, Take&& take) noexcept {
    RxState& s = rx_[r];
    // NB: one NIOCRXSYNC per batch at most. Without the sync after a release, a VALE sender
    // finds our ring full (VALE drops what does not fit) until we have drained every slot.
    if (s.taken == s.ring->tail || s.released) {
      sync(NIOCRXSYNC);
      s.released = false;
    }
    uint32_t n = 0;
    const uint32_t tail = __atomic_load_n(&s.ring->tail, __ATOMIC_ACQUIRE);
    while (n < max && s.taken != tail) {
      take(ringSlot(s.ring, s.taken));
      s.taken = s.taken + 1 == s.ring->num_slots ? 0 : s.taken + 1;
      n++;
    }
    return n;
  }
  /** Marks NS_FORWARD on the taken, unreleased slot of RX ring `r` holding buffer `bufIdx`
   * (searching from `*cursor`, which it advances); no-op unless forwardsRing(r). */
  bool markForward(uint32_t r, uint32_t bufIdx, uint32_t* cursor) noexcept;
  /** First taken, unreleased slot of RX ring `r` (the start for markForward). */
  uint32_t releaseStart(uint32_t r) const { return rx_[r].ring->head; }
  /** Gives the `count` oldest taken slots of RX ring `r` back (head = cur += count). */
  void release(uint32_t r, uint32_t count) noexcept;
  /** Copies packets (anything with .data and .len) into free slots of TX ring 0 and
   * NIOCTXSYNCs them out (sendAll). Returns the number copied. */
  template <typename Packet>
  uint32_t transmit(const Packet* pkts, uint32_t count) noexcept {
    std::lock_guard<std::mutex> lock(txMu_);
    return sendAll(count, [&](netmap_ring* ring, netmap_slot* slot, uint32_t i) {
      const uint32_t n = pkts[i].len < ring->nr_buf_size ? pkts[i].len : ring->nr_buf_size;
      std::memcpy(bufferOf(ring, slot->buf_idx), pkts[i].data, n);
      slot->len = static_cast<uint16_t>(n);
      slot->flags = 0;
    });
  }
  /** Zero-copy send between two ports of one netmap allocator (same nr_mem_id): for each
   * packet (anything with .slot->bufIdx and .len), the buffer of a free slot of TX ring 0
   * and the packet's buffer trade places: the TX slot takes the packet's buffer with
   * NS_BUF_CHANGED, *.slot->bufIdx gets the TX slot's old one (the caller hands it back to
   * its RX ring with swapBack). Sent as sendAll does. Returns the number sent: the rest kept
   * their buffers. */
  template <typename Packet>
  uint32_t transmitSwap(const Packet* pkts, uint32_t count) noexcept {
    std::lock_guard<std::mutex> lock(txMu_);
    return sendAll(count, [&](netmap_ring* ring, netmap_slot* slot, uint32_t i) {
      const uint32_t mine = slot->buf_idx;
      slot->buf_idx = pkts[i].slot->bufIdx;
      slot->len = static_cast<uint16_t>(pkts[i].len < ring->nr_buf_size ? pkts[i].len : ring->nr_buf_size);
      slot->flags = NS_BUF_CHANGED;
      pkts[i].slot->bufIdx = mine;
    });
  }
  /** How long one transmit waits at most for room in a full TX ring (kTxWaitMs). */
  static constexpr int kTxWaitMs = 50;
  /** Before release: the `k`-th taken, unreleased slot of RX ring `r` now holds buffer
   * `bufIdx` (a transmitSwap moved its own away): sets it with NS_BUF_CHANGED if it differs. */
  void swapBack(uint32_t r, uint32_t k, uint32_t bufIdx) noexcept {
    netmap_ring* ring = rx_[r].ring;
    uint32_t i = ring->head + k;
    if (i >= ring->num_slots) i -= ring->num_slots;
    netmap_slot* slot = ringSlot(ring, i);
    if (slot->buf_idx != bufIdx) {
      slot->buf_idx = bufIdx;
      slot->flags |= NS_BUF_CHANGED;
    }
  }
  /** Rings `plan` binds on a port with `counts` (RX or TX side). Pure. */
  static uint32_t boundRings(const RegisterPlan& plan, const PortCounts& counts, bool rx);

 private:
  struct RxState {
    netmap_ring* ring = nullptr;
    uint32_t taken = 0;  // next slot to hand out; [head, taken) are with the filter
    bool forward = false;  // NR_FORWARD set: NS_FORWARD slots go to the host stack (or, on a host ring, the NIC)
    bool released = false;  // slots given back since the last NIOCRXSYNC
  };
  struct TxState {
    netmap_ring* ring = nullptr;
  };
  static netmap_slot* ringSlot(netmap_ring* ring, uint32_t i) {
    return reinterpret_cast<netmap_slot*>(reinterpret_cast<uint8_t*>(ring) + sizeof(netmap_ring)) + i;
  }
  void sync(unsigned long request) noexcept;
  /** Fills free slots of TX ring 0 with fill(ring, slot, i) for packets i = 0..count-1 in
   * order, publishing head after each pass; when the ring is full, NIOCTXSYNC, then waits
   * for room with poll(POLLOUT) as netmap's own bridge does (a pipe whose reader is slower,
   * a saturated link), up to kTxWaitMs in all, so a slower reader holds the sender back
   * instead of losing packets; what still does not fit is left to the caller (output
   * drops). NIOCTXSYNC at the end. Returns the number filled. Caller holds txMu_. */
  template <typename Fill>
  uint32_t sendAll(uint32_t count, Fill&& fill) noexcept {
    if (tx_.empty()) return 0;
    netmap_ring* ring = tx_[0].ring;
    uint32_t sent = 0;
    bool unsynced = false;  // slots filled since the last NIOCTXSYNC
    int64_t deadlineMs = -1;
    for (;;) {
      uint32_t head = ring->head;
      const uint32_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
      while (sent < count && head != tail) {
        fill(ring, ringSlot(ring, head), sent);
        head = head + 1 == ring->num_slots ? 0 : head + 1;
        sent++;
        unsynced = true;
      }
      ring->cur = head;
      __atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
      if (sent == count) break;
      sync(NIOCTXSYNC);  // ring full: let the kernel send, then look again
      unsynced = false;
      if (__atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE) != ring->head) continue;
      // NB: still full after a sync: the ring thread sleeps in poll, the input backs up.
      const int64_t now = monotonicMs();
      if (deadlineMs < 0) deadlineMs = now + kTxWaitMs;
      if (now >= deadlineMs || sys_.poll == nullptr) break;
      if (sys_.poll(sys_.ctx, fd_, POLLOUT, static_cast<int>(deadlineMs - now)) <= 0) break;
      sync(NIOCTXSYNC);
    }
    if (unsynced) sync(NIOCTXSYNC);
    return sent;
  }
  static int64_t monotonicMs() noexcept;
  [[noreturn]] void fail(const char* syscall, int err, const std::string& what) const;
  void locateRings(const RegisterPlan& plan);

  NetmapSys sys_;
  int fd_ = -1;
  nmreq_register reg_{};
  netmap_if* nif_ = nullptr;
  bool forward_ = false;
  uint8_t* mapped_ = nullptr;  // registerMapped: the /dev/netmap mapping, munmap'd by the destructor
  uint64_t mappedLen_ = 0;
  std::vector<RxState> rx_;
  std::vector<TxState> tx_;
  std::mutex syncMu_;  // NB: one fd for every ring: syncs from several ring threads take turns
  std::mutex txMu_;
};

}  // namespace netmap
}  // namespace nmwasm
