// hexdump: logs each packet (its number, length, first bytes in hex) through nmwasm_log and
// passes it. The host rate-limits logs too, but this filter keeps its own budget of
// lines per second (measured with now()) and counts what it skips.
// Config (optional, words on any line): `rate <lines per second>` (default 10, 1..1000),
// `bytes <bytes per line>` (default 32, 1..256).
import {
  ConfigReader, parseDecimal, ringNumSlots, slotAddr, slotBuf, nextSlot, statAdd, statInc, statGet, logU64,
  logBegin, logStr, logU32, logHexByte, logEnd, now, SLOT_LEN, VERDICT_PASS,
} from "../../sdk";
export { nmwasm_abi_v1 } from "../../sdk";

const PACKETS: u32 = 0, LOGGED: u32 = 1, SKIPPED: u32 = 2;
const stats: usize = memory.data(8 * 3, 8);

let linesPerSecond: u32 = 10;
let bytesPerLine: u32 = 32;
let windowStart: f64 = -1e300;
let windowLines: u32 = 0;

/** Parses `rate N` / `bytes N`; 1 after logging an error. */
export function nmwasm_init(config: usize, configLen: i32): i32 {
  memory.fill(stats, 0, 8 * 3);
  linesPerSecond = 10; bytesPerLine = 32; windowStart = -1e300; windowLines = 0;
  const r = new ConfigReader(config, configLen);
  while (r.nextLine()) {
    while (r.nextWord()) {
      const isRate = r.wordIs("rate");
      if (!isRate && !r.wordIs("bytes")) return r.error("unknown setting", "rate N or bytes N");
      if (!r.nextWord()) return r.error(isRate ? "missing value after 'rate'" : "missing value after 'bytes'", isRate ? "1..1000" : "1..256");
      const v = parseDecimal(r.wordPtr, r.wordLen, isRate ? 1000 : 256);
      if (v < 1) return r.error(isRate ? "bad rate" : "bad byte count", isRate ? "1..1000" : "1..256");
      if (isRate) linesPerSecond = <u32>v; else bytesPerLine = <u32>v;
    }
  }
  return 0;
}

export function nmwasm_stats(): usize { return stats; }

/** Logs up to `linesPerSecond` packets per second; passes every packet. */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  const t = now(); // NB: one host call per batch, not per packet
  if (t - windowStart >= 1000) { windowStart = t; windowLines = 0; }
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    if (windowLines < linesPerSecond) {
      windowLines++;
      const len = <u32>load<u16>(slotAddr(ring, slot), SLOT_LEN);
      const p = slotBuf(ring, slot);
      logBegin();
      // The packet's number since the instance started (1-based): in `nmwasm test` the
      // frame number tcpdump -# prints, unlike the ring slot, which wraps and restarts.
      logStr("packet "); logU64(statGet(stats, PACKETS) + <u64>k + 1); logStr(" len "); logU32(len); logStr(":");
      const n = len < bytesPerLine ? len : bytesPerLine;
      for (let i: u32 = 0; i < n; i++) { logStr(" "); logHexByte(<u32>load<u8>(p + <usize>i)); }
      if (n < len) logStr(" ...");
      logEnd();
      statInc(stats, LOGGED);
    } else statInc(stats, SKIPPED);
    store<u8>(verdicts + <usize>slot, VERDICT_PASS);
    slot = nextSlot(slot, numSlots);
  }
  statAdd(stats, PACKETS, <u64>count);
  return 0;
}
