// Benchmark: how long a hot-swap stalls a ring, compile excluded. The stall (docs/ABI.md
// section 8) runs from the serving worker's batch boundary where it decides to let go (its
// state save included) to the moment the new instance is ready for its first batch (attach,
// nmwasm_state_load done); it is measured on CLOCK_MONOTONIC (what traffic sees, including any
// time either thread waited for a CPU) and in CPU time of the two ring threads (what the switch
// itself costs). Compile, canary, instantiation, nmwasm_init and the packet memory mapping
// happen before, while the old instance serves, and are not part of it.
//
// Usage: node bench/swap.mjs [--swaps N] [--json]   (needs the built addon; no root)
// Two scenarios, one engine each in this process, over gen: with a module that stamps a
// carried sequence number into every packet (test/swap/fixtures.ts), swapping between two
// builds of it one after the other: `idle` (gen pps=1000: the ring mostly waits) and `load`
// (gen pps=200000, a busy ring). Prints p50/p99/max per scenario and the load average (the
// machine is shared: a loaded machine moves the clock figures, much less the CPU ones).
// --json: the common result format on the last line (no baseline: the target is 200 µs p99).
import { register } from 'tsx/esm/api';
import { loadavg } from 'node:os';

register();
const args = process.argv.slice(2);
const json = args.includes('--json');
const swapsAt = args.indexOf('--swaps');
const SWAPS = swapsAt >= 0 ? Number(args[swapsAt + 1]) : 100;
if (!Number.isInteger(SWAPS) || SWAPS < 1) throw new Error(`--swaps: expected a positive integer, got ${args[swapsAt + 1]}`);
const { Engine } = await import('../host/engine/engine.ts');
const { loadModule } = await import('../host/module/module.ts');
const { parsePortSpec } = await import('../host/ports/portspec.ts');
const { percentiles } = await import('../host/engine/swap.ts');
const { stampWat, writeWat } = await import('../test/swap/fixtures.ts');

const builds = [writeWat('a.wasm', stampWat({ marker: 0xa })), writeWat('b.wasm', stampWat({ marker: 0xb }))].map((p) => loadModule(p));

async function scenario(port) {
  const engine = new Engine({
    loaded: builds[0],
    moduleName: 'a.wasm',
    config: new Uint8Array(0),
    input: parsePortSpec(port, 'in'),
    outputs: [],
    onFault: 'closed',
    batchTimeoutMs: 50,
    count: 0,
    durationMs: 0,
    trace: false,
  });
  while (engine.processed() === 0) await new Promise((r) => setTimeout(r, 5));
  const clock = [];
  const cpu = [];
  let failed = 0;
  for (let i = 0; i < SWAPS; i++) {
    const r = await engine.swap(builds[(i + 1) % 2], undefined);
    if (r.ok) {
      clock.push(r.stallUs);
      cpu.push(r.stallCpuUs);
    } else failed++;
  }
  engine.stop();
  await engine.done;
  return { port, clock: percentiles(clock), cpu: percentiles(cpu), swaps: clock.length, failed, packets: engine.processed() };
}

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const results = [];
for (const [name, port] of [['idle', 'gen:count=0,pps=1000'], ['load', 'gen:count=0,pps=200000']]) {
  const r = await scenario(port);
  results.push([name, r]);
  console.log(`${name} (${port}): swaps ${r.swaps} (failed ${r.failed}); stall µs clock p50 ${r.clock.p50} p99 ${r.clock.p99} max ${r.clock.max}; CPU p50 ${r.cpu.p50} p99 ${r.cpu.p99} max ${r.cpu.max}; packets ${r.packets}; load average ${load()}`);
}
if (json) {
  const how = `node bench/swap.mjs --swaps ${SWAPS}`;
  const measures = [];
  for (const [name, r] of results) {
    for (const [kind, p] of [['clock', r.clock], ['cpu', r.cpu]]) {
      measures.push({ name: `swap stall ${kind} p50 (${name})`, unit: 'us', nmwasm: p.p50, baseline: null, ratio: null, target: null, how });
      measures.push({ name: `swap stall ${kind} p99 (${name})`, unit: 'us', nmwasm: p.p99, baseline: null, ratio: null, target: 200, how });
    }
  }
  console.log(JSON.stringify({ measures }));
}
