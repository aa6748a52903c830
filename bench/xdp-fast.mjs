// Benchmark: the AF_XDP kernel fast path (docs/ABI.md "Flow verdicts") against an XDP eBPF
// program with the same 8 rules, CPU time per packet on the receiving side of one veth.
// Usage (root):
//   node bench/xdp-fast.mjs [seconds=2] [rounds=3] [--busy-poll] [--json] [--raw]
//
// Setup as bench/ports-vs-c.mjs --source xdp: a veth pair between two namespaces, 64-byte UDP
// frames 10.0.0.1:12345 -> 10.0.0.2:8000 from bench/xdp_gen.c (BPF_PROG_RUN live frames) on
// CPU 0; the receiving veth's threaded NAPI thread and the receiver pinned to CPU 1. The frames
// fall through the 8 rules of bench/bench.rules to `default drop`. Receivers, interleaved in
// every round (A B C A B C ...):
//   ebpf   bench/xdp_rules.c: the 8 rules as an XDP program (raw BPF), attached in native mode,
//          verdicts counted per CPU: the baseline
//   fast   nmwasm load firewall.wasm on xdp:IF-0/R with bench.rules + `flow-verdicts`,
//          --flow-ttl 10000: the first packets of the flow reach the filter, its DROP for the
//          flow goes into the XDP program's LRU map and the kernel drops the rest (one packet
//          every 5 s goes to the filter again to renew it)
//   slow   the same firewall without `flow-verdicts`: every packet crosses to user space (the
//          path before the fast path)
// and, on traffic where every frame is a new flow (xdp_gen ... new-flows: first-packet
// behaviour), ebpf and fast again ("ebpf new", "fast new").
// --busy-poll adds the sleep/wake study: the C AF_XDP loop (bench/xdp_loop.c) without and with
// busy polling, and nmwasm's slow path with --busy-poll.
// Figures per receiver, medians over the rounds: CPU ns per frame the receiving veth took in
// (rx_packets), receiving process (schedstat of all its threads) + NAPI thread; for nmwasm the
// share of frames the filter saw and the share the kernel decided from flow verdicts. The
// ratio nmwasm/eBPF is of the medians and "paired" (the median of each round's own ratio).
// After each steady-flow measurement of ebpf/fast/slow, the attached program alone: the kernel's
// mean ns per BPF_PROG_RUN over the same frame (xdp_rules run), without the receive path.
// --json: the common result format on the last stdout line (bench/README.md).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vethLab } from './lib/vethlab.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? (args.splice(args.indexOf(name), 1), true) : false);
const JSON_OUT = flag('--json');
const RAW = flag('--raw');
const BUSY = flag('--busy-poll');
const SECONDS = Number(args[0] ?? 2);
const ROUNDS = Number(args[1] ?? 3);
const RX_CPU = String(cpus().length > 1 ? 1 : 0);
const CLI = here('../dist/nmwasm.mjs');
const FIREWALL = here('../filters/build/firewall.wasm');
const RULES = readFileSync(here('./bench.rules'), 'utf8');
const TARGET = 1.5;
const PROG_RUNS = 1_000_000;
const ACTIONS = ['aborted', 'drop', 'pass', 'tx', 'redirect'];
const lab = vethLab('xf');
const { nsS, nsR, devA, devB, children, tempDirs, finish, die, sh } = lab;

/** Namespaces, the veth pair (offloads off), GRO and threaded NAPI on the receiving end. */
function setup() {
  lab.setup(['gro', 'off', 'tso', 'off', 'gso', 'off']);
  // NB: veth's ndo_xdp_xmit needs NAPI on the peer (bench/xdp_gen.c); threaded, so it can be pinned.
  sh('ip', ['netns', 'exec', nsR, 'ethtool', '-K', devB, 'gro', 'on']);
  sh('ip', ['netns', 'exec', nsR, 'sh', '-c', `echo 1 > /sys/class/net/${devB}/threaded`]);
}

/** CPU ns used so far by every thread of `pid` (schedstat), null when it is gone. */
function cpuNs(pid) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let total = 0;
  for (const tid of tids) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {} // the thread exited
  }
  return total;
}

/** Pins the receiving veth's NAPI threads to RX_CPU; returns their pids (an attach can recreate them). */
function pinNapiThreads() {
  const prefix = `napi/${devB}-`.slice(0, 15);
  const pids = readdirSync('/proc').filter((d) => {
    if (!/^\d+$/.test(d)) return false;
    try {
      return readFileSync(`/proc/${d}/comm`, 'utf8').trim().startsWith(prefix);
    } catch {
      return false;
    }
  });
  if (pids.length === 0) die(`no NAPI thread for ${devB}`);
  for (const pid of pids) sh('taskset', ['-pc', RX_CPU, pid]);
  return pids;
}

const vethReceived = () => Number(sh('ip', ['netns', 'exec', nsR, 'cat', `/sys/class/net/${devB}/statistics/rx_packets`]));

function startReceiver(argv) {
  const child = spawn('ip', ['netns', 'exec', nsR, 'taskset', '-c', RX_CPU, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  children.add(child);
  let exited = false;
  const done = new Promise((resolve) => child.on('exit', () => ((exited = true), children.delete(child), resolve(out))));
  return { pid: child.pid, output: () => out, exited: () => exited, done, kill: (sig) => child.kill(sig) };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(predicate, what) {
  for (let i = 0; i < 300 && !predicate(); i++) await sleep(50);
  if (!predicate()) die(`timed out waiting for ${what}`);
}

/** Sends for SECONDS while `rx` receives: frames the veth took in, CPU ns of the receiver and of the NAPI thread. */
function send(bin, rx, newFlows) {
  const napi = pinNapiThreads();
  const napiNs = () => napi.reduce((sum, pid) => sum + (cpuNs(pid) ?? 0), 0);
  const veth0 = vethReceived();
  const [cpu0, napi0] = [cpuNs(rx.pid), napiNs()];
  const out = sh('ip', ['netns', 'exec', nsS, 'taskset', '-c', '0', bin.gen, 'tx', devA, String(SECONDS), ...(newFlows ? ['new-flows'] : [])]);
  const [cpu1, napi1] = [cpuNs(rx.pid), napiNs()];
  const veth = vethReceived() - veth0;
  if (cpu0 === null || cpu1 === null) die(`the receiver exited during the measurement: ${rx.output()}`);
  if (veth === 0) die(`${devB} took in no frame`);
  return { sent: Number(/tx (\d+)/.exec(out)?.[1] ?? 0), veth, cpu: cpu1 - cpu0, napi: napi1 - napi0 };
}

/** One measurement of receiver `kind`. */
async function measure(kind, bin, dir) {
  const newFlows = kind.endsWith(' new');
  const base = kind.replace(/ new$/, '');
  if (base === 'ebpf') {
    const rx = startReceiver([bin.rules, devB, String(SECONDS + 5)]);
    await waitFor(() => /ready/.test(rx.output()) || rx.exited(), 'xdp_rules to attach');
    if (rx.exited()) die(`xdp_rules: ${rx.output()}`);
    await sleep(300);
    const r = { ...send(bin, rx, newFlows), ...programAlone(bin) };
    rx.kill('SIGTERM');
    const out = await rx.done;
    const m = /drop (\d+) pass (\d+)/.exec(out) ?? die(`xdp_rules: ${out}`);
    // NB: the program's counters also counted the BPF_PROG_RUN runs of programAlone.
    return { ...r, filter: 0, kernel: Number(m[1]) + Number(m[2]) - (r.progAction === 1 || r.progAction === 2 ? PROG_RUNS : 0) };
  }
  if (base === 'c' || base === 'c busy') {
    const rx = startReceiver([bin.loop, 'rx', devB, String(SECONDS + 1.5), ...(base === 'c busy' ? ['busy'] : [])]);
    await waitFor(() => /xdp_loop: ready/.test(rx.output()) || rx.exited(), 'xdp_loop to open its socket');
    await sleep(300);
    const r = send(bin, rx, newFlows);
    const out = await rx.done;
    return { ...r, filter: Number(/rx (\d+)/.exec(out)?.[1] ?? die(`xdp_loop: ${out}`)), kernel: 0 };
  }
  const rules = join(dir, base === 'fast' ? 'fast.rules' : 'slow.rules');
  // NB: a TTL longer than a measurement: programAlone, run after the traffic, then still finds
  // the flow's verdict live (with the default 1000 ms it may have lapsed on a loaded machine).
  const extra = base === 'slow busy' ? ['--busy-poll'] : base === 'fast' ? ['--flow-ttl', '10000'] : [];
  const rx = startReceiver([process.execPath, CLI, 'load', FIREWALL, '--config', rules, '--port', `xdp:${devB}-0/R`, ...extra, '--batch-timeout', '5000', '--json']);
  await waitFor(() => /AF_XDP (zero-copy|copy) mode/.test(rx.output()) || rx.exited(), 'nmwasm to open its port');
  if (rx.exited()) die(`nmwasm: ${rx.output()}`);
  await sleep(700); // the ring worker instantiates the module
  const r = { ...send(bin, rx, newFlows), ...(newFlows ? {} : programAlone(bin)) };
  await sleep(300); // the kernel counters are read every 250 ms, and once at the end
  rx.kill('SIGINT');
  const out = await rx.done;
  const line = out.split('\n').find((l) => l.startsWith('{')) ?? die(`nmwasm: ${out}`);
  const s = JSON.parse(line);
  const runs = r.progAction === 1 || r.progAction === 2 ? PROG_RUNS : 0; // programAlone's runs were counted too
  return { ...r, filter: s.packets, kernel: (s.kernel?.drop ?? 0) + (s.kernel?.pass ?? 0) - runs };
}

/** The attached XDP program alone: the kernel's mean ns per BPF_PROG_RUN over the bench's frame
 * (right after the traffic, while a flow verdict is live), and the verdict it gave. */
function programAlone(bin) {
  const m = /run (\d+) (\d+)/.exec(sh('ip', ['netns', 'exec', nsR, 'taskset', '-c', RX_CPU, bin.rules, 'run', devB, String(PROG_RUNS)])) ?? die('xdp_rules run printed nothing');
  return { progNs: Number(m[1]), progAction: Number(m[2]) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const perFrame = (r) => (r.cpu + r.napi) / r.veth;

function compile(dir, name, libs) {
  const out = join(dir, name);
  const cc = spawnSync('cc', ['-O2', '-o', out, here(`./${name}.c`), ...libs], { encoding: 'utf8' });
  if (cc.status !== 0) die(`cc ${name}.c failed: ${cc.stderr}`);
  return out;
}

async function main() {
  if (process.getuid?.() !== 0) die('needs root (network namespaces, XDP, AF_XDP)');
  if (!(SECONDS > 0 && ROUNDS >= 1) || args.length > 2) die('usage: xdp-fast.mjs [seconds] [rounds] [--busy-poll] [--json] [--raw]');
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bench-'));
  tempDirs.push(dir);
  writeFileSync(join(dir, 'fast.rules'), `${RULES}\nflow-verdicts\n`);
  writeFileSync(join(dir, 'slow.rules'), RULES);
  const bin = { gen: compile(dir, 'xdp_gen', ['-lbpf', '-pthread']), rules: compile(dir, 'xdp_rules', ['-lbpf']), loop: compile(dir, 'xdp_loop', ['-lxdp', '-lbpf']) };
  setup();
  const kinds = ['ebpf', 'fast', 'slow', 'ebpf new', 'fast new', ...(BUSY ? ['c', 'c busy', 'slow busy'] : [])];
  const results = Object.fromEntries(kinds.map((k) => [k, []]));
  const loadBefore = loadavg();
  for (let round = 0; round < ROUNDS; round++) for (const k of kinds) results[k].push(await measure(k, bin, dir));
  const loadAfter = loadavg();

  const med = (k, f) => median(results[k].map(f));
  const paired = (a, b) => median(results[a].map((r, i) => perFrame(r) / perFrame(results[b][i])));
  const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const lines = [
    `veth, ${SECONDS} s x ${ROUNDS} rounds, 64-byte UDP from xdp_gen on CPU 0, receiver + NAPI thread on CPU ${RX_CPU}; medians; load average ${load(loadBefore)} (start), ${load(loadAfter)} (end)`,
    'columns: CPU ns per frame the veth took in (receiving process + NAPI thread); Mpps taken in; share of the frames the filter saw / the kernel decided from flow verdicts',
  ];
  for (const k of kinds) {
    const cpu = (f) => med(k, (r) => f(r) / r.veth).toFixed(0);
    const share = (key) => med(k, (r) => (100 * r[key]) / r.veth).toFixed(1);
    let line = `  ${k.padEnd(10)} ${med(k, perFrame).toFixed(0).padStart(5)} ns (${cpu((r) => r.cpu).padStart(4)} + ${cpu((r) => r.napi).padStart(4)}) ${(med(k, (r) => r.veth) / SECONDS / 1e6).toFixed(3)} Mpps, filter ${share('filter')}%, kernel ${share('kernel')}%`;
    const baseline = k.startsWith('c') || k === 'slow busy' ? (k === 'c busy' ? 'c' : k === 'slow busy' ? 'slow' : null) : k.endsWith(' new') ? 'ebpf new' : 'ebpf';
    if (baseline && baseline !== k) line += `   vs ${baseline}: ${(med(k, perFrame) / med(baseline, perFrame)).toFixed(2)}x, paired ${paired(k, baseline).toFixed(2)}x`;
    lines.push(line);
  }
  const alone = kinds.filter((k) => results[k][0].progNs !== undefined);
  lines.push(
    `XDP program alone (BPF_PROG_RUN x ${PROG_RUNS} over the bench's frame right after the traffic, ns per run, verdict): ` +
      alone.map((k) => `${k} ${med(k, (r) => r.progNs)} ns (${ACTIONS[results[k][0].progAction] ?? results[k][0].progAction})`).join(', '),
  );
  if (RAW) for (const k of kinds) results[k].forEach((r, i) => lines.push(`  round ${i + 1} ${k}: ${perFrame(r).toFixed(0)} ns/frame, veth ${r.veth}, sent ${r.sent}, filter ${r.filter}, kernel ${r.kernel}`));
  process.stdout.write(`${lines.join('\n')}\n`);
  if (JSON_OUT) {
    const how = `sudo node bench/xdp-fast.mjs ${SECONDS} ${ROUNDS}${BUSY ? ' --busy-poll' : ''}`;
    const measure = (name, k, base, target) => ({ name, unit: 'ns/packet (CPU, receiving side)', nmwasm: Number(med(k, perFrame).toFixed(1)), baseline: Number(med(base, perFrame).toFixed(1)), ratio: Number((med(k, perFrame) / med(base, perFrame)).toFixed(3)), target, how });
    const measures = [
      measure('AF_XDP steady flow, fast path vs XDP eBPF (8 rules)', 'fast', 'ebpf', TARGET),
      measure('AF_XDP steady flow, no fast path vs XDP eBPF (8 rules)', 'slow', 'ebpf', null),
      measure('AF_XDP new flow every packet, fast path vs XDP eBPF (8 rules)', 'fast new', 'ebpf new', null),
    ];
    measures.push({ name: 'AF_XDP fast path, the XDP program alone vs the XDP eBPF program (BPF_PROG_RUN)', unit: 'ns/run', nmwasm: med('fast', (r) => r.progNs), baseline: med('ebpf', (r) => r.progNs), ratio: Number((med('fast', (r) => r.progNs) / med('ebpf', (r) => r.progNs)).toFixed(3)), target: null, how });
    if (BUSY) measures.push(measure('AF_XDP C loop, busy polling vs poll()', 'c busy', 'c', null), measure('AF_XDP nmwasm, --busy-poll vs poll()', 'slow busy', 'slow', null));
    process.stdout.write(`${JSON.stringify({ measures })}\n`);
  }
}

process.on('SIGINT', () => die('interrupted'));
process.on('SIGTERM', () => die('terminated'));
main()
  .then(() => finish(0))
  .catch((err) => die(err.stack ?? err.message));
