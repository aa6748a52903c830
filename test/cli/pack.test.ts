// nmwasm installs as a package (docs/PACKAGES.md): `npm pack` of this checkout, installed from
// its tarball into a fresh temp project (its install script builds the addon with node-gyp;
// about 1.5 min on 2 busy cores), gives the `nmwasm` bin and the SDK: the installed nmwasm
// scaffolds and builds a filter (asc finds `nmwasm/sdk` in the project's node_modules), the
// filter is packed with `npm pack` and installed from its tarball too, then it loads by name
// with `nmwasm load NAME --port gen:...` and runs with `nmwasm test NAME --pcap ...`.
// Offline: every dependency comes from the npm cache (the checkout's package-lock).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync, realpathSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, root } from './helpers.ts';

ensureBundle();
const work = mkdtempSync(join(tmpdir(), 'nmwasm-pack-'));
const project = join(work, 'project');
const env = { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false' };

function sh(cmd: string, args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const res = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 600_000, env, maxBuffer: 64 << 20 });
  return { status: res.status, stdout: res.stdout ?? '', stderr: res.stderr ?? '' };
}

function tarball(dir: string, prefix: string): string {
  const name = readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.tgz'));
  assert.ok(name, `no ${prefix}*.tgz in ${dir}`);
  return join(dir, name!);
}

test('npm pack of nmwasm installs into a fresh project: bin, SDK, addon built on install', () => {
  // --ignore-scripts: prepack would re-bundle dist/, which ensureBundle() just brought up to date.
  const packed = sh('npm', ['pack', '--ignore-scripts', '--pack-destination', work], root);
  assert.is(packed.status, 0, packed.stderr);
  const tgz = tarball(work, 'nmwasm-');
  sh('mkdir', ['-p', project], work);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'project', version: '1.0.0', private: true }));
  const install = sh('npm', ['install', '--prefer-offline', tgz], project);
  assert.is(install.status, 0, install.stdout + install.stderr);
  const pkg = join(project, 'node_modules', 'nmwasm');
  assert.ok(existsSync(join(pkg, 'build', 'Release', 'nmwasm.node')), 'the addon was built on install');
  assert.ok(existsSync(join(pkg, 'sdk', 'index.ts')));
  assert.ok(!existsSync(join(pkg, 'host')), 'sources stay out of the package: dist/ is shipped');
  assert.is(realpathSync(join(project, 'node_modules', '.bin', 'nmwasm')), realpathSync(join(pkg, 'dist', 'nmwasm.mjs')));
});

test('a filter package made and built by the installed nmwasm, packed, installed, loads by name', () => {
  const bin = join(project, 'node_modules', '.bin', 'nmwasm');
  const made = sh(bin, ['new', '@acme/pf'], project);
  assert.is(made.status, 0, made.stderr);
  const filter = join(project, 'pf');
  const built = sh(bin, ['build'], filter); // nmwasm/sdk from project/node_modules/nmwasm
  assert.is(built.status, 0, built.stderr);
  const packed = sh('npm', ['pack', '--pack-destination', work], filter);
  assert.is(packed.status, 0, packed.stderr);
  const tgz = tarball(work, 'acme-pf-');
  const install = sh('npm', ['install', '--prefer-offline', tgz], project);
  assert.is(install.status, 0, install.stdout + install.stderr);

  const load = sh(bin, ['load', '@acme/pf', '--port', 'gen:count=2000', '--json'], project);
  assert.is(load.status, 0, load.stderr);
  const s = JSON.parse(load.stdout);
  assert.is(s.packets, 2000);
  assert.is(s.verdicts.pass, 2000);
  assert.is(s.filterStats.packets, 2000);

  const run = sh(bin, ['test', '@acme/pf', '--pcap', join(filter, 'test', 'sample.pcap'), '--json'], project);
  assert.is(run.status, 0, run.stderr);
  assert.is(JSON.parse(run.stdout).verdicts.pass, 12);
  // The tarball itself, as npm pack made it.
  const direct = sh(bin, ['inspect', tgz], project);
  assert.is(direct.status, 0, direct.stderr);
  assert.match(direct.stdout, /^package: @acme\/pf@0\.1\.0 .*sha256 checked$/m);
});

test.run();
