// AF_XDP in a namespace pair: ns s [a] --4-queue veth-- [b] ns r, nmwasm in r on b.
// XPS on the sender steers: CPU 0 sends on TX queue 0, CPU 1 on TX queue 2; on veth the
// receiver's RX queue is the sender's TX queue. Offloads are off (netlab) and IPv6 is off;
// the @all test sets static neighbours, so its counts are exact.
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { cli, ensureBundle, root } from '../cli/helpers.ts';
import { NetLab, jsonSummary, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('nx');
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-xdp-'));
const net = `10.79.${process.pid % 250}`;
const firewall = join(root, 'filters/build/firewall.wasm');
const passAll = join(root, 'filters/build/fixtures/pass.wasm');
const rules = (name: string, text: string): string => {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
};
const hostUdp = rules('host-udp.rules', 'host udp\ndefault drop\n');
const dropAll = rules('drop.rules', 'default drop\n');
// NB: 4 ring workers start on 2 cores: give init more than the 100 ms default.
const slow = ['--batch-timeout', '2000'];

interface Summary {
  packets: number;
  rings: number;
  stoppedBy: string;
  verdicts: { pass: number; drop: number; host: number };
}

/** Namespaces s and r joined by a 4-queue veth a (in s) <-> b (in r), XPS set on a. */
function pair(suffix: string): { s: string; r: string; a: string; b: string } {
  const s = lab.ns(`s${suffix}`);
  const r = lab.ns(`r${suffix}`);
  for (const ns of [s, r]) lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  const a = `${lab.tag}${suffix}a`;
  const b = `${lab.tag}${suffix}b`;
  lab.veth(a, s, b, r, 4);
  lab.exec(s, 'ip', ['addr', 'add', `${net}.1/24`, 'dev', a]);
  lab.exec(r, 'ip', ['addr', 'add', `${net}.2/24`, 'dev', b]);
  lab.exec(s, 'sh', ['-c', [0, 1, 2, 3].map((q) => `echo ${q === 0 ? 1 : q === 2 ? 2 : 0} > /sys/class/net/${a}/queues/tx-${q}/xps_cpus`).join('; ')]);
  return { s, r, a, b };
}

/** UDP datagrams of `size` bytes from ns `s` on CPU `cpu` (so on TX queue 0 or 2). */
function sendUdp(s: string, cpu: number, count: number, size: number): void {
  const code = `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(${count}): s.sendto(b'u'*${size},('${net}.2',9999))`;
  lab.exec(s, 'taskset', ['-c', String(cpu), 'python3', '-c', code]);
}

function xdpProgram(ns: string, dev: string): string {
  return /prog\/xdp id \d+ name (\S+)/.exec(lab.exec(ns, 'ip', ['link', 'show', 'dev', dev]))?.[1] ?? '';
}

/** Starts nmwasm load in `ns` and waits until its AF_XDP port is open (the start-up notice). */
async function startLoad(ns: string, args: string[]): Promise<{ child: ReturnType<NetLab['start']>['child']; output: () => string; summary: () => Promise<Summary> }> {
  const run = lab.start(ns, process.execPath, [cli, 'load', ...args, ...slow, '--json']);
  await until('nmwasm to open its AF_XDP port', () => /AF_XDP (copy|zero-copy) mode/.test(run.output()) || run.child.exitCode !== null);
  assert.is(run.child.exitCode, null, run.output());
  // The rings are attached once every worker logged its init line; a short settle keeps the
  // first datagrams from racing the last worker (they would wait in the ring anyway).
  await new Promise((r) => setTimeout(r, 300));
  const summary = (): Promise<Summary> => jsonSummary<Summary>(run);
  return { ...run, summary };
}

t('partial bypass: xdp:IF-2 takes queue 2 only; ARP and ICMP of queue 2 and all of queue 0 stay with the kernel', async () => {
  ensureBundle();
  const { s, r, a, b } = pair('p');
  const run = await startLoad(r, [firewall, '--config', dropAll, '--port', `xdp:${b}-2`, '--count', '6']);
  assert.is(xdpProgram(r, b).startsWith('nmwasm_'), true, 'nmwasm attached its XDP program');
  // Queue 0: not bypassed, the kernel answers (ARP resolves here too).
  assert.match(lab.exec(s, 'taskset', ['-c', '0', 'ping', '-c', '3', '-i', '0.2', `${net}.2`]), /3 received/);
  // Queue 2: ARP (neighbour flushed first) and ICMP are passed to the kernel by the XDP program.
  lab.exec(s, 'ip', ['neigh', 'flush', 'dev', a]);
  assert.match(lab.exec(s, 'taskset', ['-c', '1', 'ping', '-c', '3', '-i', '0.2', `${net}.2`]), /3 received/);
  sendUdp(s, 0, 4, 100); // queue 0: the kernel's (nothing listens: dropped there)
  sendUdp(s, 1, 6, 200); // queue 2: the filter's
  const summary = await run.summary();
  assert.is(summary.rings, 1);
  assert.is(summary.packets, 6, 'exactly the 6 UDP datagrams of queue 2 reached the filter');
  assert.is(summary.verdicts.drop, 6);
  assert.is(xdpProgram(r, b), '', 'the XDP program is detached after the run');
});

t('xdp:IF-2@all: ICMP of queue 2 reaches the filter too; DROP silences ping, HOST hands it back to the kernel', async () => {
  const { s, r, a, b } = pair('a');
  // Static neighbours on both sides: the pings are exactly 3 echo requests (no ARP through the filter).
  const mac = (ns: string, dev: string): string => /link\/ether (\S+)/.exec(lab.exec(ns, 'ip', ['link', 'show', 'dev', dev]))![1]!;
  lab.exec(s, 'ip', ['neigh', 'replace', `${net}.2`, 'lladdr', mac(r, b), 'dev', a, 'nud', 'permanent']);
  lab.exec(r, 'ip', ['neigh', 'replace', `${net}.1`, 'lladdr', mac(s, a), 'dev', b, 'nud', 'permanent']);
  const dropped = await startLoad(r, [firewall, '--config', dropAll, '--port', `xdp:${b}-2@all`, '--count', '3']);
  const silenced = spawnSync('ip', ['netns', 'exec', s, 'taskset', '-c', '1', 'ping', '-c', '3', '-i', '0.2', '-W', '1', `${net}.2`], { encoding: 'utf8' });
  assert.match(silenced.stdout, /3 packets transmitted, 0 received/, silenced.stdout + silenced.stderr);
  const first = await dropped.summary();
  assert.equal([first.packets, first.verdicts.drop], [3, 3], 'the 3 echo requests of queue 2 went to the filter');
  const hostIcmp = rules('host-icmp.rules', 'host icmp\ndefault drop\n');
  const handed = await startLoad(r, [firewall, '--config', hostIcmp, '--port', `xdp:${b}-2@all`, '--count', '3']);
  assert.match(lab.exec(s, 'taskset', ['-c', '1', 'ping', '-c', '3', '-i', '0.2', `${net}.2`]), /3 received/);
  const second = await handed.summary();
  assert.equal([second.packets, second.verdicts.host], [3, 3], 'HOST re-injected the echo requests and the kernel answered');
});

t('a bare xdp:IF opens every queue (one ring each); HOST re-injects into the stack, DROP takes packets from it', async () => {
  const { s, r, b } = pair('h');
  const server = lab.start(r, 'python3', ['-u', '-c', `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\ns.bind(('${net}.2',9999))\nprint('ready')\nwhile True: s.recv(2048); print('got')`]);
  await until('the UDP server', () => server.output().includes('ready'));
  const run = await startLoad(r, [firewall, '--config', hostUdp, '--port', `xdp:${b}`, '--count', '8']);
  sendUdp(s, 0, 4, 120);
  sendUdp(s, 1, 4, 120);
  const summary = await run.summary();
  assert.is(summary.rings, 4);
  assert.is(summary.verdicts.host, 8);
  await until('the re-injected datagrams at the server', () => server.output().split('got').length - 1 === 8, 5000);

  const drop = await startLoad(r, [firewall, '--config', dropAll, '--port', `xdp:${b}`, '--count', '3']);
  sendUdp(s, 1, 3, 120);
  assert.is((await drop.summary()).verdicts.drop, 3);
  await new Promise((res) => setTimeout(res, 300));
  assert.is(server.output().split('got').length - 1, 8, 'dropped datagrams never reached the server');
});

t('an xdp: output sends every packet it accepts (gen -> --out xdp:IF, captured on the peer)', async () => {
  const { s, r, a, b } = pair('t');
  const capture = join(dir, 'tx.pcap');
  const dump = lab.start(s, 'tcpdump', ['-n', '-i', a, '-c', '300', '-w', capture, 'udp']);
  await until('tcpdump to listen', () => /listening on/.test(dump.output()));
  const run = lab.start(r, process.execPath, [cli, 'load', passAll, '--port', 'gen:count=300,mix=udp4', '--out', `xdp:${b}`, '--json']);
  await until('nmwasm to finish', () => run.child.exitCode !== null, 30_000);
  assert.is(run.child.exitCode, 0, run.output());
  const summary = JSON.parse(run.output().split('\n').find((l) => l.startsWith('{'))!) as { out: { packets: number } };
  assert.is(summary.out.packets, 300);
  await until('tcpdump to capture all 300', () => dump.child.exitCode !== null, 10_000);
  assert.match(lab.exec(s, 'capinfos', ['-c', capture]), /Number of packets:\s+300\b/);
});

for (const signal of ['SIGINT', 'SIGTERM', 'SIGKILL'] as const) {
  t(`${signal} of the host leaves no XDP program attached after the next start`, async () => {
    const { s, r, b } = pair(signal.slice(3, 5).toLowerCase());
    const run = await startLoad(r, [passAll, '--port', `xdp:${b}-2`]);
    assert.ok(xdpProgram(r, b).startsWith('nmwasm_'));
    run.child.kill(signal);
    await until('nmwasm to exit', () => run.child.exitCode !== null || run.child.signalCode !== null);
    if (signal !== 'SIGKILL') assert.is(run.child.exitCode, 0, run.output());
    // The next start on the same queue (retrying EBUSY while the old socket goes away) works.
    const next = await startLoad(r, [passAll, '--port', `xdp:${b}-2`, '--count', '2']);
    sendUdp(s, 1, 2, 100);
    assert.is((await next.summary()).packets, 2);
    assert.is(xdpProgram(r, b), '', `ip link shows no XDP program on ${b}`);
  });
}

t('a second host on the same interface fails with one line and exit status 2', async () => {
  const { r, b } = pair('b');
  const first = await startLoad(r, [passAll, '--port', `xdp:${b}-2`]);
  const second = lab.start(r, process.execPath, [cli, 'load', passAll, '--port', `xdp:${b}-2`]);
  await until('the second nmwasm to exit', () => second.child.exitCode !== null);
  assert.is(second.child.exitCode, 2, second.output());
  const errors = second.output().split('\n').filter((l) => l.length > 0 && !/^xdp:|^warning:/.test(l));
  assert.is(errors.length, 1, second.output());
  assert.match(errors[0]!, /in use by nmwasm process \d+/);
  first.child.kill('SIGTERM');
  await until('the first nmwasm to exit', () => first.child.exitCode !== null);
});

test.after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
