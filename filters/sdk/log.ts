// Logging and time without allocation: a static 1024-byte line buffer, appenders for
// strings, decimal and hex numbers, and one `nmwasm_log` host call per line.
// NB: with `--runtime stub` nothing is ever freed, so per-packet string concatenation
// would leak; build lines with logBegin/logStr/logU32/.../logEnd instead.
import { nmwasm_log, nmwasm_now } from "./abi";

export const LOG_LINE_MAX: i32 = 1024;
const lineBuf: usize = memory.data(LOG_LINE_MAX);
let lineLen: i32 = 0;

/** Starts a new log line (drops whatever was appended and not sent). */
export function logBegin(): void { lineLen = 0; }

/** Appends one byte; bytes past LOG_LINE_MAX are dropped. */
export function logByte(b: u32): void {
  if (lineLen < LOG_LINE_MAX) { store<u8>(lineBuf + <usize>lineLen, <u8>b); lineLen++; }
}

/** Appends `s` encoded as UTF-8 (unpaired surrogates become U+FFFD). */
export function logStr(s: string): void {
  const n = s.length;
  for (let i = 0; i < n; i++) {
    let c = <u32>s.charCodeAt(i);
    if (c >= 0xD800 && c < 0xDC00 && i + 1 < n) {
      const d = <u32>s.charCodeAt(i + 1);
      if (d >= 0xDC00 && d < 0xE000) { c = 0x10000 + ((c - 0xD800) << 10) + (d - 0xDC00); i++; }
    }
    if (c >= 0xD800 && c < 0xE000) c = 0xFFFD;
    if (c < 0x80) logByte(c);
    else if (c < 0x800) { logByte(0xC0 | (c >> 6)); logByte(0x80 | (c & 0x3F)); }
    else if (c < 0x10000) { logByte(0xE0 | (c >> 12)); logByte(0x80 | ((c >> 6) & 0x3F)); logByte(0x80 | (c & 0x3F)); }
    else { logByte(0xF0 | (c >> 18)); logByte(0x80 | ((c >> 12) & 0x3F)); logByte(0x80 | ((c >> 6) & 0x3F)); logByte(0x80 | (c & 0x3F)); }
  }
}

/** Appends `len` raw bytes from `ptr` (e.g. a config word, already UTF-8). */
export function logBytes(ptr: usize, len: i32): void {
  for (let i = 0; i < len; i++) logByte(load<u8>(ptr + <usize>i));
}

/** Appends `v` in decimal. */
export function logU64(v: u64): void {
  if (v == 0) { logByte(0x30); return; }
  let digits: u64 = 1;
  while (v / digits >= 10) digits *= 10;
  while (digits > 0) { logByte(<u32>(0x30 + (v / digits) % 10)); digits /= 10; }
}

/** Appends `v` in decimal. */
export function logU32(v: u32): void { logU64(<u64>v); }

/** Appends `v` in decimal, with a minus sign when negative. */
export function logI32(v: i32): void {
  if (v < 0) { logByte(0x2D); logU64(<u64>(-(<i64>v))); } else logU64(<u64>v);
}

const HEX_DIGITS = "0123456789abcdef";

/** Appends `b` as two lower-case hex digits. */
export function logHexByte(b: u32): void {
  logByte(<u32>HEX_DIGITS.charCodeAt((b >> 4) & 0xF));
  logByte(<u32>HEX_DIGITS.charCodeAt(b & 0xF));
}

/** Sends the line built since logBegin() to the host. */
export function logEnd(): void { nmwasm_log(lineBuf, lineLen); lineLen = 0; }

/** Logs one line `s` (UTF-8). Allocates nothing. */
export function log(s: string): void { logBegin(); logStr(s); logEnd(); }

/** Monotonic time in milliseconds (fractional), from the host. */
// @ts-ignore: decorator
@inline export function now(): f64 { return nmwasm_now(); }
