// docs/FILTERS.md, run as a new user would: the tutorial's blocks are extracted from the
// markdown (so the page and this test cannot drift) and run in order in an empty temporary
// directory: `sh` blocks line by line through bash (`cd DIR` moves the session; a trailing
// `# exit N` is the expected status, 0 otherwise), blocks with `file=PATH` written to PATH,
// `text` blocks after a command are lines its output (stdout + stderr) must contain. `nmwasm`
// on PATH is this checkout's bundle, NMWASM is this checkout; npm runs offline (local folders
// and tarballs only). Also: every name the SDK exports is in the page's SDK reference.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
const doc = readFileSync(join(root, 'docs', 'FILTERS.md'), 'utf8');

type Step = { kind: 'sh'; line: string; expect: string[] } | { kind: 'file'; path: string; text: string };

/** The tutorial section's blocks, in order. */
function tutorialSteps(): Step[] {
  const start = doc.indexOf('## Tutorial');
  const end = doc.indexOf('\n## ', start + 1);
  const section = doc.slice(start, end < 0 ? undefined : end);
  const steps: Step[] = [];
  const fence = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(section); m; m = fence.exec(section)) {
    const info = m[1]!.trim();
    const body = m[2]!;
    const file = /\bfile=(\S+)/.exec(info);
    if (file) steps.push({ kind: 'file', path: file[1]!, text: body });
    else if (info === 'sh') for (const line of body.split('\n')) { if (line.trim() && !line.trim().startsWith('#')) steps.push({ kind: 'sh', line, expect: [] }); }
    else if (info === 'text') {
      const last = [...steps].reverse().find((s) => s.kind === 'sh');
      if (!last || last.kind !== 'sh') throw new Error(`docs/FILTERS.md: a text block before any command: ${body.slice(0, 60)}`);
      last.expect.push(...body.split('\n').filter((l) => l.trim()));
    } else throw new Error(`docs/FILTERS.md: tutorial block with info "${info}" is neither sh, text nor file=PATH`);
  }
  return steps;
}

const steps = tutorialSteps();

test('the tutorial has commands, files and expected output', () => {
  assert.ok(steps.filter((s) => s.kind === 'sh').length >= 10);
  assert.ok(steps.some((s) => s.kind === 'file' && s.path === 'assembly/index.ts'));
  assert.ok(steps.some((s) => s.kind === 'sh' && s.expect.length > 0));
});

test('docs/FILTERS.md tutorial, command by command, from an empty directory to an installed package', () => {
  const work = mkdtempSync(join(tmpdir(), 'nmwasm-tutorial-'));
  const bin = join(work, '.bin');
  mkdirSync(bin);
  symlinkSync(join(root, 'dist', 'nmwasm.mjs'), join(bin, 'nmwasm'));
  const home = join(work, '.home');
  mkdirSync(home);
  const env = {
    ...process.env,
    PATH: `${bin}:${dirname(process.execPath)}:${process.env.PATH ?? ''}`,
    NMWASM: root,
    HOME: home,
    npm_config_offline: 'true',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
    npm_config_update_notifier: 'false',
    npm_config_cache: join(home, '.npm'),
  };
  const usage = spawnSync('nmwasm', ['new', '--help'], { env, encoding: 'utf8' });
  if (usage.status !== 0) {
    // `nmwasm new` and `nmwasm build` are the package tooling's (docs/PACKAGES.md); without
    // them the tutorial cannot start. Say so rather than pass silently.
    console.log(`docs/FILTERS.md tutorial NOT RUN: this nmwasm has no "nmwasm new" (${(usage.stderr || usage.stdout).trim().split('\n')[0]})`);
    return;
  }
  let cwd = join(work, 'start');
  mkdirSync(cwd);
  assert.equal(readdirSync(cwd), [], 'the tutorial starts in an empty directory');
  steps.forEach((step, i) => {
    if (step.kind === 'file') {
      mkdirSync(dirname(join(cwd, step.path)), { recursive: true });
      writeFileSync(join(cwd, step.path), step.text);
      return;
    }
    const cd = /^cd\s+(\S+)$/.exec(step.line.trim());
    if (cd) {
      cwd = resolve(cwd, cd[1]!);
      return;
    }
    const status = Number(/#\s*exit\s+(\d+)\s*$/.exec(step.line)?.[1] ?? 0);
    const res = spawnSync('bash', ['-c', step.line], { cwd, env, encoding: 'utf8', timeout: 300_000 });
    const out = `${res.stdout}${res.stderr}`;
    assert.is(res.status, status, `step ${i + 1}: ${step.line}\n${out}`);
    for (const want of step.expect) assert.ok(out.includes(want.trim()), `step ${i + 1}: ${step.line}: expected "${want.trim()}" in:\n${out}`);
  });
});

test('the SDK reference names every export of filters/sdk', () => {
  const reference = doc.slice(doc.indexOf('## SDK reference'));
  const missing: string[] = [];
  for (const file of readdirSync(join(root, 'filters', 'sdk'))) {
    const source = readFileSync(join(root, 'filters', 'sdk', file), 'utf8');
    for (const m of source.matchAll(/export\s+(?:declare\s+)?(?:function|const|class|namespace|let)\s+(\w+)/g)) {
      if (!new RegExp(`\`[^\`]*\\b${m[1]}\\b[^\`]*\``).test(reference)) missing.push(`${file}: ${m[1]}`);
    }
  }
  assert.equal(missing, []);
});

test.run();
