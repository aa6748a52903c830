// netmap's ring and slot structures (sys/net/netmap.h, API 14) as the guest sees
// them in the packet window (docs/ABI.md section 2), plus the verdict values;
// then (namespace nmwasm::netmap) netmap's kernel ABI declared in-tree — the
// structures, flags and ioctl numbers of NIOCCTRL requests — with pure helpers
// that encode a parsed port name into a NETMAP_REQ_REGISTER request.
#pragma once

#include <sys/ioctl.h>
#include <sys/time.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace nmwasm {

struct NetmapSlot {
  uint32_t buf_idx;
  uint16_t len;
  uint16_t flags;
  uint64_t ptr;  // nmwasm v1: receive timestamp, ns since the Unix epoch
};

struct NetmapRing {
  int64_t buf_ofs;
  uint32_t num_slots;
  uint32_t nr_buf_size;
  uint16_t ringid;
  uint16_t dir;
  uint32_t head;
  uint32_t cur;
  uint32_t tail;
  uint32_t flags;
  uint32_t pad0;
  int64_t ts_sec;
  int64_t ts_usec;
  uint64_t offset_mask;
  uint64_t buf_align;
  uint8_t pad1[56];
  uint8_t sem[128];
  // NetmapSlot slot[] follows at offset 256
};

static_assert(sizeof(NetmapSlot) == 16, "netmap_slot is 16 bytes");
static_assert(offsetof(NetmapRing, head) == 20, "netmap_ring.head at 20");
static_assert(offsetof(NetmapRing, tail) == 28, "netmap_ring.tail at 28");
static_assert(offsetof(NetmapRing, ts_sec) == 40, "netmap_ring.ts at 40");
static_assert(offsetof(NetmapRing, offset_mask) == 56, "netmap_ring.offset_mask at 56");
static_assert(offsetof(NetmapRing, buf_align) == 64, "netmap_ring.buf_align at 64");
static_assert(offsetof(NetmapRing, sem) == 128, "netmap_ring.sem at 128");
static_assert(sizeof(NetmapRing) == 256, "netmap_ring header is 256 bytes");

constexpr size_t kRingHeaderSize = sizeof(NetmapRing);

inline NetmapSlot* ringSlots(NetmapRing* ring) {
  return reinterpret_cast<NetmapSlot*>(reinterpret_cast<uint8_t*>(ring) + kRingHeaderSize);
}

// Verdict bytes (docs/ABI.md section 3).
constexpr uint8_t kVerdictDrop = 0x00;
constexpr uint8_t kVerdictPass = 0x01;
constexpr uint8_t kVerdictHost = 0x02;
// | DROP or PASS: the verdict holds for the packet's flow (docs/ABI.md section 3, "Flow verdicts")
constexpr uint8_t kVerdictFlow = 0x40;
constexpr uint8_t kVerdictForward = 0x80;  // | output index
constexpr uint8_t kVerdictUnset = 0xFF;

constexpr uint32_t kMinPacketLen = 14;  // an Ethernet header


// ---------------------------------------------------------------------------------------------
// netmap's kernel ABI (sys/net/netmap.h, NETMAP_API 14), declared here so the addon builds
// without netmap's headers. Every size and offset below is asserted; the numbers in the
// asserts were worked out by hand from the header's field types (x86-64 / LP64: uint64_t,
// int64_t, ssize_t and struct timeval are 8-byte aligned) and are re-checked by
// test/native/netmap_abi.test.ts. Names are netmap's own so they can be compared line by line.
namespace netmap {

constexpr uint16_t NETMAP_API = 14;
constexpr size_t NM_CACHE_ALIGN = 128;
constexpr size_t IFNAMSIZ_ = 16;              // Linux IFNAMSIZ (netmap_if.ni_name)
constexpr size_t NETMAP_REQ_IFNAMSIZ = 64;    // nmreq_header.nr_name
constexpr size_t NETMAP_REQ_MAXSIZE = 4096;   // a request with all its options
constexpr uint16_t NETMAP_RING_MASK = 0x0fff; // ring numbers are below this
constexpr const char* NM_BDG_NAME = "vale";   // prefix of VALE switch names

// netmap_slot.flags (NS_*).
constexpr uint16_t NS_BUF_CHANGED = 0x0001; // buf_idx changed
constexpr uint16_t NS_REPORT = 0x0002;      // ask the hardware to report results
constexpr uint16_t NS_FORWARD = 0x0004;     // rx ring with NR_FORWARD: pass to the peer (host <-> NIC)
constexpr uint16_t NS_NO_LEARN = 0x0008;    // VALE: do not learn the source
constexpr uint16_t NS_INDIRECT = 0x0010;    // VALE tx: data at slot.ptr
constexpr uint16_t NS_MOREFRAG = 0x0020;    // more fragments follow
constexpr unsigned NS_PORT_SHIFT = 8;
constexpr uint16_t NS_PORT_MASK = 0xff << NS_PORT_SHIFT; // VALE destination port
constexpr unsigned NETMAP_MAX_FRAGS = 64;

// netmap_ring.flags.
constexpr uint32_t NR_TIMESTAMP = 0x0002; // set ts on every sync
constexpr uint32_t NR_FORWARD = 0x0004;   // enable NS_FORWARD on this ring

// netmap_if.ni_flags.
constexpr uint32_t NI_PRIV_MEM = 0x1;

struct netmap_slot {
  uint32_t buf_idx;
  uint16_t len;
  uint16_t flags;
  uint64_t ptr;
};

struct netmap_ring {
  int64_t buf_ofs;     // buffers start at (char*)ring + buf_ofs
  uint32_t num_slots;
  uint32_t nr_buf_size;
  uint16_t ringid;
  uint16_t dir;        // 0 tx, 1 rx
  uint32_t head;       // (u) first user slot
  uint32_t cur;        // (u) wakeup point
  uint32_t tail;       // (k) first kernel slot
  uint32_t flags;
  struct timeval ts;   // (k) time of the last sync
  uint64_t offset_mask; // 0 unless opened with NETMAP_REQ_OPT_OFFSETS
  uint64_t buf_align;
  alignas(NM_CACHE_ALIGN) uint8_t sem[128];
  // struct netmap_slot slot[] follows (offset 256)
};

struct netmap_if {
  char ni_name[IFNAMSIZ_];
  uint32_t ni_version;
  uint32_t ni_flags;
  uint32_t ni_tx_rings;      // hardware tx rings
  uint32_t ni_rx_rings;      // hardware rx rings
  uint32_t ni_bufs_head;     // first extra buffer
  uint32_t ni_host_tx_rings; // host (sw) tx rings
  uint32_t ni_host_rx_rings; // host (sw) rx rings
  uint32_t ni_spare1[3];
  // ssize_t ring_ofs[] follows (offset 56): tx hw, tx host, rx hw, rx host, relative to the netmap_if
};

struct nmreq_option {
  uint64_t nro_next;    // pointer to the next option, 0 ends the list
  uint32_t nro_reqtype; // NETMAP_REQ_OPT_*
  uint32_t nro_status;  // (out) 0 or an errno value
  uint64_t nro_size;    // size of variable-size options, 0 otherwise
};

struct nmreq_header {
  uint16_t nr_version; // NETMAP_API
  uint16_t nr_reqtype; // NETMAP_REQ_*
  uint32_t nr_reserved; // must be zero
  char nr_name[NETMAP_REQ_IFNAMSIZ];
  uint64_t nr_options; // pointer to the first nmreq_option
  uint64_t nr_body;    // pointer to the request body (nmreq_register, ...)
};

struct nmreq_register {
  uint64_t nr_offset;   // (out) netmap_if offset in the shared region
  uint64_t nr_memsize;  // (out) size of the shared region
  uint32_t nr_tx_slots; // (in/out) 0 = netmap decides
  uint32_t nr_rx_slots;
  uint16_t nr_tx_rings;
  uint16_t nr_rx_rings;
  uint16_t nr_host_tx_rings;
  uint16_t nr_host_rx_rings;
  uint16_t nr_mem_id;   // (in/out) 0 = netmap decides
  uint16_t nr_ringid;   // ring for NR_REG_ONE_NIC / NR_REG_ONE_SW
  uint32_t nr_mode;     // NR_REG_*
  uint32_t nr_extra_bufs;
  uint64_t nr_flags;    // NR_* below
};

// nmreq_register.nr_flags.
constexpr uint64_t NR_MONITOR_TX = 0x100;
constexpr uint64_t NR_MONITOR_RX = 0x200;
constexpr uint64_t NR_ZCOPY_MON = 0x400;
constexpr uint64_t NR_EXCLUSIVE = 0x800;
constexpr uint64_t NR_RX_RINGS_ONLY = 0x2000;
constexpr uint64_t NR_TX_RINGS_ONLY = 0x4000;
constexpr uint64_t NR_ACCEPT_VNET_HDR = 0x8000;
constexpr uint64_t NR_DO_RX_POLL = 0x10000;
constexpr uint64_t NR_NO_TX_POLL = 0x20000;

// nmreq_register.nr_mode.
enum : uint32_t {
  NR_REG_DEFAULT = 0,
  NR_REG_ALL_NIC = 1,
  NR_REG_SW = 2,
  NR_REG_NIC_SW = 3,
  NR_REG_ONE_NIC = 4,
  NR_REG_PIPE_MASTER = 5, // deprecated: the name says "x{y"
  NR_REG_PIPE_SLAVE = 6,  // deprecated: the name says "x}y"
  NR_REG_NULL = 7,
  NR_REG_ONE_SW = 8,
};

// nmreq_header.nr_reqtype.
enum : uint16_t {
  NETMAP_REQ_REGISTER = 1,
  NETMAP_REQ_PORT_INFO_GET = 2,
  NETMAP_REQ_VALE_ATTACH = 3,
  NETMAP_REQ_VALE_DETACH = 4,
  NETMAP_REQ_VALE_LIST = 5,
  NETMAP_REQ_PORT_HDR_SET = 6,
  NETMAP_REQ_PORT_HDR_GET = 7,
  NETMAP_REQ_VALE_NEWIF = 8,
  NETMAP_REQ_VALE_DELIF = 9,
  NETMAP_REQ_VALE_POLLING_ENABLE = 10,
  NETMAP_REQ_VALE_POLLING_DISABLE = 11,
  NETMAP_REQ_POOLS_INFO_GET = 12,
  NETMAP_REQ_SYNC_KLOOP_START = 13,
  NETMAP_REQ_SYNC_KLOOP_STOP = 14,
  NETMAP_REQ_CSB_ENABLE = 15,
};

// nmreq_option.nro_reqtype.
enum : uint32_t {
  NETMAP_REQ_OPT_EXTMEM = 1,
  NETMAP_REQ_OPT_SYNC_KLOOP_EVENTFDS = 2,
  NETMAP_REQ_OPT_CSB = 3,
  NETMAP_REQ_OPT_SYNC_KLOOP_MODE = 4,
  NETMAP_REQ_OPT_OFFSETS = 5,
};

struct nmreq_port_info_get {
  uint64_t nr_memsize;
  uint32_t nr_tx_slots;
  uint32_t nr_rx_slots;
  uint16_t nr_tx_rings;
  uint16_t nr_rx_rings;
  uint16_t nr_host_tx_rings;
  uint16_t nr_host_rx_rings;
  uint16_t nr_mem_id;
  uint16_t pad[3];
};

struct nmreq_pools_info {
  uint64_t nr_memsize;
  uint16_t nr_mem_id;
  uint16_t pad1[3];
  uint64_t nr_if_pool_offset;
  uint32_t nr_if_pool_objtotal;
  uint32_t nr_if_pool_objsize;
  uint64_t nr_ring_pool_offset;
  uint32_t nr_ring_pool_objtotal;
  uint32_t nr_ring_pool_objsize;
  uint64_t nr_buf_pool_offset;
  uint32_t nr_buf_pool_objtotal;
  uint32_t nr_buf_pool_objsize;
};

struct nmreq_opt_extmem {
  nmreq_option nro_opt;
  uint64_t nro_usrptr; // (in) the user memory
  nmreq_pools_info nro_info; // (in/out)
};

// ioctl numbers, computed like the header does (_IOWR/_IO from <sys/ioctl.h>).
// NB: NIOCCTRL encodes sizeof(nmreq_header) only; the kernel copies the body and options itself.
constexpr unsigned long NIOCCTRL = _IOWR('i', 151, struct nmreq_header);
constexpr unsigned long NIOCTXSYNC = _IO('i', 148);
constexpr unsigned long NIOCRXSYNC = _IO('i', 149);

// Sizes and offsets (values worked out from sys/net/netmap.h's field types, LP64).
static_assert(sizeof(netmap_slot) == 16, "netmap_slot");
static_assert(offsetof(netmap_slot, buf_idx) == 0 && offsetof(netmap_slot, len) == 4 && offsetof(netmap_slot, flags) == 6 && offsetof(netmap_slot, ptr) == 8, "netmap_slot fields");
static_assert(sizeof(struct timeval) == 16, "struct timeval is 16 bytes on LP64 Linux");
static_assert(offsetof(netmap_ring, buf_ofs) == 0 && offsetof(netmap_ring, num_slots) == 8 && offsetof(netmap_ring, nr_buf_size) == 12, "netmap_ring head fields");
static_assert(offsetof(netmap_ring, ringid) == 16 && offsetof(netmap_ring, dir) == 18, "netmap_ring ringid/dir");
static_assert(offsetof(netmap_ring, head) == 20 && offsetof(netmap_ring, cur) == 24 && offsetof(netmap_ring, tail) == 28, "netmap_ring head/cur/tail");
static_assert(offsetof(netmap_ring, flags) == 32 && offsetof(netmap_ring, ts) == 40, "netmap_ring flags/ts");
static_assert(offsetof(netmap_ring, offset_mask) == 56 && offsetof(netmap_ring, buf_align) == 64, "netmap_ring offset_mask/buf_align");
static_assert(offsetof(netmap_ring, sem) == 128 && sizeof(netmap_ring) == 256, "netmap_ring sem, slots at 256");
static_assert(offsetof(netmap_if, ni_name) == 0 && offsetof(netmap_if, ni_version) == 16 && offsetof(netmap_if, ni_flags) == 20, "netmap_if name/version/flags");
static_assert(offsetof(netmap_if, ni_tx_rings) == 24 && offsetof(netmap_if, ni_rx_rings) == 28 && offsetof(netmap_if, ni_bufs_head) == 32, "netmap_if rings");
static_assert(offsetof(netmap_if, ni_host_tx_rings) == 36 && offsetof(netmap_if, ni_host_rx_rings) == 40 && offsetof(netmap_if, ni_spare1) == 44, "netmap_if host rings");
static_assert(sizeof(netmap_if) == 56, "netmap_if: ring_ofs[] at 56");
static_assert(sizeof(nmreq_option) == 24 && offsetof(nmreq_option, nro_reqtype) == 8 && offsetof(nmreq_option, nro_status) == 12 && offsetof(nmreq_option, nro_size) == 16, "nmreq_option");
static_assert(sizeof(nmreq_header) == 88, "nmreq_header");
static_assert(offsetof(nmreq_header, nr_reqtype) == 2 && offsetof(nmreq_header, nr_reserved) == 4 && offsetof(nmreq_header, nr_name) == 8, "nmreq_header fields");
static_assert(offsetof(nmreq_header, nr_options) == 72 && offsetof(nmreq_header, nr_body) == 80, "nmreq_header pointers");
static_assert(sizeof(nmreq_register) == 56, "nmreq_register");
static_assert(offsetof(nmreq_register, nr_memsize) == 8 && offsetof(nmreq_register, nr_tx_slots) == 16 && offsetof(nmreq_register, nr_rx_slots) == 20, "nmreq_register slots");
static_assert(offsetof(nmreq_register, nr_tx_rings) == 24 && offsetof(nmreq_register, nr_rx_rings) == 26 && offsetof(nmreq_register, nr_host_tx_rings) == 28 && offsetof(nmreq_register, nr_host_rx_rings) == 30, "nmreq_register rings");
static_assert(offsetof(nmreq_register, nr_mem_id) == 32 && offsetof(nmreq_register, nr_ringid) == 34 && offsetof(nmreq_register, nr_mode) == 36, "nmreq_register mode");
static_assert(offsetof(nmreq_register, nr_extra_bufs) == 40 && offsetof(nmreq_register, nr_flags) == 48, "nmreq_register flags (4 bytes of padding at 44)");
static_assert(sizeof(nmreq_port_info_get) == 32 && offsetof(nmreq_port_info_get, nr_tx_slots) == 8 && offsetof(nmreq_port_info_get, nr_tx_rings) == 16 && offsetof(nmreq_port_info_get, nr_mem_id) == 24 && offsetof(nmreq_port_info_get, pad) == 26, "nmreq_port_info_get");
static_assert(sizeof(nmreq_pools_info) == 64 && offsetof(nmreq_pools_info, nr_mem_id) == 8 && offsetof(nmreq_pools_info, nr_if_pool_offset) == 16, "nmreq_pools_info");
static_assert(offsetof(nmreq_pools_info, nr_ring_pool_offset) == 32 && offsetof(nmreq_pools_info, nr_buf_pool_offset) == 48 && offsetof(nmreq_pools_info, nr_buf_pool_objsize) == 60, "nmreq_pools_info pools");
static_assert(sizeof(nmreq_opt_extmem) == 96 && offsetof(nmreq_opt_extmem, nro_usrptr) == 24 && offsetof(nmreq_opt_extmem, nro_info) == 32, "nmreq_opt_extmem");
// Linux _IOC: dir(2 bits: 3 = read|write) << 30 | size << 16 | type << 8 | nr.
static_assert(NIOCCTRL == ((3ul << 30) | (88ul << 16) | ('i' << 8) | 151), "NIOCCTRL = 0xC0586997");
static_assert(NIOCTXSYNC == 0x6994 && NIOCRXSYNC == 0x6995, "NIOCTXSYNC/NIOCRXSYNC");

// The guest's view (nmwasm::NetmapRing/NetmapSlot above) is the same layout.
static_assert(sizeof(NetmapSlot) == sizeof(netmap_slot) && sizeof(NetmapRing) == sizeof(netmap_ring), "guest and kernel rings agree");
static_assert(offsetof(NetmapRing, ts_sec) == offsetof(netmap_ring, ts) && offsetof(NetmapRing, sem) == offsetof(netmap_ring, sem), "guest and kernel rings agree");

/** Which rings a register request binds: plain, already validated numbers (host/ports/portname.ts netmapRegisterFields). */
struct RegisterPlan {
  const char* name;   // nr_name: "eth0", "vale0:p1", "eth0{1"; shorter than NETMAP_REQ_IFNAMSIZ
  uint32_t mode;      // NR_REG_*
  uint16_t ringid;    // for NR_REG_ONE_NIC / NR_REG_ONE_SW
  uint64_t flags;     // NR_*
  uint16_t mem_id;    // 0 = netmap decides
  uint32_t tx_slots, rx_slots;  // 0 = netmap decides
  uint16_t tx_rings, rx_rings, host_tx_rings, host_rx_rings;
  uint32_t extra_bufs;  // nr_extra_bufs: 0 but for the allocator donor (donorRequest)
};

/** Fills a NETMAP_REQ_REGISTER header and body for `plan` (zeroing both first); the
 * header's nr_body points at `reg`. Returns false, touching nothing, when the name does
 * not fit nr_name. No I/O. */
inline bool fill_register_request(nmreq_header* hdr, nmreq_register* reg, const RegisterPlan& plan) {
  const size_t len = std::strlen(plan.name);
  if (len == 0 || len >= NETMAP_REQ_IFNAMSIZ) return false;
  std::memset(hdr, 0, sizeof(*hdr));
  std::memset(reg, 0, sizeof(*reg));
  hdr->nr_version = NETMAP_API;
  hdr->nr_reqtype = NETMAP_REQ_REGISTER;
  std::memcpy(hdr->nr_name, plan.name, len);
  hdr->nr_body = reinterpret_cast<uintptr_t>(reg);
  reg->nr_mode = plan.mode;
  reg->nr_ringid = plan.ringid;
  reg->nr_flags = plan.flags;
  reg->nr_mem_id = plan.mem_id;
  reg->nr_tx_slots = plan.tx_slots;
  reg->nr_rx_slots = plan.rx_slots;
  reg->nr_tx_rings = plan.tx_rings;
  reg->nr_rx_rings = plan.rx_rings;
  reg->nr_host_tx_rings = plan.host_tx_rings;
  reg->nr_host_rx_rings = plan.host_rx_rings;
  reg->nr_extra_bufs = plan.extra_bufs;
  return true;
}

/** Fills a NETMAP_REQ_PORT_INFO_GET request for port `name` (ring and slot counts, memory
 * size). Returns false when the name does not fit nr_name. No I/O. */
inline bool fill_port_info_request(nmreq_header* hdr, nmreq_port_info_get* info, const char* name) {
  const size_t len = std::strlen(name);
  if (len == 0 || len >= NETMAP_REQ_IFNAMSIZ) return false;
  std::memset(hdr, 0, sizeof(*hdr));
  std::memset(info, 0, sizeof(*info));
  hdr->nr_version = NETMAP_API;
  hdr->nr_reqtype = NETMAP_REQ_PORT_INFO_GET;
  std::memcpy(hdr->nr_name, name, len);
  hdr->nr_body = reinterpret_cast<uintptr_t>(info);
  return true;
}

/** Fills an extmem option for `size` bytes of user memory at `base` (pool counts and sizes
 * 0 = netmap's defaults) and pushes it on the front of the header's option list. */
inline void push_extmem_option(nmreq_header* hdr, nmreq_opt_extmem* opt, const void* base, uint64_t size) {
  std::memset(opt, 0, sizeof(*opt));
  opt->nro_opt.nro_reqtype = NETMAP_REQ_OPT_EXTMEM;
  opt->nro_usrptr = reinterpret_cast<uintptr_t>(base);
  opt->nro_info.nr_memsize = size;
  opt->nro_opt.nro_next = hdr->nr_options;
  hdr->nr_options = reinterpret_cast<uintptr_t>(opt);
}

/** Offset of ring `index` in netmap_if.ring_ofs[]: hardware tx, host tx, hardware rx, host rx. */
inline size_t ring_ofs_index(const netmap_if& nif, bool rx, bool host, uint32_t index) {
  size_t base = rx ? size_t{nif.ni_tx_rings} + nif.ni_host_tx_rings : 0;
  if (host) base += rx ? nif.ni_rx_rings : nif.ni_tx_rings;
  return base + index;
}

}  // namespace netmap

}  // namespace nmwasm
