// Chains of modules on one ring (docs/ABI.md section 9), end to end with the bundled CLI:
// modules whose verdicts depend on gen's sequence numbers (test/chain/fixtures.ts), so the test
// computes every count itself. `nmwasm stats --json`, a scrape of /metrics and the final summary
// agree with those counts on a 2-ring gen: host and on a 3-module chain, per ring and per
// module; a module trapping in the middle of a chain faults alone (the others keep counting,
// the fault verdict goes only to the packets that reach it); `swap --module 2` swaps that
// module only; the output holds exactly the frames the chain passed, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ensureBundle, haveNative, root, type CliResult, startHost as startHostIn } from './helpers.ts';
import { modelChain, range, seqModule, type ModuleCounts, type SeqRule } from '../chain/fixtures.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-chain-'));
const env = { ...process.env, XDG_RUNTIME_DIR: join(dir, 'xdg') };
const tag = `c${process.pid}`;
const live = haveNative ? test : (() => {}) as unknown as typeof test;

const DROP3: SeqRule = { mod: 3, rem: 0, verdict: 0 }; // DROP every 3rd frame
const HOST5: SeqRule = { mod: 5, rem: 0, verdict: 2 }; // HOST every 5th
const DROP7: SeqRule = { mod: 7, rem: 0, verdict: 0 }; // DROP every 7th
const drop3 = seqModule('drop3', DROP3, dir);
const host5 = seqModule('host5', HOST5, dir);
const drop7 = seqModule('drop7', DROP7, dir);
const pass = seqModule('pass', { mod: 1, rem: 1, verdict: 1 }, dir); // PASS everything
const N = 6000;

function nm(args: string[]): CliResult {
  const res = spawnSync(process.execPath, [cli, ...args], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

const startHost = (args: string[]): ReturnType<typeof startHostIn> => startHostIn(args, env);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface ModuleJson extends ModuleCounts {
  index: number;
  module: string;
  faults: Record<string, number>;
  restarts: number;
}
interface ClauseJson extends ModuleCounts {
  rings: number;
  port: string;
  faults: Record<string, number>;
  modules: ModuleJson[];
}
interface StatsJson {
  clauses: ClauseJson[];
}

/** Polls `stats --json` until `ready(answer)` holds (60 s at most). */
async function until(name: string, ready: (a: StatsJson) => boolean): Promise<StatsJson> {
  const end = Date.now() + 60_000;
  for (;;) {
    const res = nm(['stats', name, '--json']);
    if (res.status === 0) {
      const a = JSON.parse(res.stdout) as StatsJson;
      if (ready(a)) return a;
    }
    if (Date.now() > end) throw new Error(`host ${name} not ready: ${res.stderr}${res.stdout}`);
    await sleep(100);
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Sum of the values of `metric{...}` lines whose labels include every one of `labels`. */
function metric(text: string, name: string, labels: Record<string, string>): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

const counts = (c: ModuleCounts): ModuleCounts => ({ packets: c.packets, verdicts: c.verdicts });
const VERDICTS = ['pass', 'drop', 'host', 'forward', 'fault'] as const;

/** The model's counts as /metrics shows them for `labels` (verdicts by the `verdict` label). */
function metricCounts(text: string, packetsName: string, verdictsName: string, labels: Record<string, string>): ModuleCounts {
  const verdicts = Object.fromEntries(VERDICTS.map((v) => [v, metric(text, verdictsName, { ...labels, verdict: v })])) as ModuleCounts['verdicts'];
  return { packets: metric(text, packetsName, labels), verdicts };
}

live('stats --json, /metrics and the final summary agree with the computed counts: a 2-ring gen: host and a 3-module chain', async () => {
  const name = `${tag}-a`;
  const port = await freePort();
  // Clause 0: one module on 2 rings; clause 1: a chain of 3 on one ring; clause 2 reads a pipe
  // nobody writes, so the host waits, quiescent, once both generators ended.
  const host = startHost([
    'load', drop3, '--port', `gen:count=${N},rings=2,seq`, '--json', '--name', name, '--metrics', `127.0.0.1:${port}`,
    '+', drop3, host5, drop7, '--port', `gen:count=${N},seq`, '--json',
    '+', pass, '--port', `${tag}idle}1`, '--json',
  ]);
  try {
    const done = (c: ClauseJson): boolean => c.packets === N && VERDICTS.reduce((s, v) => s + c.verdicts[v], 0) === N;
    const stats = await until(name, (a) => done(a.clauses[0]!) && done(a.clauses[1]!));
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    // (a) 2 rings: each ring's frames carry its own 0, 1, ... (docs/PORTS.md "seq"): the split
    // between the rings is read from /metrics, every verdict is computed.
    const perRing = [0, 1].map((r) => metric(text, 'nmwasm_packets_total', { clause: '0', ring: String(r) }));
    assert.is(perRing[0]! + perRing[1]!, N);
    assert.ok(perRing.every((n) => n > 0), `both rings got frames: ${perRing.join(', ')}`);
    const ringModels = perRing.map((n) => modelChain([DROP3], range(n)));
    for (const r of [0, 1]) {
      assert.equal(metricCounts(text, 'nmwasm_packets_total', 'nmwasm_verdicts_total', { clause: '0', ring: String(r) }), counts(ringModels[r]!.total), `ring ${r} in /metrics`);
      assert.equal(metricCounts(text, 'nmwasm_module_packets_total', 'nmwasm_module_verdicts_total', { clause: '0', ring: String(r), position: '0' }), counts(ringModels[r]!.modules[0]!), `ring ${r}, module 0 in /metrics`);
    }
    const twoRings = modelChain([DROP3], [...range(perRing[0]!), ...range(perRing[1]!)]);
    const [c0, c1] = stats.clauses as [ClauseJson, ClauseJson];
    assert.is(c0.rings, 2);
    assert.equal(counts(c0), counts(twoRings.total), '2-ring clause in stats');
    assert.equal(c0.modules.map(counts), twoRings.modules.map(counts), '2-ring clause, per module, in stats');
    // (b) the chain drop3 -> host5 -> drop7 on frames 0 .. N-1.
    const chain = modelChain([DROP3, HOST5, DROP7], range(N));
    assert.equal(counts(c1), counts(chain.total), 'chain in stats');
    assert.equal(c1.modules.map(counts), chain.modules.map(counts), 'chain, per module, in stats');
    assert.equal(c1.modules.map((m) => m.module), [drop3, host5, drop7]);
    assert.equal(metricCounts(text, 'nmwasm_packets_total', 'nmwasm_verdicts_total', { clause: '1' }), counts(chain.total), 'chain in /metrics');
    for (const k of [0, 1, 2]) {
      assert.equal(metricCounts(text, 'nmwasm_module_packets_total', 'nmwasm_module_verdicts_total', { clause: '1', position: String(k) }), counts(chain.modules[k]!), `chain module ${k} in /metrics`);
    }
    assert.match(text, /nmwasm_module_packets_total\{[^}]*module="host5.wasm",position="1"/);
    // ps lists the chain's modules in order.
    const ps = JSON.parse(nm(['ps', '--json']).stdout) as { hosts: { name: string; clauses: { modules: { path: string }[] }[] }[] };
    assert.equal(ps.hosts.find((h) => h.name === name)!.clauses[1]!.modules.map((m) => m.path), [drop3, host5, drop7]);
    // The text of `stats`: one line per module of the chain.
    const statsText = nm(['stats', name]);
    assert.is(statsText.status, 0, statsText.stderr);
    assert.ok(statsText.stdout.includes(`\nmodule 1 ${host5}: ${chain.modules[1]!.packets} packets: pass ${chain.modules[1]!.verdicts.pass}, drop 0, host ${chain.modules[1]!.verdicts.host}, forward 0, fault 0\n`), statsText.stdout);
    // The final summary (unload) says the same.
    const unload = nm(['unload', name, '--json']);
    assert.is(unload.status, 0, unload.stderr);
    const res = await host.done;
    assert.is(res.status, 0, res.stderr);
    const printed = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as ClauseJson);
    assert.equal(counts(printed[0]!), counts(twoRings.total));
    assert.equal(printed[0]!.modules.map(counts), twoRings.modules.map(counts));
    assert.equal(counts(printed[1]!), counts(chain.total));
    assert.equal(printed[1]!.modules.map(counts), chain.modules.map(counts));
    assert.equal((JSON.parse(unload.stdout) as StatsJson).clauses.map((c) => c.modules.map(counts)), printed.map((c) => c.modules.map(counts)), 'unload answer = host summary');
  } finally {
    host.child.kill('SIGKILL');
  }
});

live('a module trapping in the middle of a chain faults alone: the others keep counting, the fault verdict goes only to the packets that reach it', () => {
  // host5 that also traps on frames 500, 1500, ...: paced, so it restarts after its back-offs.
  const trapper = seqModule('trap-host5', { ...HOST5, trapMod: 1000, trapRem: 500 }, dir);
  const count = 12_000;
  const res = nm(['load', drop3, trapper, drop7, '--port', `gen:count=${count},seq,pps=12000`, '--json']);
  assert.is(res.status, 0, res.stderr);
  const s = JSON.parse(res.stdout) as ClauseJson;
  const [m0, m1, m2] = s.modules as [ModuleJson, ModuleJson, ModuleJson];
  const model = modelChain([DROP3], range(count));
  // The module before it: every frame, exactly its own verdicts, no fault.
  assert.equal(counts(m0), counts(model.modules[0]!));
  assert.is(m0.verdicts.fault, 0);
  assert.equal([m0.faults.traps, m0.restarts], [0, 0]);
  // The trapping module: it faulted (and restarted), and only the frames that reached it got the fault verdict.
  assert.ok(m1.faults.traps >= 1, `traps: ${m1.faults.traps}`);
  assert.ok(m1.restarts >= 1, `restarts: ${m1.restarts}`);
  assert.is(m1.packets, m0.verdicts.pass);
  assert.ok(m1.verdicts.fault > 0 && m1.verdicts.pass > 0, JSON.stringify(m1.verdicts));
  assert.is(m1.verdicts.pass + m1.verdicts.drop + m1.verdicts.host + m1.verdicts.fault, m1.packets);
  assert.match(res.stderr, /trap-host5\.wasm \(module 1 of 3\) on gen:[^ ]* ring 0: trap fault: trap: unreachable; fault verdicts for \d+ ms to the packets that reach it/);
  // The module after it: what the trapping module passed, its own verdicts, no fault.
  assert.is(m2.packets, m1.verdicts.pass);
  assert.is(m2.verdicts.fault, 0);
  assert.equal([m2.faults.traps, m2.restarts], [0, 0]);
  assert.is(m2.verdicts.pass + m2.verdicts.drop, m2.packets);
  // The clause: the fault verdicts (DROP, --on-fault closed) are the trapping module's, counted as fault.
  assert.equal(s.verdicts, { pass: m2.verdicts.pass, drop: m0.verdicts.drop + m2.verdicts.drop, host: m1.verdicts.host, forward: 0, fault: m1.verdicts.fault });
  assert.is(s.faults.traps, m1.faults.traps);
  assert.is(s.packets, count);
});

live('a module of a chain killed by the watchdog: its batch gets the fault verdict as a whole, the module alone waits out its back-off', () => {
  const looping = join(root, 'filters', 'build', 'fixtures', 'infinite-loop.wasm');
  const count = 50_000;
  const res = nm(['load', drop3, looping, drop7, '--port', `gen:count=${count},seq,pps=50000`, '--json']);
  assert.is(res.status, 0, res.stderr);
  const s = JSON.parse(res.stdout) as ClauseJson;
  const [m0, m1, m2] = s.modules as [ModuleJson, ModuleJson, ModuleJson];
  assert.ok(m1.faults.timeouts >= 1, `timeouts: ${m1.faults.timeouts}`);
  assert.is(s.faults.timeouts, m1.faults.timeouts);
  assert.equal([m0.faults.timeouts, m0.faults.traps, m0.restarts, m0.verdicts.fault], [0, 0, 0, 0], 'module 0 ran on');
  // Module 0 gave its own verdict to every frame but those of the killed batches (the clause's
  // fault verdicts beyond module 1's own).
  const killed = s.verdicts.fault - m1.verdicts.fault;
  assert.ok(killed > 0);
  assert.is(m0.packets + killed, count);
  assert.is(m0.verdicts.pass + m0.verdicts.drop, m0.packets);
  assert.is(m1.packets, m0.verdicts.pass);
  assert.is(m1.verdicts.fault, m1.packets, 'every frame that reached module 1 got the fault verdict');
  assert.is(m2.packets, 0);
  assert.equal(s.verdicts, { pass: 0, drop: m0.verdicts.drop, host: 0, forward: 0, fault: count - m0.verdicts.drop });
  assert.match(res.stderr, /infinite-loop\.wasm \(module 1 of 3\) on gen:\S* ring 0: timeout fault: /);
});

live('--on-fault open: a failed module in a chain passes the packets that reach it on to the next module', () => {
  const trapper = seqModule('trap-all', { mod: 1, rem: 1, verdict: 1, trapMod: 1, trapRem: 0 }, dir);
  const res = nm(['load', drop3, trapper, drop7, '--port', `gen:count=${N},seq`, '--on-fault', 'open', '--json']);
  assert.is(res.status, 0, res.stderr);
  const s = JSON.parse(res.stdout) as ClauseJson;
  // The trapping module gave every frame that reached it PASS (the fault verdict): drop7 saw them all.
  const model = modelChain([DROP3, DROP7], range(N));
  assert.equal(s.modules[1]!.verdicts, { pass: 0, drop: 0, host: 0, forward: 0, fault: model.modules[1]!.packets });
  assert.equal(counts(s.modules[2]!), counts(model.modules[1]!));
  assert.equal(s.verdicts, model.total.verdicts, 'fault verdicts that went on are counted by the module that ended them');
});

live('swap --module 2 swaps that module only; the others keep their verdicts and no packet is lost', async () => {
  const name = `${tag}-s`;
  const out = join(dir, 'swap.pcap');
  // An endless paced source: the host serves until unloaded.
  const host = startHost(['load', drop3, host5, pass, '--port', 'gen:seq,pps=4000', '--out', `pcap:${out}`, '--json', '--name', name]);
  try {
    const before = await until(name, (a) => a.clauses[0]!.packets > 1000);
    const wrong = nm(['swap', name, drop7, '--module', '3']);
    assert.is(wrong.status, 2);
    assert.match(wrong.stderr.trim(), /--module: expected 0\.\.2 \(clause 0 runs 3 modules\), got 3$/);
    const swap = nm(['swap', name, drop7, '--module', '2', '--json']);
    assert.is(swap.status, 0, swap.stderr);
    assert.ok((JSON.parse(swap.stdout) as { swap: { ok: boolean } }).swap.ok, swap.stdout);
    await until(name, (a) => a.clauses[0]!.packets > before.clauses[0]!.packets + 3000);
    const unload = nm(['unload', name]);
    assert.is(unload.status, 0, unload.stderr);
  } finally {
    const ended = await Promise.race([host.done, sleep(30_000).then(() => null)]);
    host.child.kill('SIGKILL');
    assert.ok(ended !== null, 'the host ended when unloaded');
  }
  const res = await host.done;
  assert.is(res.status, 0, res.stderr);
  const s = JSON.parse(res.stdout.trim().split('\n').pop()!) as ClauseJson;
  const count = s.packets;
  const model = modelChain([DROP3, HOST5], range(count));
  const [m0, m1, m2] = s.modules as [ModuleJson, ModuleJson, ModuleJson];
  // Modules 0 and 1 were not swapped: exactly their verdicts over every frame.
  assert.equal(counts(m0), counts(model.modules[0]!));
  assert.equal(counts(m1), counts(model.modules[1]!));
  // Module 2 saw every frame module 1 passed; it passed all before the swap, drop7 dropped after it.
  assert.is(m2.packets, m1.verdicts.pass);
  assert.ok(m2.verdicts.drop > 0, 'the swapped-in module serves');
  assert.is(m2.verdicts.pass + m2.verdicts.drop, m2.packets);
  assert.equal([s.verdicts.fault, s.faults.traps], [0, 0]);
  // The output: every frame the chain passed, in order; before the swap point all of module 1's
  // PASS frames, after it those drop7 passes.
  const seqs = pcapSeqs(readFileSync(out));
  assert.is(seqs.length, s.verdicts.pass);
  const passed1 = range(count).filter((q) => q % 3 !== 0 && q % 5 !== 0);
  const firstDropped = passed1.findIndex((q, i) => seqs[i] !== q);
  assert.ok(firstDropped > 0, 'frames before the swap all passed');
  assert.equal(seqs.slice(firstDropped), passed1.slice(firstDropped).filter((q) => q % 7 !== 0), 'after the swap: drop7, every frame in order');
});

/** The low 32 bits of each frame's sequence number in a pcap file. */
function pcapSeqs(bytes: Buffer): number[] {
  const seqs: number[] = [];
  for (let at = 24; at + 16 <= bytes.length; ) {
    const len = bytes.readUInt32LE(at + 8);
    at += 16;
    seqs.push(bytes.readUInt32BE(at + len - 4));
    at += len;
  }
  return seqs;
}

test.run();
