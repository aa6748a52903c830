// Hot-swap through the engine API (host/engine/engine.ts Engine.swap): a generator feeds a module
// that stamps a carried sequence number into every packet, to a pcap output; swaps between
// two builds happen while traffic flows. The output must hold every sequence number exactly
// once and in order (no packet lost, duplicated or reordered; state carried), and failed
// canaries must leave the old module serving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Engine } from '../../host/engine/engine.ts';
import { loadModule } from '../../host/module/module.ts';
import { parsePortSpec } from '../../host/ports/portspec.ts';
import { Counter } from '../../host/ports/native.ts';
import { makeSwapHook, prepareSwap } from '../../host/engine/swap.ts';
import { readCapture } from '../filters/pcap.ts';
import { stampWat, writeWat } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'nmwasm-hotswap-'));
// NB: the spin paces the generator (about 1 µs of CPU per packet): the swaps happen while
// traffic flows, and the output file stays small.
const A = writeWat('a.wasm', stampWat({ marker: 0xa, spin: 8000 }), dir);
const B = writeWat('b.wasm', stampWat({ marker: 0xb, spin: 8000 }), dir);
const PACKETS = 2_000_000;

function startEngine(out: string | null, input = `gen:count=${PACKETS}`, revert = false, events: string[] = []): Engine {
  return new Engine({
    onEvent: (_kind, _ring, line) => events.push(line),
    loaded: loadModule(A),
    moduleName: A,
    config: new Uint8Array(0),
    input: parsePortSpec(input, 'in'),
    outputs: out === null ? [] : [parsePortSpec(`pcap:${out}`, 'out')],
    onFault: 'closed',
    revert,
    batchTimeoutMs: 50,
    count: 0,
    durationMs: 0,
    trace: false,
  });
}

async function serving(engine: Engine): Promise<void> {
  while (engine.processed() === 0) await new Promise((r) => setTimeout(r, 5));
}

/** Every packet of the output carries the next sequence number; returns the markers seen. */
function checkSequence(out: string, expected: number): Set<number> {
  const { packets } = readCapture(out);
  assert.is(packets.length, expected, 'packets in the output = packets counted');
  const markers = new Set<number>();
  for (let i = 0; i < packets.length; i++) {
    const p = packets[i]!;
    const seq = new DataView(p.buffer, p.byteOffset).getUint32(42, true);
    if (seq !== i) assert.unreachable(`packet ${i} of the output carries sequence ${seq}`);
    markers.add(p[46]!);
  }
  return markers;
}

test('swaps alternating two builds while traffic flows: every packet once, in order, state carried', async () => {
  const out = join(dir, 'swaps.pcap');
  const engine = startEngine(out);
  await serving(engine);
  const swaps = Number(process.env.SWAPS ?? 40);
  const stalls: number[] = [];
  for (let i = 0; i < swaps; i++) {
    const { loaded } = prepareSwap(i % 2 === 0 ? B : A, undefined);
    const r = await engine.swap(loaded, undefined);
    assert.ok(r.ok, `swap ${i}: ${r.reason}`);
    assert.ok(r.stateCarried, `swap ${i}: state carried`);
    assert.ok(r.canary!.packets > 0, 'the canary ran on live packets');
    stalls.push(r.stallUs!);
    if (engine.processed() >= PACKETS * 0.8) break; // keep traffic flowing through every swap
  }
  console.log(`swaps: ${stalls.length}, stall µs: ${stalls.sort((x, y) => x - y).join(' ')}`);
  engine.stop();
  const result = await engine.done;
  const c = result.rings[0]!.counters;
  assert.is(c[Counter.faultVerdicts], 0);
  assert.is(result.rings[0]!.swaps, stalls.length);
  const markers = checkSequence(out, c[Counter.pass]!);
  assert.equal([...markers].sort(), [0xa, 0xb], 'both builds served');
});

const broken: [string, string, RegExp][] = [
  ['trap in init', stampWat({ marker: 0xc, init: '(unreachable)' }), /canary failed: nmwasm_init trapped/],
  ['init rejects the config', stampWat({ marker: 0xc, init: '(i32.const 3)' }), /canary failed: nmwasm_init rejected the configuration \(returned 3\)/],
  ['trap on the sample', stampWat({ marker: 0xc, extraProcess: '(unreachable)' }), /canary failed: trap on the sample of \d+ live packets/],
  ['budget overrun on the sample', stampWat({ marker: 0xc, extraProcess: '(loop $l (br $l))' }), /canary failed: nmwasm_process ran over its budget/],
];

test('failed canaries leave the old module serving, with the reason', async () => {
  const engine = startEngine(null, 'gen:count=0');
  await serving(engine);
  for (const [what, wat, reason] of broken) {
    const { loaded } = prepareSwap(writeWat(`${what.replace(/ /g, '-')}.wasm`, wat, dir), undefined);
    const before = engine.processed();
    const r = await engine.swap(loaded, undefined);
    assert.not.ok(r.ok, what);
    assert.match(r.reason!, reason, what);
    assert.match(r.reason!, /the old module still serves/);
    // Still serving: packets keep flowing through the old module.
    while (engine.processed() === before) await new Promise((res) => setTimeout(res, 5));
  }
  engine.stop();
  const result = await engine.done;
  assert.is(result.rings[0]!.swaps, 0);
  assert.is(result.rings[0]!.counters[Counter.faultVerdicts], 0, 'the old module served every packet');
});

test('--on-fault previous: a swapped-in module that faults is replaced by the last good one', async () => {
  const events: string[] = [];
  const engine = startEngine(null, 'gen:count=0', true, events);
  await serving(engine);
  // Passes the canary (a fresh instance counts from 0) but traps once it holds the carried total.
  const late = writeWat('late-trap.wasm', stampWat({ marker: 0xc, extraProcess: '(if (i32.gt_u (i32.load (i32.const 0x4000000)) (i32.const 1000)) (then unreachable))' }), dir);
  const r = await engine.swap(prepareSwap(late, undefined).loaded, undefined);
  assert.ok(r.ok, r.reason);
  await until('the revert', () => events.some((l) => /the previous module serves again/.test(l)));
  const c = engine.ringRuns[0]!.counters;
  const passed = c[Counter.pass]!;
  await until('traffic through the previous module', () => c[Counter.pass]! > passed + 10_000);
  const faults = c[Counter.traps]!;
  engine.stop();
  await engine.done;
  assert.is(faults, 1, 'one fault: the previous module did not fault');
  assert.ok(events.some((l) => /trap fault: .*unreachable/.test(l)), events.join('\n'));
});

async function until(what: string, cond: () => boolean): Promise<void> {
  const end = Date.now() + 30_000;
  while (!cond()) {
    if (Date.now() > end) assert.unreachable(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('the control socket hook: clause and module checked, bad files refused with the reason, swaps counted', async () => {
  const engine = startEngine(null, 'gen:count=0');
  await serving(engine);
  const counts = { swaps: [0], canaryFailures: [0] };
  const hook = makeSwapHook(() => [engine], [], counts);
  assert.equal(await hook({ module: B, clause: 1 }), { ok: false, reason: '--clause: expected 0..0, got 1' });
  assert.equal(await hook({ module: B, module_index: 2 }), { ok: false, reason: '--module: expected 0..0 (clause 0 runs 1 module), got 2' });
  const missing = await hook({ module: join(dir, 'nope.wasm') });
  assert.not.ok(missing.ok);
  assert.match(missing.reason!, /nope\.wasm: module file not found/);
  const trap = await hook({ module: writeWat('hook-trap.wasm', stampWat({ marker: 0xc, init: '(unreachable)' }), dir) });
  assert.match(trap.reason!, /canary failed: nmwasm_init trapped/);
  const ok = await hook({ module: B });
  assert.ok(ok.ok, ok.reason);
  assert.equal(counts, { swaps: [1], canaryFailures: [1] });
  engine.stop();
  await engine.done;
});

test('a module with the wrong ABI or over a limit is refused before any canary', () => {
  assert.throws(() => prepareSwap(writeWat('noabi.wasm', stampWat({ marker: 1, abiMarker: false }), dir), undefined), /missing the ABI marker export nmwasm_abi_v1/);
  const half = stampWat({ marker: 1 }).replace('(export "nmwasm_state_load")', '');
  assert.throws(() => prepareSwap(writeWat('half.wasm', half, dir), undefined), /exports nmwasm_state_save but not nmwasm_state_load: \(i32, i32\) -> i32 \(carried state needs both\)/);
  assert.throws(() => prepareSwap(writeWat('big.wasm', stampWat({ marker: 1, pages: 1024 + 32 }), dir), undefined, { memoryMiB: 1, tableElements: 65536, codeMiB: 4, dataMiB: 16 }), /memory initial size 1056 pages .* exceeds the limit of 1040 pages/);
});

test.run();
