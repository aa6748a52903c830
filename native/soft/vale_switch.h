// nmwasm's software VALE switch (`valeX:Y` when /dev/netmap is absent): a learning
// Ethernet switch between the software ports of one process. A packet sent from port Y
// teaches the switch that its source MAC lives behind Y; it goes to the port its
// destination MAC was learnt on, or to every other port when the destination is
// broadcast, multicast or unknown (flooding). A unicast packet moves by buffer swap (zero
// copy) when it comes from a software port on the receiving port's buffer pool (one memory
// region @N); otherwise, and when flooded to several ports, it is copied into each.
// A packet is never sent back to the port it came from.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "soft/soft_queue.h"

namespace nmwasm {

/** What a switch port delivers into: its queues (one per ring). Owned by the endpoint. */
struct SoftSink {
  std::vector<std::unique_ptr<SoftQueue>> queues;
};

/** Picks the queue of a multi-ring port: a hash of the addresses (IPv4/IPv6 and L4
 * ports when present, else the MACs) that is the same in both directions of a flow. */
uint32_t softFlowHash(const uint8_t* data, uint32_t len) noexcept;

class ValeSwitch {
 public:
  static constexpr uint32_t kMaxPorts = 64;      // netmap's NM_BDG_MAXPORTS is 254
  static constexpr uint32_t kMacEntries = 4096;  // learnt addresses (power of two)
  static constexpr uint32_t kMaxBatch = 16384;   // the largest ring

  /** The switch named `name` (e.g. "vale0"), created on first use. */
  static std::shared_ptr<ValeSwitch> get(const std::string& name);
  explicit ValeSwitch(std::string name);

  /** Adds a port; returns its index. Throws NativeError ENOSPC naming `port` when full. */
  uint32_t join(const std::string& port, SoftSink* sink);
  /** Removes port `idx`; addresses learnt on it are forgotten. */
  void leave(uint32_t idx) noexcept;
  /** Switches `count` packets sent from port `src` (items with `slot` may move by swap).
   * Returns how many reached at least one port; adds buffer moves to *swapped. */
  uint32_t send(uint32_t src, const SoftItem* items, uint32_t count, uint32_t* swapped) noexcept;

  /** Makes every port's queues readable (a writer left: readers re-check the end of stream). */
  void wakeAll() noexcept;

  WriterGroup group;  // every port's writers: the switch's streams end together
  const std::string& name() const { return name_; }

 private:
  struct PortRow {
    SoftSink* sink = nullptr;
    uint32_t gen = 0;  // bumped at every join of this index: older MAC entries are stale
  };
  struct MacEntry {
    uint64_t key = 0;  // MAC | 1 << 63 when used
    uint32_t port = 0;
    uint32_t gen = 0;
  };
  void learn(uint64_t mac, uint32_t port) noexcept;
  int32_t lookup(uint64_t mac) const noexcept;  // port index, -1 unknown

  std::string name_;
  std::mutex mu_;
  PortRow ports_[kMaxPorts];
  std::vector<MacEntry> macs_;
  // Scratch of one send (under mu_), allocated once.
  std::vector<int32_t> dest_;
  std::vector<uint32_t> hash_;
  std::vector<uint8_t> delivered_;
  std::vector<SoftItem> gather_;
  std::vector<uint32_t> gatherIdx_;
};

}  // namespace nmwasm
