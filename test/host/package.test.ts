// Filter packages (docs/PACKAGES.md) on real files: a package directory, a name in
// node_modules, a .tgz made by tar, with modules built by test/host/wasm-builder.ts. Checks that
// every bad input of the issue is refused with one line naming the cause and what to do:
// missing manifest, sha256 mismatch, ABI mismatch, schema failure, package not found, corrupt
// tarball, JSON config for a text filter.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadModule } from '../../host/module/module.ts';
import { resolveFilter, sha256Hex, readTarball } from '../../host/module/package.ts';
import { checkFilterConfig } from '../../host/module/filterconfig.ts';
import { appendCustomSection } from '../../host/module/build.ts';
import { UsageError } from '../../host/cli/errors.ts';
import { abiModule } from './wasm-builder.ts';

const root = mkdtempSync(join(tmpdir(), 'nmwasm-package-'));
const SCHEMA = { type: 'object', properties: { limit: { type: 'integer', minimum: 1 }, rules: { type: 'array', items: { type: 'object', properties: { port: { type: 'integer', maximum: 65535 } }, required: ['port'] } } }, required: ['limit'], additionalProperties: false };

/** A module with an nmwasm.manifest section holding `manifest` (none when null). */
function moduleWith(manifest: Record<string, unknown> | null): Uint8Array {
  const wasm = abiModule();
  return manifest === null ? wasm : appendCustomSection(wasm, 'nmwasm.manifest', new TextEncoder().encode(JSON.stringify(manifest)));
}

/** Writes a filter package at `dir`; `over` replaces fields of the nmwasm block. */
function writePackage(dir: string, opts: { manifest?: Record<string, unknown> | null; block?: Record<string, unknown>; name?: string } = {}): Uint8Array {
  mkdirSync(join(dir, 'build'), { recursive: true });
  const wasm = moduleWith(opts.manifest === undefined ? { name: 'f', abi: 1, configFormat: 'text', stats: [] } : opts.manifest);
  writeFileSync(join(dir, 'build', 'f.wasm'), wasm);
  const block = { abi: 1, module: 'build/f.wasm', sha256: sha256Hex(wasm), configFormat: 'text', ...opts.block };
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: opts.name ?? 'f', version: '1.2.3', keywords: ['nmwasm-filter'], nmwasm: block }));
  return wasm;
}

function refused(fn: () => unknown, pattern: RegExp): string {
  try {
    fn();
  } catch (err) {
    assert.instance(err, UsageError, String(err));
    const message = (err as Error).message;
    assert.not.match(message, /\n/);
    assert.match(message, pattern);
    return message;
  }
  assert.unreachable(`expected ${pattern}`);
  return '';
}

test('a package directory and a package name in node_modules resolve to the module, sha256 checked', () => {
  const dir = join(root, 'dirpkg');
  const wasm = writePackage(dir);
  const src = resolveFilter(dir);
  assert.equal(src.bytes, wasm);
  assert.is(src.pkg?.name, 'f');
  const pkg = join(root, 'proj', 'node_modules', '@acme', 'filter');
  writePackage(pkg, { name: '@acme/filter' });
  mkdirSync(join(root, 'proj', 'sub'), { recursive: true });
  assert.is(resolveFilter('@acme/filter', join(root, 'proj', 'sub')).pkg?.name, '@acme/filter');
  const loaded = loadModule(dir);
  assert.is(loaded.package?.version, '1.2.3');
  assert.is(loaded.description.manifest?.abi, 1);
});

test('a module whose bytes changed after build is refused before it is compiled', () => {
  const dir = join(root, 'tampered');
  const wasm = writePackage(dir);
  const changed = new Uint8Array(wasm);
  changed[Buffer.from(wasm).lastIndexOf('"f"') + 1] = 0x67; // manifest name "f" -> "g": still a valid module
  writeFileSync(join(dir, 'build', 'f.wasm'), changed);
  assert.is(loadModule(join(dir, 'build', 'f.wasm')).description.manifest?.name, 'g'); // as a bare file it would run
  refused(() => loadModule(dir), /"build\/f\.wasm" changed after it was built \(sha256 [0-9a-f]{16}\.\.\., package\.json records [0-9a-f]{16}\.\.\.\); refused: rebuild it with nmwasm build or reinstall the package/);
});

test('a package without a manifest, a sha256 or with another ABI is refused, one line each', () => {
  const plain = join(root, 'node_modules', 'plain');
  mkdirSync(plain, { recursive: true });
  writeFileSync(join(plain, 'package.json'), JSON.stringify({ name: 'plain' }));
  refused(() => resolveFilter('plain', root), /plain: package has no "nmwasm" block in package\.json \(not a filter package, or built without nmwasm build/);
  const noSection = join(root, 'nosection');
  writePackage(noSection, { manifest: null });
  refused(() => loadModule(noSection), /has no nmwasm\.manifest section \(build it with nmwasm build/);
  const noSha = join(root, 'nosha');
  writePackage(noSha, { block: { sha256: undefined } });
  refused(() => resolveFilter(noSha), /has no "sha256" of "build\/f\.wasm" \(run nmwasm build/);
  const abi2 = join(root, 'abi2');
  writePackage(abi2, { block: { abi: 2 } });
  refused(() => resolveFilter(abi2), /built for nmwasm ABI v2, this host runs v1; rebuild the filter with this nmwasm \(nmwasm build\)/);
  // A bare module whose manifest says another ABI.
  const file = join(root, 'abi3.wasm');
  writeFileSync(file, moduleWith({ abi: 3 }));
  refused(() => loadModule(file), /built for nmwasm ABI v3, this host runs v1/);
  const escape = join(root, 'escape');
  writePackage(escape, { block: { module: '../x.wasm' } });
  refused(() => resolveFilter(escape), /nmwasm\.module must lie inside the package/);
});

test('a package that is not there names where it looked and what to do', () => {
  refused(() => resolveFilter('absent-pkg', root), /absent-pkg: no such file, and no package "absent-pkg" in node_modules \(searched from .* upwards\); install it/);
  refused(() => resolveFilter('gone.wasm', root), /gone\.wasm: module file not found/);
  refused(() => resolveFilter('gone.tgz', root), /gone\.tgz: tarball not found/);
});

test('a .tgz made by tar is read in memory; a corrupt one is refused', () => {
  const staging = join(root, 'staging');
  const wasm = writePackage(join(staging, 'package'));
  const tgz = join(root, 'f-1.2.3.tgz');
  execFileSync('tar', ['czf', tgz, '-C', staging, 'package']);
  const src = resolveFilter(tgz);
  assert.equal(src.bytes, wasm);
  assert.is(loadModule(tgz).package?.name, 'f');
  const good = readFileSync(tgz);
  const garbage = join(root, 'garbage.tgz');
  writeFileSync(garbage, 'not gzip at all');
  refused(() => resolveFilter(garbage), /garbage\.tgz: corrupt tarball \(gzip: .*\); make it again with npm pack/);
  const cut = join(root, 'cut.tgz');
  writeFileSync(cut, good.subarray(0, Math.floor(good.length / 2)));
  refused(() => resolveFilter(cut), /cut\.tgz: corrupt tarball/);
  // A tar whose header checksum is wrong (gzip intact).
  const tar = Buffer.from(execFileSync('tar', ['cf', '-', '-C', staging, 'package']));
  tar[0] ^= 0x20;
  const badsum = join(root, 'badsum.tgz');
  writeFileSync(badsum, gzipSync(tar));
  refused(() => resolveFilter(badsum), /corrupt tarball \(bad header checksum at byte 0\)/);
  // A tampered module inside a tarball.
  const bad = join(root, 'tampered-staging');
  const w = writePackage(join(bad, 'package'));
  const t = new Uint8Array(w);
  t[t.length - 3] ^= 1;
  writeFileSync(join(bad, 'package', 'build', 'f.wasm'), t);
  const badTgz = join(root, 'tampered.tgz');
  execFileSync('tar', ['czf', badTgz, '-C', bad, 'package']);
  refused(() => resolveFilter(badTgz), /changed after it was built/);
  assert.ok(readTarball('x', good).has('package.json'));
});

test('a JSON config is validated against the schema; errors name the field and its path', () => {
  const m = { stats: [], configFormat: 'json' as const, configSchema: SCHEMA };
  const enc = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));
  checkFilterConfig('f', m, 'ok.json', enc({ limit: 3, rules: [{ port: 80 }] }));
  refused(() => checkFilterConfig('f', m, 'c.json', enc({ limit: 3, rules: [{ port: 80 }, { port: 70000 }] })), /^--config c\.json: field \/rules\/1\/port must be <= 65535 \(the config schema of f; nmwasm inspect shows it\)$/);
  refused(() => checkFilterConfig('f', m, 'c.json', enc({ rules: [] })), /field \/limit is required but missing/);
  refused(() => checkFilterConfig('f', m, 'c.json', enc({ limit: 1, limt: 2 })), /field \/limt is not a known field/);
  refused(() => checkFilterConfig('f', m, 'c.json', enc({ limit: 'many' })), /field \/limit must be integer/);
  refused(() => checkFilterConfig('f', m, 'c.json', new TextEncoder().encode('{"limit": 1,')), /--config c\.json: expected a JSON config \(filter f has configFormat "json"\), got/);
  refused(() => checkFilterConfig('f', { stats: [], configFormat: 'json', configSchema: { type: 'nonsense' } }, 'c.json', enc({})), /f: invalid configSchema in its manifest/);
});

test('a JSON config given to a text-config filter, or any config to a no-config filter, is refused', () => {
  const text = { stats: [], configFormat: 'text' as const };
  checkFilterConfig('fw', text, 'rules.txt', new TextEncoder().encode('drop tcp port 23\n'));
  refused(() => checkFilterConfig('fw', text, 'rules.json', new TextEncoder().encode('drop tcp\n')), /--config rules\.json: filter fw takes a text config \(configFormat "text"\), got a JSON document/);
  refused(() => checkFilterConfig('fw', text, 'rules', new TextEncoder().encode(' {"a": 1}\n')), /takes a text config/);
  refused(() => checkFilterConfig('c', { stats: [], configFormat: 'none' }, 'x.conf', new Uint8Array(1)), /--config x\.conf: filter c takes no config/);
  checkFilterConfig('c', { stats: [], configFormat: 'none' }, undefined, new Uint8Array(0));
  checkFilterConfig('old', null, 'anything.json', new Uint8Array(3)); // no manifest: the filter's business, as before
});

test.run();
