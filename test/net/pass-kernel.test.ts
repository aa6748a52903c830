// PASS continues to the kernel: the firewall on a bypassed AF_XDP queue of a veth, no output.
//   ns c [a 10.81.x.1] --veth-- [b 10.81.x.2] ns s: nmwasm load firewall --port B-0/R in s,
//   python3 -m http.server 8000 and a UDP listener on 9999 in s.
// The firewall passes TCP port 8000 and drops the rest (ARP/ICMP stay with the kernel), so
// curl downloads a random file byte-identical through the filter (every segment was taken by
// AF_XDP and re-injected into b's stack), while the UDP flow to 9999 never reaches its socket.
// Run in native XDP mode (veth's driver mode) and in skb (generic) mode, where a re-injected
// frame meets the XDP program again and must not come back to the filter (the filter sees at
// most what the client sent).
import * as assert from 'uvu/assert';
import { test } from 'uvu';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ensureBundle, root } from '../cli/helpers.ts';
import { NetLab, jsonSummary, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('nk');
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-passk-'));
const net = `10.81.${process.pid % 250}`;
const rules = join(dir, 'fw.rules');
writeFileSync(rules, ['pass in tcp to any port 8000', 'default drop', ''].join('\n'));
const blob = join(dir, 'www', 'blob.bin');

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

interface Summary {
  packets: number;
  verdicts: { pass: number; drop: number; host: number };
  hostRefused: number;
}

async function firewallOnQueue(k: string, attach: '' | '@skb'): Promise<void> {
  ensureBundle();
  const c = lab.ns(`c${k}`);
  const s = lab.ns(`s${k}`);
  for (const ns of [c, s]) lab.exec(ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  const [a, b] = [`${lab.tag}${k}a`, `${lab.tag}${k}b`];
  lab.veth(a, c, b, s);
  lab.exec(c, 'ip', ['addr', 'add', `${net}.1/24`, 'dev', a]);
  lab.exec(s, 'ip', ['addr', 'add', `${net}.2/24`, 'dev', b]);

  const port = `xdp:${b}-0/R${attach}`;
  const fw = lab.start(s, process.execPath, [cli, 'load', join(root, 'filters/build/firewall.wasm'), '--config', rules, '--port', port, '--batch-timeout', '5000', '--json']);
  await until('the firewall to open its port', () => /AF_XDP (copy|zero-copy) mode/.test(fw.output()) || fw.child.exitCode !== null);
  assert.is(fw.child.exitCode, null, fw.output());
  assert.ok(fw.output().split('\n').includes(`${port}: PASS -> kernel stack (re-injected), DROP -> discarded`), `the start line says where PASS and DROP go: ${fw.output()}`);
  assert.match(fw.output(), attach === '@skb' ? /XDP program in skb \(generic\) mode/ : /XDP program in native mode/);

  const server = lab.start(s, 'python3', ['-m', 'http.server', '8000', '--bind', `${net}.2`, '--directory', join(dir, 'www')]);
  const udp = lab.start(s, 'python3', ['-u', '-c', `import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nu.bind(('${net}.2',9999))\nprint('ready')\nwhile True: u.recv(2048); print('got')`]);
  await until('the servers', () => lab.run(s, 'ss', ['-ltn']).includes(':8000') && udp.output().includes('ready'));
  const sentBefore = Number(lab.exec(c, 'cat', [`/sys/class/net/${a}/statistics/tx_packets`]));

  const got = join(dir, `got${k}.bin`);
  try {
    lab.exec(c, 'curl', ['-sS', '--max-time', '20', '-o', got, `http://${net}.2:8000/blob.bin`]);
  } catch (err) {
    throw new Error(`${(err as Error).message}; firewall said: ${fw.output()}; server said: ${server.output()}`);
  }
  assert.is(sha256(got), sha256(blob), 'downloaded bytes differ');

  lab.exec(c, 'python3', ['-c', `import socket\nu=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\nfor i in range(20): u.sendto(b'blocked %d' % i, ('${net}.2', 9999))`]);
  await new Promise((r) => setTimeout(r, 500));
  const sent = Number(lab.exec(c, 'cat', [`/sys/class/net/${a}/statistics/tx_packets`])) - sentBefore;
  fw.child.kill('SIGTERM');
  const summary = await jsonSummary<Summary>(fw);
  assert.is(udp.output().split('\n').filter((l) => l === 'got').length, 0, 'no blocked UDP datagram reached its socket');
  assert.ok(summary.verdicts.drop >= 20, `the 20 UDP datagrams were dropped: ${JSON.stringify(summary)}`);
  assert.ok(summary.verdicts.pass > 0);
  assert.is(summary.hostRefused, 0, 'the kernel took every passed packet');
  // Every packet the filter saw was sent by the client once: a re-injected frame never came back.
  assert.ok(summary.packets <= sent, `the filter saw ${summary.packets} packets, the client sent ${sent}`);
}

t('firewall on a bypassed AF_XDP queue (native mode): PASS reaches the local server, the blocked UDP flow does not', async () => {
  lab.run(null, 'mkdir', ['-p', join(dir, 'www')]);
  writeFileSync(blob, randomBytes(1_500_000));
  await firewallOnQueue('n', '');
});

t('the same in skb (generic) mode: re-injected frames pass the XDP program instead of looping back to the filter', async () => {
  await firewallOnQueue('g', '@skb');
});

test.after(() => {
  lab.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
