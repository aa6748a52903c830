// Filter packages end to end, offline, in a temp directory (docs/PACKAGES.md): `nmwasm new
// demo && cd demo && npm install <this checkout> && npm run build && npm test`, then the demo
// runs with `nmwasm load ./demo --port gen:count=1000`; a module changed after the build is
// refused before anything runs; bad configs and packages exit 2 with one line.
// The checkout is installed with --ignore-scripts: npm links a directory, and its install
// script would rebuild this very checkout (addon included) under the running tests; the
// tarball path, install script included, is test/cli/pack.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, root, haveNative } from './helpers.ts';

ensureBundle();
const work = mkdtempSync(join(tmpdir(), 'nmwasm-packages-'));
const demo = join(work, 'demo');

function sh(cmd: string, args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' } });
  return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}

/** One line on stderr, exit 2, nothing on stdout (nothing ran). */
function refusedLine(res: { status: number | null; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.is(res.status, 2, res.stderr);
  assert.is(res.stdout, '');
  assert.is(res.stderr.trimEnd().split('\n').length, 1, res.stderr);
  assert.match(res.stderr, pattern);
}

test('nmwasm new demo && npm install <checkout> && npm run build && npm test pass, offline', () => {
  const made = runCli(['new', 'demo'], work);
  assert.is(made.status, 0, made.stderr);
  for (const f of ['package.json', 'asconfig.json', 'assembly/index.ts', 'test/sample.pcap', 'test/filter.test.mjs', 'README.md']) assert.ok(existsSync(join(demo, f)), f);
  assert.match(readFileSync(join(demo, 'assembly', 'index.ts'), 'utf8'), /from "nmwasm\/sdk"/);
  refusedLine(runCli(['new', 'demo'], work), /nmwasm new: .*demo already exists and is not empty/);
  refusedLine(runCli(['new', 'Bad Name'], work), /nmwasm new: expected NAME as an npm package name .* got "Bad Name"/);
  const install = sh('npm', ['install', '--offline', '--ignore-scripts', root], demo);
  assert.is(install.status, 0, install.stderr);
  const build = sh('npm', ['run', 'build'], demo);
  assert.is(build.status, 0, build.stderr);
  const pkg = JSON.parse(readFileSync(join(demo, 'package.json'), 'utf8'));
  assert.match(pkg.nmwasm.sha256, /^[0-9a-f]{64}$/);
  assert.ok(pkg.keywords.includes('nmwasm-filter'));
  const tested = sh('npm', ['test'], demo);
  assert.is(tested.status, 0, tested.stdout + tested.stderr);
  assert.match(tested.stdout, /# pass 1/);
  // The built module carries the manifest: a bare .wasm is self-describing.
  const inspect = runCli(['inspect', join(demo, 'build', 'demo.wasm'), '--json'], work);
  assert.is(inspect.status, 0, inspect.stderr);
  const m = JSON.parse(inspect.stdout).manifest;
  assert.equal([m.name, m.abi, m.entry, m.configFormat, m.stats], ['demo', 1, 'assembly/index.ts', 'none', ['packets', 'bytes']]);
});

test('the demo runs with nmwasm load ./demo --port gen:count=1000', () => {
  if (!haveNative) return;
  const res = runCli(['load', './demo', '--port', 'gen:count=1000', '--json'], work);
  assert.is(res.status, 0, res.stderr);
  const s = JSON.parse(res.stdout);
  assert.is(s.packets, 1000);
  assert.is(s.verdicts.pass, 1000);
  assert.is(s.filterStats.packets, 1000);
});

test('a module whose bytes changed after the build is refused before it runs', () => {
  const file = join(demo, 'build', 'demo.wasm');
  const good = readFileSync(file);
  const bad = Buffer.from(good);
  bad[bad.lastIndexOf('passes')] = 'P'.charCodeAt(0); // a letter of the manifest's description: a valid module that would run
  writeFileSync(file, bad);
  try {
    const bare = runCli(['load', file, '--port', 'gen:count=10'], work); // as a bare .wasm it is still valid and runs
    assert.is(bare.status, haveNative ? 0 : bare.status, bare.stderr);
    for (const cmd of [['load', './demo', '--port', 'gen:count=10'], ['test', './demo', '--pcap', 'demo/test/sample.pcap'], ['inspect', './demo']]) {
      refusedLine(runCli(cmd, work), /^\.\/demo: "build\/demo\.wasm" changed after it was built \(sha256 [0-9a-f]{16}\.\.\., package\.json records [0-9a-f]{16}\.\.\.\); refused: rebuild it with nmwasm build or reinstall the package$/m);
    }
  } finally {
    writeFileSync(file, good);
  }
  assert.is(runCli(['inspect', './demo'], work).status, 0);
});

test('bad package input exits 2 with one line: config to a no-config filter, no package, no manifest', () => {
  const json = join(work, 'c.json');
  writeFileSync(json, '{"limit": 3}\n');
  refusedLine(runCli(['test', './demo', '--pcap', 'demo/test/sample.pcap', '--config', json], work), /--config .*c\.json: filter \.\/demo takes no config/);
  refusedLine(runCli(['load', 'no-such-filter', '--port', 'gen:count=1'], work), /no-such-filter: no such file, and no package "no-such-filter" in node_modules/);
  refusedLine(runCli(['load', join(work, 'nothing.tgz'), '--port', 'gen:count=1'], work), /nothing\.tgz: tarball not found/);
  const corrupt = join(work, 'corrupt.tgz');
  writeFileSync(corrupt, Buffer.alloc(300, 7));
  refusedLine(runCli(['load', corrupt, '--port', 'gen:count=1'], work), /corrupt\.tgz: corrupt tarball \(gzip: .*\); make it again with npm pack/);
  const pkgFile = join(demo, 'package.json');
  const saved = readFileSync(pkgFile, 'utf8');
  try {
    const p = JSON.parse(saved);
    delete p.nmwasm;
    writeFileSync(pkgFile, JSON.stringify(p));
    refusedLine(runCli(['load', './demo', '--port', 'gen:count=1'], work), /\.\/demo: package has no "nmwasm" block in package\.json/);
    p.nmwasm = { ...JSON.parse(saved).nmwasm, abi: 2 };
    writeFileSync(pkgFile, JSON.stringify(p));
    refusedLine(runCli(['load', './demo', '--port', 'gen:count=1'], work), /built for nmwasm ABI v2, this host runs v1/);
  } finally {
    writeFileSync(pkgFile, saved);
  }
});

test('nmwasm build reports compile errors and refuses a directory without package.json', () => {
  const made = runCli(['new', 'broken'], work);
  assert.is(made.status, 0, made.stderr);
  const dir = join(work, 'broken');
  writeFileSync(join(dir, 'assembly', 'index.ts'), 'export function nmwasm_process(): i32 { return undefinedThing; }\n');
  const res = runCli(['build', dir], work);
  assert.is(res.status, 2);
  assert.match(res.stderr, /undefinedThing/); // the compiler's message
  assert.match(res.stderr.trimEnd().split('\n').pop()!, /^nmwasm build: asc failed on .*assembly\/index\.ts: 1 compile error\(s\) \(the compiler's messages are above\)$/);
  assert.not.ok(existsSync(join(dir, 'build', 'broken.wasm')));
  refusedLine(runCli(['build', work], work), /nmwasm build: .* has no package\.json/);
});

test('a JSON-config package: build inlines the schema file, load/test validate --config with ajv', () => {
  assert.is(runCli(['new', 'jsonf'], work).status, 0);
  const dir = join(work, 'jsonf');
  const pkgFile = join(dir, 'package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8'));
  pkg.nmwasm = { ...pkg.nmwasm, config: 'a JSON object {"pps": N, "ports": [...]}', configFormat: 'json', configSchema: 'config.schema.json' };
  writeFileSync(pkgFile, JSON.stringify(pkg, null, 2));
  writeFileSync(join(dir, 'config.schema.json'), '{"type": "nonsense"}');
  refusedLine(runCli(['build', dir], work), /jsonf: invalid configSchema/);
  writeFileSync(join(dir, 'config.schema.json'), JSON.stringify({ type: 'object', properties: { pps: { type: 'integer', minimum: 1 }, ports: { type: 'array', items: { type: 'integer', maximum: 65535 } } }, required: ['pps'], additionalProperties: false }));
  const built = runCli(['build', dir], work);
  assert.is(built.status, 0, built.stderr);
  const cfg = (name: string, text: string): string => {
    writeFileSync(join(work, name), text);
    return join(work, name);
  };
  const pcap = join(dir, 'test', 'sample.pcap');
  const ok = runCli(['test', dir, '--pcap', pcap, '--config', cfg('ok.json', '{"pps": 10, "ports": [53]}'), '--json'], work);
  assert.is(ok.status, 0, ok.stderr);
  assert.is(JSON.parse(ok.stdout).packets, 12);
  refusedLine(runCli(['test', dir, '--pcap', pcap, '--config', cfg('big.json', '{"pps": 10, "ports": [53, 70000]}')], work), /--config .*big\.json: field \/ports\/1 must be <= 65535 \(the config schema of .*jsonf; nmwasm inspect shows it\)/);
  refusedLine(runCli(['load', dir, '--port', 'gen:count=5', '--config', cfg('none.json', '{"ports": []}')], work), /field \/pps is required but missing/);
  refusedLine(runCli(['load', dir, '--port', 'gen:count=5', '--config', cfg('text.conf', 'pps 10\n')], work), /expected a JSON config \(filter .*jsonf has configFormat "json"\), got/);
  // The bare module carries the schema too.
  refusedLine(runCli(['test', join(dir, 'build', 'jsonf.wasm'), '--pcap', pcap, '--config', join(work, 'big.json')], work), /field \/ports\/1 must be <= 65535/);
  assert.match(runCli(['inspect', dir], work).stdout, /config schema: \{"type":"object"/);
});

test.run();
