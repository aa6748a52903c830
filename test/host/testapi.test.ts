// The test API (host/module/testapi.ts runFilter) against hostile and broken modules: it checks a
// batch's output as the host does (invalid or unset verdicts, changed buf_idx, len out of
// range, traps, abort, non-zero return) and gives the batch the fault verdict; it refuses
// what load refuses (ABI, config rejected) with one line; guest text comes back escaped;
// bad arguments are named. Plus frames from a real capture with their timestamps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import binaryen from 'binaryen';
import { runFilter } from '../../host/module/testapi.ts';
import { UsageError } from '../../host/cli/errors.ts';
import { wasmPath, root } from '../filters/harness.ts';
import { readCapture } from '../filters/pcap.ts';
import * as f from '../filters/frames.ts';

const frames = Array.from({ length: 10 }, (_, i) => f.udp4('10.0.0.1', '10.0.0.2', 1000 + i, 53));

test('violations and traps fail the batch with the fault verdict; a fresh instance takes the next batch', () => {
  const cases: [string, RegExp][] = [
    ['bad-verdict', /violation: frame 1: invalid verdict 0x42/],
    ['unset-verdict', /violation: frame 1: verdict left unset/],
    ['oob-index', /violation: frame 1: (buf_idx changed|len 65535 outside)/],
    ['oob-memory', /trap: /],
    ['abort', /abort: /],
  ];
  for (const [name, why] of cases) {
    const run = runFilter(wasmPath(`fixtures/${name}`), frames, { batchSize: 4 });
    assert.equal(run.totals, { packets: 10, pass: 0, drop: 0, host: 0, forward: 0, fault: 10 }, name);
    assert.ok(run.frames.every((r) => r.fault && r.verdict === 'DROP'), name);
    assert.is(run.faults.length, 3, `${name}: one fault per batch, each on a fresh instance`);
    assert.match(run.faults[0]!, why);
    assert.equal(run.frames[0]!.data, frames[0], `${name}: a faulted frame keeps its input bytes`);
    const open = runFilter(wasmPath(`fixtures/${name}`), frames, { batchSize: 4, onFault: 'open' });
    assert.ok(open.frames.every((r) => r.fault && r.verdict === 'PASS'), `${name} open`);
  }
  // trap.wasm traps in its third batch only.
  const trap = runFilter(wasmPath('fixtures/trap'), frames, { batchSize: 2 });
  assert.equal(trap.frames.map((r) => r.fault), [false, false, false, false, true, true, false, false, false, false]);
  assert.match(trap.faults[0]!, /^frames 5\.\.6: trap: /);
});

// Checks num_slots and buf_ofs on entry (returns 1 when they are not the host's), passes the
// batch, then zeroes both in its ring header.
const STOMP_HEADER = `(module
  (memory (export "memory") 1025)
  (func (export "nmwasm_abi_v1"))
  (func (export "nmwasm_process") (param $ring i32) (param $v i32) (param $first i32) (param $count i32) (result i32)
    (local $k i32)
    (if (i32.ne (i32.load offset=8 (local.get $ring)) (i32.const 256)) (then (return (i32.const 1))))
    (if (i64.eqz (i64.load (local.get $ring))) (then (return (i32.const 1))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $count)))
      (i32.store8 (i32.add (local.get $v) (i32.rem_u (i32.add (local.get $first) (local.get $k)) (i32.const 256))) (i32.const 1))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))
    (i32.store offset=8 (local.get $ring) (i32.const 0))
    (i64.store (local.get $ring) (i64.const 0))
    (i32.const 0)))`;

test('a module that stomps over its ring header finds it whole again at the next batch', () => {
  const mod = binaryen.parseText(STOMP_HEADER);
  const bytes = mod.emitBinary();
  mod.dispose();
  const run = runFilter(bytes, frames, { batchSize: 3 });
  assert.equal(run.faults, []);
  assert.is(run.totals.pass, 10);
});

test('refused like load refuses: ABI violations, a rejected config, bad arguments, each one line', () => {
  const one = (fn: () => unknown, pattern: RegExp): void => {
    try {
      fn();
    } catch (err) {
      assert.instance(err, UsageError);
      assert.not.match((err as Error).message, /\n/);
      assert.match((err as Error).message, pattern);
      return;
    }
    assert.unreachable(`expected ${pattern}`);
  };
  one(() => runFilter(wasmPath('fixtures/forbidden-import'), frames), /forbidden import/);
  one(() => runFilter(readFileSync(wasmPath('fixtures/bad-signature')), frames), /^runFilter module: export nmwasm_process has type/);
  one(() => runFilter(Uint8Array.from([1, 2, 3]), frames), /not a WebAssembly module/);
  one(() => runFilter(wasmPath('fixtures/init-fails'), frames), /^config: configuration rejected by the filter's nmwasm_init: /);
  one(() => runFilter(wasmPath('counter'), [new Uint8Array(0)]), /^runFilter: frame 1: expected 1\.\.2048 bytes .* got 0$/);
  one(() => runFilter(wasmPath('counter'), [new Uint8Array(3000)]), /frame 1: expected 1\.\.2048 bytes/);
  one(() => runFilter(wasmPath('counter'), frames, { batchSize: 0 }), /^runFilter: batchSize: expected an integer 1\.\.256, got 0$/);
  one(() => runFilter(wasmPath('counter'), [{ data: frames[0]!, timestampNs: -1 }]), /timestampNs: expected a non-negative integer/);
  one(() => runFilter(wasmPath('counter'), join(root, 'test/pcaps/tcpdump-tests/dns-badcookie.pcap')), /expected Ethernet frames \(link type 1\), got link type/);
});

test('what a hostile module logs comes back as one printable line', () => {
  const run = runFilter(wasmPath('fixtures/hostile-text'), frames.slice(0, 1), { config: 'x' });
  assert.is(run.totals.fault, 1);
  for (const { line } of run.logs) assert.not.match(line, /[\x00-\x1f\x7f\u0080-\u009f\u202e]/);
  assert.match(run.faults[0]!, /abort: /);
  assert.not.match(run.faults[0]!, /[\x00-\x1f\x7f\u0080-\u009f\u202e]/);
});

test('a real capture: every frame, in order, with its own timestamp in the slot', () => {
  const file = join(root, 'test/pcaps/tcpdump-tests/babel_rfc6126bis.pcap');
  const packets = readCapture(file).packets;
  const run = runFilter(wasmPath('counter'), file);
  assert.is(run.frames.length, packets.length);
  run.frames.forEach((r, i) => {
    assert.is(r.frame, i + 1);
    assert.is(r.inputLength, packets[i]!.length);
    assert.equal(r.data, packets[i]);
  });
  assert.is(run.counters.packets, BigInt(packets.length));
  assert.ok(run.frames[0]!.timestampNs > 1_000_000_000_000_000_000n, 'the capture\'s own time (ns since the epoch)');
  assert.ok(run.frames.every((r, i) => i === 0 || r.timestampNs >= run.frames[i - 1]!.timestampNs));
});

test.run();
