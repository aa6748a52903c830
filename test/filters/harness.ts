// Test harness for filter modules, without the native addon: instantiates a module with
// the imports of docs/ABI.md section 4, lays out a netmap_ring, its slots, the verdict
// array and the packet buffers inside the module's own memory at NMWASM_WINDOW_BASE exactly
// as docs/ABI.md section 2 says, copies packets in (poisoning the bytes after each one),
// and calls nmwasm_init / nmwasm_process like the host's ring worker does.
import { readFileSync } from 'node:fs';

export const CONFIG_BASE = 0x10000;
export const CONFIG_MAX = 0xF0000;
export const WINDOW_BASE = 0x100000;
export const DATA_BASE = 0x4000000;
export const RING_SLOTS_OFFSET = 256;
export const SLOT_SIZE = 16;
export const VERDICT_UNSET = 0xff;
export const root = new URL('../../', import.meta.url).pathname;

/** Path of a built example (`firewall`) or fixture (`fixtures/trap`). */
export function wasmPath(name: string): string { return `${root}filters/build/${name}.wasm`; }

export interface HarnessOptions {
  /** Slots in the ring (default 256). */
  numSlots?: number;
  /** Bytes per buffer (default 2048). */
  bufSize?: number;
  /** 1 = RX ring (default), 0 = TX ring. */
  dir?: number;
  /** Clock for env.nmwasm_now, in ms (default performance.now). */
  now?: () => number;
}

export interface Batch {
  /** The verdict byte of each packet, in order. */
  verdicts: number[];
  /** nmwasm_process's return value. */
  rc: number;
}

type ProcessFn = (ring: number, verdicts: number, first: number, count: number) => number;

/** One instance of a filter module in a private memory laid out like a port's window. */
export class Harness {
  readonly instance: WebAssembly.Instance;
  readonly memory: WebAssembly.Memory;
  readonly logs: string[] = [];
  readonly numSlots: number;
  readonly bufSize: number;
  readonly ring = WINDOW_BASE;
  readonly verdictsAddr: number;
  readonly bufOfs: number;
  /** Next slot index to use: batches wrap around the ring like a real one. */
  cursor = 0;
  private dir: number;

  constructor(wasm: Uint8Array | string, opts: HarnessOptions = {}) {
    const bytes = typeof wasm === 'string' ? readFileSync(wasm) : wasm;
    this.numSlots = opts.numSlots ?? 256;
    this.bufSize = opts.bufSize ?? 2048;
    this.dir = opts.dir ?? 1;
    const now = opts.now ?? (() => performance.now());
    let memory: WebAssembly.Memory | undefined;
    const decode = (ptr: number, len: number): string => {
      if (!memory || ptr < 0 || len < 0 || ptr + len > memory.buffer.byteLength) return `<out of bounds ${ptr}+${len}>`;
      return Buffer.from(memory.buffer, ptr, Math.min(len, 1024)).toString('utf8');
    };
    const decodeAsString = (ptr: number): string => {
      if (!memory || ptr < 4 || ptr >= memory.buffer.byteLength) return '<no message>';
      const len = new DataView(memory.buffer).getUint32(ptr - 4, true);
      if (ptr + len > memory.buffer.byteLength) return '<bad message>';
      return Buffer.from(memory.buffer, ptr, len).toString('utf16le');
    };
    const module = new WebAssembly.Module(bytes as BufferSource);
    this.instance = new WebAssembly.Instance(module, {
      env: {
        abort: (msg: number, file: number, line: number, col: number) => {
          throw new Error(`abort: ${decodeAsString(msg)} at ${decodeAsString(file)}:${line}:${col}`);
        },
        nmwasm_log: (ptr: number, len: number) => { this.logs.push(decode(ptr, len)); },
        nmwasm_now: () => now(),
      },
    });
    const mem = this.instance.exports['memory'];
    if (!(mem instanceof WebAssembly.Memory)) throw new Error('module does not export its memory as "memory"');
    memory = mem;
    this.memory = mem;
    if (mem.buffer.byteLength < DATA_BASE) throw new Error(`memory is ${mem.buffer.byteLength} bytes, expected at least ${DATA_BASE}`);
    this.verdictsAddr = this.ring + RING_SLOTS_OFFSET + SLOT_SIZE * this.numSlots;
    // Buffers start on a 4 KiB boundary after the verdict array, like a real port's.
    this.bufOfs = Math.ceil((RING_SLOTS_OFFSET + SLOT_SIZE * this.numSlots + this.numSlots) / 4096) * 4096;
    if (this.ring + this.bufOfs + this.numSlots * this.bufSize > DATA_BASE) throw new Error('ring does not fit in the packet window');
    const v = this.view();
    v.setBigInt64(this.ring + 0, BigInt(this.bufOfs), true);
    v.setUint32(this.ring + 8, this.numSlots, true);
    v.setUint32(this.ring + 12, this.bufSize, true);
    v.setUint16(this.ring + 16, 0, true);
    v.setUint16(this.ring + 18, this.dir, true);
  }

  /** A fresh DataView of the memory (views die when memory grows). */
  view(): DataView { return new DataView(this.memory.buffer); }
  bytes(): Uint8Array { return new Uint8Array(this.memory.buffer); }

  /** A named export function, or undefined. */
  fn(name: string): ((...args: number[]) => number) | undefined {
    const f = this.instance.exports[name];
    return typeof f === 'function' ? (f as (...args: number[]) => number) : undefined;
  }

  /** Copies `config` to CONFIG_BASE and calls nmwasm_init (0 when the module has none). */
  init(config: string | Uint8Array = ''): number {
    const bytes = typeof config === 'string' ? Buffer.from(config, 'utf8') : config;
    if (bytes.byteLength > CONFIG_MAX) throw new Error(`config is ${bytes.byteLength} bytes, at most ${CONFIG_MAX}`);
    this.bytes().set(bytes, CONFIG_BASE);
    const init = this.fn('nmwasm_init');
    return init ? init(CONFIG_BASE, bytes.byteLength) : 0;
  }

  /** Sets the ring direction (1 = rx, 0 = tx) for the following batches. */
  setDir(dir: number): void { this.dir = dir; this.view().setUint16(this.ring + 18, dir, true); }

  /** Buffer index used for slot `i`: a permutation, so buf_idx != slot index. */
  bufIdxOf(i: number): number { return this.numSlots - 1 - i; }

  /** Runs one batch of `packets` (each truncated to bufSize) starting at the ring cursor;
   *  bytes after each packet in its buffer are set to `poison`. */
  batch(packets: Uint8Array[], poison = 0): Batch {
    if (packets.length > this.numSlots) throw new Error(`batch of ${packets.length} > ${this.numSlots} slots`);
    const v = this.view();
    const mem = this.bytes();
    const first = this.cursor;
    for (let k = 0; k < packets.length; k++) {
      const slot = (first + k) % this.numSlots;
      const pkt = packets[k]!;
      const len = Math.min(pkt.byteLength, this.bufSize);
      const idx = this.bufIdxOf(slot);
      const buf = this.ring + this.bufOfs + idx * this.bufSize;
      mem.set(pkt.subarray(0, len), buf);
      mem.fill(poison, buf + len, buf + this.bufSize);
      const s = this.ring + RING_SLOTS_OFFSET + slot * SLOT_SIZE;
      v.setUint32(s, idx, true);
      v.setUint16(s + 4, len, true);
      v.setUint16(s + 6, 0, true);
      v.setBigUint64(s + 8, 0n, true);
    }
    mem.fill(VERDICT_UNSET, this.verdictsAddr, this.verdictsAddr + this.numSlots);
    const tail = (first + packets.length) % this.numSlots;
    v.setUint32(this.ring + 20, first, true);
    v.setUint32(this.ring + 24, first, true);
    v.setUint32(this.ring + 28, tail, true);
    const process = this.fn('nmwasm_process') as ProcessFn | undefined;
    if (!process) throw new Error('module has no nmwasm_process export');
    const rc = process(this.ring, this.verdictsAddr, first, packets.length);
    const after = this.bytes();
    const verdicts: number[] = [];
    for (let k = 0; k < packets.length; k++) verdicts.push(after[this.verdictsAddr + (first + k) % this.numSlots]!);
    this.cursor = tail;
    return { verdicts, rc };
  }

  /** Runs `packets` in batches of at most `batchSize`; returns all verdicts in order. */
  run(packets: Uint8Array[], batchSize = 64, poison = 0): number[] {
    const out: number[] = [];
    for (let i = 0; i < packets.length; i += batchSize) {
      const b = this.batch(packets.slice(i, i + batchSize), poison);
      if (b.rc !== 0) throw new Error(`nmwasm_process returned ${b.rc}`);
      out.push(...b.verdicts);
    }
    return out;
  }

  /** The module's `n` u64 counters from nmwasm_stats. */
  stats(n: number): bigint[] {
    const f = this.fn('nmwasm_stats');
    if (!f) throw new Error('module has no nmwasm_stats export');
    const addr = f() >>> 0;
    const v = this.view();
    if (addr < DATA_BASE || addr + 8 * n > v.byteLength) throw new Error(`nmwasm_stats returned 0x${addr.toString(16)}, outside the module's data`);
    return Array.from({ length: n }, (_, i) => v.getBigUint64(addr + 8 * i, true));
  }

  /** Counters by name, from the manifest's `stats` list. */
  namedStats(): Record<string, bigint> {
    const names = manifestOf(this.instance)?.stats ?? [];
    const values = this.stats(names.length);
    return Object.fromEntries(names.map((name, i) => [name, values[i]!]));
  }
}

export interface Manifest { name: string; version: string; description: string; config: string; stats: string[] }

const manifests = new WeakMap<WebAssembly.Instance, Manifest>();
/** Registers the manifest read from `wasm` for `instance` (see manifestOfBytes). */
function manifestOf(instance: WebAssembly.Instance): Manifest | undefined { return manifests.get(instance); }

/** The nmwasm.manifest custom section of a module, parsed; undefined when absent. */
export function manifestOfBytes(wasm: Uint8Array): Manifest | undefined {
  const sections = WebAssembly.Module.customSections(new WebAssembly.Module(wasm as BufferSource), 'nmwasm.manifest');
  const first = sections[0];
  return first ? JSON.parse(Buffer.from(first).toString('utf8')) as Manifest : undefined;
}

/** A Harness for the built module `name` (`firewall`, `fixtures/trap`), with its manifest. */
export function load(name: string, opts: HarnessOptions = {}): Harness {
  const bytes = readFileSync(wasmPath(name));
  const h = new Harness(bytes, opts);
  const m = manifestOfBytes(bytes);
  if (m) manifests.set(h.instance, m);
  return h;
}

/** Active data segment offsets of a wasm binary (i32.const offsets only). */
export function dataSegmentOffsets(wasm: Uint8Array): number[] {
  let pos = 8;
  const leb = (): number => { let r = 0, s = 0, b = 0; do { b = wasm[pos++]!; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return r >>> 0; };
  const offsets: number[] = [];
  while (pos < wasm.length) {
    const id = wasm[pos++]!;
    const size = leb();
    const end = pos + size;
    if (id === 11) {
      const n = leb();
      for (let i = 0; i < n; i++) {
        const kind = leb();
        if (kind === 1) { const len = leb(); pos += len; continue; } // NB: not `pos += leb()`: pos would be read before leb() moves it
        if (kind === 2) leb();
        if (wasm[pos++] !== 0x41) throw new Error('data segment offset is not i32.const');
        let r = 0, s = 0, b = 0; do { b = wasm[pos++]!; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80);
        if (s < 32 && (b & 0x40)) r |= -1 << s;
        offsets.push(r >>> 0);
        pos++;
        const len = leb();
        pos += len;
      }
    }
    pos = end;
  }
  return offsets;
}
