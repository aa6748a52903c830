// Benchmark: the example filters pass-all, counter and reflector (`swap ports`) in
// AssemblyScript (filters/build/*.wasm, as shipped) against C baselines written the
// competent way (bench/c/baselines.h), on the same fresh frames, in the same ring layout.
// Usage: node bench/filters.mjs [--json] [--quick] [--rounds N] [--only pass|counter|reflector] [--size 64|imix] [--build DIR]
// (--build: another build's directory of counter.wasm, reflector.wasm, fixtures/pass.wasm, e.g. an
// older commit's, for a before/after; its outputs must match the C baselines' all the same)
// Needs npm run build (filters) and cc; builds the benchmarks' addon (bench/native) if needed.
//
// The modules are loaded as `nmwasm load` loads them (host/module/module.ts, rewrite included).
// Per filter and frame size (64-byte frames; imix 7:4:1), the frames are a pool of 8192
// (bench/c/harness.h: gen:'s default protocol mix, seed 42), 8 batches' worth, so no batch
// repeats before the branch predictor has seen 8000 others:
// - isolated: the pool laid out as one 8192-slot ring (2112-byte buffers, on transparent
//   huge pages) at 0x200000 of the module's memory; the wasm filter's nmwasm_process is
//   called from JS on consecutive windows of 1023 slots, the C filter (filters_bench iso)
//   on the same windows of the same bytes in its own memory: the filter and nothing else.
// - loop: the harness's batch loop on a 1024-slot ring like nmwasm's (2048-byte buffers):
//   per batch the previous batch's verdict walk and the copy of the next 1023 pool frames
//   into the ring (hr_loop_refill), then the filter. C: all in one C loop (filters_bench
//   loop). nmwasm: the same hr_loop_refill in the benchmarks' addon (one N-API call per
//   batch) and one nmwasm_process call per batch, the crossings of nmwasm's own loop.
// - outputs: before timing, one pass over the whole pool on each side from the same image:
//   the image after it (every verdict byte, every frame byte: the reflector's rewrites) and
//   the counters (nmwasm_stats vs the C counters) must be identical byte for byte, and the
//   loop's verdict counts after 50 batches too; otherwise the bench fails (exit 1).
// - C at -O2 and at -O3 -march=native; each a separate measure.
// Times: CPU time of the measuring thread (CLOCK_THREAD_CPUTIME_ID on both sides), each
// measurement ~TARGET_MS; rounds interleave wasm and both C builds, the order alternating;
// ratio = median over the rounds of the round's wasm/C ratio (paired).
// NB: the C side runs in a child process per measurement (spawn outside the timed part).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, compileC, die, ensureBenchAddon, machine, measure, median } from './lib/common.mjs';

const args = process.argv.slice(2);
const opt = (name) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');
const ROUNDS = Number(opt('--rounds') ?? (QUICK ? 3 : 9));
const ONLY = opt('--only');
const SIZE = opt('--size');
const BUILD = opt('--build') ?? join(ROOT, 'filters/build');
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) die(`--rounds: expected a positive integer, got ${JSON.stringify(opt('--rounds'))}`);

const NMWASM_CONFIG_BASE = 0x10000;
const IMG_OFS = 0x200000; // 2 MiB-aligned, inside the host window (docs/ABI.md section 1)
const LOOP_OFS = 0x2000000;
const WINDOW_END = 0x4000000;
const POOL = 8192;
const BATCH = 1023;
const TARGET_MS = QUICK ? 15 : 40;

const FILTERS = [
  { name: 'pass', label: 'pass-all', wasm: 'fixtures/pass.wasm', config: '', stats: 0 },
  { name: 'counter', label: 'counter', wasm: 'counter.wasm', config: '', stats: 10 },
  { name: 'reflector', label: 'reflector', wasm: 'reflector.wasm', config: 'swap ports\n', stats: 3 },
].filter((f) => !ONLY || f.name === ONLY);
const SIZES = [{ arg: '64', label: '64B', code: 0 }, { arg: 'imix', label: 'imix', code: 1 }].filter((s) => !SIZE || s.arg === SIZE);
if (FILTERS.length === 0) die(`--only: expected pass, counter or reflector, got ${JSON.stringify(ONLY)}`);
if (SIZES.length === 0) die(`--size: expected 64 or imix, got ${JSON.stringify(SIZE)}`);
for (const f of FILTERS) if (!existsSync(join(BUILD, f.wasm))) die(`${join(BUILD, f.wasm)} not found: run npm run build first`);

const bench = createRequire(import.meta.url)(ensureBenchAddon());
// The module is loaded as `nmwasm load` loads it (host/module/module.ts: checks, limits, the
// bulk-instruction rewrite of docs/SANDBOX.md), so the bench times what the host runs.
(await import('tsx/esm/api')).register();
const { loadModule } = await import('../host/module/module.ts');
const tmp = mkdtempSync(join(tmpdir(), 'nmwasm-bench-filters-'));
process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
const C_BUILDS = [
  { label: 'C -O2', flags: ['-O2'] },
  { label: 'C -O3 -march=native', flags: ['-O3', '-march=native'] },
].map((b) => ({ ...b, bin: compileC('filters_bench', b.flags, tmp) }));

/** Runs filters_bench; returns its stdout (JSON for iso/loop). */
function runC(bin, argv) {
  const res = spawnSync(bin, argv, { encoding: 'latin1', maxBuffer: 1 << 20 });
  if (res.status !== 0) die(`filters_bench ${argv.join(' ')}: exit ${res.status}: ${res.stderr.trim()}`);
  return res.stdout;
}

/** The filter's module, instantiated, configured, its window on huge pages. */
function instantiate(f) {
  let memory;
  const env = {
    abort: () => { throw new Error(`${f.wasm} aborted`); },
    nmwasm_log: (ptr, len) => process.stderr.write(`${f.label}: ${Buffer.from(memory.buffer, ptr, Math.min(len, 200)).toString('latin1').replace(/[^\x20-\x7e]/g, '?')}\n`),
    nmwasm_now: () => performance.now(),
  };
  const inst = new WebAssembly.Instance(loadModule(join(BUILD, f.wasm)).module, { env });
  const x = inst.exports;
  memory = x.memory;
  bench.hugePages(memory.buffer, IMG_OFS, WINDOW_END - IMG_OFS);
  if (x.nmwasm_init) {
    const config = Buffer.from(f.config);
    new Uint8Array(memory.buffer).set(config, NMWASM_CONFIG_BASE);
    if (x.nmwasm_init(NMWASM_CONFIG_BASE, config.length) !== 0) die(`${f.wasm}: nmwasm_init refused ${JSON.stringify(f.config)}`);
  }
  return x;
}

/** One pass of the wasm filter over the n-slot image at IMG_OFS, in windows of 1023. */
function wasmPass(x, verdictPtr) {
  const proc = x.nmwasm_process;
  for (let first = 0; first < POOL; first += BATCH) proc(IMG_OFS, verdictPtr, first, Math.min(BATCH, POOL - first));
}

function verdictOfs(n) { return (256 + n * 16 + 63) & ~63; }

/** Sets up one filter x size: the wasm side with the C image loaded, outputs checked. */
function setUp(f, size) {
  const x = instantiate(f);
  const img = join(tmp, `${f.name}-${size.arg}.img`);
  runC(C_BUILDS[0].bin, [f.name, size.arg, 'image', img, String(POOL)]);
  const image = readFileSync(img);
  const mem = () => new Uint8Array(x.memory.buffer);
  mem().set(image, IMG_OFS);
  const verdictPtr = IMG_OFS + verdictOfs(POOL);
  // Outputs: one pass each from the same image, compared byte for byte.
  wasmPass(x, verdictPtr);
  const wasmImage = Buffer.from(x.memory.buffer, IMG_OFS, image.length);
  const wasmStats = f.stats ? Buffer.from(x.memory.buffer, x.nmwasm_stats(), 8 * f.stats) : Buffer.alloc(0);
  for (const b of C_BUILDS) {
    const out = join(tmp, `${f.name}-${size.arg}.out`);
    runC(b.bin, [f.name, size.arg, 'outputs', out, String(POOL)]);
    const c = readFileSync(out);
    const cImage = c.subarray(0, image.length), cStats = c.subarray(image.length);
    if (!cImage.equals(wasmImage)) {
      let at = 0;
      while (cImage[at] === wasmImage[at]) at++;
      die(`${f.label} ${size.label}: outputs differ from ${b.label} at image byte ${at} (wasm ${wasmImage[at]}, C ${cImage[at]}; verdicts at ${verdictOfs(POOL)}..${verdictOfs(POOL) + POOL})`);
    }
    if (!cStats.equals(wasmStats)) die(`${f.label} ${size.label}: counters differ from ${b.label}: wasm ${wasmStats.toString('hex')}, C ${cStats.toString('hex')}`);
  }
  // The loop: verdict counts after 50 batches, wasm vs C.
  const loop = bench.loopOpen(x.memory.buffer, LOOP_OFS, size.code, POOL);
  runLoop(x, loop, 50);
  const wasmCounts = JSON.stringify(bench.loopCounts(loop.id));
  bench.loopClose(loop.id);
  for (const b of C_BUILDS) {
    const c = JSON.parse(runC(b.bin, [f.name, size.arg, 'loop', String(POOL), '50']));
    if (JSON.stringify({ packets: c.packets, counts: c.counts }) !== wasmCounts) die(`${f.label} ${size.label}: loop verdict counts differ: wasm ${wasmCounts}, ${b.label} ${JSON.stringify(c.counts)}`);
  }
  return { x, verdictPtr, loop: bench.loopOpen(x.memory.buffer, LOOP_OFS, size.code, POOL) };
}

/** `batches` turns of the batch loop with the wasm filter, then the last verdict walk. */
function runLoop(x, loop, batches) {
  const proc = x.nmwasm_process, refill = bench.loopRefill, id = loop.id, ring = LOOP_OFS, verdicts = LOOP_OFS + loop.verdictOfs, n = loop.batch;
  for (let b = 0; b < batches; b++) proc(ring, verdicts, refill(id), n);
  refill(id);
}

/** Repetitions so that one measurement lasts about TARGET_MS (also warms up). */
function calibrate(timeOne) {
  let reps = 4;
  for (;;) {
    const t0 = bench.cpuNs();
    timeOne(reps);
    const ms = (bench.cpuNs() - t0) / 1e6;
    if (ms >= TARGET_MS / 2) return Math.max(1, Math.round((reps * TARGET_MS) / ms));
    reps *= 4;
  }
}

const rows = [];
const startLoad = loadavg();
for (const f of FILTERS) {
  for (const size of SIZES) {
    const s = setUp(f, size);
    const isoReps = calibrate((n) => { for (let i = 0; i < n; i++) wasmPass(s.x, s.verdictPtr); });
    const loopReps = calibrate((n) => runLoop(s.x, s.loop, n));
    const wasmIso = () => { const t0 = bench.cpuNs(); for (let i = 0; i < isoReps; i++) wasmPass(s.x, s.verdictPtr); return (bench.cpuNs() - t0) / (isoReps * POOL); };
    const wasmLoop = () => { const t0 = bench.cpuNs(); runLoop(s.x, s.loop, loopReps); return (bench.cpuNs() - t0) / (loopReps * BATCH); };
    const cIso = (b) => JSON.parse(runC(b.bin, [f.name, size.arg, 'iso', String(POOL), String(isoReps)])).ns;
    const cLoop = (b) => JSON.parse(runC(b.bin, [f.name, size.arg, 'loop', String(POOL), String(loopReps)])).ns;
    for (const [where, wasmRun, cRun] of [['isolated', wasmIso, cIso], ['loop', wasmLoop, cLoop]]) {
      const w = [], c = C_BUILDS.map(() => []), ratio = C_BUILDS.map(() => []);
      for (let r = 0; r < ROUNDS; r++) {
        const order = r % 2 ? [...C_BUILDS.keys(), -1] : [-1, ...C_BUILDS.keys()];
        const got = {};
        for (const k of order) got[k] = k < 0 ? wasmRun() : cRun(C_BUILDS[k]);
        w.push(got[-1]);
        C_BUILDS.forEach((_, k) => { c[k].push(got[k]); ratio[k].push(got[-1] / got[k]); });
      }
      C_BUILDS.forEach((b, k) => rows.push({ f, size, where, c: b, wasm: median(w), base: median(c[k]), ratio: median(ratio[k]) }));
    }
    bench.loopClose(s.loop.id);
  }
}

const measures = rows.map((r) =>
  measure(
    `${r.f.label} ${r.size.label} ${r.where === 'loop' ? 'in the loop' : 'isolated'} vs ${r.c.label}`,
    'ns/packet (CPU)',
    r.wasm,
    r.base,
    r.ratio,
    r.where === 'loop' ? 1.1 : 1.3,
    `node bench/filters.mjs --only ${r.f.name} --size ${r.size.arg}${opt('--build') ? ` --build ${BUILD}` : ''}`,
  ),
);
if (JSON_OUT) {
  process.stdout.write(`${JSON.stringify({ measures })}\n`);
} else {
  const m = machine();
  console.log(`filters, AssemblyScript vs C: ${m.cpu}, ${m.cores} cores, node ${m.node}; load average ${startLoad.map((l) => l.toFixed(2)).join(' ')} (start) ${m.loadavg.join(' ')} (end)`);
  console.log(`pool of ${POOL} frames, batches of ${BATCH}; medians of ${ROUNDS} paired rounds; CPU ns/packet; outputs identical byte for byte`);
  for (const x of measures) console.log(`${x.name.padEnd(50)} ${String(x.nmwasm).padStart(8)} ${String(x.baseline).padStart(8)}  ratio ${String(x.ratio).padStart(6)}  (target <= ${x.target})`);
}
