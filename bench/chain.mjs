// Benchmark: what a chain of modules on one ring costs (docs/ABI.md section 9), against the
// same host with one module, and optionally a one-module host of another checkout (before
// chains existed: a one-module chain must cost what one module cost).
// Usage: node bench/chain.mjs [rounds=5] [packets=4000000] [BASELINE_CLI] [--json]
// (needs npm run build; no root). BASELINE_CLI: another checkout's dist/nmwasm.mjs.
//
// Figures, medians over the rounds; every kind of run is done once per round, interleaved,
// so that the machine's load (shared cores) falls on all of them alike:
//   1 module            nmwasm load pass.wasm --port gen:count=PACKETS --json
//   3 modules           nmwasm load pass.wasm pass.wasm pass.wasm --port gen:count=PACKETS --json
//   baseline 1 module   the first, with BASELINE_CLI
// each in a child process: its process CPU time (every thread) while main() ran, less that of
// the same run over 1000 packets (done in the same round), per packet: the steady state.
// NB: CPU time, not wall time: the machine is shared; wall time would measure the neighbours.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2).filter((a) => a !== '--json');
const JSON_OUT = process.argv.includes('--json');
const ROUNDS = Number(args[0] ?? 5);
const PACKETS = Number(args[1] ?? 4_000_000);
const BASELINE = args[2];
const SMALL = 1000;
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../dist/nmwasm.mjs');
const PASS = here('../filters/build/fixtures/pass.wasm');

function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

if (!existsSync(CLI) || !existsSync(PASS)) die('run npm run build first (dist/nmwasm.mjs and filters/build/fixtures/pass.wasm are needed)');
if (!(ROUNDS >= 1 && PACKETS >= 100_000)) die('usage: chain.mjs [rounds>=1] [packets>=100000] [BASELINE_CLI] [--json]');
if (BASELINE !== undefined && !existsSync(BASELINE)) die(`baseline CLI ${BASELINE} does not exist`);

// The child: imports a CLI, runs main(args) with its output captured, prints its summary and CPU
// use (as bench/gen.mjs does; the CLI's path goes in the environment).
const CHILD = `
const args = process.argv.slice(2);
const { main } = await import(process.env.NMWASM_BENCH_CLI);
let text = '';
const write = process.stdout.write.bind(process.stdout);
process.stdout.write = (chunk) => ((text += chunk), true);
process.stderr.write = () => true;
const before = process.cpuUsage();
const status = await main(args);
const used = process.cpuUsage(before);
process.stdout.write = write;
write(JSON.stringify({ status, cpuUs: used.user + used.system, summary: text }) + '\\n');
process.exit(0);
`;
const childFile = join(mkdtempSync(join(tmpdir(), 'nmwasm-bench-')), 'child.mjs');
writeFileSync(childFile, CHILD);

/** Process CPU ns of one host over `packets` in a child process while its main() ran. */
function hostCpuNs(cli, modules, packets) {
  const res = spawnSync(process.execPath, [childFile, 'load', ...modules, '--port', `gen:count=${packets}`, '--json'], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    env: { ...process.env, NMWASM_BENCH_CLI: cli },
  });
  if (res.status !== 0) die(`child exited ${res.status}: ${res.stderr}`);
  const { status, cpuUs, summary } = JSON.parse(res.stdout.trim().split('\n').pop());
  if (status !== 0) die(`exit ${status}: ${summary}`);
  const got = JSON.parse(summary.trim().split('\n').pop()).packets;
  if (got !== packets) die(`${got} of ${packets} packets`);
  return cpuUs * 1000;
}

/** Steady-state CPU ns/packet of a host running `modules` as a chain. */
function host(cli, modules) {
  return (hostCpuNs(cli, modules, PACKETS) - hostCpuNs(cli, modules, SMALL)) / (PACKETS - SMALL);
}

const RUNS = {
  '1 module': () => host(CLI, [PASS]),
  '3 modules': () => host(CLI, [PASS, PASS, PASS]),
  ...(BASELINE ? { 'baseline 1 module': () => host(BASELINE, [PASS]) } : {}),
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const results = Object.fromEntries(Object.keys(RUNS).map((k) => [k, []]));
const out = [`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${PACKETS} packets a run, ${ROUNDS} rounds, pass-all modules on gen:, medians of CPU ns/packet; load average ${load()} (start)`];
for (let r = 0; r < ROUNDS; r++) for (const [name, run] of Object.entries(RUNS)) results[name].push(run());
for (const [name, xs] of Object.entries(results)) out.push(`${name.padEnd(20)} ${median(xs).toFixed(2).padStart(7)} ns/packet   (runs: ${xs.map((x) => x.toFixed(2)).join(' ')})`);
const one = median(results['1 module']);
const three = median(results['3 modules']);
out.push(`each module after the first: ${((three - one) / 2).toFixed(2)} ns/packet (the compaction and the module's call)`);
out.push(`load average ${load()} (end)`);
process.stdout.write(`${out.join('\n')}\n`);
if (JSON_OUT) {
  const how = `node bench/chain.mjs ${ROUNDS} ${PACKETS}${BASELINE ? ` ${BASELINE}` : ''} --json`;
  const measures = [{ name: 'chain of 3 pass-all modules vs 1 (CPU ns/packet)', unit: 'ns/packet', nmwasm: three, baseline: one, ratio: three / one, target: null, how }];
  if (BASELINE) {
    const base = median(results['baseline 1 module']);
    measures.push({ name: 'one-module host vs the baseline checkout (CPU ns/packet)', unit: 'ns/packet', nmwasm: one, baseline: base, ratio: one / base, target: 1.05, how });
  }
  process.stdout.write(`${JSON.stringify({ measures })}\n`);
}
