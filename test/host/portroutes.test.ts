// The start-up line per port: where PASS and DROP go (host/ports/portroutes.ts), for every backend,
// with and without an output; the interface ports are parsed as the CLI parses them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseInterfacePort, parsePortSpec } from '../../host/ports/portspec.ts';
import { portRouteLines } from '../../host/ports/portroutes.ts';

const withNetmap = { netmap: true, xdp: true, packet: true };
const noNetmap = { netmap: false, xdp: true, packet: true };
const eth0 = () => ({ exists: true, up: true, rxQueues: 4 });
const iface = (text: string, probe = noNetmap) => parseInterfacePort(text, 'in', probe, eth0).spec;

test('a bypassed AF_XDP queue without an output: PASS continues to the kernel stack', () => {
  assert.equal(portRouteLines('eth0-2/R', iface('eth0-2/R'), [], []), ['xdp:eth0-2/R: PASS -> kernel stack (re-injected), DROP -> discarded']);
  assert.equal(portRouteLines('xdp:eth0-2', iface('xdp:eth0-2'), [], []), ['xdp:eth0-2: PASS -> kernel stack (re-injected), DROP -> discarded']);
});

test('netmap: hardware rings forward to the stack; host rings and VALE ports only count', () => {
  assert.equal(portRouteLines('eth0-2/R', iface('eth0-2/R', withNetmap), [], []), ['netmap:eth0-2/R: PASS -> kernel stack (NS_FORWARD), DROP -> discarded']);
  assert.match(portRouteLines('eth0^', iface('eth0^', withNetmap), [], [])[0]!, /^netmap:eth0\^: PASS -> counted \(no output; host rings/);
  assert.match(portRouteLines('vale0:a', iface('vale0:a', withNetmap), [], [])[0]!, /^netmap:vale0:a: PASS -> counted \(no output; a VALE port/);
});

test('netmap monitors (/r, /t, /z): verdicts change nothing on the monitored port; PASS reaches an output (a tap)', () => {
  for (const m of ['netmap:v0/r', 'netmap:v0/t', 'netmap:v0/rt', 'netmap:v0/z', 'vale0:m/r']) {
    assert.equal(portRouteLines(m, iface(m, withNetmap), [], []), [
      `${m.startsWith('netmap:') ? '' : 'netmap:'}${m}: PASS -> counted (monitor: the monitored port's traffic is unchanged), DROP -> counted only (monitor: the monitored port is unchanged)`,
    ]);
  }
  const out = parseInterfacePort('vale0:tap', 'out', withNetmap, eth0).spec;
  assert.equal(portRouteLines('netmap:v0/r', iface('netmap:v0/r', withNetmap), ['vale0:tap'], [out])[0], 'netmap:v0/r: PASS -> netmap:vale0:tap, DROP -> kept from the outputs only (monitor: the monitored port is unchanged)');
  // A monitor cannot send: refused as an output, one line naming the port.
  for (const m of ['netmap:v0/r', 'netmap:v0/z', 'vale0:m/t'])
    assert.throws(() => parseInterfacePort(m, 'out', withNetmap, eth0), (e: Error) =>
      e.message === `--out "${m}": a monitor (/r, /t, /z) only sees another process's traffic and cannot send: name the port without the monitor flag`);
});

test('AF_PACKET: the kernel keeps its copy, DROP only counts (monitor) or keeps it from the outputs', () => {
  assert.equal(portRouteLines('packet:eth0', iface('packet:eth0'), [], []), ['packet:eth0: PASS -> kernel stack (the kernel keeps its copy), DROP -> counted only (monitor: the kernel still has its copy)']);
  const out = parseInterfacePort('packet:eth1', 'out', noNetmap, eth0).spec;
  assert.equal(portRouteLines('packet:eth0', iface('packet:eth0'), ['packet:eth1'], [out]), [
    'packet:eth0: PASS -> packet:eth1, DROP -> kept from the outputs only (the kernel still has its copy)',
    'packet:eth1: output of packet:eth0, gets PASS and FORWARD 0',
  ]);
});

test('gen and pcap: counted without an output, written to the first output with one; every output gets a line', () => {
  assert.equal(portRouteLines('gen:count=10', parsePortSpec('gen:count=10', 'in'), [], []), ['gen:count=10: PASS -> counted (no output), DROP -> counted']);
  const outs = ['pcap:a.pcap', 'pcap:b.pcap'];
  assert.equal(portRouteLines('pcap:in.pcap', parsePortSpec('pcap:in.pcap', 'in'), outs, outs.map((o) => parsePortSpec(o, 'out'))), [
    'pcap:in.pcap: PASS -> pcap:a.pcap, DROP -> not written (counted)',
    'pcap:a.pcap: output of pcap:in.pcap, gets PASS and FORWARD 0',
    'pcap:b.pcap: output of pcap:in.pcap, gets FORWARD 1',
  ]);
});

test('lo on AF_XDP says that the stack drops what is re-injected there', () => {
  const lo = parseInterfacePort('lo', 'in', noNetmap, () => ({ exists: true, up: true, rxQueues: 1 })).spec;
  assert.match(portRouteLines('lo', lo, [], [])[0]!, /^xdp:lo: PASS -> kernel stack \(re-injected, but on lo the stack drops TCP\/UDP: use packet:lo\)/);
});

test.run();
