// Benchmark: what one more filter stage behind a software pipe costs, reached by a copy
// versus by a buffer swap (zero copy). Usage: node bench/soft-chain.mjs [rounds=3] [packets=8000000]
// (needs npm run build; no root).
//
// Three hosts, run in this process through the CLI's own main() (dist/nmwasm.mjs), each over
// gen:count=PACKETS with pass-through filters (filters/build/fixtures/pass.wasm):
//   one    gen -> pass
//   two    gen -> pass -> p{1 | p}1 -> pass             the hop into the pipe copies (gen has its own memory)
//   three  gen -> pass -> p{1@1 | p}1@1 -> pass -> p{2@1 | p}2@1 -> pass
//                                                        the second hop swaps buffers (soft -> soft,
//                                                        one shared memory region @1)
//   priv   gen -> pass -> p{1 | p}1 -> pass -> p{2 | p}2 -> pass
//                                                        the second hop copies (private pools, the default)
// The figure is CPU time of the whole process (every thread, process.cpuUsage) per packet:
// two - one = a copy hop plus its stage, three - two = a zero-copy hop plus its stage,
// priv - two = a soft-to-soft hop between private pools plus its stage. The script prints
// them per frame size, and the ratio (zero-copy hop / copy hop). Rounds
// alternate the three hosts; medians. NB: CPU time, not wall time: the machine has 2 cores
// for up to 3 ring workers plus the main thread.
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

const ROUNDS = Number(process.argv[2] ?? 3);
const PACKETS = Number(process.argv[3] ?? 8_000_000);
const here = (p) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../dist/nmwasm.mjs');
const PASS = here('../filters/build/fixtures/pass.wasm');

function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

if (!existsSync(CLI) || !existsSync(PASS)) die('run npm run build first (dist/nmwasm.mjs and filters/build/fixtures/pass.wasm are needed)');
if (!(ROUNDS >= 1 && PACKETS >= 10_000)) die('usage: soft-chain.mjs [rounds>=1] [packets>=10000]');
const { main } = await import(CLI);

const HOSTS = {
  one: (gen) => [PASS, '--port', gen, '--json'],
  two: (gen) => [PASS, '--port', gen, '--to', 'b{1', '--json', '+', PASS, '--port', 'b}1', '--json'],
  three: (gen) => [PASS, '--port', gen, '--to', 'b{1@1', '--json', '+', PASS, '--port', 'b}1@1', '--to', 'b{2@1', '--json', '+', PASS, '--port', 'b}2@1', '--json'],
  priv: (gen) => [PASS, '--port', gen, '--to', 'b{1', '--json', '+', PASS, '--port', 'b}1', '--to', 'b{2', '--json', '+', PASS, '--port', 'b}2', '--json'],
};

/** Runs one host; returns CPU ns per packet and the summaries' zero-copy and drop counts. */
async function runHost(host, size) {
  const lines = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = (chunk) => (lines.push(String(chunk)), true);
  process.stderr.write = () => true;
  const before = process.cpuUsage();
  let status;
  try {
    status = await main(['load', ...HOSTS[host](`gen:count=${PACKETS},size=${size},seed=3`)]);
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
  const used = process.cpuUsage(before);
  if (status !== 0) die(`${host}: exit ${status}: ${lines.join('')}`);
  const summaries = lines.join('').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const last = summaries[summaries.length - 1];
  if (last.packets !== PACKETS) die(`${host}: the last stage saw ${last.packets} of ${PACKETS} packets`);
  return {
    nsPerPacket: ((used.user + used.system) * 1000) / PACKETS,
    zeroCopy: summaries.reduce((n, s) => n + s.out.zeroCopy, 0),
    drops: summaries.reduce((n, s) => n + s.out.drops, 0),
  };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

const out = [`${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${PACKETS} packets per host, ${ROUNDS} rounds, medians of process CPU ns/packet; load average ${load()} (start)`];
for (const size of [64, 1518]) {
  const results = { one: [], two: [], three: [], priv: [] };
  let zeroCopy = 0;
  let drops = 0;
  for (let r = 0; r < ROUNDS; r++) {
    for (const host of Object.keys(HOSTS)) {
      const res = await runHost(host, size);
      results[host].push(res.nsPerPacket);
      if (host === 'three') zeroCopy = res.zeroCopy;
      drops += res.drops;
    }
  }
  const [one, two, three, priv] = ['one', 'two', 'three', 'priv'].map((h) => median(results[h]));
  const copyHop = two - one;
  const swapHop = three - two;
  const privHop = priv - two;
  out.push(
    `${String(size).padStart(4)}-byte frames: one ${one.toFixed(1)}, two ${two.toFixed(1)}, three ${three.toFixed(1)}, priv ${priv.toFixed(1)} ns/packet; ` +
      `copy hop + stage ${copyHop.toFixed(1)}, zero-copy hop + stage ${swapHop.toFixed(1)} ns/packet (ratio ${(swapHop / copyHop).toFixed(2)}), ` +
      `private soft hop + stage ${privHop.toFixed(1)} ns/packet; ` +
      `zero-copy packets in three: ${zeroCopy} of ${PACKETS}; refused by a full queue: ${drops}`,
  );
}
out.push(`load average ${load()} (end)`);
process.stdout.write(`${out.join('\n')}\n`);
process.exit(0);
