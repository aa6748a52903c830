// The reflector package on a live port: a UDP client in ns1 sends datagrams to an address
// that only exists as a static neighbour entry; nmwasm in the other namespace runs the
// reflector (`swap ports`) with the input port as its --to port, on AF_PACKET, and the
// client's socket receives every datagram back from that address and port, bytes intact
// (the checksums stayed valid: the kernel delivered them).
//   ns1 [n1 10.79.x.1] -- veth -- [r0] nmwasm --port packet:r0 --to packet:r0 (reflector)
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ensureBundle, root } from '../cli/helpers.ts';
import { NetLab, rootTest, until } from './netlab.ts';

const t = rootTest();
const lab = new NetLab('rf');
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-reflector-'));
const net = `10.79.${process.pid % 250}`;

const CLIENT = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("${net}.1", 5000))
s.settimeout(5)
got = 0
for i in range(20):
    payload = b"reflect-%03d" % i
    s.sendto(payload, ("${net}.2", 7))
    data, peer = s.recvfrom(2048)
    assert data == payload, (data, payload)
    assert peer == ("${net}.2", 7), peer
    got += 1
print("reflected", got)
`;

t('reflector: every datagram comes back from where it was sent, through nmwasm on AF_PACKET', async () => {
  ensureBundle();
  const ns1 = lab.ns('1');
  const nsr = lab.ns('r');
  const [n1, r0] = [`${lab.tag}n1`, `${lab.tag}r0`];
  lab.veth(n1, ns1, r0, nsr);
  lab.exec(ns1, 'ip', ['addr', 'add', `${net}.1/24`, 'dev', n1]);
  // Full checksums on the wire: AF_PACKET sees a veth's frames before any offload completes them.
  lab.exec(ns1, 'ethtool', ['-K', n1, 'tx', 'off']);
  const mac = JSON.parse(lab.run(nsr, 'ip', ['-j', 'link', 'show', r0]))[0].address as string;
  lab.exec(ns1, 'ip', ['neigh', 'add', `${net}.2`, 'lladdr', mac, 'dev', n1]);
  const conf = join(dir, 'reflect.conf');
  writeFileSync(conf, 'swap ports\n');
  const reflector = lab.start(nsr, process.execPath, [cli, 'load', join(root, 'filters/build/reflector.wasm'), '--config', conf, '--port', `packet:${r0}`, '--to', `packet:${r0}`, '--batch-timeout', '5000', '--json']);
  await until('the reflector to open its port', () => /AF_PACKET cannot take packets away/.test(reflector.output()) || reflector.child.exitCode !== null);
  assert.is(reflector.child.exitCode, null, `reflector exited: ${reflector.output()}`);
  const script = join(dir, 'client.py');
  writeFileSync(script, CLIENT);
  const out = lab.run(ns1, 'python3', [script]);
  assert.match(out, /reflected 20/);
  reflector.child.kill('SIGINT');
  await until('the reflector to stop', () => reflector.child.exitCode !== null);
  const summary = JSON.parse(reflector.output().split('\n').find((l) => l.startsWith('{'))!);
  assert.ok(summary.verdicts.forward >= 20, JSON.stringify(summary.verdicts));
  assert.ok(summary.filterStats.swapped_ports >= 20, JSON.stringify(summary.filterStats));
});

t.after(() => lab.cleanup());
t.run();
