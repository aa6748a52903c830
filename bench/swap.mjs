// Benchmark: how long a hot-swap stalls a ring (compile, canary, instantiation and nmwasm_init
// excluded: they happen in the new worker while the old one serves): from the serving worker
// letting go of the ring at a batch boundary to the new worker's first batch (its wake-up,
// attach, mapping the port memory, nmwasm_state_load). Usage: node bench/swap.mjs [swaps=200] (needs the built addon; no root).
//
// One engine in this process over gen:count=0 (unbounded, no output) with a module that
// stamps a carried sequence number into every packet (test/swap/fixtures.ts); the swaps
// alternate two builds of it, one after the other, while traffic flows. Prints p50/p99/max of
// the stalls and the load average (the machine is shared: a loaded machine moves the figures).
import { register } from 'tsx/esm/api';
import { loadavg } from 'node:os';

register();
const SWAPS = Number(process.argv[2] ?? 200);
const { Engine } = await import('../host/engine.ts');
const { loadModule } = await import('../host/module.ts');
const { parsePortSpec } = await import('../host/portspec.ts');
const { stampWat, writeWat } = await import('../test/swap/fixtures.ts');

const builds = [writeWat('a.wasm', stampWat({ marker: 0xa })), writeWat('b.wasm', stampWat({ marker: 0xb }))].map((p) => loadModule(p));
const engine = new Engine({
  loaded: builds[0],
  moduleName: 'a.wasm',
  config: new Uint8Array(0),
  input: parsePortSpec('gen:count=0', 'in'),
  outputs: [],
  onFault: 'closed',
  batchTimeoutMs: 50,
  count: 0,
  durationMs: 0,
  trace: false,
});
while (engine.processed() === 0) await new Promise((r) => setTimeout(r, 5));
const stalls = [];
let failed = 0;
for (let i = 0; i < SWAPS; i++) {
  const r = await engine.swap(builds[(i + 1) % 2], undefined);
  if (r.ok) stalls.push(r.stallUs);
  else failed++;
}
engine.stop();
const result = await engine.done;
stalls.sort((a, b) => a - b);
const q = (p) => stalls[Math.min(stalls.length - 1, Math.floor(p * stalls.length))];
const c = result.rings[0].counters;
console.log(`swaps ${stalls.length} (failed ${failed}); stall µs p50 ${q(0.5)} p99 ${q(0.99)} max ${stalls.at(-1)}; packets ${engine.processed()}; load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
