// Test helper (not a test): builds small WebAssembly binaries byte by byte, so module
// validation and the ring workers are tested on real modules without a compiler.
export type VT = 'i32' | 'i64' | 'f32' | 'f64';
const VT_CODE: Record<VT, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c };

export interface FuncSpec {
  export?: string;
  params: VT[];
  results: VT[];
  locals?: VT[];
  body?: number[]; // instructions without the final `end`; default: return zero values
}
export interface ImportSpec {
  module: string;
  name: string;
  params?: VT[];
  results?: VT[];
  kind?: 'func' | 'memory' | 'global';
}
export interface ModuleSpec {
  imports?: ImportSpec[];
  funcs: FuncSpec[];
  memory?: { min: number; max?: number; shared?: boolean } | null;
  memoryExport?: string | null;
  data?: { offset: number; bytes: number[]; global?: boolean }[];
  customs?: { name: string; payload: string | Uint8Array }[];
  exports?: { name: string; kind: 'func' | 'memory' | 'global' | 'tag'; index: number }[];
  tables?: { min: number; max?: number }[]; // funcref tables
  tags?: number; // number of exception tags of type () -> ()
  globals?: number; // number of immutable i32 globals (value 0)
  start?: number;
}

export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
export function sleb(n: number): number[] {
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
const str = (s: string): number[] => {
  const b = [...new TextEncoder().encode(s)];
  return [...uleb(b.length), ...b];
};
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];

function zeroOf(t: VT): number[] {
  return t === 'i32' ? [0x41, 0] : t === 'i64' ? [0x42, 0] : t === 'f32' ? [0x43, 0, 0, 0, 0] : [0x44, 0, 0, 0, 0, 0, 0, 0, 0];
}

/** Assembles a module. Function indexes: imported functions first, then `funcs` in order. */
export function buildModule(spec: ModuleSpec): Uint8Array {
  const types: string[] = [];
  const typeIndex = (params: VT[], results: VT[]): number => {
    const key = `${params.join(',')}>${results.join(',')}`;
    let i = types.indexOf(key);
    if (i < 0) i = types.push(key) - 1;
    return i;
  };
  const imports = spec.imports ?? [];
  const importEntries = imports.map((imp) => {
    if (imp.kind === 'memory') return [...str(imp.module), ...str(imp.name), 0x02, 0x00, ...uleb(1024)];
    if (imp.kind === 'global') return [...str(imp.module), ...str(imp.name), 0x03, 0x7f, 0x00];
    return [...str(imp.module), ...str(imp.name), 0x00, ...uleb(typeIndex(imp.params ?? [], imp.results ?? []))];
  });
  const funcImports = imports.filter((i) => (i.kind ?? 'func') === 'func').length;
  const funcTypeIdx = spec.funcs.map((f) => typeIndex(f.params, f.results));
  const tagType = spec.tags ? typeIndex([], []) : 0;
  const typeSection = types.map((key) => {
    const [p, r] = key.split('>') as [string, string];
    const ps = p ? (p.split(',') as VT[]) : [];
    const rs = r ? (r.split(',') as VT[]) : [];
    return [0x60, ...vec(ps.map((t) => [VT_CODE[t]])), ...vec(rs.map((t) => [VT_CODE[t]]))];
  });
  const exports: number[][] = [];
  spec.funcs.forEach((f, i) => {
    if (f.export) exports.push([...str(f.export), 0x00, ...uleb(funcImports + i)]);
  });
  const memory = spec.memory === undefined ? { min: 1024 } : spec.memory;
  if (memory && spec.memoryExport !== null) exports.push([...str(spec.memoryExport ?? 'memory'), 0x02, 0x00]);
  for (const e of spec.exports ?? []) exports.push([...str(e.name), { func: 0, memory: 2, global: 3, tag: 4 }[e.kind], ...uleb(e.index)]);
  const code = spec.funcs.map((f) => {
    const locals = (f.locals ?? []).map((t) => [1, VT_CODE[t]]);
    const body = f.body ?? f.results.flatMap(zeroOf);
    const bytes = [...vec(locals), ...body, 0x0b];
    return [...uleb(bytes.length), ...bytes];
  });
  let out: number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const add = (bytes: number[]): void => {
    out = out.concat(bytes); // not push(...bytes): a large section would overflow the stack
  };
  add(section(1, vec(typeSection)));
  if (importEntries.length) add(section(2, vec(importEntries)));
  add(section(3, vec(funcTypeIdx.map((i) => uleb(i)))));
  if (spec.tables?.length) add(section(4, vec(spec.tables.map((t) => [0x70, t.max !== undefined ? 1 : 0, ...uleb(t.min), ...(t.max !== undefined ? uleb(t.max) : [])]))));
  if (memory) {
    const flags = (memory.max !== undefined ? 1 : 0) | (memory.shared ? 2 : 0);
    add(section(5, vec([[flags, ...uleb(memory.min), ...(memory.max !== undefined ? uleb(memory.max) : [])]])));
  }
  if (spec.tags) add(section(13, vec(Array.from({ length: spec.tags }, () => [0x00, ...uleb(tagType)]))));
  if (spec.globals) add(section(6, vec(Array.from({ length: spec.globals }, () => [0x7f, 0x00, 0x41, 0x00, 0x0b]))));
  add(section(7, vec(exports)));
  if (spec.start !== undefined) add(section(8, uleb(spec.start)));
  add(section(10, vec(code)));
  if (spec.data?.length) {
    add(section(11, vec(spec.data.map((d) => [0x00, ...(d.global ? [0x23, 0x00] : [0x41, ...sleb(d.offset | 0)]), 0x0b, ...uleb(d.bytes.length), ...d.bytes]))));
  }
  for (const c of spec.customs ?? []) {
    const payload = typeof c.payload === 'string' ? [...new TextEncoder().encode(c.payload)] : [...c.payload];
    add(section(0, [...str(c.name), ...payload]));
  }
  return new Uint8Array(out);
}

const I32x4: VT[] = ['i32', 'i32', 'i32', 'i32'];

/** Body of nmwasm_process writing `verdict` for each slot of the batch (num_slots read from ring+8). */
export function verdictLoopBody(verdict: number): number[] {
  // params: 0 ring, 1 verdicts, 2 first, 3 count; locals: 4 i, 5 numSlots
  return [
    0x20, 0, 0x28, 0x02, 0x08, 0x21, 5, // numSlots = i32.load offset=8 (ring)
    0x02, 0x40, 0x03, 0x40,
    0x20, 4, 0x20, 3, 0x4f, 0x0d, 1, // if i >= count break
    0x20, 1, 0x20, 2, 0x20, 4, 0x6a, 0x20, 5, 0x70, 0x6a, // verdicts + (first + i) % numSlots
    0x41, ...sleb(verdict), 0x3a, 0x00, 0x00, // i32.store8
    0x20, 4, 0x41, 1, 0x6a, 0x21, 4, // i++
    0x0c, 0, 0x0b, 0x0b,
    0x41, 0,
  ];
}

/** A module that follows ABI v1; `over` replaces parts of it. Process writes `verdict` (default PASS). */
export function abiModule(over: Partial<ModuleSpec> & { process?: number[]; verdict?: number; init?: number[] | null; extraFuncs?: FuncSpec[] } = {}): Uint8Array {
  const funcs: FuncSpec[] = [
    { export: 'nmwasm_abi_v1', params: [], results: [] },
    { export: 'nmwasm_process', params: I32x4, results: ['i32'], locals: ['i32', 'i32'], body: over.process ?? verdictLoopBody(over.verdict ?? 1) },
  ];
  if (over.init !== null) funcs.push({ export: 'nmwasm_init', params: ['i32', 'i32'], results: ['i32'], body: over.init ?? [0x41, 0] });
  funcs.push(...(over.extraFuncs ?? []));
  const { process: _p, verdict: _v, init: _i, extraFuncs: _e, ...rest } = over;
  return buildModule({
    imports: [
      { module: 'env', name: 'abort', params: I32x4, results: [] },
      { module: 'env', name: 'nmwasm_log', params: ['i32', 'i32'], results: [] },
      { module: 'env', name: 'nmwasm_now', params: [], results: ['f64'] },
    ],
    funcs,
    memory: { min: 1025 },
    data: [{ offset: 0x4000000, bytes: [...new TextEncoder().encode('hello')] }],
    ...rest,
  });
}
