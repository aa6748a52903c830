// The one port interface every backend implements (gen, pcap, pcap-out; later
// AF_XDP, AF_PACKET, netmap, pipes).
//
// A port has `rings()` input rings in one PacketMemory. Each ring has a host-
// private RingShadow (head, tail, per-slot buffer/len/timestamp) that lives in
// the port, not in a worker, so a ring worker can be replaced without closing
// the port. The backend fills free shadow slots with packets (rxsync) and gets
// completed slots back (rxrelease). A port that can send implements transmit.
//
// Threading: rxsync/rxrelease of a ring are called with that ring's shadow
// mutex held (one caller at a time per ring). transmit may be called from
// several rings' threads at once: the backend serialises it.
// Per-packet methods (rxsync, rxrelease, transmit) never throw or allocate.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "netmap/netmap_abi.h"
#include "core/packet_memory.h"

namespace nmwasm {

/** Host-private copy of one slot (authoritative; the guest's copy is rewritten from it). */
struct ShadowSlot {
  uint32_t bufIdx;
  uint16_t len;      // captured length (bytes in the buffer)
  uint16_t flags;
  uint32_t origLen;  // original wire length (>= len when the capture was truncated)
  uint32_t reserved;
  uint64_t tsNs;     // receive timestamp, ns since the Unix epoch
};

/** Where one ring lives in the port's packet memory. */
struct RingGeometry {
  uint64_t ringOfs;     // netmap_ring header
  uint64_t verdictOfs;  // num_slots verdict bytes
  uint64_t buffersOfs;  // buffer 0 of the port (buf_ofs = buffersOfs - ringOfs)
  uint32_t numSlots;
  uint32_t bufSize;
};

/** Host state of one ring; guarded by `mu`. Slots [head, tail) are filled; the first
 * `delivered` of them are the batch the filter currently sees. */
struct RingShadow {
  std::mutex mu;
  RingGeometry geo{};
  std::vector<ShadowSlot> slots;
  uint32_t head = 0;
  uint32_t tail = 0;
  uint32_t delivered = 0;
  bool exhausted = false;        // finite source: the backend has no more packets
  uint64_t generation = 0;       // bumped at every attach; older handles are stale
  bool tracing = false;
  std::vector<uint8_t> trace;    // final verdicts in packet order, when tracing

  uint32_t filled() const { return (tail + geo.numSlots - head) % geo.numSlots; }
};

/** One packet handed to an output port. */
struct TxPacket {
  const uint8_t* data;
  uint32_t len;
  uint32_t origLen;
  uint64_t tsNs;
};

/** A DROP or PASS the filter marked as valid for the packet's whole flow (kVerdictFlow). */
struct FlowVerdict {
  const uint8_t* data;  // the packet as the filter left it
  uint32_t len;
  uint8_t verdict;      // kVerdictDrop or kVerdictPass
};

/** One packet handed to an output port that shares the sender's packet memory: the
 * output may take the slot's buffer and put a free one of its own in `slot->bufIdx`
 * (netmap's zero-copy forwarding with NS_BUF_CHANGED). */
struct SwapPacket {
  ShadowSlot* slot;
  uint32_t len;
};

class Port {
 public:
  Port(std::string name, std::string kind) : name_(std::move(name)), kind_(std::move(kind)) {}
  virtual ~Port() = default;
  Port(const Port&) = delete;
  Port& operator=(const Port&) = delete;

  const std::string& name() const { return name_; }
  const std::string& kind() const { return kind_; }
  uint32_t rings() const { return static_cast<uint32_t>(shadows_.size()); }
  size_t memSize() const { return memory_ ? memory_->size() : 0; }
  /** The port's packet memory. A software port's is layered: its own rings in front of a
   * buffer pool that other software ports may share (memory()->pool()). */
  PacketMemory* memory() const { return memory_.get(); }
  RingShadow& shadow(uint32_t ring) { return *shadows_[ring]; }
  /** Native address of buffer `bufIdx` (trusted index). */
  uint8_t* bufferAt(const RingGeometry& geo, uint32_t bufIdx) const {
    return memory_->base() + geo.buffersOfs + static_cast<uint64_t>(bufIdx) * geo.bufSize;
  }
  NetmapRing* guestRing(const RingGeometry& geo) const { return reinterpret_cast<NetmapRing*>(memory_->base() + geo.ringOfs); }
  uint8_t* guestVerdicts(const RingGeometry& geo) const { return memory_->base() + geo.verdictOfs; }

  /** Packets of a finite source, 0 if unknown or unbounded. */
  virtual uint64_t expected() const { return 0; }

  // ---- input side -------------------------------------------------------
  /** Fills up to `count` free slots of `ring` from slot `first` on (mod num_slots):
   * writes each packet into bufferAt(slot.bufIdx) (a backend that owns buffer
   * indices may set bufIdx first) and sets len, origLen, tsNs, flags. Returns the
   * number filled (contiguous from `first`); sets *exhausted once a finite source
   * has no more packets. */
  virtual uint32_t rxsync(uint32_t ring, uint32_t first, uint32_t count, bool* exhausted) noexcept {
    *exhausted = true;
    return 0;
  }
  /** Gives `count` completed slots from `first` back to the backend (kernel ports
   * return the buffers; software ports reuse them in place). */
  virtual void rxrelease(uint32_t ring, uint32_t first, uint32_t count) noexcept {}

  // ---- output side ------------------------------------------------------
  virtual bool canTransmit() const { return false; }
  /** Sends `count` packets (bytes are copied before return). Returns the number accepted. */
  virtual uint32_t transmit(const TxPacket* pkts, uint32_t count) noexcept { return 0; }
  /** Whether transmitSwap works for packets of `from` (both share one packet memory). */
  virtual bool canSwapWith(const Port& from) const { return false; }
  /** Zero-copy send of `count` slots of a port accepted by canSwapWith: each packet's buffer
   * either moves to this port (the slot gets a free buffer in exchange) or is copied.
   * Returns the number accepted; *swapped = how many of them moved without a copy. */
  virtual uint32_t transmitSwap(const SwapPacket* pkts, uint32_t count, uint32_t* swapped) noexcept {
    *swapped = 0;
    return 0;
  }

  // ---- live (kernel) ports ----------------------------------------------
  /** A descriptor that polls readable (POLLIN) when rxsync of `ring` may find packets;
   * -1 = none (software ports: never wait, a sync always makes progress). The ring
   * worker's idle wait (RingHandle.wait) polls it; the port owns and closes it. */
  virtual int pollFd(uint32_t ring) const { return -1; }
  /** HOST verdict: hands `count` packets of `ring` to the host stack (AF_XDP: re-inject,
   * netmap: NS_FORWARD). Returns the number accepted. Default: none (counted only; on
   * AF_PACKET the kernel already has its own copy). Never throws or allocates. */
  virtual uint32_t toHost(uint32_t ring, const TxPacket* pkts, uint32_t count) noexcept { return 0; }
  /** Whether PASS without an output continues to the host stack through toHost (AF_XDP,
   * netmap hardware rings); false: the kernel keeps its own copy anyway (AF_PACKET) or
   * there is no host stack (files, generator, software ports), so PASS is counted only. */
  virtual bool passesToHost() const { return false; }
  /** Whether the port applies flow verdicts in the kernel (cacheFlows): AF_XDP inputs whose
   * XDP program looks flows up (not a bridge), with a flow TTL > 0. */
  virtual bool cachesFlows() const { return false; }
  /** Records `count` flow verdicts of `ring`'s batch for the kernel to apply to the rest of
   * each flow (AF_XDP: one batched map update). Once per batch, only when cachesFlows().
   * Never throws or allocates. */
  virtual void cacheFlows(uint32_t ring, const FlowVerdict* flows, uint32_t count) noexcept {}
  /** Forgets every flow verdict recorded so far (a ring was attached: a new instance, maybe of
   * another module, serves). Never throws. */
  virtual void invalidateFlows() noexcept {}
  /** Packets the kernel decided from recorded flow verdicts without handing them to the port
   * (dropped, passed to the stack), since open. Main thread, slow path. Default 0. */
  virtual void kernelVerdicts(uint64_t* drop, uint64_t* pass) const noexcept { *drop = 0, *pass = 0; }
  /** One-line warnings for the start-up messages (offloads that merge frames, ...). */
  virtual std::vector<std::string> notices() const { return {}; }
  /** Looks at the port's interface now and returns its LinkState (link_watch.h): up, down
   * or gone (deleted: the port then ends, syncRing returns -1). Slow path: the main
   * thread's link monitor and poll errors only. Never throws. Default: always up. */
  virtual uint8_t checkLink() noexcept { return 0; }
  /** True once checkLink found the interface deleted (an atomic load, once per sync). */
  virtual bool linkGone() const noexcept { return false; }
  /** poll() on pollFd(ring) reported POLLERR/POLLHUP/POLLNVAL: clear the socket error and look
   * at the link (ring thread, slow path). Never throws. */
  virtual void pollError(uint32_t ring) noexcept {}
  /** Frames the kernel dropped because they did not fit a buffer (AF_XDP frames over 1792
   * bytes), since open; the main thread reads it at the end. Default 0. */
  virtual uint64_t oversizeDrops() const noexcept { return 0; }
  /** Throws the NativeError that ended this port, if any (an output file that could not be
   * written, a capture that changed while it was read); nothing otherwise. syncRing calls
   * it once per batch for each output, and for the input once its ring is drained. */
  virtual void throwIfFailed() {}

  // ---- lifecycle --------------------------------------------------------
  /** Flushes and closes (an output file is committed). May throw NativeError. */
  void close();
  /** Closes without committing (an output file is removed). */
  void abort() noexcept;
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 protected:
  /** Creates the packet memory for `rings` rings of `numSlots` slots and buffers of
   * `bufSize` bytes, and one shadow per ring (slot i of ring r owns buffer r*numSlots+i).
   * Layout: per ring [header 256][slots 16*N][verdicts N], then buffers page aligned.
   * `totalBuffers` (0 = rings*numSlots) sizes a larger pool for a backend that hands
   * buffers around itself (AF_XDP's UMEM); it then sets each slot's bufIdx in rxsync. */
  void setupRings(uint32_t rings, uint32_t numSlots, uint32_t bufSize, uint64_t totalBuffers = 0);
  /** For software pipes/VALE: adopts `memory` (layered over a buffer pool) and one shadow per
   * geometry; the caller sets every shadow slot's bufIdx (buffers it allocated there). */
  void adoptRings(std::shared_ptr<PacketMemory> memory, const std::vector<RingGeometry>& geos);
  virtual void onClose() {}
  virtual void onAbort() noexcept {}

 private:
  std::string name_;
  std::string kind_;
  std::shared_ptr<PacketMemory> memory_;
  std::vector<std::unique_ptr<RingShadow>> shadows_;
  std::atomic<bool> closed_{false};
};

// ---- backends (one file each) ----------------------------------------------

struct PortOptions {
  uint32_t numSlots;  // power of two, 64..16384
  uint32_t bufSize;   // 2048
};

struct GenSpec {
  std::string name;
  uint64_t count;  // 0 = unbounded
  uint32_t sizeMin, sizeMax;  // on-wire incl. FCS
  bool imix;
  uint32_t flows;
  uint32_t mix[7];  // tcp4 udp4 icmp4 tcp6 udp6 icmp6 arp
  uint32_t seed;
  uint64_t pps;    // paced rate over all rings, 0 = as fast as the rings take packets
  bool seq;        // the last 8 bytes of a frame: ring << 56 | the ring's frame number, big-endian
  uint32_t rings;  // 1..64; a flow's ring is a hash of its 5-tuple
};

/** A kernel interface port (AF_PACKET `packet:`, AF_XDP `xdp:`), validated by
 * host/ports/portspec.ts (the interface exists and is up, queue < its RX queues); mirrors
 * LivePortSpec in host/ports/native.ts. */
struct LivePortSpec {
  std::string name;    // the port name as written, for messages
  std::string ifname;  // 1..15 chars
  int32_t queue;       // the one queue of IF-N, -1 = every queue
  uint32_t rings;      // input rings (ring workers) when queue == -1; 1 otherwise; 0 = output only
  bool rx;             // open the receive side (an input port)
  bool tx;             // open the transmit side (an output port: --to, --out)
  uint32_t rxSlots;    // @conf rx-slots, 0 = backend default
  uint32_t txSlots;    // @conf tx-slots, 0 = backend default
  std::string xdpBind;    // AF_XDP: "zerocopy", "copy" or "" (driver decides)
  std::string xdpAttach;  // AF_XDP: "native", "skb" or "" (driver decides)
  bool xdpKernelClasses;  // AF_XDP input: ARP/ICMP/ICMPv6 stay with the kernel (false: a bridge takes every frame)
  uint32_t flowTtlMs;     // AF_XDP input: how long a flow verdict holds in the kernel (--flow-ttl), 0 = never cached
  bool busyPoll;          // AF_XDP: SO_PREFER_BUSY_POLL + SO_BUSY_POLL on the sockets (--busy-poll)
};

std::shared_ptr<Port> openPacketPort(const LivePortSpec& spec, const PortOptions& opts);  // port_packet.cc
/** port_xdp.cc; built only when NMWASM_HAVE_XDP is defined (binding.gyp). */
std::shared_ptr<Port> openXdpPort(const LivePortSpec& spec, const PortOptions& opts);

std::shared_ptr<Port> openGenPort(const GenSpec& spec, const PortOptions& opts);            // port_gen.cc
std::shared_ptr<Port> openPcapPort(const std::string& name, const std::string& path, const PortOptions& opts);  // port_pcap.cc
std::shared_ptr<Port> openPcapOutPort(const std::string& name, const std::string& path);   // port_pcap.cc

/** A software pipe end (`NAME{ID`, `NAME}ID`) or VALE port (`valeX:Y`) of nmwasm's own
 * switch, validated by host/ports/portspec.ts; mirrors SoftPortSpec in host/ports/native.ts. */
struct SoftPortSpec {
  std::string name;      // the port name as written, for messages
  std::string endpoint;  // "NAME{ID" / "NAME}ID" / "valeX:Y" (ring selector and flags stripped)
  std::string peer;      // pipes: the other end; VALE: ""
  std::string sw;        // VALE: the switch ("vale0"); pipes: ""
  int32_t ring;          // -N: the one ring an input reads; -1 = every ring
  uint32_t rings;        // @conf rings of the endpoint, 0 = default (1)
  uint32_t slots;        // @conf slots, 0 = default (1024)
  bool exclusive;        // /x: no other input may read the endpoint
  uint32_t memId;        // @N: the endpoint's buffers in shared memory region N (zero copy); 0 = a private pool
  bool rx;               // an input (--port)
  bool tx;               // an output (--to, --out)
};
std::shared_ptr<Port> openSoftPort(const SoftPortSpec& spec);  // port_soft.cc

}  // namespace nmwasm
