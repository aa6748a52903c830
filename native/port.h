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

#include "netmap_abi.h"
#include "packet_memory.h"

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

  // ---- lifecycle --------------------------------------------------------
  /** Flushes and closes (an output file is committed). May throw NativeError. */
  void close();
  /** Closes without committing (an output file is removed). */
  void abort() noexcept;
  bool closed() const { return closed_.load(std::memory_order_acquire); }

 protected:
  /** Creates the packet memory for `rings` rings of `numSlots` slots and buffers of
   * `bufSize` bytes, and one shadow per ring (slot i of ring r owns buffer r*numSlots+i).
   * Layout: per ring [header 256][slots 16*N][verdicts N], then buffers page aligned. */
  void setupRings(uint32_t rings, uint32_t numSlots, uint32_t bufSize);
  virtual void onClose() {}
  virtual void onAbort() noexcept {}

 private:
  std::string name_;
  std::string kind_;
  std::unique_ptr<PacketMemory> memory_;
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
};

std::shared_ptr<Port> openGenPort(const GenSpec& spec, const PortOptions& opts);            // port_gen.cc
std::shared_ptr<Port> openPcapPort(const std::string& name, const std::string& path, const PortOptions& opts);  // port_pcap.cc
std::shared_ptr<Port> openPcapOutPort(const std::string& name, const std::string& path);   // port_pcap.cc

}  // namespace nmwasm
