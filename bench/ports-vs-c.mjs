// Benchmark: nmwasm (pass-through fixture and the example firewall) against a minimal C
// receive loop on the same socket type, for AF_PACKET (bench/packet_loop.c, TPACKET_V2) and
// AF_XDP (bench/xdp_loop.c, libxdp's xsk API, same ring sizes as nmwasm's xdp port), on one
// veth pair between two network namespaces. The C programs are compiled here with cc -O2.
// Usage (root):
//   node bench/ports-vs-c.mjs [seconds=2] [rounds=3] [--source xdp|packet] [--raw]
//
// Traffic, for `seconds`, from CPU 0; the receiver (a C loop, or nmwasm on packet:IF-0 /
// xdp:IF-0, one ring) runs pinned to CPU 1.
//   --source xdp (default): bench/xdp_gen.c, BPF_PROG_RUN in live-frames mode, redirecting
//     64-byte UDP frames into the sender veth (6-17 Mpps offered). The receiving veth gets
//     GRO on (veth then runs NAPI, which its ndo_xdp_xmit needs when no XDP program is
//     attached: the AF_PACKET receivers) and threaded NAPI, its NAPI thread pinned to CPU 1:
//     CPU 1 runs the kernel's receive path and the receiver's loop, and is the bottleneck.
//   --source packet: packet_loop tx, a TPACKET_V2 TX ring (0.3-0.8 Mpps); offloads off, the
//     kernel's receive path runs in softirq on CPU 0: every figure is bounded by the sender.
// Every round measures all six receivers in turn. Printed per receiver, medians over the
// rounds: packets received per second of sending; what the sender sent; the share of it
// received and of what the receiving veth took in (below 100% the socket's ring overflowed);
// CPU time per received packet of the receiving process (all its threads, Node's included)
// and, for --source xdp, of the NAPI thread, over the sending interval; the cross-CPU round
// trip (xdp_gen probe) around the measurement. Per nmwasm receiver, the ratios nmwasm/C of
// received rates and of process CPU per packet: of the medians, and "paired", the median
// of each round's own ratio over the rounds whose two measurements saw the same cross-CPU
// cost. --raw also prints every measurement. See bench/README.md.
// NB: a received rate near the sent rate means the receiver was not the bottleneck, and the
// rate ratio then says nothing about the receivers' ceilings (see the project brief
// section 2). CPU per packet depends on where the kernel's receive path runs (with --source
// packet each frame is written on CPU 0 and read on CPU 1): compare it within one source.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const args = process.argv.slice(2);
const flag = (name) => (args.includes(name) ? (args.splice(args.indexOf(name), 1), true) : false);
const option = (name, fallback) => (args.includes(name) ? args.splice(args.indexOf(name), 2)[1] : fallback);
const SOURCE = option('--source', 'xdp');
const RAW = flag('--raw');
const SECONDS = Number(args[0] ?? 2);
const ROUNDS = Number(args[1] ?? 3);
const RX_CPU = String(cpus().length > 1 ? 1 : 0);
const SAME_PLACEMENT = 1.5; // probes within this factor: the same cross-CPU cost (130 vs 470 ns seen)
const CLI = here('../dist/nmwasm.mjs');
const PASS = here('../filters/build/fixtures/pass.wasm');
const FIREWALL = here('../filters/build/firewall.wasm');
const RULES = here('./bench.rules');
const tag = `pb${process.pid % 10000}`;
const [nsS, nsR, devA, devB] = [`${tag}s`, `${tag}r`, `${tag}a`, `${tag}b`];

const children = new Set(); // receivers still running
const tempDirs = [];

/** Stops our receivers, deletes the namespaces (and so the veth pair, with any XDP program
 * attached to it) and the compiled programs; exits. */
function finish(code) {
  for (const child of children) child.kill('SIGTERM');
  cleanup();
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  process.exit(code);
}

function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  finish(1);
}

function sh(cmd, args) {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Creates the namespaces and the veth pair, offloads off; for --source xdp, GRO and threaded
 * NAPI on the receiving end. */
function setup() {
  for (const ns of [nsS, nsR]) {
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['netns', 'exec', ns, 'sh', '-c', 'echo 1 > /proc/sys/net/ipv6/conf/default/disable_ipv6; echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6']);
  }
  sh('ip', ['link', 'add', 'dev', devA, 'type', 'veth', 'peer', 'name', devB]);
  sh('ip', ['link', 'set', 'dev', devA, 'netns', nsS]);
  sh('ip', ['link', 'set', 'dev', devB, 'netns', nsR]);
  for (const [ns, dev] of [[nsS, devA], [nsR, devB]]) {
    sh('ip', ['-n', ns, 'link', 'set', 'dev', dev, 'up']);
    spawnSync('ip', ['netns', 'exec', ns, 'ethtool', '-K', dev, 'gro', 'off', 'tso', 'off', 'gso', 'off'], { stdio: 'ignore' });
  }
  if (SOURCE === 'xdp') {
    // NB: without NAPI on the peer, veth's ndo_xdp_xmit refuses every frame (-ENXIO, and no
    // counter moves); GRO on gives the peer NAPI even with no XDP program attached.
    sh('ip', ['netns', 'exec', nsR, 'ethtool', '-K', devB, 'gro', 'on']);
    sh('ip', ['netns', 'exec', nsR, 'sh', '-c', `echo 1 > /sys/class/net/${devB}/threaded`]);
  }
}

function cleanup() {
  for (const ns of [nsS, nsR]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/** CPU time (ns) used so far by every live thread of process `pid` (or kernel thread), from
 * /proc/PID/task/TID/schedstat; null if the process is gone.
 * NB: /proc/PID/stat's utime+stime come in 10 ms ticks, too coarse for a C loop that uses
 * ~0.1 s in a 2 s measurement; schedstat is in ns. A thread that exits mid-interval drops out. */
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

/** Time (ns) CPU RX_CPU has not been idle so far, steal included, from /proc/stat (10 ms ticks). */
function receiverCpuBusyNs() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${RX_CPU} `));
  const [user, nice, system, , , irq, softirq, steal] = line.split(/\s+/).slice(1).map(Number);
  return (user + nice + system + irq + softirq + steal) * 1e7; // USER_HZ = 100
}

/** Pins the receiving veth's NAPI kernel threads (`napi/IF-ID`) to the receivers' CPU and
 * returns their pids. Called per measurement: an XDP attach can recreate the NAPI instance. */
function pinNapiThreads() {
  const prefix = `napi/${devB}-`.slice(0, 15); // comm is cut at 15 characters
  const pids = [];
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let comm;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      continue;
    }
    if (comm.startsWith(prefix)) pids.push(pid);
  }
  if (pids.length === 0) die(`no NAPI thread for ${devB} (threaded NAPI with GRO on expected)`);
  for (const pid of pids) sh('taskset', ['-pc', RX_CPU, pid]);
  return pids;
}

/** Frames the receiving veth has taken in so far (rx_packets: for --source xdp, the frames its
 * NAPI pulled from its 256-slot queue; frames that found the queue full are not in). */
function vethReceived() {
  return Number(sh('ip', ['netns', 'exec', nsR, 'cat', `/sys/class/net/${devB}/statistics/rx_packets`]));
}

/** Round trip (ns) of a cache line between CPU 0 and the receivers' CPU (xdp_gen probe). */
function probe(loops) {
  return Number(/probe (\d+)/.exec(sh(loops.gen, ['probe', '0', RX_CPU]))?.[1] ?? die('xdp_gen probe printed nothing'));
}

/** Starts `argv` in the receiver namespace on CPU 1; resolves with its stdout+stderr at exit. */
function startReceiver(argv) {
  // NB: `ip netns exec` and taskset exec, not fork: child.pid is the receiver itself
  const child = spawn('ip', ['netns', 'exec', nsR, 'taskset', '-c', RX_CPU, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  children.add(child);
  let exited = false;
  const done = new Promise((resolve) => child.on('exit', () => ((exited = true), children.delete(child), resolve(out))));
  return { pid: child.pid, output: () => out, exited: () => exited, done };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate, what) {
  for (let i = 0; i < 200 && !predicate(); i++) await sleep(50);
  if (!predicate()) die(`timed out waiting for ${what}`);
}

/** Runs the traffic source for SECONDS while receiver `rx` listens. Returns { sent, veth, cpu,
 * napiCpu, others, probes }: packets sent and taken in by the receiving veth; ns of CPU the
 * receiver process, the NAPI threads and everything else on the receivers' CPU used
 * meanwhile; the cross-CPU round trip (ns) before and after. */
function send(loops, rx) {
  const napi = SOURCE === 'xdp' ? pinNapiThreads() : [];
  const napiNs = () => napi.reduce((sum, pid) => sum + (cpuNs(pid) ?? 0), 0);
  const probeBefore = probe(loops);
  const veth0 = vethReceived();
  const [cpu0, napi0, busy0] = [cpuNs(rx.pid), napiNs(), receiverCpuBusyNs()];
  const out = sh('ip', ['netns', 'exec', nsS, 'taskset', '-c', '0', loops[SOURCE === 'xdp' ? 'gen' : 'packet'], 'tx', devA, String(SECONDS)]);
  const [cpu1, napi1, busy1] = [cpuNs(rx.pid), napiNs(), receiverCpuBusyNs()];
  const veth = vethReceived() - veth0;
  if (cpu0 === null || cpu1 === null) die(`the receiver exited during the measurement: ${rx.output()}`);
  if (veth === 0) die(`${devB} took in no frame (with --source xdp, veth refuses redirected frames unless the peer runs NAPI)`);
  const [cpu, napiCpu] = [cpu1 - cpu0, napi1 - napi0];
  const others = Math.max(0, busy1 - busy0 - cpu - napiCpu);
  return { sent: Number(/tx (\d+)/.exec(out)?.[1] ?? 0), veth, cpu, napiCpu, others, probes: [probeBefore, probe(loops)] };
}

/** Socket types: how nmwasm names the port, how the C loop says it is ready, what it is. */
const SOCKETS = {
  packet: { label: 'AF_PACKET', c: 'TPACKET_V2 ring, one copy', port: (dev) => `packet:${dev}-0`, cReady: null, nmwasmReady: /AF_PACKET cannot take packets/ },
  xdp: { label: 'AF_XDP', c: 'libxdp xsk, copy mode', port: (dev) => `xdp:${dev}-0@all`, cReady: /xdp_loop: ready/, nmwasmReady: /AF_XDP (zero-copy|copy) mode/ },
};

/** One measurement of receiver `kind` ('c', 'pass', 'firewall') on socket type `socket`:
 * send()'s figures and `received`, the packets the receiver got. */
async function measure(socket, kind, loops) {
  const s = SOCKETS[socket];
  if (kind === 'c') {
    const rx = startReceiver([loops[socket], 'rx', devB, String(SECONDS + 1.5)]);
    if (s.cReady) await waitFor(() => s.cReady.test(rx.output()) || rx.exited(), `${loops[socket]} to open its socket`);
    await sleep(300);
    const sending = send(loops, rx);
    const out = await rx.done;
    return { ...sending, received: Number(/rx (\d+)/.exec(out)?.[1] ?? die(`C receiver: ${out}`)) };
  }
  const args = kind === 'pass' ? [PASS] : [FIREWALL, '--config', RULES];
  const rx = startReceiver([process.execPath, CLI, 'load', ...args, '--port', s.port(devB), '--duration', String(SECONDS + 2), '--json']);
  await waitFor(() => s.nmwasmReady.test(rx.output()) || rx.exited(), 'nmwasm to open its port');
  await sleep(500); // the ring worker instantiates the module
  const sending = send(loops, rx);
  const out = await rx.done;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) die(`nmwasm: ${out}`);
  return { ...sending, received: JSON.parse(line).packets };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const spread = (xs) => Math.max(...xs) / Math.min(...xs);

/** Per-measurement figures, each a number per round. */
const perPacket = (r, key) => r[key] / r.received;
const FIGURES = {
  rate: (r) => r.received / SECONDS,
  sent: (r) => r.sent / SECONDS,
  ofSent: (r) => (100 * r.received) / r.sent,
  ofVeth: (r) => (100 * r.received) / r.veth,
  cpu: (r) => perPacket(r, 'cpu'),
  napi: (r) => perPacket(r, 'napiCpu'),
  probe: (r) => Math.max(...r.probes),
  others: (r) => (100 * r.others) / (SECONDS * 1e9),
};

/** The text report: a header, then per socket type the C loop and the two nmwasm rows. */
function report(runs, loadBefore, loadAfter) {
  const find = (socket, kind) => runs.find((r) => r.socket === socket && r.kind === kind);
  const med = (run, figure) => median(run.results.map(FIGURES[figure]));
  // each round's nmwasm/C ratio of `figure`, over the rounds whose two measurements saw the
  // same cross-CPU cost (probes within SAME_PLACEMENT): their median and how many there were
  const paired = (run, c, figure) => {
    const ratios = run.results
      .map((r, i) => [r, c.results[i]])
      .filter(([r, rc]) => spread([...r.probes, ...rc.probes]) <= SAME_PLACEMENT)
      .map(([r, rc]) => FIGURES[figure](r) / FIGURES[figure](rc));
    return ratios.length ? `${median(ratios).toFixed(2)} (${ratios.length}/${ROUNDS})` : `n/a (0/${ROUNDS})`;
  };
  const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const xdp = SOURCE === 'xdp';
  const out = [
    `veth, ${SECONDS} s x ${ROUNDS} rounds, 64-byte UDP frames, medians; load average ${load(loadBefore)} (start), ${load(loadAfter)} (end)`,
    xdp
      ? 'source: xdp_gen (BPF_PROG_RUN live frames) on CPU 0; CPU 1: receiver + veth NAPI thread (kernel receive path)'
      : 'source: packet_loop tx (TPACKET_V2 TX ring) on CPU 0, kernel receive path in softirq there; CPU 1: receiver',
    `columns: received of sent Mpps (share of sent, of what the veth took in); CPU ns per received packet, receiving process${xdp ? ' + NAPI thread' : ''}; cross-CPU round trip`,
  ];
  const row = (label, run) =>
    `  ${label.padEnd(34)} ${(med(run, 'rate') / 1e6).toFixed(3)} of ${(med(run, 'sent') / 1e6).toFixed(3).padStart(6)} Mpps (${med(run, 'ofSent').toFixed(1).padStart(5)}%, ${med(run, 'ofVeth').toFixed(1).padStart(5)}%) ` +
    `${med(run, 'cpu').toFixed(0).padStart(4)}${xdp ? ` + ${med(run, 'napi').toFixed(0).padStart(4)}` : ''} ns ${med(run, 'probe').toFixed(0).padStart(4)} ns`;
  for (const [socket, s] of Object.entries(SOCKETS)) {
    const c = find(socket, 'c');
    out.push(`${s.label}:`);
    out.push(row(`C loop (${s.c})`, c));
    for (const [label, kind] of [['nmwasm pass.wasm', 'pass'], ['nmwasm firewall.wasm', 'firewall']]) {
      const run = find(socket, kind);
      const ratio = (figure) => (med(run, figure) / med(c, figure)).toFixed(2);
      out.push(`${row(label, run)}   rate ${ratio('rate')}, paired ${paired(run, c, 'rate')}; CPU ${ratio('cpu')}, paired ${paired(run, c, 'cpu')}`);
    }
  }
  const others = runs.flatMap((run) => run.results.map(FIGURES.others));
  out.push(`other tasks, interrupts and steal on CPU ${RX_CPU} during the measurements: median ${median(others).toFixed(1)}%, max ${Math.max(...others).toFixed(1)}% of the CPU`);
  if (RAW)
    for (let round = 0; round < ROUNDS; round++)
      for (const run of runs) {
        const r = run.results[round];
        out.push(
          `  round ${round + 1} ${SOCKETS[run.socket].label} ${run.kind}: ${(FIGURES.rate(r) / 1e6).toFixed(3)} of ${(FIGURES.sent(r) / 1e6).toFixed(3)} Mpps, ` +
            `${FIGURES.ofVeth(r).toFixed(1)}% of veth's, ${FIGURES.cpu(r).toFixed(0)}${xdp ? ` + ${FIGURES.napi(r).toFixed(0)}` : ''} ns/packet, ` +
            `probes ${r.probes.join('/')} ns, others ${FIGURES.others(r).toFixed(1)}%`,
        );
      }
  return out.join('\n');
}

function compile(dir, name, libs) {
  const out = join(dir, name);
  const cc = spawnSync('cc', ['-O2', '-o', out, here(`./${name}.c`), ...libs], { encoding: 'utf8' });
  if (cc.status !== 0) die(`cc ${name}.c failed: ${cc.stderr}`);
  return out;
}

async function main() {
  if (process.getuid?.() !== 0) die('needs root (network namespaces, AF_PACKET, AF_XDP)');
  if (SOURCE !== 'xdp' && SOURCE !== 'packet') die(`--source ${SOURCE}: xdp or packet`);
  if (!(SECONDS > 0 && ROUNDS >= 1) || args.length > 2) die(`usage: ports-vs-c.mjs [seconds] [rounds] [--source xdp|packet] [--raw]`);
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bench-'));
  tempDirs.push(dir);
  const loops = {
    packet: compile(dir, 'packet_loop', []),
    xdp: compile(dir, 'xdp_loop', ['-lxdp', '-lbpf']),
    gen: compile(dir, 'xdp_gen', ['-lbpf', '-pthread']),
  };
  setup();
  const runs = Object.keys(SOCKETS).flatMap((socket) => ['c', 'pass', 'firewall'].map((kind) => ({ socket, kind, results: [] })));
  const loadBefore = loadavg();
  for (let round = 0; round < ROUNDS; round++) for (const run of runs) run.results.push(await measure(run.socket, run.kind, loops));
  process.stdout.write(`${report(runs, loadBefore, loadavg())}\n`);
}

process.on('SIGINT', () => die('interrupted'));
process.on('SIGTERM', () => die('terminated'));
main()
  .then(() => finish(0))
  .catch((err) => die(err.message));
