// npm run bench: runs every benchmark script of the common result format with --json, one
// after the other, and writes bench/results/latest.json, bench/results/latest.svg, the
// generated part of docs/PERFORMANCE.md and the README's headline block.
// Usage: npm run bench [-- --quick] [-- --only SCRIPT]   (node bench/run.mjs ...); with --only
// the result is printed, nothing is written.
// Needs npm run build (addon, dist/, filters) and cc (CI installs gcc with g++); builds the
// benchmarks' addon (bench/native) when it is missing or older than its sources.
// A script that is absent, needs what this run lacks (root), fails, or prints no result
// line is listed under "skipped" with the reason; the others' measures are kept.
// NB: scripts run one at a time: on a 2-core machine two benchmarks side by side would
// measure each other. Each pairs and interleaves its own runs.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { BENCH_DIR, ROOT, die, ensureBenchAddon, machine } from './lib/common.mjs';
import { PERF_END, PERF_START, README_END, README_START, oneLine, renderPerformanceBlock, renderReadmeBlock, renderSvg, spliceBlock, validateMeasure } from './lib/report.mjs';

const args = process.argv.slice(2);
const QUICK = args.includes('--quick');
const onlyAt = args.indexOf('--only');
const ONLY = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
const TIMEOUT_MS = 5 * 60 * 1000;

/** The scripts, in the order they run. `needs` returns why this run cannot run it, or null. */
const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const SCRIPTS = [
  { script: 'bench/filters.mjs', needs: () => null },
  { script: 'bench/firewall.mjs', needs: () => null },
  { script: 'bench/gen.mjs', needs: () => null },
  { script: 'bench/swap.mjs', needs: () => null },
  { script: 'bench/xdp-fast.mjs', needs: () => (isRoot ? null : 'needs root (network namespaces, a veth pair, XDP): run npm run bench as root') },
].filter((s) => !ONLY || s.script.endsWith(ONLY));
if (SCRIPTS.length === 0) die(`--only: no benchmark script ends with ${JSON.stringify(ONLY)}`);

for (const f of ['build/Release/nmwasm.node', 'dist/nmwasm.mjs', 'filters/build/counter.wasm']) {
  if (!existsSync(join(ROOT, f))) die(`${f} not found: run npm run build first`);
}
ensureBenchAddon();

const started = Date.now();
const result = { machine: machine(), measures: [], skipped: [] };
for (const s of SCRIPTS) {
  const path = join(ROOT, s.script);
  const skip = (reason) => {
    result.skipped.push({ script: s.script, reason: oneLine(reason) });
    process.stderr.write(`bench: ${s.script} skipped: ${oneLine(reason)}\n`);
  };
  if (!existsSync(path)) { skip('not present in this checkout'); continue; }
  const lacking = s.needs();
  if (lacking) { skip(lacking); continue; }
  process.stderr.write(`bench: ${s.script} --json${QUICK ? ' --quick' : ''} ...\n`);
  const t0 = Date.now();
  const res = spawnSync(process.execPath, [path, '--json', ...(QUICK ? ['--quick'] : [])], { cwd: ROOT, encoding: 'utf8', timeout: TIMEOUT_MS, maxBuffer: 64 << 20 });
  const lastErr = (res.stderr ?? '').trim().split('\n').pop() ?? '';
  if (res.error) { skip(`did not finish: ${res.error.code === 'ETIMEDOUT' ? `killed after ${TIMEOUT_MS / 60000} minutes` : res.error.message}`); continue; }
  if (res.status !== 0) { skip(`exited ${res.status ?? res.signal}: ${lastErr}`); continue; }
  let parsed;
  try {
    parsed = JSON.parse((res.stdout ?? '').trim().split('\n').pop());
  } catch {
    skip('its last stdout line is not a JSON object (the common result format: {"measures": [...]})');
    continue;
  }
  const measures = Array.isArray(parsed?.measures) ? parsed.measures : null;
  const problems = measures ? measures.flatMap((m, i) => validateMeasure(m).map((p) => `measures[${i}].${p}`)) : ['no "measures" array'];
  if (problems.length) { skip(`bad result line: ${problems.slice(0, 2).join('; ')}`); continue; }
  result.measures.push(...measures);
  process.stderr.write(`bench: ${s.script}: ${measures.length} measures in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
result.loadavgEnd = loadavg().map((l) => Number(l.toFixed(2)));
result.seconds = Math.round((Date.now() - started) / 1000);

if (ONLY) {
  process.stdout.write(`${JSON.stringify(result)}\n`); // a part of the suite: the committed results stay as they are
  process.exit(0);
}
const resultsDir = join(BENCH_DIR, 'results');
mkdirSync(resultsDir, { recursive: true });
writeFileSync(join(resultsDir, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
writeFileSync(join(resultsDir, 'latest.svg'), renderSvg(result));

const perfPath = join(ROOT, 'docs/PERFORMANCE.md');
const perf = existsSync(perfPath) ? readFileSync(perfPath, 'utf8') : '';
writeFileSync(perfPath, spliceBlock(perf, renderPerformanceBlock(result), PERF_START, PERF_END, (block) => `# Performance\n\n${block}\n`));
const readmePath = join(ROOT, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
writeFileSync(readmePath, spliceBlock(readme, renderReadmeBlock(result), README_START, README_END, (block) => `${readme.trimEnd()}\n\n## Performance\n\n${block}\n`));

process.stdout.write(`bench: ${result.measures.length} measures, ${result.skipped.length} scripts skipped, ${result.seconds} s; wrote bench/results/latest.json, bench/results/latest.svg, docs/PERFORMANCE.md, README.md\n`);
for (const x of result.measures) process.stdout.write(`  ${oneLine(x.name, 70).padEnd(70)} ratio ${String(x.ratio).padStart(7)}${x.target === null ? '' : `  target <= ${x.target}`}\n`);
