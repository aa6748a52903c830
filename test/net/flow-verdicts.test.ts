// Flow verdicts in the kernel (docs/ABI.md "Flow verdicts"): on an AF_XDP queue of a veth,
//   ns c [a 10.82.x.1] --veth-- [b 10.82.x.2] ns s: nmwasm load flow-verdicts.wasm --port xdp:B-0/R,
// the fixture drops UDP to 7001 and passes UDP to 7002 for the flow, drops 7003 without the flow
// bit and passes the rest. Each flow is sent as a first datagram, a pause (the verdict reaches the
// XDP program's map with its batch), then the rest: the rest must be decided in the kernel (the
// filter's own count stays at the first packets, the kernel counters grow), every datagram is
// accounted for once (filter + kernel = sent), PASS-flow datagrams reach their socket, a verdict
// without the flow bit is never cached, and a hot swap makes the kernel forget the old module's
// verdicts (the new module, passing everything, sees the flow again).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { cli, ensureBundle, fixtures } from '../cli/helpers.ts';
import { NetLab, jsonSummary, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('fv');
const net = `10.82.${process.pid % 250}`;
const REST = 200;

interface Summary {
  packets: number;
  verdicts: { pass: number; drop: number; host: number; forward: number; fault: number };
  kernel: { drop: number; pass: number };
  filterStats: Record<string, number>;
}

interface Setup {
  c: string;
  s: string;
  fw: ReturnType<NetLab['start']>;
  listener: ReturnType<NetLab['start']>;
  name: string;
}

/** Namespaces, the veth, the filter on b's queue 0 and a UDP listener on 7001-7003 that prints each datagram's port. */
async function setup(k: string, ttlMs: number): Promise<Setup> {
  ensureBundle();
  const c = lab.ns(`c${k}`);
  const s = lab.ns(`s${k}`);
  for (const ns of [c, s]) lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  const [a, b] = [`${lab.tag}${k}a`, `${lab.tag}${k}b`];
  lab.veth(a, c, b, s);
  lab.exec(c, 'ip', ['addr', 'add', `${net}.1/24`, 'dev', a]);
  lab.exec(s, 'ip', ['addr', 'add', `${net}.2/24`, 'dev', b]);
  const name = `${lab.tag}${k}`;
  const fw = lab.start(s, process.execPath, [cli, 'load', join(fixtures, 'flow-verdicts.wasm'), '--port', `xdp:${b}-0/R`, '--name', name, '--flow-ttl', String(ttlMs), '--batch-timeout', '5000', '--json']);
  await until('the filter to open its port', () => /AF_XDP (copy|zero-copy) mode/.test(fw.output()) || fw.child.exitCode !== null);
  assert.is(fw.child.exitCode, null, fw.output());
  assert.match(fw.output(), new RegExp(`flow verdicts applied in the kernel for ${ttlMs} ms`));
  const listener = lab.start(s, 'python3', ['-u', '-c', [
    'import socket, select',
    `socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for p in (7001, 7002, 7003)]`,
    `for s, p in zip(socks, (7001, 7002, 7003)): s.bind(('${net}.2', p))`,
    "print('ready')",
    'while True:',
    '  for s in select.select(socks, [], [])[0]: s.recv(2048); print(s.getsockname()[1])',
  ].join('\n')]);
  await until('the listener', () => listener.output().includes('ready'));
  // The client's ARP entry first, so that no datagram waits for address resolution.
  lab.exec(c, 'ping', ['-c', '1', '-W', '2', `${net}.2`]);
  return { c, s, fw, listener, name };
}

/** Sends one datagram of the flow c:40000+dport -> s:dport, waits, then `REST` more of it. */
function sendFlow(c: string, dport: number, rest = REST): void {
  lab.exec(c, 'python3', ['-c', [
    'import socket, time',
    'u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)',
    `u.bind(('${net}.1', ${40000 + dport}))`,
    `u.sendto(b'first', ('${net}.2', ${dport}))`,
    'time.sleep(0.5)',
    `for i in range(${rest}):`,
    `  u.sendto(b'rest %d' % i, ('${net}.2', ${dport}))`,
    '  if i % 20 == 19: time.sleep(0.01)',
  ].join('\n')]);
}

const received = (listener: Setup['listener'], port: number): number => listener.output().split('\n').filter((l) => l === String(port)).length;

t('a flow verdict is applied by the kernel: DROP and PASS flows stay out of the filter, counts add up, a plain DROP is never cached', async () => {
  const { c, fw, listener } = await setup('a', 1000);
  sendFlow(c, 7001);
  sendFlow(c, 7002);
  sendFlow(c, 7003);
  await until('the passed flow at its socket', () => received(listener, 7002) >= REST + 1, 10_000).catch(() => undefined);
  fw.child.kill('SIGTERM');
  const summary = await jsonSummary<Summary>(fw);
  const f = summary.filterStats;
  const sent = 3 * (REST + 1);
  const info = JSON.stringify(summary);
  assert.is(summary.verdicts.fault, 0, info);
  // Every datagram was decided exactly once: by the filter or by the kernel.
  assert.is(summary.packets + summary.kernel.drop + summary.kernel.pass, sent, `filter + kernel = sent (${sent}): ${info}`);
  assert.is(f.flowDrop! + summary.kernel.drop, REST + 1, info);
  assert.is(f.flowPass! + summary.kernel.pass, REST + 1, info);
  // The steady part of each flow never reached the filter.
  assert.ok(summary.kernel.drop >= REST / 2, `the kernel dropped most of the 7001 flow: ${info}`);
  assert.ok(summary.kernel.pass >= REST / 2, `the kernel passed most of the 7002 flow: ${info}`);
  assert.ok(f.flowDrop! <= REST / 2 && f.flowPass! <= REST / 2, info);
  // A verdict without the flow bit: every packet judged by the filter.
  assert.is(f.drop, REST + 1, `every 7003 datagram reached the filter: ${info}`);
  assert.is(received(listener, 7001), 0, 'no datagram of the dropped flow reached its socket');
  assert.is(received(listener, 7003), 0, 'no datagram of the plain-dropped flow reached its socket');
  assert.is(received(listener, 7002), REST + 1, 'every datagram of the passed flow reached its socket (filter or kernel)');
});

t('a hot swap makes the kernel forget the old module\'s flow verdicts', async () => {
  // A TTL far longer than the test: only the swap can make the kernel forget.
  const { c, fw, listener, name } = await setup('b', 600_000);
  sendFlow(c, 7001);
  const swap = execFileSync(process.execPath, [cli, 'swap', name, join(fixtures, 'pass.wasm'), '--json'], { encoding: 'utf8' });
  assert.match(swap, /"ok":\s*true/, swap);
  sendFlow(c, 7001, 50);
  await until('the flow at its socket after the swap', () => received(listener, 7001) >= 51, 10_000).catch(() => undefined);
  fw.child.kill('SIGTERM');
  const summary = await jsonSummary<Summary>(fw);
  const info = JSON.stringify(summary);
  assert.is(received(listener, 7001), 51, `after the swap the module that passes sees the flow again: ${info}`);
  assert.ok(summary.kernel.drop >= REST / 2 && summary.kernel.drop <= REST, `the kernel dropped before the swap only: ${info}`);
  assert.is(summary.packets + summary.kernel.drop, REST + 1 + 51, info);
});

test.after(() => lab.cleanup());

test.run();
