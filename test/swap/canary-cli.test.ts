// Issue 9, done-when 2, through the bundled CLI and a real control socket: each kind of bad
// swap (a trap in nmwasm_init, a trap on the sample of live packets, a budget overrun on the
// sample, a module without the ABI marker, a module over the host's --max-memory limit) gives
// `nmwasm swap` exit 2 and one line with the reason, and the old module keeps serving: the
// packets keep flowing with no fault verdict. Then a good swap goes through. The swap and the
// three canary failures (the two refused before any canary are not counted) show in
// `stats --json`, in /metrics (with the stall histogram) and in the final summary's `swaps`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ensureBundle, haveNative, root, type CliResult } from '../cli/helpers.ts';
import { stampWat, writeWat } from './fixtures.ts';

const live = haveNative ? test : test.skip;
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-canary-cli-'));
const env = { ...process.env, XDG_RUNTIME_DIR: join(dir, 'xdg') };
const name = `canary${process.pid}`;
const good = writeWat('good.wasm', stampWat({ marker: 0xa, spin: 200 }), dir);
const other = writeWat('other.wasm', stampWat({ marker: 0xb, spin: 200 }), dir);
const metricsPort = 20_000 + (process.pid % 20_000);

const bad: [string, string, RegExp][] = [
  ['trap in init', writeWat('init-trap.wasm', stampWat({ marker: 0xc, init: '(unreachable)' }), dir), /canary failed: nmwasm_init trapped/],
  ['trap on the sample', writeWat('sample-trap.wasm', stampWat({ marker: 0xc, extraProcess: '(unreachable)' }), dir), /canary failed: trap on the sample of \d+ live packets/],
  ['budget overrun', writeWat('overrun.wasm', stampWat({ marker: 0xc, extraProcess: '(loop $l (br $l))' }), dir), /canary failed: nmwasm_process ran over its budget/],
  ['wrong ABI', writeWat('no-abi.wasm', stampWat({ marker: 0xc, abiMarker: false }), dir), /missing the ABI marker export nmwasm_abi_v1/],
  ['over a limit', writeWat('big.wasm', stampWat({ marker: 0xc, pages: 1024 + 32 }), dir), /memory initial size 1056 pages .* exceeds the limit/],
];

function nm(args: string[]): CliResult {
  const res = spawnSync(process.execPath, [cli, ...args], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

interface Live {
  packets: number;
  verdicts: { pass: number; fault: number };
  swaps: { done: number; canaryFailures: number };
}
const stats = (): Live => JSON.parse(nm(['stats', name, '--json']).stdout).clauses[0] as Live;

live('each bad swap: exit 2 with one line of reason, the old module keeps serving, canary failures counted', async () => {
  ensureBundle();
  const child = spawn(process.execPath, [cli, 'load', good, '--port', 'gen:count=0', '--name', name, '--max-memory', '1', '--metrics', `127.0.0.1:${metricsPort}`, '--json'], { cwd: root, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('exit', (status) => resolve({ status, stdout, stderr })));
  try {
    const end = Date.now() + 60_000;
    while (nm(['stats', name, '--json']).status !== 0 || stats().packets === 0) {
      if (Date.now() > end) throw new Error(`host did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    for (const [what, file, reason] of bad) {
      const r = nm(['swap', name, file]);
      assert.is(r.status, 2, `${what}: ${r.stderr}`);
      assert.is(r.stderr.trimEnd().split('\n').length, 1, `${what}: one line: ${r.stderr}`);
      assert.match(r.stderr, reason, what);
      const before = stats().packets;
      const until = Date.now() + 30_000;
      while (stats().packets === before) {
        if (Date.now() > until) assert.unreachable(`${what}: no traffic after the refused swap`);
        await new Promise((res) => setTimeout(res, 50));
      }
    }
    // Then a good swap goes through.
    const ok = nm(['swap', name, other]);
    assert.is(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /^swapped: canary \d+ packets, 0 faults, stall \d+ us \(CPU \d+ us\)\n$/);
    const s = stats();
    assert.is(s.verdicts.fault, 0, 'the old module served every packet');
    assert.equal([s.swaps.done, s.swaps.canaryFailures], [1, 3], 'stats --json: one swap, three canary failures');
    // `ps` names what serves now: the swapped-in module's file and the sha256 of its bytes.
    const ps = nm(['ps', '--json']);
    assert.is(ps.status, 0, ps.stderr);
    const host = (JSON.parse(ps.stdout) as { hosts: { name: string; clauses: { modules: { path: string; sha256: string }[] }[] }[] }).hosts.find((h) => h.name === name)!;
    assert.is(host.clauses[0]!.modules[0]!.path, other);
    assert.is(host.clauses[0]!.modules[0]!.sha256, createHash('sha256').update(readFileSync(other)).digest('hex'));
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /^nmwasm_swaps_total\{[^}]*\} 1$/m);
    assert.match(metrics, /^nmwasm_canary_failures_total\{[^}]*\} 3$/m);
    assert.match(metrics, /^nmwasm_swap_stall_seconds_count\{[^}]*\} 1$/m);
    assert.match(metrics, /^nmwasm_swap_stall_seconds_bucket\{[^}]*le="\+Inf"[^}]*\} 1$/m);
    assert.is(nm(['unload', name]).status, 0);
    const r = await done;
    assert.is(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Live;
    assert.equal([summary.swaps.done, summary.swaps.canaryFailures], [1, 3], 'the final summary agrees');
    assert.is(summary.verdicts.fault, 0);
  } finally {
    child.kill('SIGKILL');
  }
});

test.run();
