// --bidir over netmap (the tutorial's bridge): a netmap port used as an input and as an
// output is planned as ONE port with RX and TX rings (host/engine/portpool.ts planSharedPorts), so
// netmap registers it once; different bindings of one interface stay separate ports.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseInterfacePort } from '../../host/ports/portspec.ts';
import { planSharedPorts } from '../../host/engine/portpool.ts';

const withNetmap = { netmap: true, xdp: true, packet: true };
const up = () => ({ exists: true, up: true, rxQueues: 2 });
const port = (text: string, role: 'in' | 'out') => parseInterfacePort(text, role, withNetmap, up).spec;

test('--port netmap:v0 --to netmap:v1 --bidir: each interface is one port that receives and sends', () => {
  // Engine 1: v0 -> v1; engine 2 (the way back): v1 -> v0.
  const uses = [port('netmap:v0', 'in'), port('netmap:v1', 'out'), port('netmap:v1', 'in'), port('netmap:v0', 'out')];
  const planned = planSharedPorts(uses);
  assert.is(planned[0], planned[3], 'v0 as input and as output: the same spec object, opened once');
  assert.is(planned[1], planned[2], 'v1 likewise');
  assert.not.equal(planned[0], planned[1]);
  for (const p of planned) {
    assert.is(p.kind, 'netmap');
    if (p.kind === 'netmap') assert.ok(p.rx && p.tx, `${p.name}: RX and TX rings bound`);
  }
});

test('netmap ports with different bindings, VALE ports and a lone output stay as they are', () => {
  const uses = [port('netmap:v0-0/R', 'in'), port('netmap:v0', 'out'), port('vale0:a', 'in'), port('vale0:b', 'out')];
  const planned = planSharedPorts(uses);
  for (let i = 0; i < uses.length; i++) assert.is(planned[i], uses[i], `use ${i} unchanged`);
  const out = planned[1]!;
  assert.ok(out.kind === 'netmap' && out.tx && !out.rx);
});

test.run();
