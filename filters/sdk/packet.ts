// Packet: a bounded view of one packet buffer (address, length, slot index).
// Every accessor checks the read against `len` and returns a sentinel on a short
// packet (-1 for numbers, false for has()); nothing ever reads at or past `len`, so
// the bytes after the packet (undefined by the ABI) cannot change any result.
import { slotBuf, slotLen } from "./abi";

@final export class Packet {
  /** Address of the first byte of the packet in linear memory. */
  ptr: usize = 0;
  /** Packet length in bytes. */
  len: u32 = 0;
  /** Slot index in its ring. */
  slot: u32 = 0;

  /** Points this view at slot `i` of `ring`. */
  // @ts-ignore: decorator
  @inline setSlot(ring: usize, i: u32): void {
    this.ptr = slotBuf(ring, i);
    this.len = slotLen(ring, i);
    this.slot = i;
  }

  /** Points this view at `len` bytes at `ptr`. */
  // @ts-ignore: decorator
  @inline set(ptr: usize, len: u32, slot: u32): void {
    this.ptr = ptr; this.len = len; this.slot = slot;
  }

  /** True when bytes [off, off + n) lie inside the packet. */
  // @ts-ignore: decorator
  @inline has(off: i32, n: i32): bool {
    return off >= 0 && n >= 0 && <u64>off + <u64>n <= <u64>this.len;
  }

  /** Byte at `off`, or -1 past the end. */
  u8(off: i32): i32 {
    return this.has(off, 1) ? <i32>load<u8>(this.ptr + <usize>off) : -1;
  }

  /** Big-endian (network order) u16 at `off`, or -1 when short. */
  be16(off: i32): i32 {
    if (!this.has(off, 2)) return -1;
    const p = this.ptr + <usize>off;
    return (<i32>load<u8>(p) << 8) | <i32>load<u8>(p, 1);
  }

  /** Big-endian u32 at `off`, or -1 when short. */
  be32(off: i32): i64 {
    if (!this.has(off, 4)) return -1;
    const p = this.ptr + <usize>off;
    return (<i64>load<u8>(p) << 24) | (<i64>load<u8>(p, 1) << 16) | (<i64>load<u8>(p, 2) << 8) | <i64>load<u8>(p, 3);
  }

  /** The 4 bytes at `off` exactly as stored (network order, for comparisons
   *  against constants converted once); 0 when short — check has() first. */
  raw32(off: i32): u32 {
    return this.has(off, 4) ? load<u32>(this.ptr + <usize>off) : 0;
  }

  /** The 8 bytes at `off` exactly as stored; 0 when short — check has() first. */
  raw64(off: i32): u64 {
    return this.has(off, 8) ? load<u64>(this.ptr + <usize>off) : 0;
  }

  /** Copies `n` bytes at `off` to `dst`; false (and copies nothing) when short. */
  copyTo(off: i32, n: i32, dst: usize): bool {
    if (!this.has(off, n)) return false;
    memory.copy(dst, this.ptr + <usize>off, <usize>n);
    return true;
  }

  /** Writes byte `v` at `off`; false when `off` is past the end. */
  setU8(off: i32, v: u32): bool {
    if (!this.has(off, 1)) return false;
    store<u8>(this.ptr + <usize>off, <u8>v);
    return true;
  }

  /** Writes big-endian u16 `v` at `off`; false when short. */
  setBe16(off: i32, v: u32): bool {
    if (!this.has(off, 2)) return false;
    const p = this.ptr + <usize>off;
    store<u8>(p, <u8>(v >> 8)); store<u8>(p, <u8>v, 1);
    return true;
  }
}

/** Byte-swaps a 16-bit value; for converting constants to the order load<u16> yields.
 *  NB: wasm has no bswap instruction; apply this to constants (folded at compile time)
 *  or once per packet, never inside a per-rule loop. */
// @ts-ignore: decorator
@inline export function swap16(x: u32): u32 { return ((x & 0xFF) << 8) | ((x >> 8) & 0xFF); }

/** Byte-swaps a 32-bit value (see swap16). */
// @ts-ignore: decorator
@inline export function swap32(x: u32): u32 {
  return (x << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | (x >>> 24);
}
