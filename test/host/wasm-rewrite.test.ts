// The load-time rewrite of bulk instructions (host/module/wasm-rewrite.ts): the rewritten module
// behaves exactly like the original (same bytes written, same traps, nothing written by an
// out-of-bounds operation, overlap in both directions), and a worker terminated in the
// middle of a chain of huge memory.fill instructions stops within the chain instead of
// running it to the end.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Worker } from 'node:worker_threads';
import binaryen from 'binaryen';
import { CHUNK, rewriteModule } from '../../host/module/wasm-rewrite.ts';

/** Compiles WAT text with binaryen (bulk memory and reference types on). */
function wat(text: string): Uint8Array<ArrayBuffer> {
  const mod = binaryen.parseText(text);
  try {
    const F = binaryen.Features;
    mod.setFeatures(F.MutableGlobals | F.BulkMemory | F.BulkMemoryOpt | F.ReferenceTypes | F.SignExt | F.NontrappingFPToInt | F.SIMD128 | F.Atomics);
    return new Uint8Array(mod.emitBinary());
  } finally {
    mod.dispose();
  }
}

const OPTS = { maxMemoryPages: 3072, maxTableElements: 65536 };
const SEG = 150_000; // passive data segment, > 2 chunks
const ELEMS = 70_000; // passive element segment, > 1 chunk
const TABLE = 200_000;
const MEM_PAGES = 64; // 4 MiB
const MEM = MEM_PAGES * 65536;

const segBytes = Array.from({ length: SEG }, (_, i) => String.fromCharCode(0x21 + ((i * 7 + 3) % 90))).join('').replaceAll('\\', '/').replaceAll('"', "'");
const elems = Array.from({ length: ELEMS }, (_, i) => (i % 3 === 0 ? '0' : '1')).join(' '); // $a, $b
const BULK = wat(`(module
  (type $r (func (result i32)))
  (func $a (type $r) (i32.const 1))
  (func $b (type $r) (i32.const 2))
  (memory (export "memory") ${MEM_PAGES} ${MEM_PAGES})
  (data $d "${segBytes}")
  (table $t ${TABLE} ${TABLE} funcref)
  (table $src 3 3 funcref)
  (elem (table $src) (i32.const 1) func $a $b)
  (elem $e func ${elems})
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32) (memory.init $d (local.get 0) (local.get 1) (local.get 2)))
  (func (export "drop") (data.drop $d))
  (func (export "tfill") (param i32 i32 i32) (table.fill $t (local.get 0) (table.get $src (local.get 1)) (local.get 2)))
  (func (export "tcopy") (param i32 i32 i32) (table.copy $t $t (local.get 0) (local.get 1) (local.get 2)))
  (func (export "tinit") (param i32 i32 i32) (table.init $t $e (local.get 0) (local.get 1) (local.get 2)))
  (func (export "edrop") (elem.drop $e))
  (func (export "tsum") (result i32) (local $i i32) (local $h i32)
    (loop $l
      (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 31))
        (if (result i32) (ref.is_null (table.get $t (local.get $i))) (then (i32.const 0)) (else (call_indirect $t (type $r) (local.get $i))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const ${TABLE}))))
    (local.get $h))
)`);

type Ops = Record<string, (...args: number[]) => number | void> & { memory: WebAssembly.Memory };

function instantiate(bytes: Uint8Array<ArrayBuffer>): Ops {
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {});
  const ops = inst.exports as unknown as Ops;
  // The same pseudo-random memory content in both instances.
  const mem = new Uint8Array(ops.memory.buffer);
  let x = 12345;
  for (let i = 0; i < mem.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    mem[i] = x >>> 24;
  }
  return ops;
}

/** Runs `calls` on the original and the rewritten module; after each call both trapped the
 * same way (or not) and hold the same memory and table. */
function sameBehaviour(calls: [string, ...number[]][]): void {
  const rewritten = rewriteModule(BULK, OPTS);
  assert.ok(rewritten.replaced >= 6, `replaced ${rewritten.replaced}`);
  const a = instantiate(BULK);
  const b = instantiate(rewritten.bytes);
  for (const [name, ...args] of calls) {
    const run = (o: Ops): string => {
      try {
        o[name]!(...args);
        return 'ok';
      } catch (err) {
        return `${(err as Error).constructor.name}: ${(err as Error).message}`;
      }
    };
    const ra = run(a);
    const rb = run(b);
    const what = `${name}(${args.map((v) => `0x${(v >>> 0).toString(16)}`).join(', ')})`;
    assert.is(rb, ra, `${what}: result`);
    assert.ok(Buffer.from(a.memory.buffer).equals(Buffer.from(b.memory.buffer)), `${what}: memory differs`);
    assert.is(b.tsum!(), a.tsum!(), `${what}: table differs`);
  }
}

test('the rewrite replaces every bulk instruction and appends its helpers', () => {
  const r = rewriteModule(BULK, OPTS);
  assert.is(r.replaced, 6);
  assert.is(r.helpers, 6);
  const before = WebAssembly.Module.exports(new WebAssembly.Module(BULK));
  assert.equal(WebAssembly.Module.exports(new WebAssembly.Module(r.bytes)), before);
});

test('memory.fill: same bytes and same traps as the original', () => {
  sameBehaviour([
    ['fill', 0, 0xab, 3 * CHUNK + 17],
    ['fill', 100, 1, CHUNK],
    ['fill', 100, 2, CHUNK + 1],
    ['fill', MEM - 100_000, 7, 100_000], // up to the very end
    ['fill', MEM - 100_000, 8, 100_001], // one past: traps, writes nothing
    ['fill', MEM, 9, 0],
    ['fill', MEM + 1, 9, 0],
    ['fill', 0xffff_fff0, 1, 0x100], // the end wraps around 2^32
    ['fill', 1, 2, 0xffff_ffff],
    ['fill', MEM - 10, 3, 2 * CHUNK], // starts in bounds, ends out
  ]);
});

test('memory.copy: both overlap directions, bounds on either side', () => {
  sameBehaviour([
    ['copy', 1000, 1000 + 12_345, 300_000], // destination below the source
    ['copy', 5000, 1000, 300_000], // destination above the source, overlapping
    ['copy', 2 * CHUNK, 0, 5 * CHUNK + 3], // above by exactly two chunks
    ['copy', 0, 2 * CHUNK, 5 * CHUNK + 3],
    ['copy', 4096, 4096, 3 * CHUNK],
    ['copy', MEM - 200_000, 0, 200_000],
    ['copy', 0, MEM - 200_000, 200_000],
    ['copy', MEM - 200_000, 0, 200_001], // destination out of bounds
    ['copy', 0, MEM - 200_000, 200_001], // source out of bounds
    ['copy', 0xffff_0000, 0, 0x20000],
    ['copy', 0, 0xffff_0000, 0x20000],
    ['copy', MEM, MEM, 0],
  ]);
});

test('memory.init and data.drop: offsets into the segment, bounds, dropped segment', () => {
  sameBehaviour([
    ['init', 0, 0, SEG],
    ['init', 10, 5, SEG - 5],
    ['init', 3, 1, SEG], // one past the segment's end: traps
    ['init', MEM - SEG, 0, SEG],
    ['init', MEM - SEG + 1, 0, SEG], // memory side out of bounds
    ['init', 7, 0xffff_0000, 0x20000],
    ['init', 100, SEG, 0],
    ['drop'],
    ['init', 0, 0, CHUNK + 1], // dropped: traps
    ['init', 0, 0, 0],
  ]);
});

test('table.fill, table.copy, table.init and elem.drop', () => {
  sameBehaviour([
    ['tfill', 0, 1, TABLE],
    ['tfill', 5, 2, CHUNK + 3],
    ['tfill', 100, 0, 2 * CHUNK], // null
    ['tfill', TABLE - 10, 2, CHUNK], // out of bounds
    ['tinit', 0, 0, ELEMS],
    ['tinit', 1000, 17, ELEMS - 17],
    ['tinit', 0, 1, ELEMS],
    ['tinit', TABLE - ELEMS + 1, 0, ELEMS],
    ['tcopy', 10, 30_000, 150_000],
    ['tcopy', 30_000, 10, 150_000],
    ['tcopy', 0, 60_000, 140_001], // source out of bounds
    ['edrop'],
    ['tinit', 0, 0, CHUNK + 1],
  ]);
});

test('modules without a maximum get the host limits; declared maximums stay', () => {
  const open = wat('(module (memory (export "memory") 2) (table 1 funcref))');
  const r = rewriteModule(open, { maxMemoryPages: 100, maxTableElements: 50 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(r.bytes), {});
  const memory = inst.exports.memory as WebAssembly.Memory;
  assert.throws(() => memory.grow(99), RangeError);
  memory.grow(98);
  assert.is(memory.buffer.byteLength, 100 * 65536);
  const bounded = wat('(module (memory (export "memory") 2 5))');
  const m2 = new WebAssembly.Instance(new WebAssembly.Module(rewriteModule(bounded, { maxMemoryPages: 100, maxTableElements: 50 }).bytes), {}).exports.memory as WebAssembly.Memory;
  assert.throws(() => m2.grow(4), RangeError);
});

test('SIMD, atomics, sign extension and saturating truncation decode; the module stays valid', () => {
  const bytes = wat(`(module (memory 1 1 shared)
    (func (export "f") (param i32) (result i32)
      (v128.store offset=16 (local.get 0) (i8x16.shuffle 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 (v128.const i32x4 1 2 3 4) (v128.load8_lane 3 (local.get 0) (v128.const i64x2 0 0))))
      (drop (i32.atomic.rmw.add (local.get 0) (i32.const 1)))
      (atomic.fence)
      (drop (i32x4.extract_lane 2 (v128.load32_zero (local.get 0))))
      (memory.fill (local.get 0) (i32.const 0) (i32.trunc_sat_f32_s (f32.const 1)))
      (i32.extend8_s (local.get 0))))`);
  const r = rewriteModule(bytes, OPTS);
  assert.is(r.replaced, 1);
  new WebAssembly.Module(r.bytes);
});

/** A module over a 128 MiB shared memory whose `run` is a chain of `n` memory.fill over all
 * of it, fill k writing the byte k: the first byte tells how far the chain got. */
function fillChain(n: number): Uint8Array<ArrayBuffer> {
  const fills = Array.from({ length: n }, (_, k) => `(memory.fill (i32.const 0) (i32.const ${k + 1}) (i32.const ${128 << 20}))`).join('\n');
  return wat(`(module (import "env" "memory" (memory 2048 2048 shared)) (func (export "run") ${fills}))`);
}

async function terminateInChain(bytes: Uint8Array<ArrayBuffer>, chain: number): Promise<{ reached: number; exitMs: number }> {
  const memory = new WebAssembly.Memory({ initial: 2048, maximum: 2048, shared: true });
  const view = new Uint8Array(memory.buffer);
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
     const inst = new WebAssembly.Instance(workerData.module, { env: { memory: workerData.memory } });
     inst.exports.run();`,
    { eval: true, workerData: { module: new WebAssembly.Module(bytes), memory } },
  );
  const exited = new Promise<number>((resolve) => worker.once('exit', () => resolve(performance.now())));
  // Wait until the chain has started (the first fill reached the end of memory), then terminate.
  while (view[view.length - 1] === 0) await new Promise((r) => setTimeout(r, 2));
  const t0 = performance.now();
  void worker.terminate();
  const t1 = await exited;
  assert.ok(view[0]! >= 1 && view[0]! <= chain);
  return { reached: view[0]!, exitMs: t1 - t0 };
}

test('a worker terminated inside a chain of huge memory.fill stops inside the chain', async () => {
  const CHAIN = 200; // 200 fills of 128 MiB: seconds of uninterruptible work in the original
  const { bytes } = rewriteModule(fillChain(CHAIN), OPTS);
  const { reached, exitMs } = await terminateInChain(bytes, CHAIN);
  process.stdout.write(`# terminated after fill ${reached} of ${CHAIN}; 'exit' ${exitMs.toFixed(1)} ms after terminate()\n`);
  // The original runs the whole chain before termination takes effect (reached === CHAIN).
  assert.ok(reached < CHAIN, `the chain ran to its end (fill ${reached}) before the worker stopped`);
});

test.run();
