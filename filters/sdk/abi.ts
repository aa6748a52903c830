// nmwasm ring ABI v1 (docs/ABI.md): memory layout constants, netmap_ring / netmap_slot
// offsets, verdict values, and the host imports. Everything here is a compile-time
// constant or an inlined load, so using it costs nothing per packet.

// ---- linear memory layout (ABI section 1) ----
export const NMWASM_CONFIG_BASE: usize = 0x10000;
export const NMWASM_CONFIG_MAX: usize = 0xF0000;
export const NMWASM_WINDOW_BASE: usize = 0x100000;
export const NMWASM_WINDOW_END: usize = 0x4000000;
export const NMWASM_DATA_BASE: usize = 0x4000000;

// ---- struct netmap_ring (ABI section 2) ----
export const RING_BUF_OFS: usize = 0;      // i64
export const RING_NUM_SLOTS: usize = 8;    // u32
export const RING_NR_BUF_SIZE: usize = 12; // u32
export const RING_RINGID: usize = 16;      // u16
export const RING_DIR: usize = 18;         // u16: 0 = tx, 1 = rx
export const RING_HEAD: usize = 20;        // u32
export const RING_CUR: usize = 24;         // u32
export const RING_TAIL: usize = 28;        // u32
export const RING_FLAGS: usize = 32;       // u32
export const RING_TS_SEC: usize = 40;      // i64
export const RING_TS_USEC: usize = 48;     // i64
export const RING_SLOTS: usize = 256;      // first struct netmap_slot

export const RING_DIR_TX: u32 = 0;
export const RING_DIR_RX: u32 = 1;

// ---- struct netmap_slot ----
export const SLOT_SIZE: usize = 16;
export const SLOT_BUF_IDX: usize = 0; // u32
export const SLOT_LEN: usize = 4;     // u16
export const SLOT_FLAGS: usize = 6;   // u16
export const SLOT_PTR: usize = 8;     // u64: receive timestamp, ns since the Unix epoch

// ---- verdicts (ABI section 3) ----
export const VERDICT_DROP: u8 = 0x00;
export const VERDICT_PASS: u8 = 0x01;
export const VERDICT_HOST: u8 = 0x02;
export const VERDICT_FORWARD: u8 = 0x80;
export const VERDICT_UNSET: u8 = 0xFF;
/** Flag for DROP and PASS only: the verdict holds for the packet's whole flow (5-tuple, or
 * 3-tuple without ports) for the host's --flow-ttl; on AF_XDP the kernel then applies it to
 * the flow's next packets without calling the filter (docs/ABI.md "Flow verdicts"). A
 * stateful filter (counters, rate limits, rewrites) never sets it. */
export const VERDICT_FLOW: u8 = 0x40;

/** `v` (VERDICT_DROP or VERDICT_PASS) for the packet's whole flow: VERDICT_FLOW | v. */
// @ts-ignore: decorator
@inline export function verdictForFlow(v: u8): u8 {
  return (v | VERDICT_FLOW) as u8;
}

/** Verdict that forwards to output port `n` (0..127). */
// @ts-ignore: decorator
@inline export function verdictForward(n: u32): u8 {
  return (VERDICT_FORWARD | (n & 0x7F)) as u8;
}

// ---- host imports (ABI section 4); these are the only imports a module may have ----
/** One UTF-8 log line of `len` bytes at `ptr` (the host reads at most 1024 bytes). */
// @ts-ignore: decorator
@external("env", "nmwasm_log") export declare function nmwasm_log(ptr: usize, len: i32): void;
/** Monotonic clock in milliseconds (fractional). */
// @ts-ignore: decorator
@external("env", "nmwasm_now") export declare function nmwasm_now(): f64;

// ---- ring accessors: all inlined loads; `ring` is the address passed to nmwasm_process ----
/** Number of slots in the ring. */
// @ts-ignore: decorator
@inline export function ringNumSlots(ring: usize): u32 { return load<u32>(ring, RING_NUM_SLOTS); }
/** Bytes per packet buffer (nr_buf_size). */
// @ts-ignore: decorator
@inline export function ringBufSize(ring: usize): u32 { return load<u32>(ring, RING_NR_BUF_SIZE); }
/** 1 for an RX ring, 0 for a TX ring. */
// @ts-ignore: decorator
@inline export function ringDir(ring: usize): u32 { return load<u16>(ring, RING_DIR); }
/** Address of slot `i`'s struct netmap_slot. */
// @ts-ignore: decorator
@inline export function slotAddr(ring: usize, i: u32): usize { return ring + RING_SLOTS + (<usize>i << 4); }
/** Packet length of slot `i`. */
// @ts-ignore: decorator
@inline export function slotLen(ring: usize, i: u32): u32 { return load<u16>(slotAddr(ring, i), SLOT_LEN); }
/** Sets the packet length of slot `i` (the host checks 14 ..= nr_buf_size). */
// @ts-ignore: decorator
@inline export function setSlotLen(ring: usize, i: u32, len: u32): void { store<u16>(slotAddr(ring, i), <u16>len, SLOT_LEN); }
/** Receive timestamp of slot `i`, ns since the Unix epoch. */
// @ts-ignore: decorator
@inline export function slotTimestamp(ring: usize, i: u32): u64 { return load<u64>(slotAddr(ring, i), SLOT_PTR); }
/** Address of the packet buffer of slot `i` (netmap's NETMAP_BUF). */
// @ts-ignore: decorator
@inline export function slotBuf(ring: usize, i: u32): usize {
  return ring + <usize>load<i64>(ring, RING_BUF_OFS) + <usize>load<u32>(slotAddr(ring, i), SLOT_BUF_IDX) * <usize>load<u32>(ring, RING_NR_BUF_SIZE);
}

/** Address of buffer 0 (ring + buf_ofs). With ringBufSize, read once per batch and pass
 *  both to slotBufAt: NB slotBuf re-reads buf_ofs and nr_buf_size from the ring at every
 *  call, and after any store into packet memory the compiler cannot know they did not
 *  change, so in a loop that writes packets or verdicts it reloads them per packet. */
// @ts-ignore: decorator
@inline export function ringBufBase(ring: usize): usize { return ring + <usize>load<i64>(ring, RING_BUF_OFS); }
/** Address of slot `i`'s buffer, from ringBufBase(ring) and ringBufSize(ring) read once. */
// @ts-ignore: decorator
@inline export function slotBufAt(ring: usize, bufBase: usize, bufSize: usize, i: u32): usize {
  return bufBase + <usize>load<u32>(slotAddr(ring, i), SLOT_BUF_IDX) * bufSize;
}

/** Writes verdict `v` for slot `i` into the verdict array at `verdicts`. */
// @ts-ignore: decorator
@inline export function setVerdict(verdicts: usize, i: u32, v: u8): void { store<u8>(verdicts + <usize>i, v); }

/** The slot after `i` in a ring of `numSlots` slots (batches wrap around). */
// @ts-ignore: decorator
@inline export function nextSlot(i: u32, numSlots: u32): u32 { const n = i + 1; return n == numSlots ? 0 : n; }

/** Writes verdict `v` for the whole batch (`count` slots from `first`, wrapping at the
 *  ring's end): two memory.fill, i.e. two memsets, not a loop over the slots. */
export function setBatchVerdict(ring: usize, verdicts: usize, first: u32, count: u32, v: u8): void {
  const numSlots = ringNumSlots(ring);
  const toEnd = first < numSlots ? numSlots - first : 0;
  const head = count < toEnd ? count : toEnd;
  memory.fill(verdicts + <usize>first, v, <usize>head);
  memory.fill(verdicts, v, <usize>(count - head));
}
