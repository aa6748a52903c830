// Several filters in one host joined by software pipes and a VALE switch (`load ... + ...`),
// run through the real CLI: what comes out of a chain is exactly what the single filter
// writes, packets move between software ports without a copy, a full queue slows the
// writer down instead of dropping, and the chain ends by itself when its source ends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, pcapRecords, pcaps, root, runCli } from './helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'nmwasm-chain-'));
const firewall = join(root, 'filters', 'build', 'firewall.wasm');
const counter = join(root, 'filters', 'build', 'counter.wasm');
const rules = join(root, 'test', 'fixtures', 'firewall.rules');

interface Summary {
  port: string;
  packets: number;
  verdicts: { pass: number; drop: number; host: number; forward: number; fault: number };
  faultVerdicts: number;
  out: { packets: number; zeroCopy: number; drops: number };
  faults: { traps: number; timeouts: number; violations: number; violationSlots: number };
  stoppedBy: string;
}
const summaries = (stdout: string): Summary[] => stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Summary);

test.before(() => ensureBundle());
test.after(() => rmSync(dir, { recursive: true, force: true }));

for (const capture of ['pim-packet-assortment.pcap', 'afs.pcap', 'AoE_Linux.pcap']) {
  test(`${capture}: firewall -> pipe -> counter writes the same file, byte for byte, as the firewall alone`, () => {
    const input = join(pcaps, capture);
    const single = join(dir, `single-${capture}`);
    const chained = join(dir, `chain-${capture}`);
    const alone = runCli(['test', firewall, '--pcap', input, '--config', rules, '--out', single, '--json']);
    assert.is(alone.status, 0, alone.stderr);
    const res = runCli(['load', firewall, '--config', rules, '--port', `pcap:${input}`, '--to', 'fw{out', '--json', '+', counter, '--port', 'fw}out', '--out', `pcap:${chained}`, '--json']);
    assert.is(res.status, 0, res.stderr);
    assert.match(res.stderr, /fw\{out: nmwasm's software pipes\/VALE: \/dev\/netmap is absent/);
    const [fw, count] = summaries(res.stdout);
    assert.ok(fw && count, res.stdout);
    assert.is(fw.out.packets, fw.verdicts.pass, 'every PASS went into the pipe');
    assert.is(count.packets, fw.verdicts.pass, 'and came out of the other end');
    assert.is(count.stoppedBy, 'eof', 'the reader ended when the writer left and the pipe was empty');
    assert.ok(readFileSync(chained).equals(readFileSync(single)), 'identical bytes, order and timestamps');
  });
}

for (const [mem, moved] of [['@1', 200000], ['', 0]] as const) {
test(`three filters over a pipe and a VALE switch${mem ? ` in memory region ${mem}: the middle one forwards without copying` : ' (private pools): every hop copies'}, nothing is lost to a full queue`, () => {
  const out = join(dir, `vale${mem}.pcap`);
  const direct = join(dir, `direct${mem}.pcap`);
  const gen = 'gen:count=200000,size=64-1518,seed=7';
  const res = runCli([
    'load', counter, '--port', gen, '--to', `c{1${mem}`, '--json',
    '+', counter, '--port', `c}1${mem}`, '--to', `vale3:in${mem}`, '--json',
    '+', counter, '--port', `vale3:out${mem}`, '--out', `pcap:${out}`, '--json',
  ]);
  assert.is(res.status, 0, res.stderr);
  const [head, middle, tail] = summaries(res.stdout);
  assert.ok(head && middle && tail, res.stdout);
  assert.is(head.out.packets, 200000);
  assert.is(head.out.zeroCopy, 0, 'gen has its own memory: one copy into the pipe');
  assert.is(middle.packets, 200000);
  assert.is(middle.out.zeroCopy, moved, mem ? 'pipe -> VALE port in one region: every packet moved by buffer swap' : 'private pools: copied at each boundary');
  assert.is(tail.packets, 200000);
  for (const s of [head, middle, tail]) assert.is(s.out.drops, 0, `${s.port}: a full queue must hold the writer back, not drop`);
  assert.is(pcapRecords(out), 200000);
  // The same generator straight into a file: the switch delivered the same bytes.
  const straight = runCli(['load', counter, '--port', gen, '--out', `pcap:${direct}`]);
  assert.is(straight.status, 0, straight.stderr);
  const a = readFileSync(out);
  const b = readFileSync(direct);
  assert.is(a.length, b.length);
  // Timestamps differ (gen stamps the time it made the packet); compare records without them.
  for (let at = 24; at < a.length; at += 16 + a.readUInt32LE(at + 8)) {
    assert.ok(a.subarray(at + 8, at + 16 + a.readUInt32LE(at + 8)).equals(b.subarray(at + 8, at + 16 + b.readUInt32LE(at + 8))), `record at ${at}`);
  }
});
}

const pass = join(root, 'filters', 'build', 'fixtures', 'pass.wasm');
const stomper = join(root, 'filters', 'build', 'fixtures', 'stomp-rings.wasm');
const mixed = join(root, 'filters', 'build', 'fixtures', 'mixed-violation.wasm');

for (const [kind, mem] of [['pipe', ''], ['pipe', '@4'], ['VALE', '']] as const) {
  test(`a stomper on one ${kind} port cannot change the verdicts of a good filter on another${mem ? ` (both in memory region ${mem})` : ''}: the good clause's counts are exact`, () => {
    const n = 1000000;
    // pipes: each clause has its own pipe; VALE: one generator floods both ports of a switch.
    const feeds = kind === 'pipe'
      ? ['load', pass, '--port', `gen:count=${n}`, '--to', `g{1${mem}`, '--json', '+', pass, '--port', `gen:count=${n}`, '--to', `s{1${mem}`, '--json']
      : ['load', pass, '--port', `gen:count=${n}`, '--to', `vale5:src${mem}`, '--json'];
    const [goodPort, badPort] = kind === 'pipe' ? [`g}1${mem}`, `s}1${mem}`] : [`vale5:g${mem}`, `vale5:s${mem}`];
    const res = runCli([...feeds, '+', pass, '--port', goodPort, '--json', '+', stomper, '--port', badPort, '--json']);
    assert.is(res.status, 0, res.stderr);
    const all = summaries(res.stdout);
    const good = all.find((s) => s.port === goodPort);
    const bad = all.find((s) => s.port === badPort);
    assert.ok(good && bad, res.stdout);
    assert.is(bad!.packets, n, 'the stomper ran over its whole input');
    assert.is(good!.packets, n);
    assert.is(good!.verdicts.pass, n, `good clause: ${JSON.stringify(good!.verdicts)} ${JSON.stringify(good!.faults)}`);
    assert.is(good!.verdicts.drop, 0);
    assert.is(good!.faultVerdicts, 0);
    assert.is(good!.faults.violationSlots, 0);
  });
}

test('a batch that breaks the ABI on some slots only gets the fault verdict on every slot (--on-fault closed: 0 passes)', () => {
  // d: duplicated buf_idx, s: swapped pair, u: half the verdicts unset, l: one len out of
  // range (mixed-violation.wasm); p: a passive data segment copied over a slot (memory.init).
  for (const mode of ['d', 's', 'u', 'l', 'p']) {
    const config = join(dir, `mixed-${mode}.cfg`);
    writeFileSync(config, mode);
    const module = mode === 'p' ? join(root, 'filters', 'build', 'fixtures', 'passive-over-ring.wasm') : mixed;
    const res = runCli(['load', module, '--config', config, '--port', 'gen:count=5000', '--to', `m{${mode}`, '--on-fault', 'closed', '--json', '+', counter, '--port', `m}${mode}`, '--json']);
    assert.is(res.status, 0, res.stderr);
    const [filter, after] = summaries(res.stdout);
    assert.ok(filter && after, res.stdout);
    assert.is(filter.verdicts.pass, 0, `mode ${mode}: ${JSON.stringify(filter.verdicts)}`);
    assert.is(filter.verdicts.drop, 0, 'fault verdicts are counted apart from drop');
    assert.is(filter.verdicts.fault, 5000);
    assert.is(filter.faultVerdicts, 5000);
    assert.ok(filter.faults.violations >= 1, `mode ${mode}: faulted`);
    assert.is(after.packets, 0, `mode ${mode}: nothing passed on`);
  }
});

test('a runaway filter in the middle of a chain fails alone: restarted, its packets get the fault verdict, the chain ends', () => {
  const looping = join(root, 'filters', 'build', 'fixtures', 'infinite-loop.wasm');
  // Back-pressure free whatever the machine's load: each pipe's queue (8192 slots) holds the
  // whole input (8000 packets), so no writer ever waits for a reader (at most 1 s, then
  // refused: the middle saw fewer packets when the runaway's 50 ms of CPU took seconds).
  const N = 8000;
  const conf = '@conf:slots=8192';
  for (const [onFault, delivered] of [['open', N], ['closed', 0]] as const) {
    const res = runCli([
      'load', counter, '--port', `gen:count=${N}`, '--to', `h{1${conf}`, '--json',
      '+', looping, '--port', `h}1${conf}`, '--to', `h{2${conf}`, '--on-fault', onFault, '--batch-timeout', '50', '--json',
      '+', counter, '--port', `h}2${conf}`, '--json',
    ]);
    assert.is(res.status, 0, res.stderr);
    assert.match(res.stderr, /timeout fault: a guest call used [\d.]+ ms of CPU in [\d.]+ ms \(budget 50 ms of CPU\): worker killed; traffic again after [\d.]+ ms/);
    const [head, middle, tail] = summaries(res.stdout);
    assert.ok(head && middle && tail, res.stdout);
    assert.is(head!.out.packets, N);
    assert.is(head!.out.drops, 0, 'the queue held the whole input: nothing refused');
    assert.is(middle!.packets, N, `--on-fault ${onFault}: the middle ring kept moving`);
    assert.ok(middle!.faults.timeouts >= 1);
    assert.is(middle!.verdicts.fault, N, 'every packet of the runaway got the fault verdict');
    assert.is(middle!.out.drops, 0);
    assert.is(tail!.packets, delivered, `--on-fault ${onFault}: ${delivered} packets passed on`);
    assert.is(tail!.stoppedBy, 'eof');
  }
});

test('bad software port names and clauses: one line, exit 2', () => {
  const cases: [string[], RegExp][] = [
    [['load', counter, '--port', 'p}1/T'], /^--port "p}1\/T": \/T selects the TX side only, but an input port needs its RX side \(drop \/T\)$/],
    [['load', counter, '--port', 'p}1@conf:slots=32'], /^--port "p}1@conf:slots=32": @conf: expected 64\.\.16384 slots for a software port, got 32$/],
    [['load', counter, '--port', 'vale0:a-3'], /^port vale0:a-3: ring 3 is out of range: vale0:a has 1 ring\(s\) \(0\.\.0; set them with @conf:rings=N\) \(ERANGE\)$/],
    [['load', counter, '--port', 'gen:count=1', '+'], /^nmwasm load \(filter 2 of 2\): expected MODULE --port SPEC between the "\+" separators, got nothing$/],
    [['load', counter, '--port', 'gen:count=1', '--bidir', '--to', 'p{1'], /^--bidir: expected a --port that can also send \(an interface, pipe or VALE port\), got "gen:count=1"$/],
  ];
  // A later clause that cannot open: the earlier clauses never start and leave no file.
  const partial = join(dir, 'never.pcap');
  cases.push([['load', counter, '--port', 'gen:count=5', '--out', `pcap:${partial}`, '--to', 'q{1', '+', counter, '--port', 'vale0:a-3'], /^port vale0:a-3: ring 3 is out of range/]);
  for (const [args, expected] of cases) {
    const res = runCli(args);
    assert.is(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
    const lines = res.stderr.trim().split('\n');
    assert.is(lines.length, 1, res.stderr);
    assert.match(lines[0]!, expected);
  }
  assert.not.ok(existsSync(partial), 'no output file after a failed start');
});

test.run();
