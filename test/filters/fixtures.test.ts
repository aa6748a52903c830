// Built artifacts and the hostile-module corpus: examples keep the ABI statically
// (imports, exports, data segments, memory size, manifest); each hostile fixture really
// has the defect the host's tests rely on.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, readdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { load, wasmPath, dataSegmentOffsets, manifestOfBytes, root, DATA_BASE, WINDOW_BASE } from './harness.ts';
import * as f from './frames.ts';

const ALLOWED = ['env.abort', 'env.nmwasm_log', 'env.nmwasm_now'];
const PROCESS_TYPE_OK = 4; // nmwasm_process takes 4 params (checked through Function.length)
const examples = readdirSync(`${root}filters/packages`).sort();
const mod = (name: string): WebAssembly.Module => new WebAssembly.Module(readFileSync(wasmPath(name)));

test('examples keep docs/ABI.md sections 1, 3, 4 and carry their manifest', () => {
  assert.equal(examples, ['counter', 'firewall', 'hexdump', 'host-control', 'ratelimit', 'reflector']);
  for (const name of [...examples, 'fixtures/pass', 'fixtures/accessors']) {
    const bytes = readFileSync(wasmPath(name));
    const m = new WebAssembly.Module(bytes);
    for (const i of WebAssembly.Module.imports(m)) assert.ok(ALLOWED.includes(`${i.module}.${i.name}`), `${name} imports ${i.module}.${i.name}`);
    const exports = WebAssembly.Module.exports(m);
    for (const e of exports) if (e.name.startsWith('nmwasm_')) assert.ok(['nmwasm_abi_v1', 'nmwasm_process', 'nmwasm_init', 'nmwasm_stats', 'nmwasm_state_save', 'nmwasm_state_load'].includes(e.name), `${name} exports ${e.name}`);
    assert.ok(exports.some((e) => e.name === 'memory' && e.kind === 'memory'), name);
    for (const off of dataSegmentOffsets(bytes)) assert.ok(off >= DATA_BASE, `${name}: data segment at 0x${off.toString(16)}`);
    const h = load(name);
    assert.ok(h.memory.buffer.byteLength >= DATA_BASE, name);
    assert.is(h.fn('nmwasm_process')!.length, PROCESS_TYPE_OK, name);
    if (!name.startsWith('fixtures/')) {
      const manifest = manifestOfBytes(bytes)!;
      assert.equal(manifest, JSON.parse(readFileSync(`${root}filters/packages/${name}/manifest.json`, 'utf8')));
      if (h.fn('nmwasm_stats')) assert.is(h.stats(manifest.stats.length).length, manifest.stats.length);
    }
  }
});

test('static defects: no marker, bad signature, forbidden import, extra nmwasm_ export, data in the window, not wasm', () => {
  assert.not.ok(WebAssembly.Module.exports(mod('fixtures/no-marker')).some((e) => e.name === 'nmwasm_abi_v1'));
  assert.is(load('fixtures/bad-signature').fn('nmwasm_process')!.length, 2);
  assert.ok(WebAssembly.Module.imports(mod('fixtures/forbidden-import')).some((i) => i.module === 'wasi_snapshot_preview1' && i.name === 'fd_write'));
  assert.ok(WebAssembly.Module.exports(mod('fixtures/extra-export')).some((e) => e.name === 'nmwasm_process_v2'));
  const offsets = dataSegmentOffsets(readFileSync(wasmPath('fixtures/data-in-window')));
  assert.ok(offsets.some((o) => o >= WINDOW_BASE && o < DATA_BASE), `offsets ${offsets}`);
  assert.throws(() => new WebAssembly.Module(readFileSync(wasmPath('fixtures/not-wasm'))));
});

const pkts = [f.tcp4('1.1.1.1', '2.2.2.2', 1, 2), f.arp()];

test('trap: passes two batches, traps in the third', () => {
  const h = load('fixtures/trap');
  assert.equal(h.batch(pkts).verdicts, [1, 1]);
  assert.equal(h.batch(pkts).verdicts, [1, 1]);
  assert.throws(() => h.batch(pkts), (e: unknown) => e instanceof WebAssembly.RuntimeError && /unreachable/.test(String(e)));
});

test('oob-memory traps; abort throws with its message', () => {
  assert.throws(() => load('fixtures/oob-memory').batch(pkts), (e: unknown) => e instanceof WebAssembly.RuntimeError && /out of bounds/.test(String(e)));
  assert.throws(() => load('fixtures/abort').batch(pkts), /abort: hostile fixture: abort called from nmwasm_process/);
});

test('ring violations: bad verdict, unset verdict, rewritten buf_idx and len', () => {
  assert.equal(load('fixtures/bad-verdict').batch(pkts).verdicts, [0x42, 0x42]);
  assert.equal(load('fixtures/unset-verdict').batch(pkts).verdicts, [0xff, 0xff]);
  const h = load('fixtures/oob-index');
  h.batch(pkts);
  const v = h.view();
  for (const slot of [0, 1]) {
    assert.is(v.getUint32(h.ring + 256 + 16 * slot, true), 0xffffffff);
    assert.is(v.getUint16(h.ring + 256 + 16 * slot + 4, true), 65535);
  }
});

test('init-fails logs a reason and returns 1; stats-oob points outside memory', () => {
  const h = load('fixtures/init-fails');
  assert.is(h.init('anything'), 1);
  assert.equal(h.logs, ['init-fails: configuration rejected on purpose']);
  const s = load('fixtures/stats-oob');
  assert.is(s.fn('nmwasm_stats')!() >>> 0, 0xfffffff0);
  assert.throws(() => s.stats(2), /outside the module's data/);
  assert.equal(manifestOfBytes(readFileSync(wasmPath('fixtures/stats-oob')))?.stats, ['a', 'b']);
});

/** Runs `call` of fixture `name` in a worker; resolves to whether it returned within `ms`. */
function returnsWithin(name: string, call: 'init' | 'process', ms: number): Promise<boolean> {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const fs = require('node:fs');
    const inst = new WebAssembly.Instance(new WebAssembly.Module(fs.readFileSync(workerData.path)), { env: { abort() {}, nmwasm_log() {}, nmwasm_now: () => 0 } });
    const ring = 0x100000, view = new DataView(inst.exports.memory.buffer);
    view.setUint32(ring + 8, 4, true); view.setUint32(ring + 12, 2048, true);
    parentPort.postMessage('started');
    if (workerData.call === 'init') inst.exports.nmwasm_init(0x10000, 0);
    else inst.exports.nmwasm_process(ring, ring + 256 + 64, 0, 1);
    parentPort.postMessage('returned');`;
  return new Promise((resolve, reject) => {
    const w = new Worker(code, { eval: true, workerData: { path: wasmPath(name), call } });
    let timer: NodeJS.Timeout | undefined;
    w.on('message', (m) => {
      if (m === 'started') timer = setTimeout(() => { void w.terminate().then(() => resolve(false)); }, ms);
      if (m === 'returned') { clearTimeout(timer); void w.terminate().then(() => resolve(true)); }
    });
    w.on('error', reject);
  });
}

test('infinite-loop and slow-init never return (terminated), pass returns', async () => {
  assert.is(await returnsWithin('fixtures/pass', 'process', 5000), true);
  assert.is(await returnsWithin('fixtures/infinite-loop', 'process', 300), false);
  assert.is(await returnsWithin('fixtures/slow-init', 'init', 300), false);
});

test.run();
