// Running nmwasm from a checkout builds nothing: the ways README.md documents
// (`node dist/nmwasm.mjs`, `npm link --ignore-scripts` once, then `nmwasm`) run the built
// bundle and addon as they are, leave every build artefact untouched, and work under any
// name and from any directory. (`npx nmwasm` in the checkout re-ran the install script:
// a full rebuild of ~2 min, replacing the addon under running tests.)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, cli, root, pcaps, haveNative } from './helpers.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bin-'));
const firewall = join(root, 'filters', 'build', 'firewall.wasm');
const capture = join(pcaps, 'babel_rfc6126bis.pcap');

/** mtime and size of every build artefact the bin path could rebuild. */
function artefacts(): Record<string, string> {
  const out: Record<string, string> = {};
  const add = (path: string): void => {
    if (!existsSync(path)) return;
    const st = statSync(path);
    out[path] = `${st.mtimeMs}:${st.size}`;
  };
  add(join(root, 'build', 'Release', 'nmwasm.node'));
  for (const d of ['dist', join('filters', 'build')]) {
    const full = join(root, d);
    if (existsSync(full)) for (const f of readdirSync(full)) add(join(full, f));
  }
  return out;
}

/** Runs an executable (a bin symlink, through its shebang) from `cwd`. */
function exec(file: string, args: string[], cwd: string, env = process.env): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(file, args, { cwd, env, encoding: 'utf8', timeout: 60_000 });
  return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? String(res.error ?? '') };
}

test('README documents a way that builds nothing, and not npx nmwasm', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  assert.match(readme, /node dist\/nmwasm\.mjs/);
  assert.match(readme, /npm link --ignore-scripts/);
  // mentioned only as the thing not to do: never as the way to run it
  assert.not.match(readme, /`npx nmwasm \.\.\.`|^\s+npx nmwasm/m, 'npx nmwasm in a checkout rebuilds everything');
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  assert.is(pkg.bin.nmwasm, 'dist/nmwasm.mjs');
});

test('node dist/nmwasm.mjs --help runs the bundle and builds nothing', () => {
  const before = artefacts();
  const res = runCli(['--help'], dir);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stdout, /nmwasm load MODULE \[MODULE\]\.\.\. --port SPEC/);
  assert.is(res.stderr, '');
  assert.equal(artefacts(), before);
});

test('the bin runs through a symlink of any name, from any directory', () => {
  if (!haveNative) return;
  const link = join(dir, 'nmw');
  symlinkSync(cli, link);
  const before = artefacts();
  const res = exec(link, ['test', firewall, '--pcap', capture, '--json'], dir);
  assert.is(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout.trim().split('\n').pop()!);
  assert.ok(summary.packets > 0, `packets in ${res.stdout}`);
  assert.equal(artefacts(), before);
});

test('npm link --ignore-scripts: the linked nmwasm runs, nothing was built', () => {
  if (!haveNative) return;
  const prefix = join(dir, 'prefix');
  // A private global prefix, and none of the npm_config_* an `npm test` parent exports.
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  env.npm_config_prefix = prefix;
  const before = artefacts();
  const link = spawnSync('npm', ['link', '--ignore-scripts', '--offline', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  assert.is(link.status, 0, `npm link: ${link.stderr}${String(link.error ?? '')}`);
  const bin = join(prefix, 'bin', 'nmwasm');
  assert.is(realpathSync(bin), realpathSync(cli), 'the bin is the bundle itself');
  const res = exec(bin, ['test', firewall, '--pcap', capture], dir, env);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stdout, /packets/);
  const inspect = exec(bin, ['inspect', firewall], dir, env);
  assert.is(inspect.status, 0, inspect.stderr);
  assert.match(inspect.stdout, /nmwasm ABI v1/);
  assert.equal(artefacts(), before, 'npm link --ignore-scripts rebuilt nothing');
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
