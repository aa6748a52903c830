// Link state of a kernel interface port (AF_PACKET, AF_XDP): up, down (not IFF_UP or no
// carrier, IFF_RUNNING off) or gone (deleted, or moved to another namespace). Looked at
// only on slow paths: the main thread's link monitor (host/engine/engine.ts, every 250 ms through
// portLink) and a ring thread whose poll() reported an error; never per packet.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace nmwasm {

/** Values of Port::checkLink / portLink (mirrors LinkState in host/ports/native.ts). */
enum LinkState : uint8_t { kLinkUp = 0, kLinkDown = 1, kLinkGone = 2 };

class LinkWatch {
 public:
  LinkWatch() = default;
  ~LinkWatch();
  LinkWatch(const LinkWatch&) = delete;
  LinkWatch& operator=(const LinkWatch&) = delete;

  /** Starts watching `ifname` (index `ifindex`); opens the ioctl socket. Never throws: without
   * a socket every check answers from if_indextoname alone (up or gone). */
  void watch(const std::string& ifname, unsigned ifindex) noexcept;
  /** Looks at the interface now (one if_indextoname and one SIOCGIFFLAGS ioctl) and returns
   * the new state. Gone is final: once deleted, an interface of the same name that appears
   * later is another one. Thread-safe; never throws or allocates. */
  LinkState check() noexcept;
  /** The state found by the last check (an atomic load). */
  LinkState state() const noexcept { return static_cast<LinkState>(state_.load(std::memory_order_acquire)); }
  bool gone() const noexcept { return state() == kLinkGone; }
  /** The interface MTU now, 0 if unknown. */
  uint32_t mtu() const noexcept;

 private:
  char ifname_[16] = {};
  unsigned ifindex_ = 0;
  int fd_ = -1;
  std::atomic<uint8_t> state_{kLinkUp};
};

}  // namespace nmwasm
