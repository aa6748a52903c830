// Several filters in one host joined by software pipes and a VALE switch (`load ... + ...`),
// run through the real CLI: what comes out of a chain is exactly what the single filter
// writes, packets move between software ports without a copy, a full queue slows the
// writer down instead of dropping, and the chain ends by itself when its source ends.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
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
  verdicts: { pass: number; drop: number; host: number; forward: number };
  out: { packets: number; zeroCopy: number; drops: number };
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

test('three filters over a pipe and a VALE switch: the middle one forwards without copying, nothing is lost to a full queue', () => {
  const out = join(dir, 'vale.pcap');
  const direct = join(dir, 'direct.pcap');
  const gen = 'gen:count=200000,size=64-1518,seed=7';
  const res = runCli([
    'load', counter, '--port', gen, '--to', 'c{1', '--json',
    '+', counter, '--port', 'c}1', '--to', 'vale3:in', '--json',
    '+', counter, '--port', 'vale3:out', '--out', `pcap:${out}`, '--json',
  ]);
  assert.is(res.status, 0, res.stderr);
  const [head, middle, tail] = summaries(res.stdout);
  assert.ok(head && middle && tail, res.stdout);
  assert.is(head.out.packets, 200000);
  assert.is(head.out.zeroCopy, 0, 'gen has its own memory: one copy into the pipe');
  assert.is(middle.packets, 200000);
  assert.is(middle.out.zeroCopy, 200000, 'pipe -> VALE port: every packet moved by buffer swap');
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

test('a runaway filter in the middle of a chain fails alone: restarted, its packets get the fault verdict, the chain ends', () => {
  const looping = join(root, 'filters', 'build', 'fixtures', 'infinite-loop.wasm');
  for (const [onFault, delivered] of [['open', 50000], ['closed', 0]] as const) {
    const res = runCli([
      'load', counter, '--port', 'gen:count=50000', '--to', 'h{1', '--json',
      '+', looping, '--port', 'h}1', '--to', 'h{2', '--on-fault', onFault, '--batch-timeout', '50', '--json',
      '+', counter, '--port', 'h}2', '--json',
    ]);
    assert.is(res.status, 0, res.stderr);
    assert.match(res.stderr, /timeout fault: a guest call used [\d.]+ ms of CPU in [\d.]+ ms \(budget 50 ms of CPU\): worker killed; traffic again after [\d.]+ ms/);
    const [head, middle, tail] = summaries(res.stdout);
    assert.ok(head && middle && tail, res.stdout);
    assert.is(middle!.packets, 50000, `--on-fault ${onFault}: the middle ring kept moving`);
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
