// Benchmark: the gen: port alone, the host's own cost beside it, and a pass-all host on gen:
// with one ring and with two.
// Usage: node bench/gen.mjs [rounds=5] [packets=5000000] [BASELINE_CLI] [--json]
// (needs npm run build and a C compiler `cc`; no root). BASELINE_CLI: another checkout's
// dist/nmwasm.mjs (e.g. the main branch's), whose pass-all host on one ring is run alongside,
// for a before/after. --json: the last stdout line is {"measures":[...]} (bench/README.md).
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
//   batch cycle         batchCycle(): the ring's batch cycle in this thread (sync + wasm call of
//                       pass.wasm), less the mean of gen 64 run just before and after it: the
//                       cycle's cost beside the source, without the worker's bookkeeping and
//                       the main thread (steadier than the CLI's figure on a loaded machine)
//   host cost           per round, host rings=1 less gen 64 of the same round (paired): what
//                       the host spends per packet beside the source (ring sync, verdicts,
//                       counters, the batch loop, the wasm call and the pass-all filter)
//   C ring work         bench/ring_work.c (cc -O2): one ring's work in C (walk the slots, write
//                       verdicts, count, advance head), CPU ns/packet: the host cost's baseline
//   scaling             2 x (rings=1 CPU/packet) / (rings=2 CPU/packet): the throughput two
//                       rings on two free cores would reach relative to one ring, as far as
//                       CPU time per packet decides it (it leaves out memory bandwidth and the
//                       shared L3, which CPU time cannot see on a loaded 2-core machine;
//                       docs/perf-multicore.md)
// NB: CPU time, not wall time: the machine is shared; wall time would measure the neighbours.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, loadavg, tmpdir } from 'node:os';
import { Worker } from 'node:worker_threads';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBenchAddon } from './lib/common.mjs';

const JSON_OUT = process.argv.includes('--json');
const ARGS = process.argv.slice(2).filter((a) => a !== '--json');
const ROUNDS = Number(ARGS[0] ?? 5);
const PACKETS = Number(ARGS[1] ?? 5_000_000);
const BASELINE = ARGS[2];
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
if (!(ROUNDS >= 1 && PACKETS >= 100_000)) die(`usage: gen.mjs [rounds>=1] [packets>=100000] [BASELINE_CLI] [--json]; got ${ARGS.join(' ')}`);
if (BASELINE !== undefined && !existsSync(BASELINE)) die(`baseline CLI ${BASELINE} does not exist`);
const native = createRequire(import.meta.url)(ADDON);

/** What `gen:` (the CLI's default) opens: 64-byte frames, 16 flows, the default mix, seed 1. */
const GEN = { kind: 'gen', name: 'gen:bench', count: 0, sizeMin: 64, sizeMax: 64, imix: false, flows: 16, mix: [40, 30, 5, 10, 10, 3, 2], seed: 1, pps: 0, seq: false, rings: 1 };
const WINDOW = 0x100000; // NMWASM_WINDOW_BASE (docs/ABI.md)
const COUNTER_SLOTS = 24; // host/ports/native.ts
const passModule = new WebAssembly.Module(readFileSync(PASS));

/** The generator alone: CPU ns/packet of rxsync over a 1024-slot ring. */
function genAlone(spec) {
  const port = native.openPort({ ...GEN, ...spec }, { numSlots: 1024, bufSize: 2048 });
  try {
    return native.benchGen(port.id, 0, PACKETS).nsPerPacket;
  } finally {
    native.closePort(port.id);
  }
}

/** The batch cycle in this thread: the same gen: port attached to a ring mapped into the
 * pass-all module's memory, then per batch the module's nmwasm_process and one sync (verdicts
 * checked and counted, the ring refilled and published), as a ring worker does minus its
 * per-batch bookkeeping (watchdog lease, stats, Atomics). CPU ns/packet of the process (this
 * thread is the only busy one). Less genAlone: what the cycle costs beside the source. */
function batchCycle() {
  const port = native.openPort(GEN, { numSlots: 1024, bufSize: 2048 });
  const handle = native.attachRing(port.id, 0, { outputs: [], counters: new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8)), faultVerdict: 0, trace: false });
  try {
    const inst = new WebAssembly.Instance(passModule, {});
    handle.map(new Uint8Array(inst.exports.memory.buffer), WINDOW);
    const { ringOfs, verdictOfs, numSlots } = handle.layout();
    const process_ = inst.exports.nmwasm_process;
    let first = 0;
    let n = handle.sync(0, false);
    // Warm-up: V8 runs a fresh module in its baseline tier first and tiers up while it runs.
    for (let b = 0; b < 200 && n > 0; b++) {
      process_(WINDOW + ringOfs, WINDOW + verdictOfs, first, n);
      const next = handle.sync(n, false);
      first = (first + n) % numSlots;
      n = next;
    }
    let done = 0;
    const before = process.cpuUsage();
    while (done < PACKETS && n > 0) {
      if (process_(WINDOW + ringOfs, WINDOW + verdictOfs, first, n) !== 0) die('pass.wasm returned non-zero');
      const next = handle.sync(n, false);
      first = (first + n) % numSlots;
      done += n;
      n = next;
    }
    const used = process.cpuUsage(before);
    return ((used.user + used.system) * 1000) / done;
  } finally {
    handle.detach();
    native.closePort(port.id);
  }
}

// The ring threads of cyclesOnThreads: each attaches one ring of the port (by id: the addon's
// port registry is per process), warms up, says so, waits for the go, runs its share.
const RING_THREAD = `
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
const { addon, pass, portId, ring, packets, gate } = workerData;
const native = createRequire(import.meta.url)(addon);
const handle = native.attachRing(portId, ring, { outputs: [], counters: new Float64Array(new SharedArrayBuffer(24 * 8)), faultVerdict: 0, trace: false });
const inst = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(pass)), {});
handle.map(new Uint8Array(inst.exports.memory.buffer), 0x100000);
const { ringOfs, verdictOfs, numSlots } = handle.layout();
const f = inst.exports.nmwasm_process;
let first = 0, n = handle.sync(0, false), done = 0;
const step = () => { f(0x100000 + ringOfs, 0x100000 + verdictOfs, first, n); const next = handle.sync(n, false); first = (first + n) % numSlots; done += n; n = next; };
for (let b = 0; b < 200 && n > 0; b++) step();
Atomics.add(gate, 1, 1); Atomics.notify(gate, 1);
Atomics.wait(gate, 0, 0);
done = 0;
while (done < packets && n > 0) step();
handle.detach();
parentPort.postMessage(done);
`;

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

const work = mkdtempSync(join(tmpdir(), 'nmwasm-bench-'));
const childFile = join(work, 'child.mjs');
writeFileSync(childFile, CHILD);

// The C baseline of the host's own work, compiled here (cc -O2).
const RING_WORK = join(work, 'ring_work');
try {
  execFileSync('cc', ['-O2', '-o', RING_WORK, here('ring_work.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
} catch (err) {
  die(`cc -O2 bench/ring_work.c failed (a C compiler is needed for the baseline): ${String(err.stderr ?? err.message).trim().split('\n')[0]}`);
}

const ringThreadFile = join(work, 'ring-thread.mjs');
writeFileSync(ringThreadFile, RING_THREAD);

/** The batch cycle of every ring of a gen:rings=RINGS port, one thread per ring, all at once
 * (PACKETS a ring): process CPU ns/packet from the go to the last ring's end. The threads'
 * start-up and warm-up happen before the go. NB: with fewer free cores than rings the
 * threads time-slice; CPU time per packet still counts only work. */
async function cyclesOnThreads(rings) {
  const port = native.openPort({ ...GEN, rings }, { numSlots: 1024, bufSize: 2048 });
  const gate = new Int32Array(new SharedArrayBuffer(8));
  try {
    const workers = [];
    const finished = [];
    for (let r = 0; r < rings; r++) {
      const w = new Worker(ringThreadFile, { workerData: { addon: ADDON, pass: PASS, portId: port.id, ring: r, packets: PACKETS, gate } });
      workers.push(w);
      finished.push(new Promise((resolve, reject) => (w.once('message', resolve), w.once('error', reject))));
    }
    while (Atomics.load(gate, 1) < rings) await new Promise((resolve) => setTimeout(resolve, 5));
    const before = process.cpuUsage();
    Atomics.store(gate, 0, 1);
    Atomics.notify(gate, 0);
    const done = (await Promise.all(finished)).reduce((a, b) => a + b, 0);
    const used = process.cpuUsage(before);
    await Promise.all(workers.map((w) => w.terminate()));
    return ((used.user + used.system) * 1000) / done;
  } finally {
    native.closePort(port.id);
  }
}

/** One ring's work in C over PACKETS packets: CPU ns/packet of its thread. */
function ringWorkC() {
  return Number(execFileSync(RING_WORK, [String(PACKETS * 4)], { encoding: 'utf8' }).trim().split(' ')[0]);
}

/** A pass-all host over PACKETS through the CLI in a child process: process CPU ns/packet while
 * main() ran, less the same host's over SMALL packets (start-up and shutdown). */
function host(cli, gen) {
  return (hostCpuNs(cli, `${gen},count=${PACKETS}`, PACKETS) - hostCpuNs(cli, `${gen},count=${SMALL}`, SMALL)) / (PACKETS - SMALL);
}

/** Process CPU ns of one pass-all host in a child process while its main() ran. A child that
 * printed no summary (seen at load 30: a run that ends on "a killed ring worker still runs
 * guest code") is run again, twice at most. */
function hostCpuNs(cli, gen, packets) {
  for (let attempt = 1; ; attempt++) {
    const ns = hostCpuNsOnce(cli, gen, packets);
    if (typeof ns === 'number') return ns;
    if (attempt === 3) die(`${gen}: no summary in 3 runs; the last said: ${ns.error}`);
  }
}

function hostCpuNsOnce(cli, gen, packets) {
  const res = spawnSync(process.execPath, [childFile, 'load', PASS, '--port', gen, '--json'], {
    encoding: 'utf8',
    maxBuffer: 16 << 20,
    env: { ...process.env, NMWASM_BENCH_CLI: cli },
  });
  if (res.status !== 0) die(`${gen}: child exited ${res.status}: ${res.stderr}`);
  const { status, cpuUs, summary } = JSON.parse(res.stdout.trim().split('\n').pop());
  if (status !== 0) die(`${gen}: exit ${status}: ${summary}`);
  const last = summary.trim().split('\n').pop() ?? '';
  if (!last.startsWith('{')) return { error: JSON.stringify(summary.slice(0, 200)) };
  const got = JSON.parse(last).packets;
  if (got !== packets) die(`${gen}: ${got} of ${packets} packets`);
  return cpuUs * 1000;
}

const RUNS = {
  'gen 64': () => genAlone({}),
  'gen imix': () => genAlone({ imix: true, sizeMax: 1518 }),
  'batch cycle': () => batchCycle(),
  'gen 64 (again)': () => genAlone({}),
  'host rings=1': () => host(CLI, 'gen:seed=1'),
  'host rings=2': () => host(CLI, 'gen:rings=2'),
  'C ring work': () => ringWorkC(),
  'cycles rings=1': () => cyclesOnThreads(1),
  'cycles rings=2': () => cyclesOnThreads(2),
  ...(BASELINE ? { 'baseline host rings=1': () => host(BASELINE, 'gen:seed=1') } : {}),
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const results = Object.fromEntries(Object.keys(RUNS).map((k) => [k, []]));
const out = [`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${PACKETS} packets a run, ${ROUNDS} rounds, 64-byte frames unless imix, medians of CPU ns/packet; load average ${load()} (start)`];
for (let r = 0; r < ROUNDS; r++) for (const [name, run] of Object.entries(RUNS)) results[name].push(await run());
// Paired per round: the host's run less the generator's run of the same round; the batch
// cycle less the mean of the generator runs just before and after it (same thread).
results['host cost'] = results['host rings=1'].map((x, r) => x - results['gen 64'][r]);
results['cycle cost'] = results['batch cycle'].map((x, r) => x - (results['gen 64'][r] + results['gen 64 (again)'][r]) / 2);
for (const [name, xs] of Object.entries(results)) out.push(`${name.padEnd(22)} ${median(xs).toFixed(2).padStart(7)} ns/packet   (runs: ${xs.map((x) => x.toFixed(2)).join(' ')})`);
const one = median(results['host rings=1']);
const two = median(results['host rings=2']);
const gen = median(results['gen 64']);
const cost = median(results['host cost']);
const ringC = median(results['C ring work']);
const cycle = median(results['cycle cost']);
const scaling = (2 * one) / two;
const threadScaling = (2 * median(results['cycles rings=1'])) / median(results['cycles rings=2']);
out.push(`scaling, rings=2 vs rings=1 by CPU time per packet: ${scaling.toFixed(2)}x (2 x ${one.toFixed(2)} / ${two.toFixed(2)})`);
out.push(`scaling of the batch cycles on threads (no CLI), rings=2 vs rings=1: ${threadScaling.toFixed(2)}x`);
out.push(`the generator's part of a one-ring host: ${((100 * gen) / one).toFixed(0)}%`);
out.push(`the host's cost beside the source: ${cost.toFixed(2)} ns/packet, ${(cost / ringC).toFixed(2)}x one ring's work in C (${ringC.toFixed(2)})`);
// NB: on a loaded machine the paired differences scatter (a neighbour's burst lands on one run
// of the pair); the least-disturbed runs of each kind give a second, steadier estimate.
const least = (name) => Math.min(...results[name]);
out.push(`  from the fastest runs: host rings=1 ${least('host rings=1').toFixed(2)} - gen 64 ${least('gen 64').toFixed(2)} = ${(least('host rings=1') - least('gen 64')).toFixed(2)} ns/packet; C ${least('C ring work').toFixed(2)}`);
out.push(`the batch cycle's cost beside the source (sync + wasm call + pass-all, in this thread): ${cycle.toFixed(2)} ns/packet, ${(cycle / ringC).toFixed(2)}x one ring's work in C`);
out.push(`load average ${load()} (end)`);
process.stdout.write(`${out.join('\n')}\n`);
if (JSON_OUT) {
  const how = `node bench/gen.mjs ${ROUNDS} ${PACKETS} --json`;
  const r2 = (x) => Math.round(x * 100) / 100;
  const measures = [
    { name: 'gen: source alone, 64 B frames', unit: 'ns/packet', nmwasm: r2(gen), baseline: null, ratio: null, target: 5, how },
    { name: "host's batch cycle beside the gen: source (sync, wasm call, pass-all; one thread) vs one ring's work in C", unit: 'ns/packet', nmwasm: r2(cycle), baseline: r2(ringC), ratio: r2(cycle / ringC), target: 1.5, how },
    { name: "whole host beside the gen: source (CLI process: ring worker and main thread; pass-all, one ring) vs one ring's work in C", unit: 'ns/packet', nmwasm: r2(cost), baseline: r2(ringC), ratio: r2(cost / ringC), target: 1.5, how },
    { name: 'gen: rings=2 vs rings=1, throughput by CPU time per packet (CLI process)', unit: 'x', nmwasm: r2(scaling), baseline: null, ratio: null, target: 1.9, how },
    { name: 'gen: rings=2 vs rings=1, throughput by CPU time per packet (batch cycles on one thread per ring)', unit: 'x', nmwasm: r2(threadScaling), baseline: null, ratio: null, target: 1.9, how },
  ];
  process.stdout.write(`${JSON.stringify({ measures })}\n`);
}
