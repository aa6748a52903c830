// Test runner: runs every test/**/*.test.ts in its own node process (uvu style: one
// process per file, so a crash or a leaked handle is confined to its file), then prints
// one closing line "N passed, N failed[, N skipped]". Usage: node test/run.mjs [filter...]
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const files = walk(join(root, 'test')).filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)));
let passed = 0, failed = 0, skipped = 0;
const failures = [];
for (const file of files) {
  const rel = relative(root, file);
  const started = Date.now();
  const res = spawnSync(process.execPath, ['--import', 'tsx', file], { cwd: root, encoding: 'utf8', env: process.env, maxBuffer: 256 << 20 });
  const out = (res.stdout ?? '') + (res.stderr ?? '');
  const num = (label) => Number((out.match(new RegExp(`${label}:\\s+(\\d+)`)) ?? [])[1] ?? 0);
  const total = num('Total'), ok = num('Passed'), skip = num('Skipped');
  const bad = total - ok - skip;
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (res.status !== 0 || bad > 0 || total + skip === 0) { // a file whose tests all skip (skipped: needs root) is not a failure
    failed += Math.max(bad, 1);
    passed += ok;
    failures.push(rel);
    process.stdout.write(`FAIL ${rel} (${secs}s, exit ${res.status ?? res.signal})\n${out}\n`);
  } else {
    passed += ok;
    skipped += skip;
    process.stdout.write(`ok   ${rel}: ${ok} passed${skip ? `, ${skip} skipped` : ''} (${secs}s)\n`);
    if (process.env.VERBOSE) process.stdout.write(out);
  }
}
if (failures.length) process.stdout.write(`\nfailed files:\n  ${failures.join('\n  ')}\n`);
process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exit(failed > 0 || files.length === 0 ? 1 : 0);
