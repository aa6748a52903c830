// Ports live in the process-wide registry, not in a worker: a worker attached to
// a ring can be terminated mid-run and a new worker attaches to the same ring
// and continues, with the port still open.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { Counter } from '../../host/ports/native.ts';
import { MODULE_SLOTS, RING_CONTROL_SLOTS, RING_STATE_SLOTS, RingState, CARRIED_BYTES, SAMPLE_BYTES, type RingWorkerData } from '../../host/engine/ringshared.ts';
import { genSpec, native, newCounters } from './helpers.ts';

// The worker: attach, map into its own memory, pass every packet; after `batches`
// batches it reports and then blocks (so that terminate hits it while attached).
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const native = require(workerData.addon);
const { portId, counters, batches, block } = workerData;
const handle = native.attachRing(portId, 0, { outputs: [], counters, faultVerdict: 0, trace: false });
const mem = new WebAssembly.Memory({ initial: 1100 });
handle.map(new Uint8Array(mem.buffer), 0x100000);
const L = handle.layout();
const view = new Uint8Array(mem.buffer);
const dv = new DataView(mem.buffer);
let n = handle.sync(0, false);
let done = 0;
while (n > 0 && done < batches) {
  const head = dv.getUint32(0x100000 + L.ringOfs + 20, true);
  for (let k = 0; k < n; k++) view[0x100000 + L.verdictOfs + ((head + k) % L.numSlots)] = 1;
  n = handle.sync(n, false);
  done++;
}
parentPort.postMessage({ done, last: n });
if (block) { const sab = new Int32Array(new SharedArrayBuffer(4)); Atomics.wait(sab, 0, 0); }
`;

function runWorker(data: object): { worker: Worker; result: Promise<{ done: number; last: number }> } {
  const addon = new URL('../../build/Release/nmwasm.node', import.meta.url).pathname;
  const worker = new Worker(workerSource, { eval: true, workerData: { addon, ...data } });
  const result = new Promise<{ done: number; last: number }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return { worker, result };
}

test('terminate a worker while attached, attach again from a new worker, continue to the end', async () => {
  const port = native.openPort(genSpec({ count: 5000 }), { numSlots: 256, bufSize: 2048 });
  const counters = newCounters();
  const first = runWorker({ portId: port.id, counters, batches: 5, block: true });
  const r1 = await first.result;
  assert.is(r1.done, 5);
  await first.worker.terminate();
  const passedBefore = counters[Counter.pass]!;
  assert.is(passedBefore, 5 * 255);
  // the last batch handed to the dead worker was never completed: it is delivered again
  const second = runWorker({ portId: port.id, counters, batches: 1000, block: false });
  const r2 = await second.result;
  assert.is(r2.last, -1);
  await second.worker.terminate();
  assert.is(counters[Counter.pass], 5000);
  assert.is(counters[Counter.packets], 5000);
  assert.is(counters[Counter.eof], 1);
  native.closePort(port.id); // still open until now
});

test('a respawned ring worker (host/engine/worker.ts) gives the hung batch its fault verdicts even when the back-off has already expired', async () => {
  // The dead worker's batch: delivered to a handle that never completes it (as a worker the
  // watchdog terminated inside nmwasm_process leaves it).
  const port = native.openPort(genSpec({ count: 1000 }), { numSlots: 256, bufSize: 2048 });
  const counters = newCounters();
  const dead = native.attachRing(port.id, 0, { outputs: [], counters, faultVerdict: 0, trace: false });
  const hung = dead.sync(0, false);
  assert.is(hung, 255);
  const state = new Float64Array(new SharedArrayBuffer(RING_STATE_SLOTS * 8));
  state[RingState.failedUntil] = 0; // the back-off ran out before the new worker got going
  const data: RingWorkerData = {
    portId: port.id,
    ring: 0,
    outputs: [],
    chain: [{ module: new WebAssembly.Module(readFileSync(new URL('../../filters/build/fixtures/pass.wasm', import.meta.url))), config: new Uint8Array(0), statsCount: 0 }],
    modules: new SharedArrayBuffer(MODULE_SLOTS * 8),
    counters: counters.buffer as SharedArrayBuffer,
    control: new SharedArrayBuffer(RING_CONTROL_SLOTS * 4),
    state: state.buffer as SharedArrayBuffer,
    stats: new SharedArrayBuffer(8),
    faultVerdict: 0,
    trace: false,
    budget: (() => {
      const budget = new BigInt64Array(new SharedArrayBuffer(8));
      budget[0] = 2n ** 63n - 1n; // no --count limit
      return budget.buffer as SharedArrayBuffer;
    })(),
    resume: true,
    lease: new SharedArrayBuffer(2 * 4),
    standbyGen: 0,
    memSize: port.memSize,
    sample: new SharedArrayBuffer(SAMPLE_BYTES),
    revert: false,
    carried: new SharedArrayBuffer(CARRIED_BYTES),
  };
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const workerTs = new URL('../../host/engine/worker.ts', import.meta.url).href;
  const source = `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(workerTs)}); });`;
  const worker = new Worker(source, { eval: true, workerData: data });
  const done = await new Promise<{ type: string; message?: string }>((resolve, reject) => {
    worker.on('message', (m: { type: string }) => {
      if (m.type === 'done' || m.type === 'fatal') resolve(m);
    });
    worker.once('error', reject);
  });
  await worker.terminate();
  assert.is(done.type, 'done', done.message);
  assert.ok(counters[Counter.faultVerdicts]! >= hung, `fault verdicts ${counters[Counter.faultVerdicts]} < the hung batch of ${hung}`);
  assert.is(counters[Counter.drop], 0, 'fault verdicts are counted apart from drop');
  assert.is(counters[Counter.pass]! + counters[Counter.drop]! + counters[Counter.faultVerdicts]!, 1000);
  assert.is(counters[Counter.restarts], 1, 'the fresh instance took over after the hung batch');
  native.closePort(port.id);
});

test.run();
