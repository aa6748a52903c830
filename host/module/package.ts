// Filter packages (docs/PACKAGES.md): resolves the MODULE argument of load/test/inspect to a
// module's bytes. MODULE is a .wasm file, a package directory, a package name installed in
// node_modules (looked up from the working directory upwards) or a .tgz made by `npm pack`
// (read in memory, never unpacked to disk). A package's package.json carries an "nmwasm"
// block; before anything runs its ABI version is checked and the module's sha256 compared
// with the one `nmwasm build` recorded. Every failure is one UsageError line naming the
// package, the cause and what to do (exit 2).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, posix, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { UsageError, oneLine, quote } from '../cli/errors.ts';
import { printable } from '../cli/text.ts';

/** The ring ABI version this host runs (docs/ABI.md). */
export const HOST_ABI_VERSION = 1;
/** Largest module file the host reads. */
export const MAX_MODULE_BYTES = 64 << 20;
/** Largest .tgz, and largest unpacked size of one, the host reads. */
const MAX_TARBALL_BYTES = 64 << 20;
const MAX_UNPACKED_BYTES = 256 << 20;
/** The keyword a filter package carries in package.json. */
export const FILTER_KEYWORD = 'nmwasm-filter';
export const CONFIG_FORMATS = ['none', 'text', 'json'] as const;
export type ConfigFormat = (typeof CONFIG_FORMATS)[number];

const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._~-]*\/)?[a-z0-9][a-z0-9._~-]*$/;

/** The "nmwasm" block of a filter package's package.json, checked. */
export interface PackageBlock {
  abi: number;
  module: string;
  sha256?: string;
  entry?: string;
  config?: string;
  configFormat?: ConfigFormat;
  configSchema?: unknown;
  stats?: string[];
}

/** Where a module came from: its bytes, and for a package the checked package.json. */
export interface FilterSource {
  /** The MODULE argument as given (names the filter in errors). */
  spec: string;
  bytes: Uint8Array<ArrayBuffer>;
  pkg?: { name: string; version: string; where: string; block: PackageBlock };
}

/** Resolves MODULE (file, directory, node_modules name or .tgz) to its module bytes; for a
 * package, checks the nmwasm block, the ABI version and the sha256 first. Throws a one-line
 * UsageError (exit 2) when MODULE is not found or the package is refused. */
export function resolveFilter(spec: string, cwd = process.cwd()): FilterSource {
  if (spec.length === 0) throw new UsageError('MODULE: expected a .wasm file, a package directory, a package name or a .tgz, got an empty string');
  const path = resolve(cwd, spec);
  if (/\.(tgz|tar\.gz)$/i.test(spec)) {
    if (!existsSync(path)) throw new UsageError(`${spec}: tarball not found (expected a .tgz made by npm pack at ${printable(path, 200)})`);
    return fromTarball(spec, path);
  }
  if (existsSync(path)) {
    if (statSync(path).isDirectory()) return fromDirectory(spec, path);
    return { spec, bytes: readModuleFile(spec, path) };
  }
  if (!PACKAGE_NAME.test(spec) || /\.wasm$/i.test(spec)) {
    throw new UsageError(`${spec}: module file not found (expected a .wasm file, a package directory, an installed package name or a .tgz)`);
  }
  for (let dir = resolve(cwd); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', spec);
    if (existsSync(join(pkgDir, 'package.json'))) return fromDirectory(spec, pkgDir);
    if (dirname(dir) === dir) break;
  }
  throw new UsageError(`${spec}: no such file, and no package ${quote(spec)} in node_modules (searched from ${printable(cwd, 200)} upwards); install it (npm install ${spec}) or give its directory or .tgz`);
}

function fromDirectory(spec: string, dir: string): FilterSource {
  const pkgJson = join(dir, 'package.json');
  if (!existsSync(pkgJson)) throw new UsageError(`${spec}: directory has no package.json (expected a filter package; nmwasm new NAME makes one)`);
  const { name, version, block } = checkPackageJson(spec, readText(spec, pkgJson, 1 << 20), pkgJson);
  const file = resolve(dir, block.module);
  if (!existsSync(file)) throw new UsageError(`${spec}: module ${quote(block.module)} does not exist (run nmwasm build in ${printable(dir, 200)})`);
  const bytes = readModuleFile(spec, file);
  checkSha256(spec, block, bytes);
  return { spec, bytes, pkg: { name, version, where: dir, block } };
}

function fromTarball(spec: string, path: string): FilterSource {
  const size = statSync(path).size;
  if (size > MAX_TARBALL_BYTES) throw new UsageError(`${spec}: tarball too large (expected at most ${MAX_TARBALL_BYTES} bytes, got ${size})`);
  const files = readTarball(spec, readFileSync(path));
  const pkgJson = files.get('package.json');
  if (!pkgJson) throw new UsageError(`${spec}: tarball has no package/package.json (expected a .tgz made by npm pack of a filter package)`);
  const { name, version, block } = checkPackageJson(spec, decodeUtf8(spec, pkgJson, 'package.json'), `${spec}:package.json`);
  const wasm = files.get(posix.normalize(block.module.replace(/\\/g, '/')).replace(/^\.\//, ''));
  if (!wasm) throw new UsageError(`${spec}: module ${quote(block.module)} is not in the tarball (add it to "files" in package.json, run nmwasm build, then npm pack)`);
  if (wasm.length > MAX_MODULE_BYTES) throw new UsageError(`${spec}: module too large (expected at most ${MAX_MODULE_BYTES} bytes, got ${wasm.length})`);
  const bytes = new Uint8Array(wasm); // a copy with its own ArrayBuffer
  checkSha256(spec, block, bytes);
  return { spec, bytes, pkg: { name, version, where: spec, block } };
}

/** Reads and checks a filter package's package.json text: the "nmwasm" block, its ABI
 * version, its module path (inside the package). `where` names the file in errors. */
export function checkPackageJson(spec: string, text: string, where: string): { name: string; version: string; block: PackageBlock } {
  let pkg: unknown;
  try {
    pkg = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${printable(where, 200)}: expected valid JSON, got ${printable(oneLine((err as Error).message), 160)}`);
  }
  if (pkg === null || typeof pkg !== 'object' || Array.isArray(pkg)) throw new UsageError(`${printable(where, 200)}: expected a JSON object`);
  const p = pkg as Record<string, unknown>;
  const raw = p.nmwasm;
  if (raw === undefined) throw new UsageError(`${spec}: package has no "nmwasm" block in package.json (not a filter package, or built without nmwasm build; see docs/PACKAGES.md)`);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new UsageError(`${spec}: "nmwasm" in package.json must be an object (docs/PACKAGES.md)`);
  const block = checkBlock(spec, raw as Record<string, unknown>, 'package.json "nmwasm"');
  const rel = posix.normalize(block.module.replace(/\\/g, '/'));
  if (isAbsolute(block.module) || rel.startsWith('..')) throw new UsageError(`${spec}: nmwasm.module must lie inside the package, got ${quote(block.module)}`);
  return { name: typeof p.name === 'string' ? p.name : spec, version: typeof p.version === 'string' ? p.version : '', block };
}

/** Checks the fields of an "nmwasm" block (package.json) or manifest section; `what` names it. */
export function checkBlock(spec: string, b: Record<string, unknown>, what: string): PackageBlock {
  const bad = (message: string): never => {
    throw new UsageError(`${spec}: ${what}: ${message} (docs/PACKAGES.md)`);
  };
  if (b.abi === undefined) bad('missing "abi" (the ring ABI version the module was built for, 1)');
  if (typeof b.abi !== 'number' || !Number.isInteger(b.abi) || b.abi < 1) bad(`"abi" must be a positive integer, got ${printable(JSON.stringify(b.abi) ?? 'undefined', 40)}`);
  if (b.abi !== HOST_ABI_VERSION) {
    bad(`built for nmwasm ABI v${b.abi as number}, this host runs v${HOST_ABI_VERSION}; rebuild the filter with this nmwasm (nmwasm build) or use an nmwasm that runs ABI v${b.abi as number}`);
  }
  if (typeof b.module !== 'string' || b.module.length === 0) bad('missing "module" (the path of the .wasm inside the package)');
  if (b.sha256 !== undefined && (typeof b.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(b.sha256))) bad(`"sha256" must be 64 lowercase hex digits, got ${printable(JSON.stringify(b.sha256), 80)}`);
  for (const key of ['entry', 'config'] as const) if (b[key] !== undefined && typeof b[key] !== 'string') bad(`"${key}" must be a string`);
  if (b.configFormat !== undefined && !CONFIG_FORMATS.includes(b.configFormat as ConfigFormat)) {
    bad(`"configFormat" must be one of ${CONFIG_FORMATS.join(', ')}, got ${printable(JSON.stringify(b.configFormat) ?? '', 40)}`);
  }
  if (b.configFormat === 'json' && b.configSchema === undefined) bad('"configFormat": "json" needs a "configSchema" (a JSON Schema, or the path of one in the package)');
  if (b.stats !== undefined && (!Array.isArray(b.stats) || !b.stats.every((s) => typeof s === 'string'))) bad('"stats" must be an array of counter names');
  return b as unknown as PackageBlock;
}

function checkSha256(spec: string, block: PackageBlock, bytes: Uint8Array): void {
  if (block.sha256 === undefined) throw new UsageError(`${spec}: package.json "nmwasm" has no "sha256" of ${quote(block.module)} (run nmwasm build, which records it)`);
  const got = sha256Hex(bytes);
  if (got !== block.sha256) {
    throw new UsageError(`${spec}: ${quote(block.module)} changed after it was built (sha256 ${got.slice(0, 16)}..., package.json records ${block.sha256.slice(0, 16)}...); refused: rebuild it with nmwasm build or reinstall the package`);
  }
}

/** The lowercase hex sha256 of `bytes`. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads a module file (at most MAX_MODULE_BYTES); a one-line UsageError when it cannot. */
export function readModuleFile(spec: string, path: string): Uint8Array<ArrayBuffer> {
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`${spec}: expected a WebAssembly file, got a ${st.isDirectory() ? 'directory' : 'special file'}`);
    size = st.size;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${spec}: cannot read the module (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (size > MAX_MODULE_BYTES) throw new UsageError(`${spec}: module too large (expected at most ${MAX_MODULE_BYTES} bytes, got ${size})`);
  try {
    return new Uint8Array(readFileSync(path));
  } catch (err) {
    throw new UsageError(`${spec}: cannot read the module (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}

function readText(spec: string, path: string, max: number): string {
  let bytes: Buffer;
  try {
    if (statSync(path).size > max) throw new UsageError(`${printable(path, 200)}: too large (expected at most ${max} bytes)`);
    bytes = readFileSync(path);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${spec}: cannot read ${printable(path, 200)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return decodeUtf8(spec, bytes, path);
}

function decodeUtf8(spec: string, bytes: Uint8Array, what: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new UsageError(`${spec}: ${printable(what, 200)}: expected UTF-8 text, got invalid bytes`);
  }
}

// ---- .tgz (npm pack) --------------------------------------------------------------------
/** The regular files of a gzip'd ustar archive, keyed by path without its first component
 * ("package/"); pax and GNU long names are honoured, links and devices ignored. A damaged
 * archive (gzip error, bad header checksum, truncated entry) is a one-line UsageError. */
export function readTarball(spec: string, gz: Uint8Array): Map<string, Uint8Array> {
  const corrupt = (why: string): never => {
    throw new UsageError(`${spec}: corrupt tarball (${why}); make it again with npm pack`);
  };
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: MAX_UNPACKED_BYTES });
  } catch (err) {
    return corrupt(`gzip: ${printable(oneLine((err as Error).message), 120)}`);
  }
  const files = new Map<string, Uint8Array>();
  const field = (at: number, len: number): string => {
    const raw = tar.subarray(at, at + len);
    const end = raw.indexOf(0);
    return raw.subarray(0, end < 0 ? len : end).toString('utf8');
  };
  let longName: string | undefined;
  let at = 0;
  let sawEnd = false;
  while (at + 512 <= tar.length) {
    const header = tar.subarray(at, at + 512);
    if (header.every((b) => b === 0)) {
      sawEnd = true;
      break;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
    const stored = parseInt(field(at + 148, 8).trim() || 'x', 8);
    if (stored !== sum) corrupt(`bad header checksum at byte ${at}`);
    const size = parseInt(field(at + 124, 12).trim() || '0', 8);
    if (!Number.isSafeInteger(size) || size < 0) corrupt(`bad entry size at byte ${at}`);
    const type = String.fromCharCode(header[156]!);
    const prefix = field(at + 345, 155);
    const name = longName ?? (prefix ? `${prefix}/${field(at, 100)}` : field(at, 100));
    const body = at + 512;
    if (body + size > tar.length) corrupt(`entry ${JSON.stringify(printable(name, 80))} is truncated`);
    const data = tar.subarray(body, body + size);
    longName = undefined;
    if (type === 'x') longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'))?.[1];
    else if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
    else if (type === '0' || type === '\0' || type === '7') {
      const parts = posix.normalize(name).split('/').slice(1); // drop "package/"
      if (parts.length > 0 && !parts.includes('..')) files.set(parts.join('/'), data);
    }
    at = body + Math.ceil(size / 512) * 512;
  }
  if (!sawEnd && at !== tar.length) corrupt('truncated archive');
  if (files.size === 0) corrupt('no files in it');
  return files;
}
