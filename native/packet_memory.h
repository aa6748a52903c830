// PacketMemory: one port's packet memory (rings, verdict arrays, buffers) as a
// memfd region. Native keeps one shared mapping of it (the backend fills it
// there); map() places the same pages inside any WebAssembly.Memory, several
// memories at once if needed (module swap).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace nmwasm {

class PacketMemory {
 public:
  /** Creates a zero-filled region of `size` bytes rounded up to the page size.
   * Throws NativeError (memfd_create/ftruncate/mmap) naming `portName`. */
  PacketMemory(const std::string& portName, size_t size);
  ~PacketMemory();
  PacketMemory(const PacketMemory&) = delete;
  PacketMemory& operator=(const PacketMemory&) = delete;

  uint8_t* base() const { return base_; }  // native's own mapping
  size_t size() const { return size_; }     // page multiple

  /** Maps the region at `addr` (page aligned, `size()` bytes that the caller owns,
   * e.g. inside a wasm memory) with MAP_SHARED|MAP_FIXED. Throws NativeError. */
  void mapAt(uint8_t* addr) const;
  /** Replaces a mapping made by mapAt with anonymous zero pages (no hole). Throws NativeError. */
  void unmapAt(uint8_t* addr) const;

  static size_t pageSize();

 private:
  std::string portName_;
  int fd_ = -1;
  uint8_t* base_ = nullptr;
  size_t size_ = 0;
};

}  // namespace nmwasm
