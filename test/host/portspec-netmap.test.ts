// netmap names reach the netmap backend as register fields when /dev/netmap exists (probed
// here by hand: this machine has no netmap module), with the interface checks of every
// kernel port; without /dev/netmap VALE ports and pipes become nmwasm's software ones.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseInterfacePort } from '../../host/ports/portspec.ts';

const withNetmap = { netmap: true, xdp: true, packet: true };
const noNetmap = { netmap: false, xdp: true, packet: true };
const eth0 = () => ({ exists: true, up: true, rxQueues: 4 });

test('netmap:eth0-2/R becomes a ONE_NIC register request for ring 2, RX rings only', () => {
  const { spec, reason } = parseInterfacePort('netmap:eth0-2/R', 'in', withNetmap, eth0);
  assert.is(spec.kind, 'netmap');
  if (spec.kind !== 'netmap') return;
  assert.is(spec.nrName, 'eth0');
  assert.is(spec.nrMode, 4); // NR_REG_ONE_NIC (netmap.h)
  assert.is(spec.nrRingid, 2);
  assert.is(spec.nrFlags & 0x2000, 0x2000); // NR_RX_RINGS_ONLY
  assert.is(spec.rx, true);
  assert.is(spec.tx, false);
  assert.match(reason, /netmap/);
});

test('a bare name picks netmap when /dev/netmap exists; host rings are not checked as NIC queues', () => {
  assert.is(parseInterfacePort('eth0^1', 'in', withNetmap, eth0).spec.kind, 'netmap');
  assert.is(parseInterfacePort('eth0', 'in', withNetmap, eth0).spec.kind, 'netmap');
  assert.is(parseInterfacePort('eth0', 'in', noNetmap, eth0).spec.kind, 'xdp');
});

test('netmap ports get the interface checks: unknown, down, queue out of range', () => {
  assert.throws(() => parseInterfacePort('netmap:eth9', 'in', withNetmap, () => ({ exists: false, up: false, rxQueues: 0 })), /no interface named "eth9"/);
  assert.throws(() => parseInterfacePort('netmap:eth0', 'in', withNetmap, () => ({ exists: true, up: false, rxQueues: 4 })), /interface eth0 is down/);
  assert.throws(() => parseInterfacePort('netmap:eth0-7', 'in', withNetmap, eth0), /queue 7 is out of range: eth0 has 4 RX queue\(s\)/);
});

test("VALE ports and pipes go to the kernel with netmap, and to nmwasm's software ones without it", () => {
  const vale = parseInterfacePort('vale0:p1', 'in', withNetmap, () => ({ exists: false, up: false, rxQueues: 0 })).spec;
  assert.is(vale.kind, 'netmap');
  if (vale.kind === 'netmap') assert.is(vale.nrName, 'vale0:p1');
  const soft = parseInterfacePort('vale0:p1', 'in', noNetmap, eth0);
  assert.is(soft.spec.kind, 'soft');
  assert.is(soft.reason, "vale0:p1: nmwasm's software pipes/VALE: /dev/netmap is absent");
  const pipe = parseInterfacePort('eth0{1', 'out', noNetmap, eth0).spec;
  assert.equal(pipe.kind === 'soft' && [pipe.endpoint, pipe.peer, pipe.tx], ['eth0{1', 'eth0}1', true]);
  // Host rings have no software form: refused, naming netmap.
  assert.throws(() => parseInterfacePort('vale0:p1^', 'in', noNetmap, eth0), /host rings/);
});

test('AF_XDP: ARP/ICMP stay with the kernel unless @all gives the filter every frame', () => {
  const plain = parseInterfacePort('xdp:eth0-2', 'in', noNetmap, eth0).spec;
  const all = parseInterfacePort('xdp:eth0-2@all', 'in', noNetmap, eth0).spec;
  assert.equal([plain.kind, plain.kind === 'xdp' && plain.xdpKernelClasses], ['xdp', true]);
  assert.equal([all.kind, all.kind === 'xdp' && all.xdpKernelClasses], ['xdp', false]);
});

test.run();
