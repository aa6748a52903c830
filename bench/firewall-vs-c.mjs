// Benchmark: the example firewall (filters/build/firewall.wasm, AssemblyScript) against
// the same compiled rules evaluated in C (the addon's benchFirewallC), over the same
// packets in the same memory. Usage: npm run bench  (or node bench/firewall-vs-c.mjs [rounds]).
//
// For each traffic set: open a gen: port (fixed seed, 1024 slots), sync once so ring 0
// holds a full batch (1023 packets), instantiate firewall.wasm, map the port's packet
// memory at NMWASM_WINDOW_BASE of its memory, nmwasm_init it with bench/bench.rules.
// Check that both sides give the same verdict counts (exit 1 if not), then alternate
// the two measurements for several rounds and print the medians: ns/packet of
// AssemblyScript (one nmwasm_process call per batch, as the host does), of C, and
// the ratio AS/C. Needs a built addon and filters (npm run build).
//
// NB: both sides are timed from here with the same clock, the process's CPU time
// (user + system), not wall time: on a shared 2-core machine wall time mostly measures
// how long the bench waited for a core. Load average is printed with the figures.
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ensureBenchAddon } from './lib/common.mjs';

const NMWASM_CONFIG_BASE = 0x10000;
const NMWASM_WINDOW_BASE = 0x100000;
const COUNTER_SLOTS = 24;
const NUM_SLOTS = 1024;
const SEED = 42;
const DEFAULT_MIX = [40, 30, 5, 10, 10, 3, 2]; // tcp4 udp4 icmp4 tcp6 udp6 icmp6 arp (the gen: default)
const TARGET_MS = 40; // CPU time of one measurement: short, so that an AS/C pair sees the same machine load
const ROUNDS = Number(process.argv[2] ?? 25);

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const ADDON = ensureBenchAddon(); // the benchmarks' addon (bench/native), built when missing or stale
// NMWASM_BENCH_WASM / NMWASM_BENCH_RULES: another build of the firewall / rules file (experiments).
const FIREWALL = process.env.NMWASM_BENCH_WASM || here('../filters/build/firewall.wasm');
const RULES = process.env.NMWASM_BENCH_RULES || here('./bench.rules'); // another rules file, for experiments

/** Exits with one line on stderr. */
function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

for (const [file, what] of [[ADDON, 'native addon'], [FIREWALL, 'firewall filter']]) {
  if (!existsSync(file)) die(`${what} not found at ${file}: run npm run build first`);
}
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) die(`rounds: expected a positive integer, got ${JSON.stringify(process.argv[2])}`);
const native = createRequire(import.meta.url)(ADDON);

/** Traffic sets: 64-byte frames and imix, both with the gen: default protocol mix. */
const TRAFFIC = [
  { label: '64-byte frames', sizeMin: 64, sizeMax: 64, imix: false },
  { label: 'imix 7:4:1', sizeMin: 64, sizeMax: 1518, imix: true },
];

function machine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = (cpuinfo.match(/^model name\s*:\s*(.+)$/m) ?? [])[1] ?? cpus()[0]?.model ?? 'unknown CPU';
  return `${model.trim()}, ${cpus().length} cores, node ${process.version}`;
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Instantiates firewall.wasm with the host's imports; log lines are collected in `logs`. */
function instantiateFirewall(logs) {
  let memory;
  const text = (ptr, len) => Buffer.from(memory.buffer, ptr, len).toString('utf8');
  const env = {
    abort: (msg, file, line, col) => {
      throw new Error(`firewall.wasm aborted at line ${line}:${col}`);
    },
    nmwasm_log: (ptr, len) => logs.push(text(ptr, Math.min(len, 1024))),
    nmwasm_now: () => performance.now(),
  };
  const module = new WebAssembly.Module(readFileSync(FIREWALL));
  const instance = new WebAssembly.Instance(module, { env });
  memory = instance.exports.memory;
  return instance;
}

/** One traffic set, ready to measure: port, ring handle, wasm instance, batch. */
function setUp(traffic) {
  const spec = { kind: 'gen', name: `gen:size=${traffic.imix ? 'imix' : traffic.sizeMin},seed=${SEED}`, count: 0, sizeMin: traffic.sizeMin, sizeMax: traffic.sizeMax, imix: traffic.imix, flows: 256, mix: DEFAULT_MIX, seed: SEED };
  const port = native.openPort(spec, { numSlots: NUM_SLOTS, bufSize: 2048 });
  const counters = new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8));
  const ring = native.attachRing(port.id, 0, { outputs: [], counters, faultVerdict: 0, trace: false });
  const logs = [];
  const instance = instantiateFirewall(logs);
  const fw = instance.exports;
  const layout = ring.layout();
  ring.map(new Uint8Array(fw.memory.buffer), NMWASM_WINDOW_BASE);
  const count = ring.sync(0, false);
  if (count !== NUM_SLOTS - 1) die(`${traffic.label}: expected a full ring of ${NUM_SLOTS - 1} packets, got ${count}`);

  const rules = readFileSync(RULES);
  new Uint8Array(fw.memory.buffer).set(rules, NMWASM_CONFIG_BASE);
  if (fw.nmwasm_init(NMWASM_CONFIG_BASE, rules.length) !== 0) die(`${RULES} rejected by firewall.wasm: ${logs.at(-1) ?? 'no log line'}`);

  const ringPtr = NMWASM_WINDOW_BASE + layout.ringOfs;
  const verdictPtr = NMWASM_WINDOW_BASE + layout.verdictOfs;
  const dv = new DataView(fw.memory.buffer);
  const first = dv.getUint32(ringPtr + 20, true); // ring.head
  // The compiled rule table, copied out of the wasm memory for the C side.
  const ruleCount = fw.firewall_rule_count();
  const table = new Uint8Array(fw.memory.buffer, fw.firewall_rules(), ruleCount * 80).slice();
  const defaultAction = fw.firewall_default();
  return { traffic, port, ring, fw, ringPtr, verdictPtr, first, count, table, ruleCount, defaultAction, packets: count };
}

/** Verdict counts of one nmwasm_process call over the batch. */
function wasmCounts(s) {
  const view = new Uint8Array(s.fw.memory.buffer);
  view.fill(0xff, s.verdictPtr, s.verdictPtr + NUM_SLOTS);
  const rc = s.fw.nmwasm_process(s.ringPtr, s.verdictPtr, s.first, s.count);
  if (rc !== 0) die(`${s.traffic.label}: nmwasm_process returned ${rc}`);
  const counts = { drop: 0, pass: 0, host: 0 };
  for (let k = 0; k < s.count; k++) {
    const v = view[s.verdictPtr + ((s.first + k) % NUM_SLOTS)];
    if (v === 0) counts.drop++;
    else if (v === 1) counts.pass++;
    else if (v === 2) counts.host++;
    else die(`${s.traffic.label}: firewall.wasm wrote verdict ${v} for slot ${(s.first + k) % NUM_SLOTS}`);
  }
  return counts;
}

/** CPU time of the process in ns (user + system). */
function cpuNs() {
  const u = process.cpuUsage();
  return (u.user + u.system) * 1000;
}

/** CPU ns/packet of `calls` nmwasm_process calls over the full batch. */
function timeWasm(s, calls) {
  const process_ = s.fw.nmwasm_process;
  const { ringPtr, verdictPtr, first, count } = s;
  const t0 = cpuNs();
  for (let i = 0; i < calls; i++) process_(ringPtr, verdictPtr, first, count);
  return (cpuNs() - t0) / (calls * count);
}

/** CPU ns/packet of benchFirewallC over the same batch, `iterations` passes in one call. */
function timeC(s, iterations) {
  const t0 = cpuNs();
  native.benchFirewallC(s.port.id, s.table, iterations, s.defaultAction);
  return (cpuNs() - t0) / (iterations * s.count);
}

/** Calls/iterations so that one measurement lasts about TARGET_MS of CPU time (also the warm-up). */
function calibrate(measure) {
  let n = 16;
  for (;;) {
    const t0 = cpuNs();
    measure(n);
    const ms = (cpuNs() - t0) / 1e6;
    if (ms >= 30) return Math.max(1, Math.round((n * TARGET_MS) / ms));
    n *= 4;
  }
}

console.log(`nmwasm firewall benchmark: AssemblyScript (firewall.wasm) vs C, same rules (${RULES.split('/').pop()}), same packet memory`);
console.log(`machine: ${machine()}; load average at start ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const rows = [];
for (const traffic of TRAFFIC) {
  const s = setUp(traffic);
  const a = wasmCounts(s);
  const c = native.benchFirewallC(s.port.id, s.table, 1, s.defaultAction);
  if (c.packets !== s.count || a.drop !== c.drop || a.pass !== c.pass || a.host !== c.host) {
    die(`${traffic.label}: verdict counts differ: AssemblyScript drop ${a.drop} pass ${a.pass} host ${a.host}, C drop ${c.drop} pass ${c.pass} host ${c.host} (of ${c.packets})`);
  }
  // Warm-up (tier-up of the wasm code, caches), then alternate the two measurements.
  const wasmCalls = calibrate((n) => timeWasm(s, n));
  const cIterations = calibrate((n) => timeC(s, n));
  const asNs = [];
  const cNs = [];
  const ratios = [];
  for (let r = 0; r < ROUNDS; r++) {
    // the order alternates too, so that neither side always runs first
    let asRound, cRound;
    if (r % 2 === 0) {
      asRound = timeWasm(s, wasmCalls);
      cRound = timeC(s, cIterations);
    } else {
      cRound = timeC(s, cIterations);
      asRound = timeWasm(s, wasmCalls);
    }
    asNs.push(asRound);
    cNs.push(cRound);
    ratios.push(asRound / cRound);
  }
  rows.push({ label: traffic.label, packets: s.count, counts: a, rules: s.ruleCount, asMed: median(asNs), cMed: median(cNs), ratio: median(ratios), asMin: Math.min(...asNs), cMin: Math.min(...cNs) });
  s.ring.detach();
  native.closePort(s.port.id);
}

const pad = (v, n) => String(v).padStart(n);
console.log(`CPU time, medians of ${ROUNDS} rounds, each an AS and a C measurement of ~${TARGET_MS} ms (AS/C: median of the rounds' ratios); batch = one full ring of ${NUM_SLOTS - 1} packets, one nmwasm_process call per batch`);
console.log(`${'traffic'.padEnd(16)}${pad('AS ns/pkt', 11)}${pad('C ns/pkt', 10)}${pad('AS/C', 7)}   verdicts (drop/pass/host), fastest AS/C ns`);
for (const r of rows) {
  console.log(
    `${r.label.padEnd(16)}${pad(r.asMed.toFixed(1), 11)}${pad(r.cMed.toFixed(1), 10)}${pad(r.ratio.toFixed(2), 7)}   ` +
      `${r.counts.drop}/${r.counts.pass}/${r.counts.host} of ${r.packets} (${r.rules} rules), ${r.asMin.toFixed(1)}/${r.cMin.toFixed(1)}`,
  );
}
