// memfd-backed packet memory (see packet_memory.h).
#include "core/packet_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "core/errors.h"

namespace nmwasm {

namespace {

size_t roundPage(size_t v) {
  const size_t page = PacketMemory::pageSize();
  return (v + page - 1) / page * page;
}

/** A zero-filled memfd of `size` bytes; throws NativeError naming `portName`. */
int makeFd(const std::string& portName, size_t size) {
  const std::string memName = "nmwasm:" + portName;
  const int fd = memfd_create(memName.c_str(), MFD_CLOEXEC);
  if (fd < 0) throwSyscallError(portName, "memfd_create", errno, "creating the packet memory", "check the open-file limit (ulimit -n)");
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
    const int err = errno;
    close(fd);
    throwSyscallError(portName, "ftruncate", err, "sizing the packet memory to " + std::to_string(size) + " bytes", "lower --slots or free memory");
  }
  return fd;
}

}  // namespace

size_t PacketMemory::pageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

uint8_t* PacketMemory::mapRange(uint8_t* addr, size_t ofs, size_t len, bool populate, const char* what, const char* advice) const {
  // NB: MAP_POPULATE: every page is allocated and mapped now, so the packet path never takes
  // a page fault (tens of thousands of them on first touch of a large region otherwise). A
  // sparse buffer pool (software ports) skips it: it would allocate every page of the pool.
  const int flags = MAP_SHARED | (addr != nullptr ? MAP_FIXED : 0) | (populate ? MAP_POPULATE : 0);
  void* p = mmap(addr, len, PROT_READ | PROT_WRITE, flags, fd_, static_cast<off_t>(ofs));
  if (p == MAP_FAILED) throwSyscallError(portName_, "mmap", errno, what, advice);
  return static_cast<uint8_t*>(p);
}

PacketMemory::PacketMemory(const std::string& portName, size_t size, bool populate) : portName_(portName), populate_(populate) {
  size_ = roundPage(size);
  fd_ = makeFd(portName, size_);
  try {
    base_ = mapRange(nullptr, 0, size_, populate_, "mapping the packet memory", "lower --slots or raise the memory limits");
  } catch (...) {
    close(fd_);
    throw;
  }
}

PacketMemory::PacketMemory(const std::string& portName, size_t frontSize, std::shared_ptr<PacketMemory> under, size_t underOfs)
    : portName_(portName), under_(std::move(under)), frontSize_(roundPage(frontSize)), underOfs_(underOfs) {
  size_ = under_->size();
  if (frontSize_ == 0 || frontSize_ > underOfs_ || underOfs_ % pageSize() != 0 || underOfs_ >= size_)
    throw NativeError("EINVAL", portName, "", 0, "internal: a layered packet memory needs 0 < front <= pool offset < pool size (report this)");
  fd_ = makeFd(portName, frontSize_);
  // Reserve the whole range first (no access), then place the front and the pool in it.
  void* r = mmap(nullptr, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) {
    const int err = errno;
    close(fd_);
    throwSyscallError(portName, "mmap", err, "reserving the packet memory", "raise the memory limits");
  }
  base_ = static_cast<uint8_t*>(r);
  try {
    mapRange(base_, 0, frontSize_, true, "mapping the port's rings", "raise the memory limits");
    under_->mapRange(base_ + underOfs_, underOfs_, size_ - underOfs_, under_->populate_, "mapping the buffer pool", "raise the memory limits");
  } catch (...) {
    munmap(base_, size_);
    close(fd_);
    throw;
  }
}

PacketMemory::PacketMemory(const std::string& portName, size_t frontSize, int deviceFd, size_t regionBytes)
    : portName_(portName), frontSize_(roundPage(frontSize)), devLen_(roundPage(regionBytes)) {
  size_ = frontSize_ + devLen_;
  devFd_ = fcntl(deviceFd, F_DUPFD_CLOEXEC, 0);
  if (devFd_ < 0) throwSyscallError(portName, "fcntl", errno, "duplicating the device descriptor", "check the open-file limit (ulimit -n)");
  try {
    fd_ = makeFd(portName, frontSize_);
  } catch (...) {
    close(devFd_);
    throw;
  }
  void* r = mmap(nullptr, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (r == MAP_FAILED) {
    const int err = errno;
    close(fd_);
    close(devFd_);
    throwSyscallError(portName, "mmap", err, "reserving the packet memory", "raise the memory limits");
  }
  base_ = static_cast<uint8_t*>(r);
  try {
    mapAt(base_);
  } catch (...) {
    munmap(base_, size_);
    close(fd_);
    close(devFd_);
    throw;
  }
}

PacketMemory::~PacketMemory() {
  if (base_) munmap(base_, size_);
  if (fd_ >= 0) close(fd_);
  if (devFd_ >= 0) close(devFd_);
}

void PacketMemory::mapAt(uint8_t* addr) const {
  const char* what = "mapping the packet memory into the wasm memory";
  const char* advice = "report this: the address was checked";
  if (devFd_ >= 0) {
    // NB: the kernel region is mapped from the device at file offset 0 wherever it lands; netmap
    // keeps the port registered while any mapping of the fd is left (unmapAt ends this one).
    mapRange(addr, 0, frontSize_, true, what, advice);
    void* p = mmap(addr + frontSize_, devLen_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, devFd_, 0);
    if (p == MAP_FAILED) throwSyscallError(portName_, "mmap", errno, "mapping netmap's memory region (" + std::to_string(devLen_) + " bytes of /dev/netmap)", "check that the netmap module is loaded and the port is registered");
    return;
  }
  if (!under_) {
    mapRange(addr, 0, size_, populate_, what, advice);
    return;
  }
  // NB: only this port's front (its rings) and the pool: another port's rings are in its own
  // front, which is mapped nowhere else. [front end, underOfs) stays the caller's own memory.
  mapRange(addr, 0, frontSize_, true, what, advice);
  under_->mapRange(addr + underOfs_, underOfs_, size_ - underOfs_, under_->populate_, what, advice);
}

void PacketMemory::unmapAt(uint8_t* addr) const {
  // NB: MAP_FIXED over the old mapping is atomic: the range is never a hole that
  // another thread's mmap could take, and wasm reads of it keep working (zeros).
  void* p = mmap(addr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
  if (p == MAP_FAILED) throwSyscallError(portName_, "mmap", errno, "replacing the packet memory mapping with zero pages", "free memory and retry");
}

}  // namespace nmwasm
