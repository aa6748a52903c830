// Link state of a kernel interface (see link_watch.h).
#include "ports/link_watch.h"

#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace nmwasm {

LinkWatch::~LinkWatch() {
  if (fd_ >= 0) ::close(fd_);
}

void LinkWatch::watch(const std::string& ifname, unsigned ifindex) noexcept {
  std::strncpy(ifname_, ifname.c_str(), sizeof ifname_ - 1);
  ifindex_ = ifindex;
  if (fd_ < 0) fd_ = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
}

LinkState LinkWatch::check() noexcept {
  if (gone() || ifindex_ == 0) return state();
  // Deleted (or moved to another namespace): the index no longer names our interface.
  // NB: an index is reused only after a wrap of the kernel's counter, and then under
  // another name as a rule: the name check catches that too.
  char name[IF_NAMESIZE] = {};
  LinkState now = kLinkUp;
  if (if_indextoname(ifindex_, name) == nullptr || std::strncmp(name, ifname_, sizeof name) != 0) {
    now = kLinkGone;
  } else if (fd_ >= 0) {
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, ifname_, sizeof ifr.ifr_name);
    if (ioctl(fd_, SIOCGIFFLAGS, &ifr) == 0) {
      const bool up = (ifr.ifr_flags & IFF_UP) != 0 && (ifr.ifr_flags & IFF_RUNNING) != 0;
      now = up ? kLinkUp : kLinkDown;
    } else if (errno == ENODEV || errno == ENXIO) {
      now = kLinkGone;
    }
  }
  uint8_t expected = state_.load(std::memory_order_acquire);
  // Gone is final even when two threads check at once.
  while (expected != kLinkGone && !state_.compare_exchange_weak(expected, now, std::memory_order_acq_rel)) {
  }
  return state();
}

uint32_t LinkWatch::mtu() const noexcept {
  if (fd_ < 0) return 0;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, ifname_, sizeof ifr.ifr_name);
  if (ioctl(fd_, SIOCGIFMTU, &ifr) != 0) return 0;
  return ifr.ifr_mtu > 0 ? static_cast<uint32_t>(ifr.ifr_mtu) : 0;
}

}  // namespace nmwasm
