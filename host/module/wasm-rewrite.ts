// Load-time rewrite of a validated filter module so that no single guest instruction runs
// for long (docs/SANDBOX.md). V8 checks for worker.terminate() only at function entries
// and loop back-edges, so one `memory.fill` over hundreds of MiB -- or a straight-line
// chain of them -- would keep a "terminated" worker's thread and memory alive for seconds.
//
// The rewrite replaces every bulk instruction whose cost grows with its operand --
// memory.fill, memory.copy, memory.init, table.fill, table.copy, table.init -- by a `call`
// to a helper function APPENDED after the module's last function (no existing function,
// type, table or element index moves). A helper does exactly what the instruction does:
// a small operation (n <= CHUNK) or one whose end overflows 32 bits runs the original
// instruction as is; a larger one first runs the same instruction with length 0 at its
// end (which traps precisely when the whole operation is out of bounds, before anything
// is written, as the spec requires), then works in CHUNK pieces inside a wasm `loop`, so
// every piece ends at a back-edge where termination takes effect. memory.copy and
// table.copy walk backwards when the destination lies above the source (overlap).
//
// It also writes the host's limits into the memory and table declarations that have no
// maximum (docs/ABI.md "Limits"): memory.grow and table.grow then fail (-1) at the limit.
// Everything else -- other sections, custom sections, function bodies without bulk
// instructions -- is copied byte for byte.
import { Cursor, WasmFormatError } from './wasmreader.ts';

/** Bytes (or table elements) one helper iteration handles: ~5-20 us of work. */
export const CHUNK = 65536;

export interface RewriteOptions {
  /** Maximum memory size written into a memory declared without one, in 64 KiB pages. */
  maxMemoryPages: number;
  /** Maximum size written into a table declared without one, in elements. */
  maxTableElements: number;
}

export interface RewriteResult {
  bytes: Uint8Array<ArrayBuffer>;
  /** Bulk instructions replaced by helper calls. */
  replaced: number;
  /** Helper functions appended. */
  helpers: number;
}

/** A module the rewriter cannot handle (an instruction it does not know): the module is refused. */
export class RewriteError extends Error {}

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const OP = { if: 0x04, loop: 0x03, end: 0x0b, brIf: 0x0d, ret: 0x0f, call: 0x10, get: 0x20, set: 0x21, tee: 0x22, i32const: 0x41, ltU: 0x49, gtU: 0x4b, leU: 0x4d, add: 0x6a, sub: 0x6b, or: 0x72 } as const;
const VOID = 0x40;
const I32 = 0x7f;

interface Section {
  id: number;
  start: number; // first content byte
  end: number;
  headerStart: number; // the id byte
}

/** One helper: what it replaces and how to build it. */
interface Helper {
  kind: 'fill' | 'copy' | 'init';
  /** The bulk instruction's bytes (prefix, sub-opcode, immediates). */
  op: number[];
  /** Encoded value type of the middle operand (i32, or a table's reference type). */
  middle: number[];
}

// ---- reading -------------------------------------------------------------------------

/** Skips a value type (numeric, vector or reference; `ref null ht`/`ref ht` carry a heap type). */
function skipValType(c: Cursor): void {
  const b = c.byte();
  if (b === 0x63 || b === 0x64) c.sleb(33);
}

function readSections(bytes: Uint8Array): Section[] {
  const top = new Cursor(bytes, 8, bytes.length, 'module');
  const out: Section[] = [];
  while (top.pos < top.end) {
    const headerStart = top.pos;
    const id = top.byte();
    const size = top.uleb();
    const start = top.pos;
    top.take(size);
    out.push({ id, start, end: start + size, headerStart });
  }
  return out;
}

/** Reads a limits record at c and returns its encoding with `max` imposed when it has none. */
function limitsWithMax(c: Cursor, max: number): number[] {
  const flags = c.byte();
  const min = c.uleb(flags & 0x04 ? 64 : 32);
  if (flags & 0x01) return [flags, ...uleb(min), ...uleb(c.uleb(flags & 0x04 ? 64 : 32))];
  return [flags | 0x01, ...uleb(min), ...uleb(Math.max(min, max))];
}

/** Skips one memarg: alignment (bit 6 = a memory index follows) and offset. */
function memarg(c: Cursor): void {
  const align = c.uleb();
  if (align & 0x40) c.uleb();
  c.uleb(64);
}

function blockType(c: Cursor): void {
  const b = c.bytes[c.pos];
  if (b === 0x63 || b === 0x64) {
    c.pos++;
    c.sleb(33);
    return;
  }
  c.sleb(33); // 0x40, a one-byte value type, or a type index (s33)
}

// ---- the instruction decoder -----------------------------------------------------------

/** Decodes one instruction at c (opcode and immediates). Returns the helper it needs when it
 * is a bulk instruction to replace, else null. Throws RewriteError on an unknown opcode. */
function decodeInstruction(c: Cursor, tableTypes: number[][]): Helper | null {
  const at = c.pos;
  const op = c.byte();
  if (op <= 0x01 || op === 0x05 || op === 0x0b || op === 0x0f || op === 0x0a || op === 0x19 || op === 0x1a || op === 0x1b) return null;
  if (op >= 0x45 && op <= 0xc4) return null; // numeric, sign extension
  switch (op) {
    case 0x02: case 0x03: case 0x04: case 0x06: // block loop if try
      blockType(c);
      return null;
    case 0x07: case 0x08: case 0x09: case 0x18: // catch throw (tag), rethrow delegate (label)
    case 0x0c: case 0x0d: case 0x10: case 0x12: case 0x14: case 0x15: // br br_if call return_call call_ref return_call_ref
    case 0x20: case 0x21: case 0x22: case 0x23: case 0x24: case 0x25: case 0x26: // locals, globals, table.get/set
    case 0xd2: case 0xd5: case 0xd6: // ref.func br_on_null br_on_non_null
      c.uleb();
      return null;
    case 0x0e: // br_table
      for (let n = c.count(); n > 0; n--) c.uleb();
      c.uleb();
      return null;
    case 0x11: case 0x13: // call_indirect return_call_indirect: type, table
      c.uleb();
      c.uleb();
      return null;
    case 0x1c: // select t*
      for (let n = c.count(); n > 0; n--) skipValType(c);
      return null;
    case 0x1f: // try_table: block type, catch clauses
      blockType(c);
      for (let n = c.count(); n > 0; n--) {
        const kind = c.byte();
        if (kind <= 1) c.uleb(); // tag
        c.uleb(); // label
      }
      return null;
    case 0x3f: case 0x40: // memory.size memory.grow
      c.uleb();
      return null;
    case 0x41: c.sleb(32); return null;
    case 0x42: c.sleb(64); return null;
    case 0x43: c.take(4); return null;
    case 0x44: c.take(8); return null;
    case 0xd0: c.sleb(33); return null; // ref.null heap type
    case 0xd1: case 0xd3: case 0xd4: return null; // ref.is_null ref.eq ref.as_non_null
    case 0xfc: return prefixFC(c, tableTypes);
    case 0xfd: prefixFD(c); return null;
    case 0xfe: prefixFE(c); return null;
  }
  if (op >= 0x28 && op <= 0x3e) {
    memarg(c); // loads and stores
    return null;
  }
  c.pos = at;
  throw new RewriteError(`unknown instruction 0x${op.toString(16)} at byte ${at}`);
}

function prefixFC(c: Cursor, tableTypes: number[][]): Helper | null {
  const at = c.pos - 1;
  const sub = c.uleb();
  if (sub <= 7) return null; // saturating truncation
  switch (sub) {
    case 8: { const seg = c.uleb(); const mem = c.uleb(); return { kind: 'init', op: [0xfc, 8, ...uleb(seg), ...uleb(mem)], middle: [I32] }; }
    case 9: case 13: c.uleb(); return null; // data.drop elem.drop
    case 10: { const d = c.uleb(); const s = c.uleb(); return { kind: 'copy', op: [0xfc, 10, ...uleb(d), ...uleb(s)], middle: [I32] }; }
    case 11: { const mem = c.uleb(); return { kind: 'fill', op: [0xfc, 11, ...uleb(mem)], middle: [I32] }; }
    case 12: { const elem = c.uleb(); const t = c.uleb(); return { kind: 'init', op: [0xfc, 12, ...uleb(elem), ...uleb(t)], middle: [I32] }; }
    case 14: { const x = c.uleb(); const y = c.uleb(); return { kind: 'copy', op: [0xfc, 14, ...uleb(x), ...uleb(y)], middle: [I32] }; }
    case 15: case 16: c.uleb(); return null; // table.grow table.size
    case 17: {
      const t = c.uleb();
      const type = tableTypes[t];
      if (!type) throw new RewriteError(`table.fill of table ${t}, which does not exist, at byte ${at}`);
      return { kind: 'fill', op: [0xfc, 17, ...uleb(t)], middle: type };
    }
  }
  throw new RewriteError(`unknown instruction 0xfc ${sub} at byte ${at}`);
}

function prefixFD(c: Cursor): void {
  const at = c.pos - 1;
  const sub = c.uleb();
  if (sub <= 11 || sub === 92 || sub === 93) memarg(c); // v128 loads/stores, load zero
  else if (sub === 12 || sub === 13) c.take(16); // v128.const, i8x16.shuffle
  else if (sub >= 21 && sub <= 34) c.byte(); // extract/replace lane
  else if (sub >= 84 && sub <= 91) { memarg(c); c.byte(); } // load/store lane
  else if (sub > 0x113) throw new RewriteError(`unknown SIMD instruction 0xfd ${sub} at byte ${at}`);
}

function prefixFE(c: Cursor): void {
  const at = c.pos - 1;
  const sub = c.uleb();
  if (sub === 3) c.byte(); // atomic.fence
  else if (sub <= 2 || (sub >= 0x10 && sub <= 0x4e)) memarg(c);
  else throw new RewriteError(`unknown atomic instruction 0xfe ${sub} at byte ${at}`);
}

// ---- helpers -------------------------------------------------------------------------

/** The body (no locals, params d=0, x=1, n=2) of the helper for `h`; see the file comment.
 * Every loop iteration calls `tick` (an empty function): NB: V8's optimizing tier drops the
 * termination check of a loop without calls (measured: a terminated worker finished its
 * 256 MiB fill first, ~100 ms), while every function entry keeps one. One call per chunk. */
function helperBody(h: Helper, tick: number): number[] {
  const TICK = [OP.call, ...uleb(tick)];
  const C = [OP.i32const, ...sleb(CHUNK)];
  const get = (i: number): number[] => [OP.get, i];
  const wraps = (i: number): number[] => [...get(i), ...get(2), OP.add, ...get(i), OP.ltU]; // x + n overflows u32
  const advancesX = h.kind !== 'fill';
  const body: number[] = [];
  // Small, or the end overflows (then it is out of bounds and the original traps at once).
  body.push(...get(2), ...C, OP.leU, ...wraps(0), OP.or);
  if (advancesX) body.push(...wraps(1), OP.or);
  body.push(OP.if, VOID, ...get(0), ...get(1), ...get(2), ...h.op, OP.ret, OP.end);
  // Bounds check up front: length 0 at the end traps exactly when the whole operation would.
  body.push(...get(0), ...get(2), OP.add, ...get(1));
  if (advancesX) body.push(...get(2), OP.add);
  body.push(OP.i32const, 0, ...h.op);
  if (h.kind === 'copy') {
    // Destination above the source: copy the chunks from the top down (overlap).
    body.push(...get(0), ...get(1), OP.gtU, OP.if, VOID);
    body.push(OP.loop, VOID, ...TICK);
    body.push(...get(2), ...C, OP.sub, OP.set, 2);
    body.push(...get(0), ...get(2), OP.add, ...get(1), ...get(2), OP.add, ...C, ...h.op);
    body.push(...get(2), ...C, OP.gtU, OP.brIf, 0, OP.end);
    body.push(...get(0), ...get(1), ...get(2), ...h.op, OP.ret, OP.end);
  }
  // Upwards in chunks; every chunk ends at the loop's back-edge.
  body.push(OP.loop, VOID, ...TICK);
  body.push(...get(0), ...get(1), ...C, ...h.op);
  body.push(...get(0), ...C, OP.add, OP.set, 0);
  if (advancesX) body.push(...get(1), ...C, OP.add, OP.set, 1);
  body.push(...get(2), ...C, OP.sub, OP.tee, 2, ...C, OP.gtU, OP.brIf, 0, OP.end);
  body.push(...get(0), ...get(1), ...get(2), ...h.op, OP.end);
  return body;
}

// ---- the rewrite ---------------------------------------------------------------------

/** Rewrites a module that V8 and host/module/module.ts already validated (see the file comment).
 * Throws RewriteError for an instruction it does not know, WasmFormatError for bad bytes. */
export function rewriteModule(bytes: Uint8Array, opts: RewriteOptions): RewriteResult {
  const sections = readSections(bytes);
  const find = (id: number): Section | undefined => sections.find((s) => s.id === id);
  const cursor = (s: Section, what: string): Cursor => new Cursor(bytes, s.start, s.end, what);

  // Index spaces: types, functions (imports first), tables (imports first, element types).
  let typeCount = 0;
  const typeSec = find(1);
  if (typeSec) typeCount = cursor(typeSec, 'type section').uleb();
  let funcCount = 0;
  const tableTypes: number[][] = [];
  const importSec = find(2);
  if (importSec) {
    const c = cursor(importSec, 'import section');
    for (let n = c.uleb(); n > 0; n--) {
      c.take(c.uleb());
      c.take(c.uleb());
      const kind = c.byte();
      if (kind === 0) { c.uleb(); funcCount++; }
      else if (kind === 1) { const s = c.pos; skipValType(c); tableTypes.push([...bytes.subarray(s, c.pos)]); c.limits(); }
      else if (kind === 2) c.limits();
      else if (kind === 3) { skipValType(c); c.byte(); }
      else if (kind === 4) { c.byte(); c.uleb(); }
      else c.fail(`unknown import kind ${kind}`);
    }
  }
  const funcSec = find(3);
  if (funcSec) funcCount += cursor(funcSec, 'function section').uleb();
  const tableSec = find(4);
  const tableOut: number[] = [];
  if (tableSec) {
    const c = cursor(tableSec, 'table section');
    const n = c.uleb();
    tableOut.push(...uleb(n));
    for (let i = 0; i < n; i++) {
      if (c.bytes[c.pos] === 0x40) throw new RewriteError('tables with an initializer expression are not supported');
      const s = c.pos;
      skipValType(c);
      const type = [...bytes.subarray(s, c.pos)];
      tableTypes.push(type);
      tableOut.push(...type, ...limitsWithMax(c, opts.maxTableElements));
    }
  }
  const memSec = find(5);
  const memOut: number[] = [];
  if (memSec) {
    const c = cursor(memSec, 'memory section');
    const n = c.uleb();
    memOut.push(...uleb(n));
    for (let i = 0; i < n; i++) memOut.push(...limitsWithMax(c, opts.maxMemoryPages));
  }

  // Code: decode every body; replace bulk instructions by calls to helpers.
  const helpers: Helper[] = [];
  const helperIndex = new Map<string, number>();
  let replaced = 0;
  const codeSec = find(10);
  const codeParts: Uint8Array[] = [];
  let bodies = 0;
  if (codeSec) {
    const c = cursor(codeSec, 'code section');
    bodies = c.uleb();
    for (let i = 0; i < bodies; i++) {
      const size = c.uleb();
      const bodyStart = c.pos;
      const end = bodyStart + size;
      const b = new Cursor(bytes, bodyStart, end, `code of function ${i}`);
      try {
        for (let groups = b.uleb(); groups > 0; groups--) {
          b.uleb();
          skipValType(b);
        }
        const parts: Uint8Array[] = [];
        let copied = bodyStart;
        while (b.pos < end) {
          const at = b.pos;
          const h = decodeInstruction(b, tableTypes);
          if (h === null) continue;
          const key = `${h.kind}:${h.op.join(',')}`;
          let index = helperIndex.get(key);
          if (index === undefined) {
            index = funcCount + helpers.length;
            helpers.push(h);
            helperIndex.set(key, index);
          }
          parts.push(bytes.subarray(copied, at), new Uint8Array([OP.call, ...uleb(index)]));
          copied = b.pos;
          replaced++;
        }
        if (parts.length === 0) codeParts.push(withSize(bytes.subarray(bodyStart, end)));
        else {
          parts.push(bytes.subarray(copied, end));
          codeParts.push(withSize(concat(parts)));
        }
      } catch (err) {
        if (err instanceof RewriteError || err instanceof WasmFormatError) throw new RewriteError(`function ${funcCount - bodies + i}: ${err.message}`);
        throw err;
      }
      c.pos = end;
    }
  }

  // Helper types: (i32, middle, i32) -> (), one per distinct middle type.
  const typeKeys: string[] = [];
  const helperTypes: number[] = helpers.map((h) => {
    const key = h.middle.join(',');
    let t = typeKeys.indexOf(key);
    if (t < 0) t = typeKeys.push(key) - 1;
    return typeCount + t;
  });
  const newTypes = typeKeys.map((k) => [0x60, 3, I32, ...k.split(',').map(Number), I32, 0]);
  // The helpers' `tick` (see helperBody): () -> (), appended after them.
  const tick = funcCount + helpers.length;
  const appended = helpers.length > 0 ? helpers.length + 1 : 0;
  if (appended > 0) {
    helperTypes.push(typeCount + newTypes.length);
    newTypes.push([0x60, 0, 0]);
  }

  // Reassemble: sections in their order, the changed ones re-encoded.
  const out: Uint8Array[] = [bytes.subarray(0, 8)];
  const emit = (id: number, content: number[] | Uint8Array[]): void => {
    const body = content.length > 0 && content[0] instanceof Uint8Array ? concat(content as Uint8Array[]) : new Uint8Array(content as number[]);
    out.push(new Uint8Array([id, ...uleb(body.length)]), body);
  };
  const tail = (s: Section): Uint8Array => {
    const c = cursor(s, 'section');
    c.uleb();
    return bytes.subarray(c.pos, s.end);
  };
  for (const s of sections) {
    if (s.id === 1 && newTypes.length > 0) emit(1, [new Uint8Array(uleb(typeCount + newTypes.length)), tail(s), new Uint8Array(newTypes.flat())]);
    else if (s.id === 3 && appended > 0) emit(3, [new Uint8Array(uleb(cursor(s, 'function section').uleb() + appended)), tail(s), new Uint8Array(helperTypes.flatMap((t) => uleb(t)))]);
    else if (s.id === 4) emit(4, tableOut);
    else if (s.id === 5) emit(5, memOut);
    else if (s.id === 10 && codeSec) {
      const added = helpers.map((h) => withSize(new Uint8Array([0, ...helperBody(h, tick)])));
      if (appended > 0) added.push(withSize(new Uint8Array([0, OP.end])));
      emit(10, [new Uint8Array(uleb(bodies + appended)), ...codeParts, ...added]);
    }
    else out.push(bytes.subarray(s.headerStart, s.end));
  }
  return { bytes: concat(out), replaced, helpers: helpers.length };
}

function withSize(body: Uint8Array): Uint8Array {
  return concat([new Uint8Array(uleb(body.length)), body]);
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
