// PacketMemory: one port's packet memory (rings, verdict arrays, buffers) as a
// memfd region. Native keeps one shared mapping of it (the backend fills it
// there); map() places the same pages inside any WebAssembly.Memory, several
// memories at once if needed (module swap).
//
// A layered memory (software ports) is a port's own small memfd (its rings, slots and
// verdicts) in front of a buffer pool that other ports may share: both mappings show the
// front at offset 0 and the pool's pages from `underOfs` on, so whoever maps one port's
// memory reaches that port's rings and the pool's buffers, never another port's rings.
//
// A device-backed memory (netmap's own memory model) is a small memfd front (the guest
// rings and verdicts) followed by a kernel region mmapped from a device fd (/dev/netmap
// after NETMAP_REQ_REGISTER, file offset 0): every mapping shows the same kernel pages.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace nmwasm {

class PacketMemory {
 public:
  /** Creates a zero-filled region of `size` bytes rounded up to the page size.
   * Throws NativeError (memfd_create/ftruncate/mmap) naming `portName`. */
  PacketMemory(const std::string& portName, size_t size, bool populate = true);
  /** A layered memory: a fresh zero-filled front of `frontSize` bytes (rounded up to the
   * page size, at most `underOfs`) at offset 0, then `under`'s pages [underOfs, size) at
   * the same offsets; size() == under->size(). Bytes [front end, underOfs) are not mapped
   * by native (PROT_NONE) and left to the caller's own pages by mapAt. Throws NativeError. */
  PacketMemory(const std::string& portName, size_t frontSize, std::shared_ptr<PacketMemory> under, size_t underOfs);
  /** A device-backed memory: a fresh zero-filled front of `frontSize` bytes (page rounded)
   * at offset 0, then `regionBytes` of `deviceFd` (from file offset 0, MAP_SHARED) at
   * offset regionOfs() == the rounded front size. Keeps its own dup of `deviceFd` for
   * later mapAt calls. Throws NativeError. */
  PacketMemory(const std::string& portName, size_t frontSize, int deviceFd, size_t regionBytes);
  ~PacketMemory();
  /** Device-backed: where the kernel region starts (0 otherwise). */
  size_t regionOfs() const { return devFd_ >= 0 ? frontSize_ : 0; }
  PacketMemory(const PacketMemory&) = delete;
  PacketMemory& operator=(const PacketMemory&) = delete;

  uint8_t* base() const { return base_; }  // native's own mapping
  size_t size() const { return size_; }     // page multiple
  /** The memory whose buffers this one shows: `under` for a layered memory, else itself.
   * Two ports can swap buffer indices only when their pools are the same. */
  const PacketMemory* pool() const { return under_ ? under_.get() : this; }

  /** Maps the region at `addr` (page aligned, `size()` bytes that the caller owns,
   * e.g. inside a wasm memory) with MAP_SHARED|MAP_FIXED. Throws NativeError. */
  void mapAt(uint8_t* addr) const;
  /** Replaces a mapping made by mapAt with anonymous zero pages (no hole). Throws NativeError. */
  void unmapAt(uint8_t* addr) const;

  static size_t pageSize();

 private:
  /** mmap of fd_ [ofs, ofs+len) at addr (MAP_FIXED when addr is set); throws NativeError. */
  uint8_t* mapRange(uint8_t* addr, size_t ofs, size_t len, bool populate, const char* what, const char* advice) const;

  std::string portName_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
  bool populate_ = true;
  std::shared_ptr<PacketMemory> under_;  // layered: the pool behind the front
  size_t frontSize_ = 0;                 // layered: bytes of the front (fd_)
  size_t underOfs_ = 0;                  // layered: where the pool's pages start
  int devFd_ = -1;                       // device-backed: dup of the device fd; its region follows the front
  size_t devLen_ = 0;                    // device-backed: bytes of the region (page rounded)
};

}  // namespace nmwasm
