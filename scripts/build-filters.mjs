// Builds every filter: filters/packages/<name>/index.ts -> filters/build/<name>.wasm (and a
// copy at the package's own nmwasm.module path, filters/packages/<name>/build/<name>.wasm) and
// filters/fixtures/<name>.{ts,wat} -> filters/build/fixtures/<name>.wasm (plus the
// deliberately broken not-wasm.wasm), with AssemblyScript (asconfig.json: --runtime stub,
// --memoryBase 64 MiB so all data lies above the host window of docs/ABI.md) or binaryen
// for .wat. Appends the `nmwasm.manifest` custom section from manifest.json (packages)
// or <name>.manifest.json (fixtures), records each package module's sha256 in its
// package.json, then checks every example and well-formed fixture
// against docs/ABI.md sections 1 and 4 (imports, data segments, memory size) so a
// broken build fails here rather than at load time.
// Usage: node scripts/build-filters.mjs [name...]   (default: everything)
import { readFileSync, writeFileSync, mkdirSync, readdirSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';
import { createHash } from 'node:crypto';
import asc from 'assemblyscript/asc';
import binaryen from 'binaryen';

const root = new URL('..', import.meta.url).pathname;
const buildDir = join(root, 'filters/build');
const fixtureDir = join(root, 'filters/fixtures');
const DATA_BASE = 0x4000000;
const ALLOWED_IMPORTS = new Set(['env.abort', 'env.nmwasm_log', 'env.nmwasm_now']);
// Fixtures that break the ABI on purpose: they are built but not checked.
const HOSTILE_STATIC = new Set(['forbidden-import', 'data-in-window', 'no-marker', 'bad-signature', 'extra-export']);
const only = new Set(process.argv.slice(2));

/** Unsigned LEB128 encoding of `n`. */
function leb128(n) {
  const out = [];
  do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; out.push(b); } while (n);
  return Buffer.from(out);
}

/** `wasm` with a custom section `name` holding `payload` appended (id 0, size, name). */
export function appendCustomSection(wasm, name, payload) {
  const nameBytes = Buffer.from(name, 'utf8');
  const body = Buffer.concat([leb128(nameBytes.length), nameBytes, payload]);
  return Buffer.concat([wasm, Buffer.from([0]), leb128(body.length), body]);
}

/** Reads the manifest JSON at `path`, checks its fields, returns it re-serialised. */
function manifestBytes(path) {
  const m = JSON.parse(readFileSync(path, 'utf8'));
  for (const key of ['name', 'version', 'description', 'config']) {
    if (typeof m[key] !== 'string') throw new Error(`${path}: "${key}" must be a string, got ${JSON.stringify(m[key])}`);
  }
  if (!Array.isArray(m.stats) || !m.stats.every((s) => typeof s === 'string')) {
    throw new Error(`${path}: "stats" must be an array of strings, got ${JSON.stringify(m.stats)}`);
  }
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/** Active data segment offsets (i32.const only) of a wasm binary. */
function dataSegmentOffsets(wasm) {
  let pos = 8;
  const u32 = () => { let r = 0, s = 0, b; do { b = wasm[pos++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80); return r >>> 0; };
  const offsets = [];
  while (pos < wasm.length) {
    const id = wasm[pos++];
    const size = u32();
    const end = pos + size;
    if (id === 11) {
      const n = u32();
      for (let i = 0; i < n; i++) {
        const kind = u32();
        if (kind === 1) { const len = u32(); pos += len; continue; } // passive
        if (kind === 2) u32(); // memory index
        if (wasm[pos++] !== 0x41) throw new Error('data segment offset is not i32.const');
        let r = 0, s = 0, b; do { b = wasm[pos++]; r |= (b & 0x7f) << s; s += 7; } while (b & 0x80);
        if (s < 32 && (b & 0x40)) r |= -1 << s;
        offsets.push(r >>> 0);
        pos++; // end
        const len = u32(); pos += len;
      }
    }
    pos = end;
  }
  return offsets;
}

/** Throws unless `wasm` keeps docs/ABI.md sections 1 and 4. */
function checkAbi(name, wasm) {
  const mod = new WebAssembly.Module(wasm);
  for (const imp of WebAssembly.Module.imports(mod)) {
    const full = `${imp.module}.${imp.name}`;
    if (!ALLOWED_IMPORTS.has(full)) throw new Error(`${name}: import ${full} is not allowed (docs/ABI.md section 4 allows ${[...ALLOWED_IMPORTS].join(', ')}); avoid Math.random/trace/console in filters`);
  }
  const exports = WebAssembly.Module.exports(mod).map((e) => e.name);
  for (const required of ['memory', 'nmwasm_abi_v1', 'nmwasm_process']) {
    if (!exports.includes(required)) throw new Error(`${name}: missing export ${required}`);
  }
  for (const off of dataSegmentOffsets(wasm)) {
    if (off < DATA_BASE) throw new Error(`${name}: data segment at 0x${off.toString(16)} lies below 0x${DATA_BASE.toString(16)}; build with --memoryBase ${DATA_BASE}`);
  }
}

/** Writes the module's sha256 into the package's "nmwasm" block (after "module"), as
 * `nmwasm build` does (docs/PACKAGES.md); the file is rewritten only when it changed. */
function recordSha256(pkgPath, wasm) {
  const text = readFileSync(pkgPath, 'utf8');
  const pkg = JSON.parse(text);
  const sha256 = createHash('sha256').update(wasm).digest('hex');
  if (pkg.nmwasm?.sha256 === sha256) return;
  const block = {};
  for (const [key, value] of Object.entries(pkg.nmwasm ?? {})) {
    if (key === 'sha256') continue;
    block[key] = value;
    if (key === 'module') block.sha256 = sha256;
  }
  pkg.nmwasm = block;
  writeFileSync(pkgPath, `${JSON.stringify(pkg, null, 2)}\n`);
}

async function compileAs(entry, outFile, target) {
  const stdout = [], stderr = [];
  const { error } = await asc.main([entry, '--config', join(root, 'asconfig.json'), '--target', target, '--outFile', outFile], {
    stdout: { write: (s) => { stdout.push(String(s)); return true; } },
    stderr: { write: (s) => { stderr.push(String(s)); return true; } },
  });
  if (error) throw new Error(`asc ${entry} failed: ${error.message}\n${stderr.join('')}`);
  return readFileSync(outFile);
}

function compileWat(path) {
  const mod = binaryen.parseText(readFileSync(path, 'utf8'));
  try {
    mod.setFeatures(mod.getFeatures() | binaryen.Features.BulkMemory); // passive segments, memory.init (as asc emits them)
    if (!mod.validate()) throw new Error(`${path}: binaryen validation failed`);
    return Buffer.from(mod.emitBinary());
  } finally { mod.dispose(); }
}

async function main() {
  const started = Date.now();
  mkdirSync(join(buildDir, 'fixtures'), { recursive: true });
  let built = 0;
  const want = (name) => only.size === 0 || only.has(name);

  for (const name of readdirSync(join(root, 'filters/packages')).sort()) {
    const dir = join(root, 'filters/packages', name);
    if (!existsSync(join(dir, 'index.ts')) || !want(name)) continue;
    const out = join(buildDir, `${name}.wasm`);
    let wasm = await compileAs(join(dir, 'index.ts'), out, 'release');
    wasm = appendCustomSection(wasm, 'nmwasm.manifest', manifestBytes(join(dir, 'manifest.json')));
    checkAbi(name, wasm);
    writeFileSync(out, wasm);
    mkdirSync(join(dir, 'build'), { recursive: true });
    writeFileSync(join(dir, 'build', `${name}.wasm`), wasm); // the package's "nmwasm": {"module"}
    recordSha256(join(dir, 'package.json'), wasm);
    built++;
  }

  for (const file of readdirSync(fixtureDir).sort()) {
    const m = /^(.*)\.(ts|wat)$/.exec(file);
    if (!m || !want(m[1])) continue;
    const name = m[1];
    const out = join(buildDir, 'fixtures', `${name}.wasm`);
    let wasm = m[2] === 'ts' ? await compileAs(join(fixtureDir, file), out, name === 'accessors' || name === 'pass' ? 'release' : 'fixture') : compileWat(join(fixtureDir, file));
    const manifest = join(fixtureDir, `${name}.manifest.json`);
    if (existsSync(manifest)) wasm = appendCustomSection(wasm, 'nmwasm.manifest', manifestBytes(manifest));
    if (!HOSTILE_STATIC.has(name)) checkAbi(`fixtures/${name}`, wasm);
    writeFileSync(out, wasm);
    built++;
  }
  if (want('not-wasm')) {
    writeFileSync(join(buildDir, 'fixtures', 'not-wasm.wasm'), 'This is a text file named .wasm: a hostile fixture for the loader.\n');
    built++;
  }
  process.stdout.write(`build-filters: ${built} modules in ${((Date.now() - started) / 1000).toFixed(1)}s -> ${basename(buildDir)}/\n`);
}

main().catch((err) => { process.stderr.write(`build-filters: ${err.message}\n`); process.exit(1); });
