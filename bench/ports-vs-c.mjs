// Benchmark: nmwasm (pass-through fixture and the example firewall) against a minimal C
// receive loop on the same socket type, for AF_PACKET (bench/packet_loop.c, TPACKET_V2) and
// AF_XDP (bench/xdp_loop.c, libxdp's xsk API, same ring sizes as nmwasm's xdp port), on one
// veth pair between two network namespaces. The C loops are compiled here with cc -O2.
// Usage (root):
//   node bench/ports-vs-c.mjs [seconds=2] [rounds=3]
//
// Traffic: packet_loop tx blasts 64-byte UDP frames through a TPACKET_V2 TX ring on CPU 0 for
// `seconds`; the receiver (a C loop, or nmwasm on packet:IF-0 / xdp:IF-0, one ring) runs
// pinned to CPU 1. Every round measures all six receivers in turn; the medians over `rounds`
// of packets received per second of sending are printed with what the sender sent, and the
// ratios nmwasm/C per socket type (of the medians, and the median of each round's ratio).
// See bench/README.md.
// NB: on veth every figure is bounded by the sender and the kernel's backlog (see
// ../shared/README.md section 2): a ratio near 1 means nmwasm keeps up with what C gets; a
// received rate equal to the sent rate means the receiver was not the bottleneck.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const SECONDS = Number(process.argv[2] ?? 2);
const ROUNDS = Number(process.argv[3] ?? 3);
const CLI = here('../dist/nmwasm.mjs');
const PASS = here('../filters/build/fixtures/pass.wasm');
const FIREWALL = here('../filters/build/firewall.wasm');
const RULES = here('./bench.rules');
const tag = `pb${process.pid % 10000}`;
const [nsS, nsR, devA, devB] = [`${tag}s`, `${tag}r`, `${tag}a`, `${tag}b`];

const children = new Set(); // receivers still running
const tempDirs = [];

/** Stops our receivers, deletes the namespaces (and so the veth pair) and the compiled loops; exits. */
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
}

function cleanup() {
  for (const ns of [nsS, nsR]) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
}

/** Starts `argv` in the receiver namespace on CPU 1; resolves with its stdout+stderr at exit. */
function startReceiver(argv) {
  const child = spawn('ip', ['netns', 'exec', nsR, 'taskset', '-c', String(cpus().length > 1 ? 1 : 0), ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  children.add(child);
  let exited = false;
  const done = new Promise((resolve) => child.on('exit', () => ((exited = true), children.delete(child), resolve(out))));
  return { output: () => out, exited: () => exited, done };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate, what) {
  for (let i = 0; i < 200 && !predicate(); i++) await sleep(50);
  if (!predicate()) die(`timed out waiting for ${what}`);
}

function send(sender) {
  const out = sh('ip', ['netns', 'exec', nsS, 'taskset', '-c', '0', sender, 'tx', devA, String(SECONDS)]);
  return Number(/tx (\d+)/.exec(out)?.[1] ?? 0);
}

/** Socket types: how nmwasm names the port, how the C loop says it is ready, what it is. */
const SOCKETS = {
  packet: { label: 'AF_PACKET', c: 'TPACKET_V2 ring, one copy', port: (dev) => `packet:${dev}-0`, cReady: null, nmwasmReady: /AF_PACKET cannot take packets/ },
  xdp: { label: 'AF_XDP', c: 'libxdp xsk, copy mode', port: (dev) => `xdp:${dev}-0`, cReady: /xdp_loop: ready/, nmwasmReady: /AF_XDP (zero-copy|copy) mode/ },
};

/** One measurement of receiver `kind` ('c', 'pass', 'firewall') on socket type `socket`:
 * { sent, received } packets. */
async function measure(socket, kind, loops) {
  const s = SOCKETS[socket];
  if (kind === 'c') {
    const rx = startReceiver([loops[socket], 'rx', devB, String(SECONDS + 1.5)]);
    if (s.cReady) await waitFor(() => s.cReady.test(rx.output()) || rx.exited(), `${loops[socket]} to open its socket`);
    await sleep(300);
    const sent = send(loops.packet);
    const out = await rx.done;
    return { sent, received: Number(/rx (\d+)/.exec(out)?.[1] ?? die(`C receiver: ${out}`)) };
  }
  const args = kind === 'pass' ? [PASS] : [FIREWALL, '--config', RULES];
  const rx = startReceiver([process.execPath, CLI, 'load', ...args, '--port', s.port(devB), '--duration', String(SECONDS + 2), '--json']);
  await waitFor(() => s.nmwasmReady.test(rx.output()) || rx.exited(), 'nmwasm to open its port');
  await sleep(500); // the ring worker instantiates the module
  const sent = send(loops.packet);
  const out = await rx.done;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) die(`nmwasm: ${out}`);
  return { sent, received: JSON.parse(line).packets };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

function compile(dir, name, libs) {
  const out = join(dir, name);
  const cc = spawnSync('cc', ['-O2', '-o', out, here(`./${name}.c`), ...libs], { encoding: 'utf8' });
  if (cc.status !== 0) die(`cc ${name}.c failed: ${cc.stderr}`);
  return out;
}

async function main() {
  if (process.getuid?.() !== 0) die('needs root (network namespaces, AF_PACKET, AF_XDP)');
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bench-'));
  tempDirs.push(dir);
  const loops = { packet: compile(dir, 'packet_loop', []), xdp: compile(dir, 'xdp_loop', ['-lxdp', '-lbpf']) };
  setup();
  const runs = Object.keys(SOCKETS).flatMap((socket) => ['c', 'pass', 'firewall'].map((kind) => ({ socket, kind, results: [] })));
  const loadBefore = loadavg();
  for (let round = 0; round < ROUNDS; round++) for (const run of runs) run.results.push(await measure(run.socket, run.kind, loops));
  const loadAfter = loadavg();
  const find = (socket, kind) => runs.find((r) => r.socket === socket && r.kind === kind);
  const rate = (run) => median(run.results.map((r) => r.received)) / SECONDS;
  const sent = (run) => median(run.results.map((r) => r.sent)) / SECONDS;
  // the median of each round's nmwasm/C ratio: the two measurements of a round saw about the same load
  const pairedRatio = (run, c) => median(run.results.map((r, i) => r.received / c.results[i].received));
  const load = (l) => l.map((x) => x.toFixed(2)).join(' ');
  const out = [`veth, ${SECONDS} s x ${ROUNDS} rounds, 64-byte UDP frames, medians; load average ${load(loadBefore)} (start), ${load(loadAfter)} (end)`];
  for (const [socket, s] of Object.entries(SOCKETS)) {
    const c = find(socket, 'c');
    const row = (label, run) => `  ${label.padEnd(34)} ${(rate(run) / 1e6).toFixed(3)} Mpps received of ${(sent(run) / 1e6).toFixed(3)} Mpps sent (${((100 * rate(run)) / sent(run)).toFixed(1).padStart(5)}%)`;
    out.push(`${s.label}:`);
    out.push(row(`C loop (${s.c})`, c));
    for (const [label, kind] of [['nmwasm pass.wasm', 'pass'], ['nmwasm firewall.wasm', 'firewall']])
      out.push(`${row(label, find(socket, kind))}   ratio ${(rate(find(socket, kind)) / rate(c)).toFixed(2)}, paired ${pairedRatio(find(socket, kind), c).toFixed(2)}`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

process.on('SIGINT', () => die('interrupted'));
process.on('SIGTERM', () => die('terminated'));
main()
  .then(() => finish(0))
  .catch((err) => die(err.message));
