// `nmwasm build [DIR]`: compiles a filter package (docs/PACKAGES.md) with the AssemblyScript
// compiler at the recommended flags (-O3, --noAssert, --runtime stub, --memoryBase 64 MiB so
// every data segment lies above the host's area, docs/ABI.md section 1), embeds the manifest
// from package.json's "nmwasm" block as the module's `nmwasm.manifest` custom section, checks
// the result against the ABI like `load` does, and records its sha256 in package.json.
// Imports in the filter of `nmwasm/sdk` resolve to node_modules/nmwasm/sdk/index.ts, or, when
// the package has no node_modules/nmwasm (the filters of this repository), to this nmwasm's own.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UsageError, oneLine, quote } from '../cli/errors.ts';
import { compileSchema } from './filterconfig.ts';
import { validateModuleBytes, ABI_VERSION } from './module.ts';
import { CONFIG_FORMATS, FILTER_KEYWORD, sha256Hex, type ConfigFormat } from './package.ts';
import { printable } from '../cli/text.ts';

/** The asc options every filter is built with (also written to a new package's asconfig.json). */
export const ASC_OPTIONS = { runtime: 'stub', memoryBase: 0x4000000, exportRuntime: false, noExportMemory: false } as const;
export const ASC_RELEASE = { optimizeLevel: 3, shrinkLevel: 0, converge: false, noAssert: true } as const;

/** The root of this nmwasm package: the nearest folder above this file (host/module/ in the
 *  sources, dist/ in the bundle) holding nmwasm's package.json. */
export function nmwasmRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: unknown }).name === 'nmwasm') return dir;
      } catch { /* not ours: keep looking */ }
    }
    if (dirname(dir) === dir) return resolve(here, '..');
  }
}

export interface BuildResult {
  module: string;
  bytes: number;
  sha256: string;
}

/** Builds the filter package in `dir`: compile, embed the manifest, check, write the module
 * and the sha256 into package.json. Compiler diagnostics go to `stderr`; a bad package or a
 * failed compile is a one-line UsageError. */
export async function buildPackage(dir: string, stderr: (text: string) => void): Promise<BuildResult> {
  const pkgPath = join(dir, 'package.json');
  if (!existsSync(pkgPath)) throw new UsageError(`nmwasm build: ${printable(dir, 200)} has no package.json (expected a filter package; nmwasm new NAME makes one)`);
  const pkgText = readFileSync(pkgPath, 'utf8');
  let pkg: Record<string, unknown>;
  try {
    pkg = JSON.parse(pkgText) as Record<string, unknown>;
  } catch (err) {
    throw new UsageError(`${printable(pkgPath, 200)}: expected valid JSON, got ${printable(oneLine((err as Error).message), 160)}`);
  }
  const name = typeof pkg.name === 'string' ? pkg.name : basename(dir);
  const block = pkg.nmwasm as Record<string, unknown> | undefined;
  const bad = (message: string): never => {
    throw new UsageError(`${printable(pkgPath, 200)}: "nmwasm".${message} (docs/PACKAGES.md)`);
  };
  if (block === null || typeof block !== 'object' || Array.isArray(block)) throw new UsageError(`${printable(pkgPath, 200)}: expected an "nmwasm" block ({"module", "entry", ...}), got ${block === undefined ? 'none' : typeof block} (docs/PACKAGES.md)`);
  if (block.abi !== undefined && block.abi !== ABI_VERSION) bad(`abi: this nmwasm builds ABI v${ABI_VERSION}, got ${printable(JSON.stringify(block.abi), 40)}`);
  const entry = inside(dir, block.entry ?? 'assembly/index.ts', 'entry', bad);
  const module = inside(dir, block.module, 'module', bad);
  if (!module.endsWith('.wasm')) bad(`module: expected a path ending in .wasm, got ${quote(String(block.module))}`);
  if (!existsSync(entry)) bad(`entry: ${quote(String(block.entry ?? 'assembly/index.ts'))} does not exist`);
  const configFormat = (block.configFormat ?? 'text') as ConfigFormat;
  if (!CONFIG_FORMATS.includes(configFormat)) bad(`configFormat: expected one of ${CONFIG_FORMATS.join(', ')}, got ${printable(JSON.stringify(block.configFormat), 40)}`);
  let configSchema: unknown;
  if (block.configSchema !== undefined) {
    configSchema = block.configSchema;
    if (typeof configSchema === 'string') {
      const file = inside(dir, configSchema, 'configSchema', bad);
      try {
        configSchema = JSON.parse(readFileSync(file, 'utf8'));
      } catch (err) {
        bad(`configSchema: cannot read ${quote(block.configSchema as string)} as JSON (${printable(oneLine((err as Error).message), 120)})`);
      }
    }
    compileSchema(name, configSchema); // a schema ajv refuses fails the build, not the first load
  }
  if (configFormat === 'json' && configSchema === undefined) bad('configSchema: configFormat "json" needs a JSON Schema (an object, or the path of a .json file in the package)');
  const stats = block.stats ?? [];
  if (!Array.isArray(stats) || !stats.every((s) => typeof s === 'string')) bad('stats: expected an array of counter names');
  if (existsSync(module) && !lstatSync(module).isFile()) bad(`module: ${quote(String(block.module))} exists and is not a regular file; refusing to replace it`);
  if (resolve(module) === resolve(entry)) bad('module: must not be the entry file');

  const wasm = await compile(entry, dir, stderr);
  const manifest: Record<string, unknown> = { name, version: typeof pkg.version === 'string' ? pkg.version : '0.0.0', description: typeof pkg.description === 'string' ? pkg.description : '' };
  Object.assign(manifest, { abi: ABI_VERSION, entry: relative(dir, entry), config: typeof block.config === 'string' ? block.config : configFormat, configFormat });
  if (configSchema !== undefined) manifest.configSchema = configSchema;
  manifest.stats = stats;
  const out = appendCustomSection(wasm, 'nmwasm.manifest', new TextEncoder().encode(JSON.stringify(manifest)));
  validateModuleBytes(relative(process.cwd(), module) || module, out); // the ABI checks load makes, now
  writeAtomically(module, out);
  const sha256 = sha256Hex(out);
  // package.json keeps its key order; the nmwasm block gets abi and sha256.
  const newBlock = { ...block, abi: ABI_VERSION, sha256 };
  const keywords = Array.isArray(pkg.keywords) ? (pkg.keywords as unknown[]) : [];
  const next = { ...pkg, ...(keywords.includes(FILTER_KEYWORD) ? {} : { keywords: [...keywords, FILTER_KEYWORD] }), nmwasm: newBlock };
  writeAtomically(pkgPath, new TextEncoder().encode(`${JSON.stringify(next, null, 2)}\n`));
  return { module: relative(process.cwd(), module) || module, bytes: out.length, sha256 };
}

function inside(dir: string, value: unknown, key: string, bad: (m: string) => never): string {
  if (typeof value !== 'string' || value.length === 0) return bad(`${key}: expected a path inside the package, got ${value === undefined ? 'none' : printable(JSON.stringify(value), 60)}`);
  const file = resolve(dir, value);
  const rel = relative(dir, file);
  if (rel.startsWith('..') || isAbsolute(rel)) bad(`${key}: expected a path inside the package, got ${quote(value)}`);
  return file;
}

/** Runs asc on `entry`; returns the module bytes (not yet written to `module`). */
async function compile(entry: string, dir: string, stderr: (text: string) => void): Promise<Uint8Array> {
  const asc = await import('assemblyscript/asc');
  // Fallback for `nmwasm/sdk` when the package has no node_modules/nmwasm: a directory whose
  // only entry is a link named nmwasm to this package (asc --path is searched after node_modules).
  const fallback = mkdtempSync(join(tmpdir(), 'nmwasm-build-'));
  try {
    symlinkSync(nmwasmRoot(), join(fallback, 'nmwasm'), 'dir');
    const args = [relative(dir, entry), '--baseDir', dir, '--outFile', join(fallback, 'out.wasm'), '--path', fallback, '--noColors'];
    for (const [key, value] of Object.entries({ ...ASC_OPTIONS, ...ASC_RELEASE })) {
      if (typeof value === 'boolean') {
        if (value) args.push(`--${key}`);
      } else args.push(`--${key}`, String(value));
    }
    // An asconfig.json in the package adds options; the ones above win over it.
    const out: string[] = [];
    const { error } = await asc.main(args, {
      stdout: { write: (s: string | Uint8Array) => (out.push(String(s)), true) },
      stderr: { write: (s: string | Uint8Array) => (stderr(typeof s === 'string' ? s : new TextDecoder().decode(s)), true) },
    } as Parameters<typeof asc.main>[1]);
    if (error) throw new UsageError(`nmwasm build: asc failed on ${printable(relative(process.cwd(), entry) || entry, 200)}: ${printable(oneLine(error.message), 200)} (the compiler's messages are above)`);
    return new Uint8Array(readFileSync(join(fallback, 'out.wasm')));
  } finally {
    rmSync(fallback, { recursive: true, force: true });
  }
}

function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

/** `wasm` with a custom section `name` holding `payload` appended (id 0, size, name). */
export function appendCustomSection(wasm: Uint8Array, name: string, payload: Uint8Array): Uint8Array {
  const nameBytes = new TextEncoder().encode(name);
  const body = [...leb128(nameBytes.length), ...nameBytes];
  const size = leb128(body.length + payload.length);
  const out = new Uint8Array(wasm.length + 1 + size.length + body.length + payload.length);
  out.set(wasm, 0);
  let at = wasm.length;
  out[at++] = 0;
  out.set(size, at);
  at += size.length;
  out.set(body, at);
  at += body.length;
  out.set(payload, at);
  return out;
}

/** Writes `bytes` to `path` through a temporary file in the same directory and a rename, so
 * a reader never sees half a file; refuses to replace anything but a regular file. */
export function writeAtomically(path: string, bytes: Uint8Array): void {
  if (existsSync(path) && !lstatSync(path).isFile()) throw new UsageError(`${printable(path, 200)}: exists and is not a regular file; refusing to replace it`);
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${printable(path, 200)}: cannot write (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
