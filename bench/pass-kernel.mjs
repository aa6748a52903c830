// Benchmark: what PASS-to-kernel costs on one AF_XDP queue. nmwasm runs on xdp:IF-0/R of a
// veth in a namespace, without an output, so every packet its filter passes is re-injected
// into the interface's own stack (docs/PORTS.md "PASS and DROP on each backend"); the same
// traffic with every packet dropped is the baseline that has no re-injection.
// Usage (root):
//   node bench/pass-kernel.mjs [seconds=3] [rounds=3] [--cli PATH/nmwasm.mjs] [--verdict pass|host|drop ...]
//
// Traffic: bench/xdp_gen.c (BPF_PROG_RUN live frames, redirected into the sender veth) on CPU
// 0 for `seconds`: 64-byte UDP frames 10.0.0.1 -> 10.0.0.2:8000, which the receiving veth
// (MAC 02:00:00:00:00:02, address 10.0.0.2) accepts; nothing listens on port 8000, so the
// stack counts each in IpInReceives and answers at most a rate-limited ICMP error. nmwasm
// runs pinned to CPU 1 with `--verdict`:
//   pass: the pass fixture (PASS, no output: re-injected), host: the firewall with
//   `host udp` (HOST: re-injected), drop: the firewall with `default drop` (no re-injection).
// Printed per verdict, medians over the rounds: packets the filter got per second, packets
// the receiving stack took in (IpInReceives) per second, nmwasm's CPU time (all its threads,
// from /proc/PID/task/*/schedstat) per packet it got, and the packets the kernel refused
// (hostRefused). The difference between pass and drop CPU per packet is the re-injection.
// `--cli` runs another checkout's bundle (e.g. an older one with one system call a frame).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { vethLab } from './lib/vethlab.mjs';

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const args = process.argv.slice(2);
const options = (name) => {
  const out = [];
  while (args.includes(name)) out.push(args.splice(args.indexOf(name), 2)[1]);
  return out;
};
const CLI = options('--cli')[0] ?? here('../dist/nmwasm.mjs');
const VERDICTS = options('--verdict');
if (VERDICTS.length === 0) VERDICTS.push('pass', 'host', 'drop');
const SECONDS = Number(args[0] ?? 3);
const ROUNDS = Number(args[1] ?? 3);
const RX_CPU = String(cpus().length > 1 ? 1 : 0);
const ROOT = join(dirname(CLI), '..');
const lab = vethLab('pk');
const { nsS, nsR, devA, devB, children, tempDirs, finish, die, sh } = lab;

function setup() {
  lab.setup(['gro', 'off', 'tso', 'off', 'gso', 'off', 'tx', 'off']);
}

/** CPU time (ns) of every thread of `pid` so far (schedstat, ns resolution). */
function cpuNs(pid) {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {} // the thread exited
  }
  return total;
}

/** IpInReceives of the receiving namespace. */
function ipInReceives() {
  const lines = sh('ip', ['netns', 'exec', nsR, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Ip:'));
  const names = lines[0].split(/\s+/);
  return Number(lines[1].split(/\s+/)[names.indexOf('InReceives')]);
}

async function until(what, predicate, ms = 20_000) {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) die(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function measure(verdict, gen, rulesDir) {
  const module = verdict === 'pass' ? join(ROOT, 'filters/build/fixtures/pass.wasm') : join(ROOT, 'filters/build/firewall.wasm');
  const config = verdict === 'pass' ? [] : ['--config', join(rulesDir, `${verdict}.rules`)];
  const child = spawn('ip', ['netns', 'exec', nsR, 'taskset', '-c', RX_CPU, process.execPath, CLI, 'load', module, ...config, '--port', `xdp:${devB}-0/R`, '--batch-timeout', '5000', '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.once('exit', r));
  await until('nmwasm to open its port', () => /AF_XDP (copy|zero-copy) mode/.test(out) || child.exitCode !== null);
  if (child.exitCode !== null) die(`nmwasm exited: ${out}`);
  await new Promise((r) => setTimeout(r, 1000));
  const [cpu0, in0] = [cpuNs(child.pid), ipInReceives()];
  const tx = Number(/tx (\d+)/.exec(sh('ip', ['netns', 'exec', nsS, 'taskset', '-c', '0', gen, 'tx', devA, String(SECONDS)]))?.[1] ?? 0);
  await new Promise((r) => setTimeout(r, 200)); // the last batch
  const [cpu1, in1] = [cpuNs(child.pid), ipInReceives()];
  child.kill('SIGINT');
  await exited;
  children.delete(child);
  const line = out.split('\n').find((l) => l.startsWith('{'));
  if (!line) die(`no summary: ${out}`);
  const s = JSON.parse(line);
  return { tx, got: s.packets, kernel: in1 - in0, cpuPerPacket: (cpu1 - cpu0) / Math.max(s.packets, 1), refused: s.hostRefused ?? 0, verdicts: s.verdicts };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mpps = (n) => `${(n / SECONDS / 1e6).toFixed(3)} Mpps`;

async function main() {
  if (process.getuid?.() !== 0) die('needs root (network namespaces, AF_XDP)');
  if (!(SECONDS > 0 && ROUNDS >= 1) || args.length > 2 || VERDICTS.some((v) => !['pass', 'host', 'drop'].includes(v))) {
    die('usage: pass-kernel.mjs [seconds] [rounds] [--cli PATH] [--verdict pass|host|drop ...]');
  }
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bench-'));
  tempDirs.push(dir);
  writeFileSync(join(dir, 'host.rules'), 'host udp\ndefault drop\n');
  writeFileSync(join(dir, 'drop.rules'), 'default drop\n');
  const gen = join(dir, 'xdp_gen');
  const cc = spawnSync('cc', ['-O2', '-o', gen, here('./xdp_gen.c'), '-lbpf', '-pthread'], { encoding: 'utf8' });
  if (cc.status !== 0) die(`cc xdp_gen.c failed: ${cc.stderr}`);
  setup();
  const results = Object.fromEntries(VERDICTS.map((v) => [v, []]));
  const loadBefore = loadavg()[0].toFixed(1);
  for (let round = 0; round < ROUNDS; round++) for (const v of VERDICTS) results[v].push(await measure(v, gen, dir));
  const lines = [`nmwasm ${CLI} on xdp:IF-0/R of a veth, ${SECONDS} s x ${ROUNDS} rounds, 64-byte UDP from xdp_gen on CPU 0, nmwasm on CPU ${RX_CPU}; medians; load average ${loadBefore} -> ${loadavg()[0].toFixed(1)} (${cpus().length} CPUs)`];
  for (const v of VERDICTS) {
    const r = results[v];
    lines.push(
      `${v.padEnd(4)}: filter got ${mpps(median(r.map((x) => x.got)))}, kernel stack took ${mpps(median(r.map((x) => x.kernel)))}, ` +
        `nmwasm CPU ${median(r.map((x) => x.cpuPerPacket)).toFixed(0)} ns/packet, refused ${median(r.map((x) => x.refused))}, offered ${mpps(median(r.map((x) => x.tx)))}`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

process.on('SIGINT', () => die('interrupted'));
process.on('SIGTERM', () => die('terminated'));
main()
  .then(() => finish(0))
  .catch((err) => die(err.message));
