// nmwasm's XDP program on one interface (AF_XDP backend, see docs/PORTS.md "AF_XDP").
//
// The program is built here from BPF instructions (no clang needed at build time)
// and loaded with libbpf:
//   ARP, ICMPv4 and ICMPv6 frames        -> XDP_PASS (the kernel answers them), unless
//                                           the ports take every frame (a bridge)
//   every other frame of queue q         -> the AF_XDP socket of queue q (XSKMAP)
//   queues without a socket              -> XDP_PASS (they stay with the kernel)
//   inject's template frames (60 bytes,  -> filled with a staged packet, XDP_PASS: the
//     starting with a 128-bit secret)       packet goes up the stack (XdpInterface::inject)
//   skb mode: a frame carrying this CPU's -> XDP_PASS (a re-injected frame meeting the
//     re-injection nonce in its metadata    program again must not go back to the filter)
//   an IPv4/IPv6 frame whose flow has a   -> XDP_DROP / XDP_PASS, counted per queue in a
//     live flow verdict (the filter set       per-CPU array: the flow's steady traffic
//     kVerdictFlow, recordFlows)               never reaches user space (docs/ABI.md "Flow verdicts")
// It is attached through a BPF link owned by this process: whatever way the
// process ends (exit, signal, SIGKILL, crash) the kernel closes the link and
// detaches the program. A program named "nmwasm_<pid>" left attached the old way
// (netlink) by a process that no longer runs is detached at the next open.
//
// One XdpInterface per interface per process, shared by every port on it.
// Only compiled with NMWASM_HAVE_XDP (libxdp and libbpf found at configure time).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "ports/port.h"  // TxPacket

namespace nmwasm {

enum class XdpAttachMode { Auto, Native, Skb };

/** Key of the flow-verdict map: IPv4 addresses in the first 4 bytes of src/dst (the rest 0);
 * ports (source, destination, network order) for TCP, UDP, SCTP and UDP-Lite, else 0
 * (a 3-tuple). Built the same way by the XDP program and by XdpInterface::flowKey. */
struct XdpFlowKey {
  uint8_t family;  // 4 or 6
  uint8_t proto;   // IPv4 protocol / IPv6 next header
  uint16_t zero;
  uint8_t ports[4];
  uint8_t src[16];
  uint8_t dst[16];
};
static_assert(sizeof(XdpFlowKey) == 40, "XdpFlowKey is the BPF map key");

/** Value of the flow-verdict map. */
struct XdpFlowValue {
  uint32_t verdict;     // 0 = XDP_DROP, 1 = XDP_PASS
  uint32_t generation;  // valid while it equals the interface's generation (invalidateFlows)
  uint64_t expiresNs;   // CLOCK_MONOTONIC (bpf_ktime_get_coarse_ns) after which the filter judges again
  uint64_t refreshNs;   // after this (half the TTL), ONE packet goes to the filter, which may renew
                        // the verdict before it expires; the program moves it to expiresNs
};
static_assert(sizeof(XdpFlowValue) == 24, "XdpFlowValue is the BPF map value");

class XdpInterface {
 public:
  ~XdpInterface();
  XdpInterface(const XdpInterface&) = delete;
  XdpInterface& operator=(const XdpInterface&) = delete;

  int ifindex() const { return ifindex_; }
  bool native() const { return native_; }
  /** Whether ARP/ICMP/ICMPv6 stay with the kernel (else every frame goes to the sockets). */
  bool kernelClasses() const { return kernelClasses_; }
  /** Points queue `queue`'s entry of the XSKMAP at socket `xskFd` (trusted queue < queues). Throws NativeError. */
  void bindQueue(const std::string& port, uint32_t queue, int xskFd);
  /** Hands one frame to the kernel stack of this interface as if it had arrived on
   * `queue` (BPF_PROG_RUN in live-frame mode with a program that returns XDP_PASS).
   * Returns false if the kernel refused it. NB: one system call per frame; meant for
   * the filter's HOST verdict, not for bulk traffic. Never throws. */
  bool reinject(uint32_t queue, const uint8_t* data, uint32_t len) const noexcept;
  /** Hands `count` packets of `queue` to the kernel stack of this interface (PASS without an
   * output, HOST), as if they had just arrived there; returns how many the kernel took.
   * Batched when batched(): the packets are copied into this queue's part of a staging map
   * mapped into this process (no system call), then one BPF_PROG_RUN in live-frame mode
   * (BPF_F_TEST_XDP_LIVE_FRAMES) runs the interface's own program over up to kBatch
   * template frames; the program recognises the template by a 128-bit secret, fills each
   * frame with the next staged packet and returns XDP_PASS. NB: the program is the one
   * attached to the interface, so the kernel's XDP dispatcher already holds it and the run
   * costs no synchronize_rcu (a separate program would cost two per call). Otherwise one
   * reinject (one system call) a packet. One caller per queue at a time; never throws or
   * allocates; packets shorter than 14 bytes are refused, longer than kMaxLen cut. */
  uint32_t inject(uint32_t queue, const TxPacket* pkts, uint32_t count) const noexcept;
  bool batched() const { return stage_ != nullptr; }

  /** Whether the program looks flow verdicts up (not a bridge: kernelClasses). */
  bool flowPath() const { return flowFd_ >= 0; }
  /** The flow of an Ethernet frame as the XDP program sees it; false when the program never
   * looks it up (not IPv4/IPv6, VLAN-tagged, ICMP, an IPv4 fragment, IPv6 extension headers,
   * a header cut short). Never throws. */
  static bool flowKey(const uint8_t* frame, uint32_t len, XdpFlowKey* key) noexcept;
  /** Writes the flow verdicts of one batch into the LRU map, valid for `ttlNs` from now under
   * the current generation: ONE bpf(BPF_MAP_UPDATE_BATCH) system call (one a flow if this
   * kernel refuses batches). `keys` and `values` are the caller's scratch of `count` entries.
   * Returns how many flows were written. Never throws or allocates. */
  uint32_t recordFlows(const FlowVerdict* flows, uint32_t count, uint64_t ttlNs, XdpFlowKey* keys, XdpFlowValue* values) const noexcept;
  /** Makes every flow verdict written so far invalid (a new generation: one map update).
   * Never throws. */
  void invalidateFlows() noexcept;
  /** Packets of `queue` the program dropped / passed from flow verdicts, since the interface's
   * program was attached (sums the per-CPU counters: slow path). Never throws. */
  void flowCounts(uint32_t queue, uint64_t* drop, uint64_t* pass) const noexcept;

  /** The verifier's reasons when the program with the flow path was refused ("" if not). */
  const std::string& flowRefusal() const { return flowLog_; }
  static constexpr uint32_t kFlowEntries = 65536;  // LRU map size: flows remembered at once

  static constexpr uint32_t kBatch = 256;      // packets per BPF_PROG_RUN (the kernel's maximum batch_size)
  static constexpr uint32_t kRecord = 2048;    // staging map element: u32 len at +0, bytes at +8
  static constexpr uint32_t kMaxLen = 1792;    // the longest packet (an AF_XDP frame's data)
  static constexpr uint32_t kTemplateLen = 60; // the frame a BPF_PROG_RUN starts from

 private:
  friend std::shared_ptr<XdpInterface> acquireXdpInterface(const std::string&, const std::string&, uint32_t, XdpAttachMode, bool);
  XdpInterface() = default;
  /** Creates and maps the staging map and the secret; leaves stage_ null if it cannot. */
  void setupStaging() noexcept;
  /** Loads the interface's program (with the injection path while stage_ is set, dropping it
   * if this kernel refuses it; with the guard when `skb`). Throws NativeError. */
  int loadRedirect(const std::string& port, const std::string& name, bool skb);
  /** Closes the flow maps: the program runs without the flow path. */
  void dropFlowPath() noexcept;
  std::string ifname_;
  int ifindex_ = 0;
  uint32_t queues_ = 0;
  bool native_ = false;
  bool kernelClasses_ = true;
  int mapFd_ = -1;
  int progFd_ = -1;
  int linkFd_ = -1;
  int passFd_ = -1;  // the XDP_PASS program used by reinject
  int guardFd_ = -1; // per-CPU {nonce, pending} that lets re-injected frames through the program in skb mode
  int stageFd_ = -1; // staging array: per queue q, element q*(kBatch+1) = counter, then kBatch records
  uint8_t* stage_ = nullptr;  // the staging map, mmap()ed (null: not batched)
  size_t stageBytes_ = 0;
  uint64_t secret_[2] = {0, 0};  // marks the template frames of inject's runs
  int flowFd_ = -1;       // LRU hash XdpFlowKey -> XdpFlowValue
  int flowGenFd_ = -1;    // array[1] of {u32 generation, u32 active}: active = 0 while no verdict of this generation is recorded
  int flowCountFd_ = -1;  // per-CPU array[queues * 2] of u64: queue*2 + 0 dropped, + 1 passed
  std::atomic<uint32_t> flowGen_{1};
  mutable std::atomic<bool> flowActive_{false};  // the program's active flag, as last written
  mutable std::mutex flowMu_;                    // orders the writes of the generation map
  std::string flowLog_;   // the verifier's reasons when the fullest program was refused
};

/** The process's XdpInterface for `ifname` (attached on first use, in `mode`; Auto tries
 * native first, then generic/SKB). `queues` = the interface's RX queue count;
 * `kernelClasses`: ARP/ICMP/ICMPv6 stay with the kernel (false: every frame to the
 * sockets). Cleans a stale nmwasm program of a dead process first; refuses (EBUSY) an
 * interface that has another XDP program, or one attached by this process in another
 * mode or with the other kernelClasses. Throws NativeError. */
std::shared_ptr<XdpInterface> acquireXdpInterface(const std::string& port, const std::string& ifname, uint32_t queues,
                                                  XdpAttachMode mode, bool kernelClasses);

}  // namespace nmwasm
