// memfd-backed packet memory (see packet_memory.h).
#include "packet_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "errors.h"

namespace nmwasm {

size_t PacketMemory::pageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

PacketMemory::PacketMemory(const std::string& portName, size_t size) : portName_(portName) {
  const size_t page = pageSize();
  size_ = (size + page - 1) / page * page;
  const std::string memName = "nmwasm:" + portName;
  fd_ = memfd_create(memName.c_str(), MFD_CLOEXEC);
  if (fd_ < 0) throwSyscallError(portName, "memfd_create", errno, "creating the packet memory", "check the open-file limit (ulimit -n)");
  if (ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
    int err = errno;
    close(fd_);
    throwSyscallError(portName, "ftruncate", err, "sizing the packet memory to " + std::to_string(size_) + " bytes",
                      "lower --slots or free memory");
  }
  // NB: MAP_POPULATE: every page is allocated and mapped now, so the packet path never takes
  // a page fault (tens of thousands of them on first touch of a large region otherwise).
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd_, 0);
  if (p == MAP_FAILED) {
    int err = errno;
    close(fd_);
    throwSyscallError(portName, "mmap", err, "mapping the packet memory", "lower --slots or raise the memory limits");
  }
  base_ = static_cast<uint8_t*>(p);
}

PacketMemory::~PacketMemory() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
}

void PacketMemory::mapAt(uint8_t* addr) const {
  void* p = mmap(addr, size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, fd_, 0);  // NB: no faults later
  if (p == MAP_FAILED) throwSyscallError(portName_, "mmap", errno, "mapping the packet memory into the wasm memory", "report this: the address was checked");
}

void PacketMemory::unmapAt(uint8_t* addr) const {
  // NB: MAP_FIXED over the old mapping is atomic: the range is never a hole that
  // another thread's mmap could take, and wasm reads of it keep working (zeros).
  void* p = mmap(addr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) throwSyscallError(portName_, "mmap", errno, "replacing the packet memory mapping with zero pages", "free memory and retry");
}

}  // namespace nmwasm
