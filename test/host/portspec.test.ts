// Table of every valid and invalid port spec form (host/ports/portspec.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parsePortSpec, GEN_DEFAULT_MIX, type PortRole } from '../../host/ports/portspec.ts';
import { UsageError } from '../../host/cli/errors.ts';

const gen = (over: Record<string, unknown> = {}) => ({ kind: 'gen', count: 0, sizeMin: 64, sizeMax: 64, imix: false, flows: 16, mix: [...GEN_DEFAULT_MIX], seed: 1, pps: 0, seq: false, rings: 1, ...over });

const valid: [string, PortRole, Record<string, unknown>][] = [
  ['pcap:capture.pcap', 'in', { kind: 'pcap', path: 'capture.pcap' }],
  ['pcap:/abs/dir/x.pcapng', 'in', { kind: 'pcap', path: '/abs/dir/x.pcapng' }],
  ['pcap:with:colon.pcap', 'in', { kind: 'pcap', path: 'with:colon.pcap' }],
  ['pcap:out.pcap', 'out', { kind: 'pcap-out', path: 'out.pcap' }],
  ['gen:', 'in', gen()],
  ['gen:count=10000', 'in', gen({ count: 10000 })],
  ['gen:count=0', 'in', gen()],
  ['gen:size=1518', 'in', gen({ sizeMin: 1518, sizeMax: 1518 })],
  ['gen:size=64-1518', 'in', gen({ sizeMin: 64, sizeMax: 1518 })],
  ['gen:size=100-100', 'in', gen({ sizeMin: 100, sizeMax: 100 })],
  ['gen:size=imix', 'in', gen({ sizeMin: 64, sizeMax: 1518, imix: true })],
  ['gen:flows=1', 'in', gen({ flows: 1 })],
  ['gen:flows=65536', 'in', gen({ flows: 65536 })],
  ['gen:seed=4294967295', 'in', gen({ seed: 4294967295 })],
  ['gen:mix=tcp4:40+udp4:30+icmp4:5+tcp6:10+udp6:10+icmp6:3+arp:2', 'in', gen()],
  ['gen:mix=udp6:1', 'in', gen({ mix: [0, 0, 0, 0, 1, 0, 0] })],
  ['gen:mix=arp', 'in', gen({ mix: [0, 0, 0, 0, 0, 0, 1] })],
  ['gen:mix=tcp4:0+icmp6:7', 'in', gen({ mix: [0, 0, 0, 0, 0, 7, 0] })],
  ['gen:count=5,size=128,flows=4,mix=tcp4:1+udp4:1,seed=9', 'in', gen({ count: 5, sizeMin: 128, sizeMax: 128, flows: 4, mix: [1, 1, 0, 0, 0, 0, 0], seed: 9 })],
  ['gen:count=2000,pps=1000', 'in', gen({ count: 2000, pps: 1000 })],
  ['gen:seq', 'in', gen({ seq: true })],
  ['gen:count=5,seq,rings=2', 'in', gen({ count: 5, seq: true, rings: 2 })],
  ['gen:rings=64,pps=1000000000', 'in', gen({ rings: 64, pps: 1_000_000_000 })],
];

const live = (over: Record<string, unknown>) => ({ kind: 'packet', ifname: 'lo', queue: -1, rings: 1, rx: true, tx: false, rxSlots: 0, txSlots: 0, xdpBind: '', xdpAttach: '', xdpKernelClasses: true, ...over });
// Interface ports on lo (every Linux machine has it, up, with one RX queue).
valid.push(
  ['packet:lo-0', 'in', live({ queue: 0 })],
  ['packet:lo', 'out', live({ rings: 0, rx: false, tx: true })],
  ['packet:lo-0/R@conf:rx-slots=512', 'in', live({ queue: 0, rxSlots: 512 })],
);

const invalid: [string, PortRole, RegExp][] = [
  ['', 'in', /--port: expected a port spec .* got an empty string/],
  ['pcap:', 'in', /"pcap:": expected pcap:FILE, got no file name/],
  ['pcap:', 'out', /--out "pcap:": expected pcap:FILE/],
  ['gen:', 'out', /--out "gen:": gen: cannot be used as an output/],
  ['foo:bar', 'in', /--port "foo:bar": unknown port scheme \(expected one of pcap: gen: netmap: xdp: packet:/],
  ['/tmp/x', 'in', /unknown port scheme/],
  ['gen', 'in', /"gen": unknown port scheme/],
  ['capture.pcap', 'in', /got a file name \(write pcap:capture\.pcap\)/],
  ['nmwnoif0', 'in', /"nmwnoif0": no interface named "nmwnoif0" \(list them with: ip link\)/],
  ['nmwnoif0^', 'in', /no available backend can honour host rings .*netmap can, but \/dev\/netmap is absent/],
  ['nmwnoif0-2/R@conf:1', 'in', /position 18: expected a key of @conf/],
  ['packet:nmwnoif0', 'in', /--port "packet:nmwnoif0": no interface named "nmwnoif0"/],
  ['packet:lo-1', 'in', /queue 1 is out of range: lo has 1 RX queue\(s\) \(0\.\.0\)/],
  ['packet:lo/T', 'in', /\/T selects the TX side only/],
  ['packet:lo/R', 'out', /--out "packet:lo\/R": an output port needs its TX side/],
  ['packet:lo/x', 'in', /AF_PACKET cannot honour exclusive binding/],
  ['vale0:p1/T', 'in', /\/T selects the TX side only, but an input port needs its RX side \(drop \/T\)/],
  ['vale1', 'in', /no interface named "vale1"/],
  ['eth0{1/R', 'out', /an output port needs its TX side, got \/R \(RX only\)/],
  ['eth0}1@conf:slots=100000', 'in', /@conf: expected 64\.\.16384 slots for a software port, got 100000/],
  ['p{1@conf:rings=65', 'out', /@conf: expected at most 64 rings for a software port, got 65/],
  ['gen:count', 'in', /expected OPTION=VALUE .* got "count"/],
  ['gen:=5', 'in', /expected OPTION=VALUE/],
  ['gen:count=-1', 'in', /count: expected an integer 0\.\.\d+, got "-1"/],
  ['gen:count=1e3', 'in', /count: expected an integer/],
  ['gen:count=99999999999999999999', 'in', /count: expected an integer 0\.\.\d+, got 99999999999999999999/],
  ['gen:count=', 'in', /count: expected an integer/],
  ['gen:count=1,count=2', 'in', /count: expected once, got it twice/],
  ['gen:pps=0', 'in', /pps: expected an integer 1\.\.1000000000, got 0/],
  ['gen:pps=1.5', 'in', /pps: expected an integer 1\.\.1000000000, got "1\.5"/],
  ['gen:rings=0', 'in', /rings: expected an integer 1\.\.64, got 0/],
  ['gen:rings=65', 'in', /rings: expected an integer 1\.\.64, got 65/],
  ['gen:seq,seq', 'in', /seq: expected once, got it twice/],
  ['gen:seq=1', 'in', /seq: expected no value \(write seq alone\), got "seq=1"/],
  ['gen:ring=2', 'in', /unknown gen option "ring"; did you mean rings\?/],
  ['gen:siz=64', 'in', /unknown gen option "siz"; did you mean size\? \(expected count, size, flows, mix, seed, pps, seq, rings\)/],
  ['pacp:x.pcap', 'in', /unknown port scheme; did you mean "pcap:x\.pcap"\?/],
  ['gen:size=63', 'in', /size: expected an integer 64\.\.1518, got 63/],
  ['gen:size=1519', 'in', /size: expected an integer 64\.\.1518, got 1519/],
  ['gen:size=200-100', 'in', /size: expected MIN-MAX with MIN <= MAX, got 200-100/],
  ['gen:size=64-', 'in', /size: expected an integer/],
  ['gen:size=big', 'in', /size: expected an integer/],
  ['gen:flows=0', 'in', /flows: expected an integer 1\.\.65536, got 0/],
  ['gen:flows=65537', 'in', /flows: expected an integer 1\.\.65536, got 65537/],
  ['gen:seed=4294967296', 'in', /seed: expected an integer 0\.\.4294967295/],
  ['gen:mix=tcp5:1', 'in', /mix: expected a protocol among tcp4 udp4 icmp4 tcp6 udp6 icmp6 arp, got "tcp5"/],
  ['gen:mix=tcp4:1+tcp4:2', 'in', /mix: protocol tcp4 given twice/],
  ['gen:mix=tcp4:0', 'in', /mix: expected at least one non-zero weight/],
  ['gen:mix=tcp4:x', 'in', /mix tcp4: expected an integer/],
  ['gen:mix=', 'in', /mix: expected a protocol/],
  ['gen:rate=5', 'in', /unknown gen option "rate" \(expected count, size, flows, mix, seed, pps, seq, rings\)/],
];

test('valid specs', () => {
  for (const [spec, role, expected] of valid) {
    const got = parsePortSpec(spec, role);
    assert.equal(got, { ...expected, name: spec }, spec);
  }
});

test('invalid specs: one line, naming the spec', () => {
  for (const [spec, role, pattern] of invalid) {
    try {
      parsePortSpec(spec, role);
    } catch (err) {
      assert.instance(err, UsageError, spec);
      const message = (err as Error).message;
      assert.not.match(message, /\n/);
      if (!pattern.test(message)) assert.unreachable(`${JSON.stringify(spec)}: ${message} does not match ${pattern}`);
      continue;
    }
    assert.unreachable(`${JSON.stringify(spec)} was accepted`);
  }
});

test.run();
