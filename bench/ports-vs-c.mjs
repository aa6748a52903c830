// Benchmark: nmwasm on an AF_PACKET port (pass-through fixture and the example firewall)
// against a minimal C loop on the same socket type (bench/packet_loop.c, compiled here with
// cc -O2), on one veth pair between two network namespaces. Usage (root):
//   node bench/ports-vs-c.mjs [seconds=2] [rounds=3]
//
// Traffic: packet_loop tx blasts 64-byte UDP frames through a TPACKET_V2 TX ring on CPU 0 for
// `seconds`; the receiver (C loop, or nmwasm on packet:IF-0, one ring) runs pinned to CPU 1.
// Each receiver is measured `rounds` times, alternating; the medians of packets received per
// second of sending are printed with what the sender sent, and the ratios nmwasm/C.
// NB: on veth every figure is bounded by the sender and the kernel's backlog (see
// ../shared/README.md section 2): a ratio near 1 means nmwasm keeps up with what C gets.
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

function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
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
  const done = new Promise((resolve) => child.on('exit', () => resolve(out)));
  return { output: () => out, done };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(predicate, what) {
  for (let i = 0; i < 200 && !predicate(); i++) await sleep(50);
  if (!predicate()) die(`timed out waiting for ${what}`);
}

function send(loop) {
  const out = sh('ip', ['netns', 'exec', nsS, 'taskset', '-c', '0', loop, 'tx', devA, String(SECONDS)]);
  return Number(/tx (\d+)/.exec(out)?.[1] ?? 0);
}

/** One measurement: { sent, received } packets. */
async function measure(kind, loop) {
  if (kind === 'c') {
    const rx = startReceiver([loop, 'rx', devB, String(SECONDS + 1.5)]);
    await sleep(300);
    const sent = send(loop);
    const out = await rx.done;
    return { sent, received: Number(/rx (\d+)/.exec(out)?.[1] ?? die(`C receiver: ${out}`)) };
  }
  const args = kind === 'pass' ? [PASS] : [FIREWALL, '--config', RULES];
  const rx = startReceiver([process.execPath, CLI, 'load', ...args, '--port', `packet:${devB}-0`, '--duration', String(SECONDS + 2), '--json']);
  await waitFor(() => /AF_PACKET cannot take packets/.test(rx.output()) || /"module"/.test(rx.output()), 'nmwasm to open its port');
  await sleep(500); // the ring worker instantiates the module
  const sent = send(loop);
  const out = await rx.done;
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) die(`nmwasm: ${out}`);
  return { sent, received: JSON.parse(line).packets };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  if (process.getuid?.() !== 0) die('needs root (network namespaces, AF_PACKET)');
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bench-'));
  const loop = join(dir, 'packet_loop');
  const cc = spawnSync('cc', ['-O2', '-o', loop, here('./packet_loop.c')], { encoding: 'utf8' });
  if (cc.status !== 0) die(`cc failed: ${cc.stderr}`);
  setup();
  try {
    const kinds = ['c', 'pass', 'firewall'];
    const results = Object.fromEntries(kinds.map((k) => [k, []]));
    for (let round = 0; round < ROUNDS; round++) for (const kind of kinds) results[kind].push(await measure(kind, loop));
    const rate = (kind) => median(results[kind].map((r) => r.received)) / SECONDS;
    const sent = (kind) => median(results[kind].map((r) => r.sent)) / SECONDS;
    process.stdout.write(`AF_PACKET on veth, ${SECONDS} s x ${ROUNDS} rounds, 64-byte frames, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
    const row = (label, kind) => `${label.padEnd(28)} ${(rate(kind) / 1e6).toFixed(3)} Mpps received of ${(sent(kind) / 1e6).toFixed(3)} Mpps sent`;
    process.stdout.write(`${row('C loop (TPACKET_V2, copy)', 'c')}\n`);
    process.stdout.write(`${row('nmwasm pass.wasm', 'pass')}   ratio ${(rate('pass') / rate('c')).toFixed(2)}\n`);
    process.stdout.write(`${row('nmwasm firewall.wasm', 'firewall')}   ratio ${(rate('firewall') / rate('c')).toFixed(2)}\n`);
  } finally {
    cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  cleanup();
  die(err.message);
});
