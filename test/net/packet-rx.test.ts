// AF_PACKET receive in a namespace pair: ns s [a] --veth-- [b] ns r, nmwasm in r.
// IPv6 is off and neighbours are static, so the only frames are the ones each test sends:
// the counts must match exactly.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { join } from 'node:path';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { cli, ensureBundle, pcapRecords, pcaps, root } from '../cli/helpers.ts';
import { NetLab, jsonSummary, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('nr');
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-rx-'));
const net = `10.78.${process.pid % 250}`;
const icmpOnly = join(dir, 'icmp.rules');
writeFileSync(icmpOnly, 'pass icmp\ndefault drop\n');

interface Summary {
  packets: number;
  bytes: number;
  rings: number;
  stoppedBy: string;
  verdicts: { pass: number; drop: number };
  filterStats: Record<string, number>;
}

/** Two namespaces joined by a veth pair (queues each way), addresses, static neighbours, no IPv6. */
function pair(suffix: string, queues = 1): { s: string; r: string; a: string; b: string } {
  const s = lab.ns(`s${suffix}`);
  const r = lab.ns(`r${suffix}`);
  for (const ns of [s, r]) {
    lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1']);
    lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  const a = `${lab.tag}${suffix}a`;
  const b = `${lab.tag}${suffix}b`;
  lab.veth(a, s, b, r, queues);
  lab.exec(s, 'ip', ['addr', 'add', `${net}.1/24`, 'dev', a]);
  lab.exec(r, 'ip', ['addr', 'add', `${net}.2/24`, 'dev', b]);
  const mac = (ns: string, dev: string): string => /link\/ether ([0-9a-f:]+)/.exec(lab.exec(ns, 'ip', ['link', 'show', 'dev', dev]))![1]!;
  lab.exec(s, 'ip', ['neigh', 'replace', `${net}.2`, 'lladdr', mac(r, b), 'dev', a, 'nud', 'permanent']);
  lab.exec(r, 'ip', ['neigh', 'replace', `${net}.1`, 'lladdr', mac(s, a), 'dev', b, 'nud', 'permanent']);
  return { s, r, a, b };
}

/** Starts nmwasm load in `ns`, waits until its ports are open, and returns a function awaiting its JSON summary. */
async function startLoad(ns: string, args: string[]): Promise<() => Promise<Summary>> {
  const run = lab.start(ns, process.execPath, [cli, 'load', ...args, '--batch-timeout', '5000', '--json']); // loaded CI machines instantiate slowly
  await until('nmwasm to open its port', () => /AF_PACKET cannot take packets away/.test(run.output()) || run.child.exitCode !== null);
  assert.is(run.child.exitCode, null, run.output());
  return () => jsonSummary<Summary>(run);
}

t('ping: the firewall sees exactly the 5 echo requests (the kernel still answers them)', async () => {
  ensureBundle();
  const { s, r, b } = pair('p');
  const done = await startLoad(r, [join(root, 'filters/build/firewall.wasm'), '--config', icmpOnly, '--port', `packet:${b}`, '--count', '5']);
  const out = lab.exec(s, 'ping', ['-c', '5', '-i', '0.2', `${net}.2`]);
  assert.match(out, /5 received/); // AF_PACKET is a monitor: the kernel replied anyway
  const summary = await done();
  assert.is(summary.packets, 5);
  assert.is(summary.verdicts.pass, 5);
  assert.is(summary.filterStats.passed, 5);
});

t('tcpreplay of a real capture: every frame arrives once, byte for byte in count', async () => {
  const capture = join(pcaps, 'babel_rfc6126bis.pcap');
  const records = pcapRecords(capture);
  const { s, r, a, b } = pair('t');
  const done = await startLoad(r, [join(root, 'filters/build/fixtures/pass.wasm'), '--port', `packet:${b}-0`, '--count', String(records)]);
  const replay = lab.exec(s, 'tcpreplay', ['-i', a, '--topspeed', capture]);
  assert.match(replay, new RegExp(`Successful packets:\\s+${records}\\b`), replay);
  const summary = await done();
  assert.is(summary.packets, records);
  assert.is(summary.verdicts.pass, records);
  assert.is(summary.stoppedBy, 'count');
});

t('4-queue veth with XPS: packet:IF-2 gets only what the sender put on TX queue 2', async () => {
  const { s, r, a, b } = pair('q', 4);
  // XPS on the sender: CPU 0 sends on queue 0, CPU 1 on queue 2; veth's RX queue is the sender's TX queue.
  lab.exec(s, 'sh', ['-c', [0, 1, 2, 3].map((q) => `echo ${q === 0 ? 1 : q === 2 ? 2 : 0} > /sys/class/net/${a}/queues/tx-${q}/xps_cpus`).join('; ')]);
  const done = await startLoad(r, [join(root, 'filters/build/fixtures/pass.wasm'), '--port', `packet:${b}-2`, '--count', '4']);
  lab.exec(s, 'taskset', ['-c', '0', 'ping', '-c', '3', '-i', '0.2', '-s', '100', `${net}.2`]); // queue 0: not ours
  lab.exec(s, 'taskset', ['-c', '1', 'ping', '-c', '4', '-i', '0.2', '-s', '200', `${net}.2`]); // queue 2
  const summary = await done();
  assert.is(summary.rings, 1);
  assert.is(summary.packets, 4);
  assert.is(summary.bytes, 4 * (14 + 20 + 8 + 200), 'a frame of queue 0 reached the ring of queue 2');
});

t('--count over several rings of a live port: exactly N frames taken from the kernel, N verdicts', async () => {
  const { s, r, a, b } = pair('c', 4);
  lab.exec(s, 'sh', ['-c', [0, 1, 2, 3].map((q) => `echo ${q === 0 ? 1 : q === 2 ? 2 : 0} > /sys/class/net/${a}/queues/tx-${q}/xps_cpus`).join('; ')]);
  const done = await startLoad(r, [join(root, 'filters/build/fixtures/pass.wasm'), '--port', `packet:${b}`, '--count', '300']);
  // Two floods at once, on queues 0 and 2: two rings take batches concurrently from one budget.
  for (const cpu of ['0', '1']) lab.start(s, 'taskset', ['-c', cpu, 'ping', '-f', '-c', '2000', '-s', '100', `${net}.2`]);
  const summary = await done();
  assert.ok(summary.rings >= 2, `${summary.rings} rings`);
  assert.is(summary.stoppedBy, 'count');
  assert.is(summary.packets, 300);
  assert.is(summary.verdicts.pass, 300);
});

t('SIGTERM during a flood: every frame taken from the kernel got its verdict', async () => {
  const { s, r } = pair('f');
  const run = lab.start(r, process.execPath, [cli, 'load', join(root, 'filters/build/fixtures/pass.wasm'), '--port', `packet:${lab.tag}fb`, '--batch-timeout', '5000', '--json']);
  await until('nmwasm to open its port', () => /AF_PACKET cannot take packets away/.test(run.output()) || run.child.exitCode !== null);
  const flood = lab.start(s, 'ping', ['-f', '-c', '1000000', '-s', '100', `${net}.2`]);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  run.child.kill('SIGTERM');
  const summary = await jsonSummary<Summary>(run);
  flood.child.kill('SIGKILL');
  assert.is(summary.stoppedBy, 'signal');
  assert.ok(summary.packets > 0, 'the flood reached the filter');
  assert.is(summary.verdicts.pass, summary.packets, `${summary.packets} packets, ${summary.verdicts.pass} verdicts`);
});

test.after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
