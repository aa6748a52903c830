// Loading and validating a filter module against the ring ABI v1 (docs/ABI.md): read the
// file (or resolve an npm package that declares one), check the magic, compile it, then
// check exports, imports, memory and data segments with host/module/wasmreader.ts, enforce the
// resource limits (memory, table, code and data size; docs/ABI.md section 7), read the
// `nmwasm.manifest` custom section, then rewrite the bulk instructions so that no single
// guest instruction runs long (host/module/wasm-rewrite.ts, docs/SANDBOX.md). The result is a
// plain description used by `inspect` and by the engine, plus the compiled rewritten
// WebAssembly.Module (cloneable to ring workers).
import { createHash } from 'node:crypto';
import { UsageError, oneLine } from '../cli/errors.ts';
import { CONFIG_FORMATS, HOST_ABI_VERSION, resolveFilter, type ConfigFormat, type FilterSource } from './package.ts';
import { formatFuncType, readWasmBinary, WasmFormatError, type FuncType, type WasmBinary } from './wasmreader.ts';
import { rewriteModule, RewriteError } from './wasm-rewrite.ts';
import { printable } from '../cli/text.ts';

export const ABI_VERSION = HOST_ABI_VERSION;
export const NMWASM_CONFIG_BASE = 0x10000;
export const NMWASM_CONFIG_MAX = 0xf0000;
export const NMWASM_WINDOW_BASE = 0x100000;
export const NMWASM_DATA_BASE = 0x4000000;
export const WASM_PAGE = 65536;
export const MIN_PAGES = NMWASM_DATA_BASE / WASM_PAGE; // 1024
const MAX_STATS = 64;
const MiB = 1 << 20;

/** Resource limits of one module (docs/ABI.md section 7); the CLI flags raise or lower them. */
export interface ModuleLimits {
  /** Linear memory above NMWASM_DATA_BASE, in MiB (--max-memory): static data, stack, heap. */
  memoryMiB: number;
  /** Elements of each table (--max-table). */
  tableElements: number;
  /** Bytes of the code section, in MiB (--max-code). */
  codeMiB: number;
  /** Bytes of all data segments together, in MiB (--max-data). */
  dataMiB: number;
}
export const DEFAULT_LIMITS: Readonly<ModuleLimits> = { memoryMiB: 128, tableElements: 65_536, codeMiB: 4, dataMiB: 16 };
/** Upper bounds of the flags: memory stays below 4 GiB (65536 pages), V8's table limit. */
export const LIMIT_BOUNDS = { memoryMiB: 4096 - 64 - 1, tableElements: 10_000_000, codeMiB: 64, dataMiB: 64 } as const;

/** The largest memory a module may have, in pages: the host's 64 MiB plus --max-memory. */
export function maxMemoryPages(limits: ModuleLimits): number {
  return MIN_PAGES + limits.memoryMiB * (MiB / WASM_PAGE);
}

/** The exports a v1 module may have, with their exact types. */
const ABI_EXPORTS: Record<string, { type: FuncType; required: boolean }> = {
  nmwasm_abi_v1: { type: { params: [], results: [] }, required: true },
  nmwasm_process: { type: { params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] }, required: true },
  nmwasm_init: { type: { params: ['i32', 'i32'], results: ['i32'] }, required: false },
  nmwasm_stats: { type: { params: [], results: ['i32'] }, required: false },
  // State carried across a hot-swap (section 8): both or neither.
  nmwasm_state_save: { type: { params: [], results: ['i32'] }, required: false },
  nmwasm_state_load: { type: { params: ['i32', 'i32'], results: ['i32'] }, required: false },
};

/** The only imports a module may have (module `env`), with their exact types. */
const ABI_IMPORTS: Record<string, FuncType> = {
  abort: { params: ['i32', 'i32', 'i32', 'i32'], results: [] },
  nmwasm_log: { params: ['i32', 'i32'], results: [] },
  nmwasm_now: { params: [], results: ['f64'] },
};

export interface Manifest {
  name?: string;
  version?: string;
  description?: string;
  /** One line on the config format, for people. */
  config?: string;
  /** The ring ABI version the module was built for (written by nmwasm build). */
  abi?: number;
  /** The source entry it was built from. */
  entry?: string;
  /** How the --config bytes are read: none, text, or json checked against configSchema. */
  configFormat?: ConfigFormat;
  /** A JSON Schema of the config when configFormat is json. */
  configSchema?: unknown;
  stats: string[];
}

export interface ModuleDescription {
  path: string;
  bytes: number;
  abiVersion: number;
  exports: { name: string; kind: string; signature?: string }[];
  imports: { module: string; name: string; signature: string }[];
  memory: { initialPages: number; maxPages?: number };
  /** Bulk instructions (memory.fill/copy/init, table.fill/copy/init) replaced by chunked helpers. */
  boundedInstructions: number;
  hasInit: boolean;
  hasStats: boolean;
  /** Exports nmwasm_state_save and nmwasm_state_load (docs/ABI.md section 8). */
  hasState: boolean;
  hasStart: boolean;
  manifest: Manifest | null;
}

export interface LoadedModule {
  description: ModuleDescription;
  module: WebAssembly.Module;
  /** The package it came from (name, version, where), when MODULE named one. */
  package?: { name: string; version: string; where: string };
  /** Lowercase hex sha256 of the module's bytes as loaded (what `nmwasm ps` shows). */
  sha256?: string;
}

/** Reads, compiles and validates a module (path or package name) against the ABI and `limits`,
 * and compiles its rewritten form (bulk instructions bounded, limits written into memory and
 * table declarations without a maximum); throws a one-line UsageError naming the file and the
 * broken rule (and the flag that raises a limit). */
export function loadModule(spec: string, limits: ModuleLimits = DEFAULT_LIMITS): LoadedModule {
  const source = resolveFilter(spec); // a package: ABI and sha256 checked here, before anything runs
  const bytes = source.bytes;
  checkMagic(spec, bytes);
  try {
    new WebAssembly.Module(bytes); // V8 validates; its message names the original byte offsets
  } catch (err) {
    throw new UsageError(`${spec}: invalid WebAssembly module: ${printable((err as Error).message.replace(/^WebAssembly\.Module\(\): /, ''))}`);
  }
  const description = validateModuleBytes(spec, bytes, limits);
  checkPackageManifest(source, description.manifest);
  let rewritten: Uint8Array<ArrayBuffer>;
  try {
    const r = rewriteModule(bytes, { maxMemoryPages: maxMemoryPages(limits), maxTableElements: limits.tableElements });
    rewritten = r.bytes;
    description.boundedInstructions = r.replaced;
  } catch (err) {
    if (err instanceof RewriteError || err instanceof WasmFormatError) throw new UsageError(`${spec}: cannot bound the module's bulk instructions: ${err.message} (see docs/SANDBOX.md)`);
    throw err;
  }
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(rewritten);
  } catch (err) {
    throw new Error(`${spec}: internal error: the rewritten module does not compile: ${(err as Error).message}`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  return source.pkg ? { description, module, sha256, package: { name: source.pkg.name, version: source.pkg.version, where: source.pkg.where } } : { description, module, sha256 };
}

/** A package's module must carry its manifest section (nmwasm build embeds it), and the
 * section must agree with package.json on the ABI and the config format. */
function checkPackageManifest(source: FilterSource, manifest: Manifest | null): void {
  const pkg = source.pkg;
  if (!pkg) return;
  const spec = source.spec;
  if (!manifest) throw new UsageError(`${spec}: module ${JSON.stringify(pkg.block.module)} has no nmwasm.manifest section (build it with nmwasm build, which embeds one; docs/PACKAGES.md)`);
  if (manifest.abi === undefined) throw new UsageError(`${spec}: the module's nmwasm.manifest has no "abi" (build it with nmwasm build; docs/PACKAGES.md)`);
  if ((manifest.configFormat ?? 'text') !== (pkg.block.configFormat ?? 'text')) {
    throw new UsageError(`${spec}: package.json says configFormat ${JSON.stringify(pkg.block.configFormat ?? 'text')}, the module's manifest ${JSON.stringify(manifest.configFormat ?? 'text')} (rebuild with nmwasm build)`);
  }
}

/** Checks the 8-byte header "\0asm" + version 1. */
export function checkMagic(spec: string, bytes: Uint8Array): void {
  const head = bytes.subarray(0, 4);
  if (bytes.length < 4 || head[0] !== 0 || head[1] !== 0x61 || head[2] !== 0x73 || head[3] !== 0x6d) {
    const got = bytes.length === 0 ? 'an empty file' : Array.from(head, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
    throw new UsageError(`${spec}: not a WebAssembly module (expected magic \\0asm, got ${bytes.length === 0 ? got : JSON.stringify(got)})`);
  }
  if (bytes.length < 8) throw new UsageError(`${spec}: truncated WebAssembly module (expected an 8-byte header, got ${bytes.length} bytes)`);
  const version = bytes[4]! | (bytes[5]! << 8) | (bytes[6]! << 16) | (bytes[7]! << 24);
  if (version !== 1) throw new UsageError(`${spec}: unsupported WebAssembly binary version (expected 1, got ${version >>> 0})`);
}

/** Validates a module's binary against ABI v1 and `limits` and returns its description. `spec`
 * names it in errors; names from the module are escaped (host/cli/text.ts printable). */
export function validateModuleBytes(spec: string, bytes: Uint8Array, limits: ModuleLimits = DEFAULT_LIMITS): ModuleDescription {
  let bin: WasmBinary;
  try {
    bin = readWasmBinary(bytes);
  } catch (err) {
    if (err instanceof WasmFormatError) throw new UsageError(`${spec}: malformed WebAssembly module: ${printable(err.message)}`);
    throw err;
  }
  const fail: (message: string) => never = (message) => {
    throw new UsageError(`${spec}: ${message} (nmwasm ABI v${ABI_VERSION}, see docs/ABI.md)`);
  };
  const typeOf = (typeIndex: number): FuncType => bin.types[typeIndex] ?? fail(`type index ${typeIndex} out of range`);

  // Imports: only env.abort / env.nmwasm_log / env.nmwasm_now with their exact types.
  const funcTypes: FuncType[] = [];
  const imports: ModuleDescription['imports'] = [];
  for (const imp of bin.imports) {
    const label = printable(`${imp.module}.${imp.name}`, 120);
    if (imp.desc.kind === 'memory') fail(`memory must be defined and exported by the module, not imported (got import ${label})`);
    if (imp.desc.kind !== 'func') fail(`forbidden import ${label} (a ${imp.desc.kind}; allowed: env.abort, env.nmwasm_log, env.nmwasm_now)`);
    const expected = imp.module === 'env' ? ABI_IMPORTS[imp.name] : undefined;
    if (!expected || !Object.hasOwn(ABI_IMPORTS, imp.name) || imp.module !== 'env') fail(`forbidden import ${label} (allowed: env.abort, env.nmwasm_log, env.nmwasm_now)`);
    const type = typeOf(imp.desc.typeIndex);
    if (!sameType(type, expected)) fail(`import ${label} has type ${formatFuncType(type)}, expected ${formatFuncType(expected)}`);
    funcTypes.push(type);
    imports.push({ module: imp.module, name: imp.name, signature: formatFuncType(type) }); // only the three ABI names get here
  }
  for (const typeIndex of bin.functions) funcTypes.push(typeOf(typeIndex));

  // Memory: exactly one, defined here, not shared, 32-bit, >= 1024 pages, exported as `memory`.
  if (bin.memories.length !== 1) fail(`expected exactly one memory defined by the module, got ${bin.memories.length}`);
  const memory = bin.memories[0]!;
  if (memory.shared) fail('memory must not be shared');
  if (memory.memory64) fail('memory must be 32-bit (memory64 is not supported)');
  if (memory.min < MIN_PAGES) fail(`memory initial size must be at least ${MIN_PAGES} pages (64 MiB; build with --memoryBase 67108864), got ${memory.min}`);
  if (memory.max !== undefined && memory.max < memory.min) fail(`memory maximum ${memory.max} is below its initial size ${memory.min}`);
  checkLimits(spec, bin, limits);

  // Exports.
  const exports: ModuleDescription['exports'] = [];
  const found = new Map<string, FuncType>();
  let memoryExported = false;
  for (const exp of bin.exports) {
    const expName = printable(exp.name, 120);
    if (exp.kind === 'memory') {
      if (exp.name === 'memory') memoryExported = true;
      exports.push({ name: exp.name, kind: 'memory' });
      continue;
    }
    if (exp.kind !== 'func') {
      if (exp.name.startsWith('nmwasm_')) fail(`export ${expName} must be a function, got a ${exp.kind}`);
      exports.push({ name: exp.name, kind: exp.kind });
      continue;
    }
    const type = funcTypes[exp.index] ?? fail(`export ${expName} refers to function ${exp.index}, which does not exist`);
    exports.push({ name: exp.name, kind: 'func', signature: formatFuncType(type) });
    if (!exp.name.startsWith('nmwasm_')) continue;
    const abi = Object.hasOwn(ABI_EXPORTS, exp.name) ? ABI_EXPORTS[exp.name] : undefined;
    if (!abi) fail(`unknown export ${expName} (built against another ABI version? v${ABI_VERSION} knows ${Object.keys(ABI_EXPORTS).join(', ')})`);
    if (!sameType(type, abi.type)) fail(`export ${expName} has type ${formatFuncType(type)}, expected ${formatFuncType(abi.type)}`);
    found.set(exp.name, type);
  }
  if (!memoryExported) fail('memory must be exported as "memory"');
  if (!found.has('nmwasm_abi_v1')) {
    const other = bin.exports.find((e) => /^nmwasm_abi_v\d+$/.test(e.name));
    fail(`missing the ABI marker export nmwasm_abi_v1: () -> ()${other ? ` (found ${other.name})` : ''}`); // other.name matched /^nmwasm_abi_v\d+$/
  }
  for (const [name, abi] of Object.entries(ABI_EXPORTS)) {
    if (abi.required && !found.has(name)) fail(`missing required export ${name}: ${formatFuncType(abi.type)}`);
  }
  // Carried state (hot-swap): both halves or neither.
  if (found.has('nmwasm_state_save') !== found.has('nmwasm_state_load')) {
    fail(`exports ${found.has('nmwasm_state_save') ? 'nmwasm_state_save but not nmwasm_state_load: (i32, i32) -> i32' : 'nmwasm_state_load but not nmwasm_state_save: () -> i32'} (carried state needs both): export both or neither`);
  }

  // Data segments: every active one at a constant offset >= NMWASM_DATA_BASE.
  for (const [i, seg] of bin.data.entries()) {
    if (seg.mode !== 'active') continue;
    if (seg.offset === undefined) fail(`data segment ${i} has a non-constant offset (expected i32.const >= 0x${NMWASM_DATA_BASE.toString(16)})`);
    if (seg.offset < NMWASM_DATA_BASE) {
      fail(`data segment ${i} starts at 0x${seg.offset.toString(16)}, inside the host's area (expected >= 0x${NMWASM_DATA_BASE.toString(16)}; build with --memoryBase 67108864)`);
    }
  }

  const manifest = readManifest(spec, bin);
  const hasStats = found.has('nmwasm_stats');
  if (manifest && manifest.stats.length > 0 && !hasStats) fail('manifest lists stats but the module does not export nmwasm_stats: () -> i32');
  const desc: ModuleDescription = {
    path: spec,
    bytes: bytes.length,
    abiVersion: ABI_VERSION,
    exports,
    imports,
    memory: memory.max === undefined ? { initialPages: memory.min } : { initialPages: memory.min, maxPages: memory.max },
    boundedInstructions: 0,
    hasInit: found.has('nmwasm_init'),
    hasStats,
    hasState: found.has('nmwasm_state_save'),
    hasStart: bin.start !== undefined,
    manifest,
  };
  return desc;
}

/** Refuses a module over one of `limits`, naming the limit and the flag that raises it. */
function checkLimits(spec: string, bin: WasmBinary, limits: ModuleLimits): void {
  const over = (what: string, limit: string, flag: string): never => {
    throw new UsageError(`${spec}: ${what} exceeds the limit of ${limit} (raise it with ${flag}; docs/ABI.md section 7)`);
  };
  const memory = bin.memories[0]!;
  const pages = maxMemoryPages(limits);
  const limitText = `${pages} pages = 64 MiB host area + ${limits.memoryMiB} MiB`;
  if (memory.min > pages) over(`memory initial size ${memory.min} pages (${mib(memory.min * WASM_PAGE)})`, limitText, '--max-memory MIB');
  if (memory.max !== undefined && memory.max > pages) over(`memory maximum ${memory.max} pages (${mib(memory.max * WASM_PAGE)})`, limitText, '--max-memory MIB');
  for (const [i, table] of bin.tables.entries()) {
    if (table.min > limits.tableElements) over(`table ${i} initial size ${table.min} elements`, `${limits.tableElements} elements`, '--max-table N');
    if (table.max !== undefined && table.max > limits.tableElements) over(`table ${i} maximum ${table.max} elements`, `${limits.tableElements} elements`, '--max-table N');
  }
  if (bin.codeBytes > limits.codeMiB * MiB) over(`code section of ${bin.codeBytes} bytes (${mib(bin.codeBytes)})`, `${limits.codeMiB} MiB`, '--max-code MIB');
  const dataBytes = bin.data.reduce((sum, d) => sum + d.size, 0);
  if (dataBytes > limits.dataMiB * MiB) over(`data segments of ${dataBytes} bytes (${mib(dataBytes)})`, `${limits.dataMiB} MiB`, '--max-data MIB');
}

function mib(bytes: number): string {
  return `${Math.round((bytes / MiB) * 10) / 10} MiB`;
}

function sameType(a: FuncType, b: FuncType): boolean {
  return a.params.length === b.params.length && a.results.length === b.results.length && a.params.every((t, i) => t === b.params[i]) && a.results.every((t, i) => t === b.results[i]);
}

/** Reads and checks the `nmwasm.manifest` custom section; null when absent. */
function readManifest(spec: string, bin: WasmBinary): Manifest | null {
  const sections = bin.customs.filter((c) => c.name === 'nmwasm.manifest');
  if (sections.length === 0) return null;
  const bad: (message: string) => never = (message) => {
    throw new UsageError(`${spec}: invalid nmwasm.manifest section: ${message}`);
  };
  if (sections.length > 1) bad(`expected one section, got ${sections.length}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(sections[0]!.payload);
  } catch {
    return bad('expected UTF-8 text, got invalid bytes');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return bad(`expected JSON, got ${printable(oneLine((err as Error).message), 160)}`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return bad(`expected a JSON object, got ${Array.isArray(json) ? 'an array' : String(json === null ? 'null' : typeof json)}`);
  const obj = json as Record<string, unknown>;
  const manifest: Manifest = { stats: [] };
  for (const key of ['name', 'version', 'description', 'config'] as const) {
    const value = obj[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') bad(`"${key}" must be a string, got ${typeof value}`);
    // Shown by inspect and in summaries: escaped at display (printable), kept as written here.
    manifest[key] = value as string;
  }
  if (obj.abi !== undefined) {
    if (typeof obj.abi !== 'number' || !Number.isInteger(obj.abi) || obj.abi < 1) bad(`"abi" must be a positive integer, got ${printable(JSON.stringify(obj.abi), 40)}`);
    if (obj.abi !== ABI_VERSION) throw new UsageError(`${spec}: built for nmwasm ABI v${obj.abi as number}, this host runs v${ABI_VERSION} (its nmwasm.manifest says so); rebuild it with this nmwasm (nmwasm build)`);
    manifest.abi = obj.abi as number;
  }
  if (obj.entry !== undefined) {
    if (typeof obj.entry !== 'string') bad(`"entry" must be a string, got ${typeof obj.entry}`);
    manifest.entry = obj.entry as string;
  }
  if (obj.configFormat !== undefined) {
    if (!CONFIG_FORMATS.includes(obj.configFormat as ConfigFormat)) bad(`"configFormat" must be one of ${CONFIG_FORMATS.join(', ')}, got ${printable(JSON.stringify(obj.configFormat), 40)}`);
    manifest.configFormat = obj.configFormat as ConfigFormat;
  }
  if (obj.configSchema !== undefined) {
    if (obj.configSchema === null || (typeof obj.configSchema !== 'object' && typeof obj.configSchema !== 'boolean')) bad('"configSchema" must be a JSON Schema (an object)');
    manifest.configSchema = obj.configSchema;
  }
  if (manifest.configFormat === 'json' && manifest.configSchema === undefined) bad('"configFormat": "json" needs a "configSchema"');
  if (obj.stats !== undefined) {
    if (!Array.isArray(obj.stats) || !obj.stats.every((s) => typeof s === 'string' && s.length > 0 && s.length <= 64)) bad('"stats" must be an array of counter names (strings of 1..64 characters)');
    if ((obj.stats as string[]).length > MAX_STATS) bad(`"stats" lists ${(obj.stats as string[]).length} counters, at most ${MAX_STATS} allowed`);
    const names = obj.stats as string[];
    // A stat name becomes a summary key and a word of the summary line: printable, unique.
    const unprintable = names.find((n) => printable(n, 64) !== n || n.trim() !== n || n.includes(' '));
    if (unprintable !== undefined) bad(`"stats" names must be printable and without spaces or backslashes, got ${JSON.stringify(printable(unprintable, 64))}`);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) bad(`"stats" lists ${JSON.stringify(dup)} twice`);
    manifest.stats = [...(obj.stats as string[])];
  }
  return manifest;
}
