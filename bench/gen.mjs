// Benchmark: the gen: port alone, and a pass-all host on gen: with one ring and with two.
// Usage: node bench/gen.mjs [rounds=5] [packets=10000000] [BASELINE_CLI]
// (needs npm run build; no root). BASELINE_CLI: another checkout's dist/nmwasm.mjs (e.g. the
// main branch's), whose pass-all host on one ring is run alongside, for a before/after.
//
// Figures, medians over the rounds; every kind of run is done once per round, interleaved,
// so that the machine's load (shared cores) falls on all of them alike:
//   gen 64 / gen imix   the generator alone (native benchGen: the port's rxsync over its ring,
//                       no ring sync, no guest), CPU ns/packet of this thread
//   host rings=1 / 2    nmwasm load pass.wasm --port gen:count=PACKETS[,rings=2] --json in a
//                       child process: its process CPU time (every thread: ring workers, main
//                       thread) while main() ran, less that of the same run over 1000 packets
//                       (done in the same round), per packet: the steady state. NB: each ring
//                       worker costs ~60 ms of CPU to start (a V8 isolate, the bundle, the
//                       module), which would otherwise count as 6 ns/packet per ring at 10M.
//   scaling             2 x (rings=1 CPU/packet) / (rings=2 CPU/packet): the throughput two
//                       rings on two free cores would reach relative to one ring, as far as
//                       CPU time per packet decides it (it leaves out memory bandwidth and the
//                       shared L3, which CPU time cannot see on a loaded 2-core machine)
// NB: CPU time, not wall time: the machine is shared; wall time would measure the neighbours.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBenchAddon } from './lib/common.mjs';

const ROUNDS = Number(process.argv[2] ?? 5);
const PACKETS = Number(process.argv[3] ?? 10_000_000);
const BASELINE = process.argv[4];
const SMALL = 1000;
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../dist/nmwasm.mjs');
const ADDON = ensureBenchAddon(); // the benchmarks' addon (bench/native), built when missing or stale
const PASS = here('../filters/build/fixtures/pass.wasm');

function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

if (!existsSync(CLI) || !existsSync(PASS) || !existsSync(ADDON)) die('run npm run build first (dist/nmwasm.mjs, build/Release/nmwasm.node and filters/build/fixtures/pass.wasm are needed)');
if (!(ROUNDS >= 1 && PACKETS >= 100_000)) die('usage: gen.mjs [rounds>=1] [packets>=100000] [BASELINE_CLI]');
if (BASELINE !== undefined && !existsSync(BASELINE)) die(`baseline CLI ${BASELINE} does not exist`);
const native = createRequire(import.meta.url)(ADDON);

/** The generator alone: CPU ns/packet of rxsync over a 1024-slot ring. */
function genAlone(spec) {
  const port = native.openPort({ kind: 'gen', name: 'gen:bench', count: 0, sizeMin: 64, sizeMax: 64, imix: false, flows: 16, mix: [40, 30, 5, 10, 10, 3, 2], seed: 1, pps: 0, seq: false, rings: 1, ...spec }, { numSlots: 1024, bufSize: 2048 });
  try {
    return native.benchGen(port.id, 0, PACKETS).nsPerPacket;
  } finally {
    native.closePort(port.id);
  }
}

// The child: imports a CLI, runs main(args) with its output captured, prints its summary and CPU use.
// NB: a file, not `node -e` (the ring workers inherit execArgv, and --input-type breaks them);
// the CLI's path goes in the environment: as process.argv[2] is fine, process.argv[1] is this
// file, so the CLI does not take itself for the program and run a second main().
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

/** A pass-all host over PACKETS through the CLI in a child process: process CPU ns/packet while
 * main() ran, less the same host's over SMALL packets (start-up and shutdown). */
function host(cli, gen) {
  return (hostCpuNs(cli, `${gen},count=${PACKETS}`, PACKETS) - hostCpuNs(cli, `${gen},count=${SMALL}`, SMALL)) / (PACKETS - SMALL);
}

/** Process CPU ns of one pass-all host in a child process while its main() ran. */
function hostCpuNs(cli, gen, packets) {
  const res = spawnSync(process.execPath, [childFile, 'load', PASS, '--port', gen, '--json'], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    env: { ...process.env, NMWASM_BENCH_CLI: cli },
  });
  if (res.status !== 0) die(`${gen}: child exited ${res.status}: ${res.stderr}`);
  const { status, cpuUs, summary } = JSON.parse(res.stdout.trim().split('\n').pop());
  if (status !== 0) die(`${gen}: exit ${status}: ${summary}`);
  const got = JSON.parse(summary.trim().split('\n').pop()).packets;
  if (got !== packets) die(`${gen}: ${got} of ${packets} packets`);
  return cpuUs * 1000;
}

const RUNS = {
  'gen 64': () => genAlone({}),
  'gen imix': () => genAlone({ imix: true, sizeMax: 1518 }),
  'host rings=1': () => host(CLI, 'gen:seed=1'),
  'host rings=2': () => host(CLI, 'gen:rings=2'),
  ...(BASELINE ? { 'baseline host rings=1': () => host(BASELINE, 'gen:seed=1') } : {}),
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const results = Object.fromEntries(Object.keys(RUNS).map((k) => [k, []]));
const out = [`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${PACKETS} packets a run, ${ROUNDS} rounds, 64-byte frames unless imix, medians of CPU ns/packet; load average ${load()} (start)`];
for (let r = 0; r < ROUNDS; r++) for (const [name, run] of Object.entries(RUNS)) results[name].push(run());
for (const [name, xs] of Object.entries(results)) out.push(`${name.padEnd(22)} ${median(xs).toFixed(2).padStart(7)} ns/packet   (runs: ${xs.map((x) => x.toFixed(2)).join(' ')})`);
const one = median(results['host rings=1']);
const two = median(results['host rings=2']);
out.push(`scaling, rings=2 vs rings=1 by CPU time per packet: ${((2 * one) / two).toFixed(2)}x (2 x ${one.toFixed(2)} / ${two.toFixed(2)})`);
out.push(`the generator's part of a one-ring host: ${((100 * median(results['gen 64'])) / one).toFixed(0)}%`);
out.push(`load average ${load()} (end)`);
process.stdout.write(`${out.join('\n')}\n`);
