// Links that fail under a running host: an interface set down and up again, deleted (as an
// input, as a --to output, beside another clause that runs on), an MTU AF_XDP frames cannot
// hold, frames too long for them. Namespace pairs: ns s [a] --veth-- [b] ns r, nmwasm in r.
// IPv6 is off and neighbours are static, so the only frames are the ones a test sends.
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import { cli, ensureBundle, root } from '../cli/helpers.ts';
import { NetLab, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('nl');
const net = (n: number): string => `10.${80 + n}.${process.pid % 250}`;
const pass = join(root, 'filters/build/fixtures/pass.wasm');
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-links-'));
let pairs = 0;

interface Summary {
  port: string;
  packets: number;
  stoppedBy: string;
  verdicts: { pass: number; drop: number };
  out: { packets: number; drops: number };
  oversize: number;
}

/** Two namespaces joined by a veth pair, addresses, static neighbours, no IPv6. */
function pair(suffix: string): { s: string; r: string; a: string; b: string; ip: string } {
  const ip = net(pairs++);
  const s = lab.ns(`s${suffix}`);
  const r = lab.ns(`r${suffix}`);
  for (const ns of [s, r]) lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  const a = `${lab.tag}${suffix}a`;
  const b = `${lab.tag}${suffix}b`;
  lab.veth(a, s, b, r);
  lab.exec(s, 'ip', ['addr', 'add', `${ip}.1/24`, 'dev', a]);
  lab.exec(r, 'ip', ['addr', 'add', `${ip}.2/24`, 'dev', b]);
  const mac = (ns: string, dev: string): string => /link\/ether ([0-9a-f:]+)/.exec(lab.exec(ns, 'ip', ['link', 'show', 'dev', dev]))![1]!;
  lab.exec(s, 'ip', ['neigh', 'replace', `${ip}.2`, 'lladdr', mac(r, b), 'dev', a, 'nud', 'permanent']);
  lab.exec(r, 'ip', ['neigh', 'replace', `${ip}.1`, 'lladdr', mac(s, a), 'dev', b, 'nud', 'permanent']);
  return { s, r, a, b, ip };
}

/** `count` UDP datagrams of `size` bytes from ns `s` to ip.2. */
function sendUdp(s: string, ip: string, count: number, size: number): void {
  lab.exec(s, 'python3', ['-c', `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(${count}): s.sendto(b'u'*${size},('${ip}.2',9999))`]);
}

/** A second veth pair c <-> d inside namespace `ns` (an idle port beside the pair's). */
function localPair(ns: string, suffix: string): string {
  const c = `${lab.tag}${suffix}c`;
  lab.veth(c, ns, `${lab.tag}${suffix}d`, ns);
  return c;
}

type Run = ReturnType<NetLab['start']>;

/** Starts nmwasm load in `ns` and waits until every port is open and the rings run. */
async function startLoad(ns: string, args: string[], opened: RegExp): Promise<Run> {
  const run = lab.start(ns, process.execPath, [cli, 'load', ...args]);
  await until('nmwasm to open its ports', () => opened.test(run.output()) || run.child.exitCode !== null);
  assert.is(run.child.exitCode, null, run.output());
  await new Promise((r) => setTimeout(r, 500)); // the ring workers instantiate the filter
  return run;
}

async function exited(run: Run): Promise<number> {
  await until('nmwasm to exit', () => run.child.exitCode !== null, 30_000).catch((err) => {
    run.child.kill('SIGTERM');
    throw new Error(`${(err as Error).message}: ${run.output()}`);
  });
  return run.child.exitCode!;
}

const lines = (run: Run, pattern: RegExp): string[] => run.output().split('\n').filter((l) => pattern.test(l));
const summaries = (run: Run): Summary[] => lines(run, /^\{/).map((l) => JSON.parse(l) as Summary);

/** CPU seconds (user + system, every thread) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
}

t('packet: link down is reported once, up again once; the rings do not spin while it is down; traffic flows after', async () => {
  ensureBundle();
  const { s, r, a, b, ip } = pair('d');
  const run = await startLoad(r, [pass, '--port', `packet:${b}`, '--batch-timeout', '5000', '--json'], /AF_PACKET cannot take packets away/);
  lab.exec(r, 'ip', ['link', 'set', b, 'down']);
  await until('the link down line', () => lines(run, /link down/).length > 0);
  // NB: before the fix, POLLERR (ENETDOWN on the sockets) woke both ring threads at once, forever.
  const before = cpuSeconds(run.child.pid!);
  await new Promise((res) => setTimeout(res, 2000));
  const used = cpuSeconds(run.child.pid!) - before;
  assert.ok(used < 0.25, `the host used ${used} CPU seconds in 2 s with the link down: the idle wait spins`);
  lab.exec(r, 'ip', ['link', 'set', b, 'up']);
  await until('the link up line', () => lines(run, /link up again/).length > 0);
  // Down flushed r's neighbours: put the static one back (else an ARP reply is a 6th frame).
  const mac = /link\/ether ([0-9a-f:]+)/.exec(lab.exec(s, 'ip', ['link', 'show', 'dev', a]))![1]!;
  lab.exec(r, 'ip', ['neigh', 'replace', `${ip}.1`, 'lladdr', mac, 'dev', b, 'nud', 'permanent']);
  sendUdp(s, ip, 5, 100);
  await new Promise((res) => setTimeout(res, 500));
  run.child.kill('SIGTERM');
  assert.is(await exited(run), 0, run.output());
  assert.equal(lines(run, /link down/), [`packet:${b}: link down`], run.output());
  assert.equal(lines(run, /link up again/), [`packet:${b}: link up again`], run.output());
  assert.is(summaries(run)[0]!.packets, 5, 'the 5 datagrams sent after the link came back');
});

t('xdp: link down is reported once, up again once; the queue takes traffic again after', async () => {
  const { s, r, a, b, ip } = pair('u');
  const run = await startLoad(r, [pass, '--port', `xdp:${b}`, '--batch-timeout', '5000', '--json'], /AF_XDP (copy|zero-copy) mode/);
  lab.exec(s, 'ip', ['link', 'set', a, 'down']); // the peer: b loses its carrier
  await until('the link down line', () => lines(run, /link down/).length > 0);
  lab.exec(s, 'ip', ['link', 'set', a, 'up']);
  await until('the link up line', () => lines(run, /link up again/).length > 0);
  const mac = /link\/ether ([0-9a-f:]+)/.exec(lab.exec(r, 'ip', ['link', 'show', 'dev', b]))![1]!;
  lab.exec(s, 'ip', ['neigh', 'replace', `${ip}.2`, 'lladdr', mac, 'dev', a, 'nud', 'permanent']);
  sendUdp(s, ip, 5, 100);
  await new Promise((res) => setTimeout(res, 500));
  run.child.kill('SIGTERM');
  assert.is(await exited(run), 0, run.output());
  assert.equal(lines(run, /link (down|up)/), [`xdp:${b}: link down`, `xdp:${b}: link up again`], run.output());
  assert.is(summaries(run)[0]!.packets, 5, 'the 5 datagrams sent after the link came back');
});

t('packet: a deleted input ends the only clause: one line, its summary, exit 1', async () => {
  const { s, r, b } = pair('x');
  const run = await startLoad(r, [pass, '--port', `packet:${b}`, '--batch-timeout', '5000', '--json'], /AF_PACKET cannot take packets away/);
  lab.exec(s, 'ip', ['link', 'del', `${b.slice(0, -1)}a`]); // deleting one end deletes the pair
  assert.is(await exited(run), 1, run.output());
  assert.equal(lines(run, /deleted/), [`packet:${b}: interface deleted: its clause ended`], run.output());
  assert.is(summaries(run)[0]!.stoppedBy, 'link');
});

t('xdp: a deleted input ends its clause; the other clause runs on; exit 1 at the end', async () => {
  const one = pair('y');
  const other = localPair(one.r, 'y');
  const run = await startLoad(
    one.r,
    [pass, '--port', `xdp:${one.b}`, '--batch-timeout', '5000', '--json', '+', pass, '--port', `packet:${other}`, '--batch-timeout', '5000', '--json'],
    /AF_XDP (copy|zero-copy) mode/,
  );
  lab.exec(one.s, 'ip', ['link', 'del', one.a]);
  await until('the deleted line', () => lines(run, /deleted/).length > 0);
  await new Promise((res) => setTimeout(res, 1000));
  assert.is(run.child.exitCode, null, `the other clause ended too: ${run.output()}`);
  run.child.kill('SIGTERM');
  assert.is(await exited(run), 1, run.output());
  assert.equal(lines(run, /deleted/), [`xdp:${one.b}: interface deleted: its clause ended`], run.output());
  const [first, second] = summaries(run);
  assert.equal([first!.stoppedBy, second!.stoppedBy], ['link', 'signal'], run.output());
});

t('xdp: a deleted --to interface ends its clause (not only out drops)', async () => {
  const one = pair('o');
  const input = localPair(one.r, 'o');
  const run = await startLoad(one.r, [pass, '--port', `packet:${input}`, '--to', `xdp:${one.b}`, '--batch-timeout', '5000', '--json'], /AF_PACKET cannot take packets away/);
  lab.exec(one.s, 'ip', ['link', 'del', one.a]);
  assert.is(await exited(run), 1, run.output());
  assert.equal(lines(run, /deleted/), [`xdp:${one.b}: interface deleted: its clause ended`], run.output());
  assert.is(summaries(run)[0]!.stoppedBy, 'link');
});

t('xdp: an MTU AF_XDP frames cannot hold is refused at start, naming the MTU, the largest that fits and the fix', () => {
  const { r, b } = pair('m');
  lab.exec(r, 'ip', ['link', 'set', b, 'mtu', '9000']);
  const res = spawnSync('ip', ['netns', 'exec', r, process.execPath, cli, 'load', pass, '--port', `xdp:${b}`], { encoding: 'utf8', timeout: 30_000 });
  const err = res.stderr.split('\n').filter((l) => l.length > 0);
  assert.is(res.status, 2, res.stderr);
  assert.is(err.length, 1, res.stderr);
  assert.match(err[0]!, new RegExp(`xdp:${b}: MTU 9000 of ${b} is larger than AF_XDP frames hold .*MTU at most 1778.*ip link set ${b} mtu 1778`));
});

t('xdp: frames longer than a frame (MTU raised while running) are counted and reported', async () => {
  const { s, r, a, b, ip } = pair('g');
  // @skb: native XDP on a veth caps the peer's MTU; generic XDP lets it be raised.
  const run = await startLoad(r, [pass, '--port', `xdp:${b}@skb`, '--batch-timeout', '5000', '--json'], /AF_XDP (copy|zero-copy) mode/);
  lab.exec(r, 'ip', ['link', 'set', b, 'mtu', '9000']);
  lab.exec(s, 'ip', ['link', 'set', a, 'mtu', '9000']);
  sendUdp(s, ip, 20, 4000);
  sendUdp(s, ip, 10, 100);
  await new Promise((res) => setTimeout(res, 700));
  run.child.kill('SIGTERM');
  assert.is(await exited(run), 0, run.output());
  const summary = summaries(run)[0]!;
  assert.equal([summary.packets, summary.oversize], [10, 20], run.output());
  assert.equal(lines(run, /kernel drops frames longer/).length, 1, run.output());
});

t('packet: an MTU over what the ring frames hold is said at start (frames would reach the filter cut)', async () => {
  const { s, r, a, b, ip } = pair('k');
  lab.exec(r, 'ip', ['link', 'set', b, 'mtu', '9000']);
  lab.exec(s, 'ip', ['link', 'set', a, 'mtu', '9000']);
  const run = await startLoad(r, [pass, '--port', `packet:${b}`, '--batch-timeout', '5000', '--json'], /AF_PACKET cannot take packets away/);
  sendUdp(s, ip, 3, 4000);
  await new Promise((res) => setTimeout(res, 500));
  run.child.kill('SIGTERM');
  assert.is(await exited(run), 0, run.output());
  assert.equal(lines(run, /MTU/), [`warning: packet:${b}: MTU 9000 of ${b}: frames over 1982 bytes reach the filter cut to that length (2048-byte AF_PACKET ring frames); lower it: ip link set ${b} mtu 1968`], run.output());
  const summary = summaries(run)[0]!;
  assert.is(summary.packets, 3);
  assert.is((summary as unknown as { bytes: number }).bytes, 3 * 1982, 'each 4042-byte frame arrived cut to 1982 bytes');
});

t('xdp: an output refuses (counts as out drops) a packet longer than its frames, never sends it cut', async () => {
  const { s, r, a, b } = pair('c');
  // A capture of 3 frames of 100 bytes and 2 of 3000 (ethertype 0x88b5, local experimental).
  const file = join(dir, 'big.pcap');
  const frame = (len: number): Buffer => {
    const f = Buffer.alloc(len, 0x55);
    Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5]).copy(f);
    return f;
  };
  const records = [100, 3000, 100, 3000, 100].map((len) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(len, 8);
    h.writeUInt32LE(len, 12);
    return Buffer.concat([h, frame(len)]);
  });
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  writeFileSync(file, Buffer.concat([header, ...records]));
  const dump = lab.start(s, 'tcpdump', ['-n', '-i', a, '-c', '3', 'ether proto 0x88b5']);
  await until('tcpdump to listen', () => /listening on/.test(dump.output()));
  const res = spawnSync('ip', ['netns', 'exec', r, process.execPath, cli, 'load', pass, '--port', `pcap:${file}`, '--out', `xdp:${b}`, '--json'], { encoding: 'utf8', timeout: 30_000 });
  assert.is(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout.split('\n').find((l) => l.startsWith('{'))!) as Summary;
  assert.equal([summary.out.packets, summary.out.drops], [3, 2], res.stdout);
  await until('tcpdump to see the 3 short frames', () => dump.child.exitCode !== null, 10_000);
  assert.not.match(dump.output(), /length (17[0-9]{2}|3000)/, 'no frame went out cut (or whole)');
});

test.after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
