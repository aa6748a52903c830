// Module validation against ABI v1 on hand-built binaries (test/host/wasm-builder.ts),
// plus package-name resolution and, when built, the hostile fixtures of filters/build.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModule, validateModuleBytes, checkMagic, DEFAULT_LIMITS } from '../../host/module/module.ts';
import { UsageError } from '../../host/cli/errors.ts';
import { abiModule, buildModule } from './wasm-builder.ts';

const dir = mkdtempSync(join(tmpdir(), 'nmwasm-module-'));
const I4 = ['i32', 'i32', 'i32', 'i32'] as const;

function refused(bytes: Uint8Array, pattern: RegExp): void {
  const file = join(dir, `m${Math.random().toString(36).slice(2)}.wasm`);
  writeFileSync(file, bytes);
  try {
    loadModule(file);
  } catch (err) {
    assert.instance(err, UsageError);
    const message = (err as Error).message;
    assert.not.match(message, /\n/);
    assert.match(message, file);
    assert.match(message, pattern);
    return;
  }
  assert.unreachable(`expected ${pattern} to be refused`);
}

test('a module that follows the ABI loads and is described', () => {
  const file = join(dir, 'good.wasm');
  writeFileSync(file, abiModule({ extraFuncs: [{ export: 'nmwasm_stats', params: [], results: ['i32'] }], customs: [{ name: 'nmwasm.manifest', payload: '{"name":"good","version":"1.0","stats":["a","b"]}' }] }));
  const { description, module } = loadModule(file);
  assert.instance(module, WebAssembly.Module);
  assert.is(description.abiVersion, 1);
  assert.is(description.hasInit, true);
  assert.is(description.hasStats, true);
  assert.equal(description.manifest, { name: 'good', version: '1.0', stats: ['a', 'b'] });
  assert.equal(description.memory, { initialPages: 1025 });
  const process = description.exports.find((e) => e.name === 'nmwasm_process');
  assert.is(process?.signature, '(i32, i32, i32, i32) -> i32');
  assert.equal(description.imports.map((i) => `${i.module}.${i.name}: ${i.signature}`), ['env.abort: (i32, i32, i32, i32) -> ()', 'env.nmwasm_log: (i32, i32) -> ()', 'env.nmwasm_now: () -> f64']);
});

test('the optional state exports (docs/ABI.md section 8) load when both have their types', () => {
  const d = validateModuleBytes('s.wasm', abiModule({ extraFuncs: [{ export: 'nmwasm_state_save', params: [], results: ['i32'] }, { export: 'nmwasm_state_load', params: ['i32', 'i32'], results: ['i32'] }] }));
  assert.is(d.hasState, true);
  assert.is(validateModuleBytes('n.wasm', abiModule({})).hasState, false);
});

test('a module without imports, init or manifest is fine', () => {
  const d = validateModuleBytes('x.wasm', abiModule({ imports: [], init: null, data: [] }));
  assert.is(d.hasInit, false);
  assert.is(d.manifest, null);
});

test('missing file, not wasm, truncated, bad version', () => {
  assert.throws(() => loadModule(join(dir, 'nope.wasm')), /nope\.wasm: module file not found/);
  writeFileSync(join(dir, 'text.wasm'), 'hello world');
  assert.throws(() => loadModule(join(dir, 'text.wasm')), /not a WebAssembly module \(expected magic \\0asm, got "hell"\)/);
  writeFileSync(join(dir, 'empty.wasm'), '');
  assert.throws(() => loadModule(join(dir, 'empty.wasm')), /got an empty file/);
  assert.throws(() => checkMagic('t', new Uint8Array([0, 0x61, 0x73, 0x6d, 1])), /truncated/);
  assert.throws(() => checkMagic('v', new Uint8Array([0, 0x61, 0x73, 0x6d, 2, 0, 0, 0])), /version \(expected 1, got 2\)/);
  assert.throws(() => loadModule(dir), /directory has no package\.json \(expected a filter package; nmwasm new NAME makes one\)/); // a directory is a package (docs/PACKAGES.md)
});

test('compile errors are one line', () => {
  const bytes = abiModule();
  refused(bytes.subarray(0, bytes.length - 3), /invalid WebAssembly module/);
});

test('ABI rules are enforced', () => {
  const cases: [string, Uint8Array, RegExp][] = [
    ['no marker', buildModule({ funcs: [{ export: 'nmwasm_process', params: [...I4], results: ['i32'] }] }), /missing the ABI marker export nmwasm_abi_v1/],
    ['other marker', buildModule({ funcs: [{ export: 'nmwasm_abi_v2', params: [], results: [] }, { export: 'nmwasm_process', params: [...I4], results: ['i32'] }] }), /unknown export nmwasm_abi_v2/],
    ['no process', buildModule({ funcs: [{ export: 'nmwasm_abi_v1', params: [], results: [] }] }), /missing required export nmwasm_process/],
    ['marker signature', buildModule({ funcs: [{ export: 'nmwasm_abi_v1', params: ['i32'], results: [] }, { export: 'nmwasm_process', params: [...I4], results: ['i32'] }] }), /nmwasm_abi_v1 has type \(i32\) -> \(\), expected \(\) -> \(\)/],
    ['process signature', buildModule({ funcs: [{ export: 'nmwasm_abi_v1', params: [], results: [] }, { export: 'nmwasm_process', params: ['i32', 'i32', 'i32'], results: ['i32'] }] }), /nmwasm_process has type \(i32, i32, i32\) -> i32, expected \(i32, i32, i32, i32\) -> i32/],
    ['init signature', abiModule({ init: null, extraFuncs: [{ export: 'nmwasm_init', params: ['i32'], results: ['i32'] }] }), /nmwasm_init has type/],
    ['stats signature', abiModule({ extraFuncs: [{ export: 'nmwasm_stats', params: [], results: ['i64'] }] }), /nmwasm_stats has type \(\) -> i64/],
    ['state save signature', abiModule({ extraFuncs: [{ export: 'nmwasm_state_save', params: ['i32'], results: ['i32'] }, { export: 'nmwasm_state_load', params: ['i32', 'i32'], results: ['i32'] }] }), /nmwasm_state_save has type \(i32\) -> i32, expected \(\) -> i32/],
    ['state load signature', abiModule({ extraFuncs: [{ export: 'nmwasm_state_save', params: [], results: ['i32'] }, { export: 'nmwasm_state_load', params: ['i32'], results: ['i32'] }] }), /nmwasm_state_load has type \(i32\) -> i32, expected \(i32, i32\) -> i32/],
    ['state save alone', abiModule({ extraFuncs: [{ export: 'nmwasm_state_save', params: [], results: ['i32'] }] }), /exports nmwasm_state_save but not nmwasm_state_load: \(i32, i32\) -> i32 .*both or neither/],
    ['state load alone', abiModule({ extraFuncs: [{ export: 'nmwasm_state_load', params: ['i32', 'i32'], results: ['i32'] }] }), /exports nmwasm_state_load but not nmwasm_state_save: \(\) -> i32/],
    ['unknown nmwasm export', abiModule({ extraFuncs: [{ export: 'nmwasm_swap', params: [], results: [] }] }), /unknown export nmwasm_swap/],
    ['forbidden import', abiModule({ imports: [{ module: 'wasi_snapshot_preview1', name: 'fd_write', params: [...I4], results: ['i32'] }] }), /forbidden import wasi_snapshot_preview1\.fd_write/],
    ['forbidden env import', abiModule({ imports: [{ module: 'env', name: 'seed', params: [], results: ['f64'] }] }), /forbidden import env\.seed/],
    ['import type', abiModule({ imports: [{ module: 'env', name: 'nmwasm_log', params: ['i32'], results: [] }] }), /import env\.nmwasm_log has type \(i32\) -> \(\), expected \(i32, i32\) -> \(\)/],
    ['global import', abiModule({ imports: [{ module: 'env', name: 'g', kind: 'global' }] }), /forbidden import env\.g \(a global/],
    ['memory imported', abiModule({ imports: [{ module: 'env', name: 'memory', kind: 'memory' }], memory: null }), /memory must be defined and exported by the module, not imported/],
    ['no memory', abiModule({ memory: null, data: [], process: [0x41, 0] }), /expected exactly one memory/],
    ['memory not exported', abiModule({ memoryExport: null }), /memory must be exported as "memory"/],
    ['memory exported as mem', abiModule({ memoryExport: 'mem' }), /memory must be exported as "memory"/],
    ['small memory', abiModule({ memory: { min: 1023 }, data: [] }), /at least 1024 pages .* got 1023/],
    ['shared memory', abiModule({ memory: { min: 1024, max: 2048, shared: true } }), /memory must not be shared/],
    ['low data', abiModule({ data: [{ offset: 0x3ffffff, bytes: [1] }] }), /data segment 0 starts at 0x3ffffff/],
    ['data at 0', abiModule({ data: [{ offset: 0x4000000, bytes: [1] }, { offset: 0x8, bytes: [1] }] }), /data segment 1 starts at 0x8/],
    ['manifest not JSON', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: '{name: x' }] }), /invalid nmwasm\.manifest section: expected JSON/],
    ['manifest array', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: '[1]' }] }), /expected a JSON object, got an array/],
    ['manifest bad utf8', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: new Uint8Array([0x7b, 0xff, 0x7d]) }] }), /expected UTF-8/],
    ['manifest name type', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: '{"name":3}' }] }), /"name" must be a string/],
    ['manifest stats without export', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: '{"stats":["a"]}' }] }), /does not export nmwasm_stats/],
    ['two manifests', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: '{}' }, { name: 'nmwasm.manifest', payload: '{}' }] }), /expected one section, got 2/],
  ];
  for (const [name, bytes, pattern] of cases) {
    try {
      refused(bytes, pattern);
    } catch (err) {
      throw new Error(`case "${name}": ${(err as Error).message}`);
    }
  }
});

test('a data segment at a non-constant offset is refused by the validator (V8 refuses it too)', () => {
  assert.throws(() => validateModuleBytes('m', abiModule({ globals: 1, data: [{ offset: 0, global: true, bytes: [1] }] })), /data segment 0 has a non-constant offset/);
});

test('an unrelated custom section and a global export are accepted', () => {
  const d = validateModuleBytes('m', abiModule({ customs: [{ name: 'name', payload: new Uint8Array([0, 1, 2]) }], globals: 1, exports: [{ name: 'g', kind: 'global', index: 0 }] }));
  assert.ok(d.exports.some((e) => e.name === 'g' && e.kind === 'global'));
});

test('the section reader refuses malformed sections with a message', () => {
  const good = abiModule();
  // A section whose declared size runs past the end of the file.
  const bad = new Uint8Array([...good, 0x00, 0x7f]);
  assert.throws(() => validateModuleBytes('m', bad), /malformed WebAssembly module: header at byte \d+: length 127 runs past the end/);
  // An over-long LEB128.
  const leb = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]);
  assert.throws(() => validateModuleBytes('m', leb), /LEB128 longer than 5 bytes/);
  // A type vector claiming more entries than bytes.
  const vec = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 1, 2, 0xff, 0x01]);
  assert.throws(() => validateModuleBytes('m', vec), /vector of 255 items does not fit/);
});

// Package resolution (names, directories, tarballs, sha256, ABI): test/host/package.test.ts.

// ---- resource limits (docs/ABI.md section 7) ------------------------------------------
test('a module over a resource limit is refused with one line naming the limit and its flag', () => {
  const bigCode = abiModule({ extraFuncs: [{ params: [], results: [], body: new Array(Math.floor(1.2 * (1 << 20))).fill(0x01) }] }); // 1.2 MiB of nop
  const cases: [string, Uint8Array, RegExp, Partial<typeof DEFAULT_LIMITS>?][] = [
    ['4 GiB maximum', abiModule({ memory: { min: 1025, max: 65536 } }), /memory maximum 65536 pages \(4096 MiB\) exceeds the limit of 3072 pages = 64 MiB host area \+ 128 MiB \(raise it with --max-memory MIB/],
    ['large initial memory', abiModule({ memory: { min: 4000 } }), /memory initial size 4000 pages .* exceeds the limit of 3072 pages .*--max-memory MIB/],
    ['10 million table elements', abiModule({ tables: [{ min: 10_000_000 }] }), /table 0 initial size 10000000 elements exceeds the limit of 65536 elements \(raise it with --max-table N/],
    ['table maximum', abiModule({ tables: [{ min: 1, max: 100_000 }] }), /table 0 maximum 100000 elements exceeds the limit of 65536 elements .*--max-table N/],
    ['code', bigCode, /code section of \d+ bytes \(1\.2 MiB\) exceeds the limit of 1 MiB \(raise it with --max-code MIB/, { codeMiB: 1 }],
    ['data', abiModule({ data: [{ offset: 0x4000000, bytes: new Array(1.5 * (1 << 20)).fill(7) }] }), /data segments of 1572864 bytes \(1\.5 MiB\) exceeds the limit of 1 MiB \(raise it with --max-data MIB/, { dataMiB: 1 }],
  ];
  for (const [name, bytes, pattern, limits] of cases) {
    const file = join(dir, `limit-${name.replace(/\W+/g, '-')}.wasm`);
    writeFileSync(file, bytes);
    try {
      loadModule(file, { ...DEFAULT_LIMITS, ...limits });
      assert.unreachable(`${name}: accepted`);
    } catch (err) {
      assert.instance(err, UsageError, name);
      assert.not.match((err as Error).message, /\n/, name);
      assert.match((err as Error).message, pattern, name);
    }
  }
  // Raising the limit admits it.
  const file = join(dir, 'limit-raised.wasm');
  writeFileSync(file, abiModule({ memory: { min: 1025, max: 65520 } }));
  assert.is(loadModule(file, { ...DEFAULT_LIMITS, memoryMiB: 4031 }).description.memory.maxPages, 65520);
});

test('a memory and a table without a maximum get the limits: growing past them fails', () => {
  const file = join(dir, 'unbounded.wasm');
  writeFileSync(file, abiModule({ tables: [{ min: 1 }] }));
  const { module } = loadModule(file, { ...DEFAULT_LIMITS, memoryMiB: 2, tableElements: 10 });
  const inst = new WebAssembly.Instance(module, { env: { abort() {}, nmwasm_log() {}, nmwasm_now: () => 0 } });
  const memory = inst.exports.memory as WebAssembly.Memory;
  assert.throws(() => memory.grow(1024 + 32 - 1025 + 1), RangeError); // one page past 64 MiB + 2 MiB
  memory.grow(1024 + 32 - 1025);
  assert.is(memory.buffer.byteLength, (1024 + 32) * 65536);
});

test('a valid module with 100,001 functions loads; an exception tag export is accepted', () => {
  const many = abiModule({ extraFuncs: Array.from({ length: 100_001 }, () => ({ params: [], results: [] })) });
  const file = join(dir, 'many.wasm');
  writeFileSync(file, many);
  assert.is(loadModule(file).description.exports.length, 4);
  const tagFile = join(dir, 'tag.wasm');
  writeFileSync(tagFile, abiModule({ tags: 1, exports: [{ name: 'oops', kind: 'tag', index: 0 }] }));
  const tag = loadModule(tagFile).description;
  assert.ok(tag.exports.some((e) => e.name === 'oops' && e.kind === 'tag'));
});

test('manifest stat names: "__proto__" is kept, duplicates and control characters are refused', () => {
  const stats = (names: string[]): Uint8Array => abiModule({ extraFuncs: [{ export: 'nmwasm_stats', params: [], results: ['i32'] }], customs: [{ name: 'nmwasm.manifest', payload: JSON.stringify({ stats: names }) }] });
  assert.equal(validateModuleBytes('m', stats(['__proto__', 'b'])).manifest?.stats, ['__proto__', 'b']);
  refused(stats(['a', 'a']), /"stats" lists "a" twice/);
  refused(stats(['a\u001b[2Jb']), /"stats" names must be printable .*got "a\\\\x1b\[2Jb"/);
});

test('names from a hostile module are escaped in refusals: one printable line', () => {
  const evil = 'nmwasm_\u001b]0;pwned\u0007\nnmwasm: forged';
  for (const bytes of [abiModule({ extraFuncs: [{ export: evil, params: [], results: [] }] }), abiModule({ imports: [{ module: 'env', name: evil, params: [], results: [] }] })]) {
    const file = join(dir, `evil${Math.random().toString(36).slice(2)}.wasm`);
    writeFileSync(file, bytes);
    try {
      loadModule(file);
      assert.unreachable('accepted');
    } catch (err) {
      const message = (err as Error).message;
      assert.match(message, /nmwasm_\\x1b\]0;pwned\\x07\\x0anmwasm: forged/);
      assert.not.match(message, /[\u0000-\u001f\u007f-\u009f]/);
    }
  }
});

const fixtures = join(import.meta.dirname, '..', '..', 'filters', 'build', 'fixtures');
test('hostile fixtures that must be refused at load are refused with one line', () => {
  if (!existsSync(fixtures)) return; // built by another step; the checks above cover the rules
  for (const name of readdirSync(fixtures).filter((f) => f.endsWith('.wasm'))) {
    try {
      loadModule(join(fixtures, name));
    } catch (err) {
      assert.instance(err, UsageError, name);
      assert.not.match((err as Error).message, /\n/);
    }
  }
});

test.run();
