// Config parsing helpers for nmwasm_init: a line/word iterator over the config bytes,
// decimal numbers, IPv4/IPv6 addresses with prefix lengths, and error lines through
// nmwasm_log that name the line number and the offending word.
// Init-time code: may allocate (runs once per instance), but the helpers here don't.
import { logBegin, logStr, logBytes, logI32, logEnd } from "./log";

const CH_TAB: u32 = 0x09, CH_LF: u32 = 0x0A, CH_CR: u32 = 0x0D, CH_SPACE: u32 = 0x20;
const CH_HASH: u32 = 0x23, CH_DOT: u32 = 0x2E, CH_SLASH: u32 = 0x2F, CH_COLON: u32 = 0x3A;

// @ts-ignore: decorator
@inline function byteAt(p: usize): u32 { return <u32>load<u8>(p); }

/** Iterates over the lines of a config text and the whitespace-separated words of each
 *  line. `#` starts a comment; CR before LF is ignored. */
export class ConfigReader {
  private pos: usize;
  private end: usize;
  private cursor: usize = 0;
  private lineEnd: usize = 0;
  /** 1-based number of the current line (0 before the first nextLine()). */
  line: i32 = 0;
  /** The current word: `wordLen` bytes at `wordPtr` (wordLen 0 at end of line). */
  wordPtr: usize = 0;
  wordLen: i32 = 0;

  constructor(ptr: usize, len: i32) { this.pos = ptr; this.end = ptr + <usize>len; }

  /** Moves to the next line; false when the text is exhausted. */
  nextLine(): bool {
    if (this.pos >= this.end) return false;
    const start = this.pos;
    let p = start;
    while (p < this.end && byteAt(p) != CH_LF) p++;
    this.pos = p < this.end ? p + 1 : p;
    let stop = start;
    while (stop < p && byteAt(stop) != CH_HASH) stop++;
    this.cursor = start;
    this.lineEnd = stop;
    this.line++;
    this.wordPtr = start; this.wordLen = 0;
    return true;
  }

  /** Moves to the next word of the current line; false (wordLen 0) at end of line. */
  nextWord(): bool {
    let p = this.cursor;
    while (p < this.lineEnd && isSpace(byteAt(p))) p++;
    const start = p;
    while (p < this.lineEnd && !isSpace(byteAt(p))) p++;
    this.cursor = p;
    this.wordPtr = start;
    this.wordLen = <i32>(p - start);
    return this.wordLen > 0;
  }

  /** True when the current word is exactly the ASCII string `s`. */
  wordIs(s: string): bool { return bytesEqual(this.wordPtr, this.wordLen, s); }

  /** The current word as a string (allocates; for messages). */
  word(): string { return String.UTF8.decodeUnsafe(this.wordPtr, <usize>this.wordLen); }

  /** Logs "line N: <what> '<word>'[ (expected <expected>)]" — or "... <what> at end of
   *  line" when there is no current word — and returns 1 (nmwasm_init's reject value). */
  error(what: string, expected: string = ""): i32 {
    logBegin();
    logStr("line "); logI32(this.line); logStr(": "); logStr(what);
    if (this.wordLen > 0) { logStr(" '"); logBytes(this.wordPtr, this.wordLen); logStr("'"); }
    else logStr(" at end of line");
    if (expected.length > 0) { logStr(" (expected "); logStr(expected); logStr(")"); }
    logEnd();
    return 1;
  }
}

// @ts-ignore: decorator
@inline function isSpace(c: u32): bool { return c == CH_SPACE || c == CH_TAB || c == CH_CR || c == 0x0B || c == 0x0C; }

/** True when the `len` bytes at `ptr` equal the ASCII string `s`. */
export function bytesEqual(ptr: usize, len: i32, s: string): bool {
  if (len != s.length) return false;
  for (let i = 0; i < len; i++) if (byteAt(ptr + <usize>i) != <u32>s.charCodeAt(i)) return false;
  return true;
}

/** Parses `len` bytes of decimal digits (no sign, no leading '+') as a value <= max;
 *  -1 on any other byte, an empty word or overflow. */
export function parseDecimal(ptr: usize, len: i32, max: i64): i64 {
  if (len <= 0 || len > 18) return -1;
  let v: i64 = 0;
  for (let i = 0; i < len; i++) {
    const d = <i64>byteAt(ptr + <usize>i) - 0x30;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v <= max ? v : -1;
}

/** Parses a dotted-quad IPv4 address (no leading zeros) into 4 bytes at `out`. */
export function parseIPv4(ptr: usize, len: i32, out: usize): bool {
  let part = 0, value = 0, digits = 0;
  for (let i = 0; i <= len; i++) {
    const c = i < len ? byteAt(ptr + <usize>i) : CH_DOT;
    if (c == CH_DOT) {
      if (digits == 0 || part > 3 || (i == len) != (part == 3)) return false;
      store<u8>(out + <usize>part, <u8>value);
      part++; value = 0; digits = 0;
      continue;
    }
    const d = <i32>c - 0x30;
    if (d < 0 || d > 9 || (digits > 0 && value == 0)) return false; // not a digit, or a leading zero
    value = value * 10 + d; digits++;
    if (value > 255) return false;
  }
  return part == 4;
}

// @ts-ignore: decorator
@inline function hexValue(c: u32): i32 {
  if (c >= 0x30 && c <= 0x39) return <i32>c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return <i32>l - 0x61 + 10;
  return -1;
}

const groups: usize = memory.data(16);

/** Parses an IPv6 address (RFC 4291 text: `::` compression, optional dotted IPv4 tail)
 *  into 16 bytes (network order) at `out`. */
export function parseIPv6(ptr: usize, len: i32, out: usize): bool {
  let n = 0, gap = -1, i = 0;
  if (len < 2) return false;
  if (byteAt(ptr) == CH_COLON) {
    if (byteAt(ptr + 1) != CH_COLON) return false;
    gap = 0; i = 2;
  }
  while (i < len) {
    let j = i, value = 0;
    while (j < len && hexValue(byteAt(ptr + <usize>j)) >= 0 && j - i < 5) { value = (value << 4) | hexValue(byteAt(ptr + <usize>j)); j++; }
    if (j < len && byteAt(ptr + <usize>j) == CH_DOT) { // dotted IPv4 tail: the last 32 bits
      if (n > 6 || !parseIPv4(ptr + <usize>i, len - i, groups + 12 + 0)) return false;
      // parseIPv4 wrote 4 bytes at groups+12; move them to group slots n, n+1
      const a = load<u8>(groups + 12), b = load<u8>(groups + 13), c = load<u8>(groups + 14), d = load<u8>(groups + 15);
      store<u16>(groups + (<usize>n << 1), (<u16>a << 8) | b);
      store<u16>(groups + (<usize>(n + 1) << 1), (<u16>c << 8) | d);
      n += 2; i = len;
      break;
    }
    if (j == i || j - i > 4 || n >= 8) return false;
    store<u16>(groups + (<usize>n << 1), <u16>value);
    n++; i = j;
    if (i == len) break;
    if (byteAt(ptr + <usize>i) != CH_COLON) return false;
    i++;
    if (i < len && byteAt(ptr + <usize>i) == CH_COLON) {
      if (gap >= 0) return false;
      gap = n; i++;
    } else if (i == len) return false; // a single trailing colon
  }
  if (gap < 0 ? n != 8 : n > 7) return false;
  // Expand: groups [0, gap) stay, [gap, n) move to the end, zeros between.
  const tail = gap < 0 ? 0 : n - gap;
  for (let k = 0; k < 8; k++) {
    let g: u32 = 0;
    if (gap < 0 || k < gap) g = load<u16>(groups + (<usize>k << 1));
    else if (k >= 8 - tail) g = load<u16>(groups + (<usize>(gap + k - (8 - tail)) << 1));
    store<u8>(out + (<usize>k << 1), <u8>(g >> 8));
    store<u8>(out + (<usize>k << 1) + 1, <u8>g);
  }
  return true;
}

/** Writes a `bytes`-byte mask with the first `bits` bits set at `out`. */
export function prefixMask(out: usize, bits: i32, bytes: i32): void {
  for (let i = 0; i < bytes; i++) {
    const left = bits - (i << 3);
    const b: u32 = left >= 8 ? 0xFF : left <= 0 ? 0 : (0xFF << <u32>(8 - left)) & 0xFF;
    store<u8>(out + <usize>i, <u8>b);
  }
}

/** Parses `addr[/len]` (IPv4 or IPv6) into 16 address bytes at `out` and 16 mask bytes at
 *  `mask` (IPv4 uses bytes 0..3, the rest zero); host bits beyond the prefix are cleared.
 *  Returns 4 or 6, or 0 when the word is not an address or the prefix is out of range. */
export function parseAddressPrefix(ptr: usize, len: i32, out: usize, mask: usize): i32 {
  let slash = -1;
  for (let i = 0; i < len; i++) if (byteAt(ptr + <usize>i) == CH_SLASH) { slash = i; break; }
  const addrLen = slash < 0 ? len : slash;
  memory.fill(out, 0, 16);
  memory.fill(mask, 0, 16);
  let family = 0;
  if (parseIPv4(ptr, addrLen, out)) family = 4;
  else if (parseIPv6(ptr, addrLen, out)) family = 6;
  else return 0;
  const maxBits = family == 4 ? 32 : 128;
  let bits: i64 = maxBits;
  if (slash >= 0) {
    bits = parseDecimal(ptr + <usize>slash + 1, len - slash - 1, maxBits);
    if (bits < 0) return 0;
  }
  prefixMask(mask, <i32>bits, family == 4 ? 4 : 16);
  for (let i = 0; i < 16; i++) store<u8>(out + <usize>i, load<u8>(out + <usize>i) & load<u8>(mask + <usize>i));
  return family;
}

/** nmwasm_init helper for a filter without settings: 0 when the config holds nothing but
 *  blank lines and comments, else 1 after logging "line N: unexpected setting '<word>'
 *  (expected no config: <name> has no settings)". */
export function expectNoConfig(ptr: usize, len: i32, name: string): i32 {
  const r = new ConfigReader(ptr, len);
  while (r.nextLine()) if (r.nextWord()) return r.error("unexpected setting", "no config: " + name + " has no settings");
  return 0;
}
