// `nmwasm load ... --watch` through the CLI bundle: rewriting the module file swaps it once
// (one line saying so); a broken file leaves the old module running with one line of reason.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, startCli, untilRunning } from '../cli/helpers.ts';
import { stampWat, writeWat } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'nmwasm-watch-'));
const A = writeWat('a.wasm', stampWat({ marker: 0xa, spin: 200 }), dir);
const B = writeWat('b.wasm', stampWat({ marker: 0xb, spin: 200 }), dir);
const live = join(dir, 'live.wasm');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

test('--watch: an edit swaps once; a broken file leaves the old module with one line', async () => {
  ensureBundle();
  copyFileSync(A, live);
  const { child, done } = startCli(['load', live, '--port', 'gen:count=0', '--watch', '--json']);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  await untilRunning(child);
  await sleep(1000);
  const watchLines = (): string[] => stderr.split('\n').filter((l) => l.startsWith('--watch:'));
  copyFileSync(B, live);
  await until('the swap line', () => watchLines().length >= 1);
  await sleep(1500); // no second swap for one edit
  assert.is(watchLines().length, 1, stderr);
  assert.match(watchLines()[0]!, /changed: swapped \(canary on \d+ packets, ring stall \d+ µs, state carried\)/);
  writeFileSync(live, 'not wasm at all\n');
  await until('the refusal line', () => watchLines().length >= 2);
  await sleep(1000);
  assert.is(watchLines().length, 2, stderr);
  assert.match(watchLines()[1]!, /changed: not swapped, the old module keeps running: .*live\.wasm/);
  child.kill('SIGINT');
  const r = await done;
  assert.is(r.status, 0, stderr);
  const summary = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { verdicts: { pass: number; fault: number } };
  assert.ok(summary.verdicts.pass > 0);
  assert.is(summary.verdicts.fault, 0, 'the old module served on after the broken file');
});

test.run();
