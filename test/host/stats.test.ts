// Summary formatting (host/cli/stats.ts): trace encoding, progress bar, number formatting, sums.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compact, formatTrace, progressBar, sumCounters, summaryJson, summaryText } from '../../host/cli/stats.ts';
import { COUNTER_SLOTS, Counter } from '../../host/ports/native.ts';
import { MODULE_SLOTS, ModuleCounter, RING_CONTROL_SLOTS, RING_STATE_SLOTS, RingState } from '../../host/engine/ringshared.ts';
import type { RingRun } from '../../host/engine/engine.ts';

test('trace: digits when every verdict is 0..9, else an array', () => {
  assert.is(formatTrace(new Uint8Array([1, 0, 2, 1])), '1021');
  assert.is(formatTrace(new Uint8Array(0)), '');
  assert.equal(formatTrace(new Uint8Array([1, 0x80, 0x81])), [1, 128, 129]);
});

test('progress bar and compact numbers', () => {
  assert.is(progressBar(0, 10, 10), '[..........] 0%');
  assert.is(progressBar(5, 10, 10), '[#####.....] 50%');
  assert.is(progressBar(20, 10, 4), '[####] 100%');
  assert.is(compact(999), '999');
  assert.is(compact(12_345), '12.3k');
  assert.is(compact(2_500_000), '2.50M');
});

test('counters of every ring are summed, faults by kind', () => {
  const ring = (pass: number, traps: number, badReturns: number): RingRun => {
    const counters = new Float64Array(COUNTER_SLOTS);
    counters[Counter.pass] = pass;
    counters[Counter.traps] = traps;
    const state = new Float64Array(RING_STATE_SLOTS);
    state[RingState.badReturns] = badReturns;
    return {
      ring: 0, counters, control: new Int32Array(RING_CONTROL_SLOTS), state, stats: new Float64Array(0), modules: new Float64Array(0), worker: null, ready: true, done: true, killedByWatchdog: false,
      lease: new Int32Array(2), sample: { startedAt: 0, cpuAtSight: -1 }, standby: null, standbyLease: null, standbyReady: false, standbyGen: 0, standbySince: 0, noStandby: false, outage: null,
      sampleBuffer: new SharedArrayBuffer(8), carried: new SharedArrayBuffer(8), swapWaiters: new Map(), swaps: 0, swapStallsUs: [], spare: null,
    };
  };
  const a = ring(10, 1, 0);
  const b = ring(5, 0, 2);
  a.state[RingState.outages] = 2;
  a.state[RingState.outageMsMax] = 14.5;
  a.state[RingState.outageMsTotal] = 25;
  b.state[RingState.outages] = 1;
  b.state[RingState.outageMsMax] = 17;
  b.state[RingState.outageMsTotal] = 17;
  const t = sumCounters([a, b]);
  assert.is(t.pass, 15);
  assert.is(t.faults.traps, 1);
  assert.is(t.faults.badReturns, 2);
  assert.equal(t.outages, { count: 3, maxMs: 17, totalMs: 42 }, 'outages: counted, longest of all rings, summed');
});

test('the summary shows fault verdicts apart: pass + drop + host + forward + fault = packets, text and JSON', () => {
  const counters = new Float64Array(COUNTER_SLOTS);
  counters[Counter.packets] = 100;
  counters[Counter.pass] = 60;
  counters[Counter.drop] = 10;
  counters[Counter.host] = 5;
  counters[Counter.forward] = 3;
  counters[Counter.faultVerdicts] = 22;
  const run: RingRun = { ring: 0, counters, control: new Int32Array(RING_CONTROL_SLOTS), state: new Float64Array(RING_STATE_SLOTS), stats: new Float64Array(0), modules: new Float64Array(0), worker: null, ready: true, done: true, killedByWatchdog: false,
    lease: new Int32Array(2), sample: { startedAt: 0, cpuAtSight: -1 }, standby: null, standbyLease: null, standbyReady: false, standbyGen: 0, standbySince: 0, noStandby: false, outage: null,
    sampleBuffer: new SharedArrayBuffer(8), carried: new SharedArrayBuffer(8), swapWaiters: new Map(), swaps: 0, swapStallsUs: [], spare: null };
  const result = { rings: [run], input: { id: 1, name: 'gen:', rings: 1, memSize: 0, expected: 0, notices: [] }, elapsedMs: 1000, stoppedBy: 'signal' as const, statsNames: [], chain: [{ module: 'm.wasm', statsNames: [] }], oversize: 0 };
  const ctx = { module: 'm.wasm', port: 'gen:', outputs: [], onFault: 'closed' as const };
  const text = summaryText(result, ctx);
  assert.match(text, /\nverdicts: pass 60, drop 10, host 5, forward 3, fault 22 \(dropped: --on-fault closed\)$/);
  const json = summaryJson(result, ctx, false);
  assert.equal(json.verdicts, { pass: 60, drop: 10, host: 5, forward: 3, fault: 22 });
  assert.is(json.faultVerdicts, 22);
  // a summary that does not add up says so (it would be a bug)
  counters[Counter.packets] = 101;
  assert.match(summaryText(result, ctx), /\nunaccounted: 1 packets taken from the port without a verdict/);
  counters[Counter.packets] = 100;
  // packets the kernel decided from flow verdicts (AF_XDP) get their own line, outside packets
  assert.not.match(summaryText(result, ctx), /kernel:/);
  assert.equal(summaryJson(result, ctx, false).kernel, { drop: 0, pass: 0 });
  const withKernel = { ...result, kernel: { drop: 700, pass: 30 } };
  assert.match(summaryText(withKernel, ctx), /\nkernel: drop 700, pass 30 \(flow verdicts applied by the XDP program; never taken from the port, not in packets\)/);
  assert.not.match(summaryText(withKernel, ctx), /unaccounted/);
  assert.equal(summaryJson(withKernel, ctx, false).kernel, { drop: 700, pass: 30 });
});

test('a chain: the fault verdicts of a faulted module (counted by native as drop or pass) are shown as fault; one line per module', () => {
  const counters = new Float64Array(COUNTER_SLOTS);
  counters[Counter.packets] = 100;
  counters[Counter.pass] = 50;
  counters[Counter.drop] = 50;
  const state = new Float64Array(RING_STATE_SLOTS);
  state[RingState.chainFaultDrop] = 20; // module 1 was failed for 20 packets: DROP
  const modules = new Float64Array(2 * MODULE_SLOTS);
  modules[ModuleCounter.seen] = 100;
  modules[ModuleCounter.pass] = 70;
  modules[ModuleCounter.drop] = 30;
  modules[MODULE_SLOTS + ModuleCounter.seen] = 70;
  modules[MODULE_SLOTS + ModuleCounter.pass] = 50;
  modules[MODULE_SLOTS + ModuleCounter.fault] = 20;
  modules[MODULE_SLOTS + ModuleCounter.traps] = 1;
  const run: RingRun = { ring: 0, counters, control: new Int32Array(RING_CONTROL_SLOTS), state, stats: new Float64Array(0), modules, worker: null, ready: true, done: true, killedByWatchdog: false,
    lease: new Int32Array(2), sample: { startedAt: 0, cpuAtSight: -1 }, standby: null, standbyLease: null, standbyReady: false, standbyGen: 0, standbySince: 0, noStandby: false, outage: null,
    sampleBuffer: new SharedArrayBuffer(8), carried: new SharedArrayBuffer(8), swapWaiters: new Map(), swaps: 0, swapStallsUs: [], spare: null };
  const result = { rings: [run], input: { id: 1, name: 'gen:', rings: 1, memSize: 0, expected: 0, notices: [] }, elapsedMs: 1000, stoppedBy: 'signal' as const, statsNames: [], chain: [{ module: 'a.wasm', statsNames: [] }, { module: 'b.wasm', statsNames: [] }], oversize: 0 };
  const ctx = { module: 'a.wasm -> b.wasm', port: 'gen:', outputs: [], onFault: 'closed' as const };
  const json = summaryJson(result, ctx, false);
  assert.equal(json.verdicts, { pass: 50, drop: 30, host: 0, forward: 0, fault: 20 });
  const mods = json.modules as { packets: number; verdicts: Record<string, number>; faults: Record<string, number> }[];
  assert.equal(mods.map((m) => [m.packets, m.verdicts.pass, m.verdicts.drop, m.verdicts.fault, m.faults.traps]), [[100, 70, 30, 0, 0], [70, 50, 0, 20, 1]]);
  const text = summaryText(result, ctx);
  assert.match(text, /\nmodule 0 a\.wasm: 100 packets: pass 70, drop 30, host 0, forward 0, fault 0\nmodule 1 b\.wasm: 70 packets: pass 50, drop 0, host 0, forward 0, fault 20; faults: traps 1, /);
});

test.run();
