// A small, bounded reader for the WebAssembly binary format (core spec 1.0 plus the
// threads/memory64 limit flags, exception tags): it extracts just what the ABI checks and
// the resource limits need -- types, imports, functions, tables, memories, exports, the
// start function, the code size, data segment offsets and sizes, and custom sections. Every length and count is checked against the bytes that remain, so
// a hostile file cannot make it loop, allocate much, or read out of bounds.

export type ValType = 'i32' | 'i64' | 'f32' | 'f64' | 'v128' | 'funcref' | 'externref';
export interface FuncType {
  params: ValType[];
  results: ValType[];
}
export interface Limits {
  min: number;
  max?: number;
  shared: boolean;
  memory64: boolean;
}
export type ImportDesc =
  | { kind: 'func'; typeIndex: number }
  | { kind: 'table' }
  | { kind: 'memory'; limits: Limits }
  | { kind: 'global' }
  | { kind: 'tag' };
export interface WasmImport {
  module: string;
  name: string;
  desc: ImportDesc;
}
export type ExternKind = 'func' | 'table' | 'memory' | 'global' | 'tag';
export interface WasmExport {
  name: string;
  kind: ExternKind;
  index: number;
}
export interface DataSegment {
  mode: 'active' | 'passive';
  memoryIndex: number;
  /** Start offset when it is an i32.const/i64.const expression; undefined for global.get etc. */
  offset?: number;
  size: number;
}
export interface CustomSection {
  name: string;
  payload: Uint8Array;
}
export interface WasmBinary {
  types: FuncType[];
  imports: WasmImport[];
  /** Type index of every function defined in the module (not imported). */
  functions: number[];
  tables: Limits[];
  memories: Limits[];
  exports: WasmExport[];
  start?: number;
  /** Bytes of the code section's content (0 without one). */
  codeBytes: number;
  data: DataSegment[];
  customs: CustomSection[];
}

/** Thrown for a malformed binary; the message says where and what. */
export class WasmFormatError extends Error {}

const MAX_ITEMS = 1_000_000; // per vector: V8's own largest limit (functions, types); counts are also bounded by the bytes left

const VALTYPES: Record<number, ValType> = { 0x7f: 'i32', 0x7e: 'i64', 0x7d: 'f32', 0x7c: 'f64', 0x7b: 'v128', 0x70: 'funcref', 0x6f: 'externref' };
const EXTERN_KINDS: ExternKind[] = ['func', 'table', 'memory', 'global', 'tag'];

/** A cursor over [pos, end) of a byte array; every read is bounds checked (also used by
 * host/module/wasm-rewrite.ts). */
export class Cursor {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
    readonly what: string,
  ) {}

  fail(message: string): never {
    throw new WasmFormatError(`${this.what} at byte ${this.pos}: ${message}`);
  }

  byte(): number {
    if (this.pos >= this.end) this.fail('unexpected end');
    return this.bytes[this.pos++]!;
  }

  /** Unsigned LEB128 of at most `bits` bits (32 or 64; 64 is returned as a Number, exact up to 2^53). */
  uleb(bits = 32): number {
    let result = 0;
    let scale = 1;
    const maxBytes = Math.ceil(bits / 7);
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (bits === 32 && result > 0xffff_ffff) this.fail('LEB128 value exceeds 32 bits');
        return result;
      }
      scale *= 128;
    }
    return this.fail(`LEB128 longer than ${maxBytes} bytes`);
  }

  /** Signed LEB128 of at most `bits` bits (32 or 64). */
  sleb(bits = 32): number {
    let result = 0;
    let scale = 1;
    const maxBytes = Math.ceil(bits / 7);
    for (let i = 0; i < maxBytes; i++) {
      const b = this.byte();
      result += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) {
        if (b & 0x40) result -= scale; // sign-extend
        return result;
      }
    }
    return this.fail(`signed LEB128 longer than ${maxBytes} bytes`);
  }

  /** A vector count, bounded by the bytes left (every item takes at least `minItemBytes`). */
  count(minItemBytes = 1): number {
    const n = this.uleb();
    if (n > MAX_ITEMS || n * minItemBytes > this.end - this.pos) this.fail(`vector of ${n} items does not fit in the ${this.end - this.pos} bytes left`);
    return n;
  }

  take(length: number): Uint8Array {
    if (length > this.end - this.pos) this.fail(`length ${length} runs past the end (${this.end - this.pos} bytes left)`);
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  name(): string {
    const raw = this.take(this.uleb());
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return this.fail('name is not valid UTF-8');
    }
  }

  valType(): ValType {
    const code = this.byte();
    const type = VALTYPES[code];
    if (!type) this.fail(`unknown value type 0x${code.toString(16)}`);
    return type;
  }

  limits(): Limits {
    const flags = this.byte();
    if (flags > 0x07) this.fail(`unknown limits flags 0x${flags.toString(16)}`);
    const memory64 = (flags & 0x04) !== 0;
    const bits = memory64 ? 64 : 32;
    const min = this.uleb(bits);
    const max = flags & 0x01 ? this.uleb(bits) : undefined;
    return max === undefined ? { min, shared: (flags & 0x02) !== 0, memory64 } : { min, max, shared: (flags & 0x02) !== 0, memory64 };
  }

  /** A constant expression; returns the value of a lone i32/i64.const, else undefined. */
  constExpr(): number | undefined {
    let value: number | undefined;
    let instructions = 0;
    for (;;) {
      const op = this.byte();
      if (op === 0x0b) return instructions === 1 ? value : undefined;
      instructions++;
      if (instructions > 64) this.fail('constant expression too long');
      switch (op) {
        case 0x41: value = this.sleb(32) >>> 0; break; // i32.const: the offset is used as u32
        case 0x42: value = this.sleb(64); break; // i64.const (memory64)
        case 0x23: this.uleb(); value = undefined; break; // global.get
        case 0x6a: case 0x6b: case 0x6c: case 0x7c: case 0x7d: case 0x7e: value = undefined; break; // extended const arithmetic
        default: this.fail(`unsupported instruction 0x${op.toString(16)} in a constant expression`);
      }
    }
  }
}

const SECTION_NAMES = ['custom', 'type', 'import', 'function', 'table', 'memory', 'global', 'export', 'start', 'element', 'code', 'data', 'datacount', 'tag'];

/** Parses the sections of a WebAssembly binary (magic and version already checked by the caller
 * or here). Throws WasmFormatError naming the section and byte offset of the first problem. */
export function readWasmBinary(bytes: Uint8Array): WasmBinary {
  const out: WasmBinary = { types: [], imports: [], functions: [], tables: [], memories: [], exports: [], codeBytes: 0, data: [], customs: [] };
  const top = new Cursor(bytes, 0, bytes.length, 'header');
  const magic = top.take(8);
  if (magic[0] !== 0 || magic[1] !== 0x61 || magic[2] !== 0x73 || magic[3] !== 0x6d) top.fail('not a WebAssembly module');
  if (magic[4] !== 1 || magic[5] !== 0 || magic[6] !== 0 || magic[7] !== 0) top.fail('unsupported binary version');
  const seen = new Set<number>();
  while (top.pos < top.end) {
    const id = top.byte();
    const size = top.uleb();
    const start = top.pos;
    top.take(size);
    const what = `${SECTION_NAMES[id] ?? `unknown (${id})`} section`;
    if (id >= SECTION_NAMES.length) throw new WasmFormatError(`${what} at byte ${start}: unknown section id ${id}`);
    if (id !== 0) {
      if (seen.has(id)) throw new WasmFormatError(`${what} at byte ${start}: section appears twice`);
      seen.add(id);
    }
    const c = new Cursor(bytes, start, start + size, what);
    readSection(id, c, out);
    if (id !== 0 && id !== 10 && c.pos !== c.end) c.fail(`${c.end - c.pos} unexpected bytes at the end of the section`);
  }
  return out;
}

function readSection(id: number, c: Cursor, out: WasmBinary): void {
  switch (id) {
    case 0: {
      const name = c.name();
      out.customs.push({ name, payload: c.take(c.end - c.pos) });
      return;
    }
    case 1:
      for (let n = c.count(3); n > 0; n--) {
        const form = c.byte();
        if (form !== 0x60) c.fail(`expected a function type (0x60), got 0x${form.toString(16)}`);
        const params: ValType[] = [];
        for (let k = c.count(); k > 0; k--) params.push(c.valType());
        const results: ValType[] = [];
        for (let k = c.count(); k > 0; k--) results.push(c.valType());
        out.types.push({ params, results });
      }
      return;
    case 2:
      for (let n = c.count(4); n > 0; n--) {
        const module = c.name();
        const name = c.name();
        const kind = c.byte();
        let desc: ImportDesc;
        if (kind === 0) desc = { kind: 'func', typeIndex: c.uleb() };
        else if (kind === 1) { c.valType(); c.limits(); desc = { kind: 'table' }; }
        else if (kind === 2) desc = { kind: 'memory', limits: c.limits() };
        else if (kind === 3) { c.valType(); c.byte(); desc = { kind: 'global' }; }
        else if (kind === 4) { c.byte(); c.uleb(); desc = { kind: 'tag' }; }
        else return c.fail(`unknown import kind ${kind} for ${module}.${name}`);
        out.imports.push({ module, name, desc });
      }
      return;
    case 3:
      for (let n = c.count(); n > 0; n--) out.functions.push(c.uleb());
      return;
    case 4:
      for (let n = c.count(3); n > 0; n--) {
        c.valType();
        out.tables.push(c.limits());
      }
      return;
    case 5:
      for (let n = c.count(2); n > 0; n--) out.memories.push(c.limits());
      return;
    case 7:
      for (let n = c.count(3); n > 0; n--) {
        const name = c.name();
        const kindByte = c.byte();
        const kind = EXTERN_KINDS[kindByte];
        if (!kind) c.fail(`unknown export kind ${kindByte} for ${JSON.stringify(name)}`);
        out.exports.push({ name, kind, index: c.uleb() });
      }
      return;
    case 8:
      out.start = c.uleb();
      return;
    case 11:
      for (let n = c.count(2); n > 0; n--) {
        const flags = c.uleb();
        if (flags === 1) {
          out.data.push({ mode: 'passive', memoryIndex: 0, size: c.take(c.uleb()).length });
          continue;
        }
        if (flags !== 0 && flags !== 2) c.fail(`unknown data segment flags ${flags}`);
        const memoryIndex = flags === 2 ? c.uleb() : 0;
        const offset = c.constExpr();
        const size = c.take(c.uleb()).length;
        out.data.push(offset === undefined ? { mode: 'active', memoryIndex, size } : { mode: 'active', memoryIndex, offset, size });
      }
      return;
    case 10:
      out.codeBytes = c.end - c.pos;
      c.pos = c.end;
      return;
    default:
      // global, element, datacount, tag: not needed by the ABI checks.
      c.pos = c.end;
  }
}

/** Formats a function type as "(i32, i32) -> i32" (results "()" when empty). */
export function formatFuncType(type: FuncType): string {
  const results = type.results.length === 0 ? '()' : type.results.length === 1 ? type.results[0]! : `(${type.results.join(', ')})`;
  return `(${type.params.join(', ')}) -> ${results}`;
}
