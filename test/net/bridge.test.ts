// A real TCP download through an nmwasm bridge running the firewall, on AF_PACKET and on AF_XDP:
//   ns1 [n1 10.77.x.1] -- [ma  nmwasm --port B:ma --to B:mb --bidir  mb] -- [n2 10.77.x.2] ns2
// The middle namespace has no addresses and no forwarding: with AF_PACKET its kernel drops its
// own copy of every frame (AF_PACKET cannot take them away); with AF_XDP the XDP program hands
// every frame, ARP and ICMP included, to the bridge. Either way the only way across is nmwasm.
// curl downloads a random file from `python3 -m http.server` with identical bytes, while
// the firewall blocks UDP port 9999 and TCP port 8001; tcpdump on the far side proves none
// of the blocked flows' packets arrived.
import * as assert from 'uvu/assert';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import { cli, ensureBundle, root } from '../cli/helpers.ts';
import { NetLab, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('nb');
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-bridge-'));
const net = `10.77.${process.pid % 250}`;
const rules = join(dir, 'bridge.rules');
writeFileSync(rules, ['drop udp to any port 9999', 'drop tcp to any port 8001', 'default pass', ''].join('\n'));

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Builds the three namespaces for one backend run; `k` keeps the runs' names apart. */
async function download(backend: 'packet' | 'xdp', k: string): Promise<void> {
  ensureBundle();
  const ns1 = lab.ns(`${k}1`);
  const mid = lab.ns(`${k}m`);
  const ns2 = lab.ns(`${k}2`);
  const [n1, ma, mb, n2] = [`${lab.tag}${k}n1`, `${lab.tag}${k}ma`, `${lab.tag}${k}mb`, `${lab.tag}${k}n2`];
  lab.veth(n1, ns1, ma, mid);
  lab.veth(n2, ns2, mb, mid);
  lab.exec(ns1, 'ip', ['addr', 'add', `${net}.1/24`, 'dev', n1]);
  lab.exec(ns2, 'ip', ['addr', 'add', `${net}.2/24`, 'dev', n2]);

  const www = join(dir, 'www');
  rmSync(www, { recursive: true, force: true });
  lab.run(null, 'mkdir', ['-p', www]);
  writeFileSync(join(www, 'blob.bin'), randomBytes(2_500_000));
  const capture = join(dir, `far-${backend}.pcap`);

  const bridge = lab.start(mid, process.execPath, [cli, 'load', join(root, 'filters/build/firewall.wasm'), '--config', rules, '--port', `${backend}:${ma}`, '--to', `${backend}:${mb}`, '--bidir', '--batch-timeout', '5000', '--json']); // NB: a generous budget: a loaded CI machine is slow to instantiate
  const opened = backend === 'packet' ? /AF_PACKET cannot take packets away/g : /: AF_XDP (copy|zero-copy) mode/g;
  await until('the bridge to open both ports', () => (bridge.output().match(opened) ?? []).length === 2 || bridge.child.exitCode !== null);
  assert.is(bridge.child.exitCode, null, `bridge exited: ${bridge.output()}`);
  const dump = lab.start(ns2, 'tcpdump', ['-i', n2, '-n', '-U', '-w', capture]);
  await until('tcpdump to listen', () => /listening on/.test(dump.output()));
  const server = lab.start(ns2, 'python3', ['-m', 'http.server', '8000', '--bind', `${net}.2`, '--directory', www]);
  const blocked = lab.start(ns2, 'python3', ['-m', 'http.server', '8001', '--bind', `${net}.2`, '--directory', www]);
  await until('the http servers', () => lab.run(ns2, 'ss', ['-ltn']).includes(':8001') && lab.run(ns2, 'ss', ['-ltn']).includes(':8000'));

  // ping across the bridge first (it also resolves ARP through it).
  const ping = lab.run(ns1, 'ping', ['-c', '3', '-i', '0.2', '-w', '10', `${net}.2`], true);
  assert.match(ping, /3 received/, `ping through the bridge failed: ${ping}; bridge said: ${bridge.output()}`);
  const got = join(dir, `got-${backend}.bin`);
  try {
    lab.exec(ns1, 'curl', ['-sS', '--max-time', '20', '-o', got, `http://${net}.2:8000/blob.bin`]);
  } catch (err) {
    throw new Error(`${(err as Error).message}; bridge said: ${bridge.output()}`);
  }
  assert.is(sha256(got), sha256(join(www, 'blob.bin')), 'downloaded bytes differ');

  // The blocked flows: 20 UDP datagrams to port 9999, and a TCP connect to port 8001.
  lab.exec(ns1, 'python3', ['-c', `import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(20): s.sendto(b'blocked %d' % i, ('${net}.2', 9999))`]);
  const refused = lab.run(ns1, 'curl', ['-sS', '--max-time', '2', '-o', '/dev/null', `http://${net}.2:8001/blob.bin`], true);
  assert.is(refused, '', 'the blocked TCP flow must not complete');

  bridge.child.kill('SIGTERM');
  await new Promise((r) => bridge.child.once('exit', r));
  dump.child.kill('SIGINT');
  await new Promise((r) => dump.child.once('exit', r));
  server.child.kill('SIGKILL');
  blocked.child.kill('SIGKILL');

  const summaries = bridge.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { port: string; verdicts: { pass: number; drop: number }; out: { packets: number } });
  assert.is(summaries.length, 2, bridge.output());
  const [east] = summaries;
  assert.ok(east!.verdicts.drop >= 21, `the firewall dropped ${east!.verdicts.drop} packets east-bound, expected the 20 UDP datagrams and the TCP SYN(s)`);
  assert.ok(east!.out.packets > 0);

  const count = (filter: string): number => lab.run(null, 'tcpdump', ['-n', '-r', capture, filter]).split('\n').filter((l) => l.trim()).length;
  assert.is(count('udp port 9999'), 0, 'a blocked UDP packet reached the far side');
  assert.is(count('tcp port 8001'), 0, 'a blocked TCP packet reached the far side');
  assert.ok(count('tcp port 8000') > 100, 'the allowed download is in the far-side capture');
  if (backend === 'xdp') {
    const west = summaries[1]!;
    assert.ok(west.out.packets > 100, 'the way back (n2 -> n1) went through the bridge too');
    for (const dev of [ma, mb]) assert.not.match(lab.run(mid, 'ip', ['link', 'show', 'dev', dev]), /xdp/, `${dev}: XDP program left attached`);
  }
}

t('AF_PACKET: curl through the firewall bridge: identical bytes; blocked UDP 9999 and TCP 8001 never reach the far side', () => download('packet', 'p'));
t('AF_XDP: curl through the firewall bridge (every frame, ARP included, through the filter): identical bytes; blocked flows absent', () => download('xdp', 'x'));

test.after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
