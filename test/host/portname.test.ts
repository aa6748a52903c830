// host/ports/portname.ts, table-driven: every form of docs/PORTS.md parses into the exact object
// written here; every invalid form fails with the exact message and position; backend
// choice and refusals give the exact reasons and messages. A last test reads docs/PORTS.md
// and fails if a form listed there has no row here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  parsePortName,
  netmapRegisterFields,
  chooseBackend,
  checkSupported,
  PortNameError,
  PortSupportError,
  type PortName,
  type BackendProbe,
  type Backend,
} from '../../host/ports/portname.ts';
import { UsageError } from '../../host/cli/errors.ts';

const NO_FLAGS = { rxOnly: false, txOnly: false, exclusive: false, monitorRx: false, monitorTx: false, zcopyMonitor: false };
const NO_OPTIONS = { conf: null, extmem: null, offset: null, share: null, xdpBind: null, xdpAttach: null, xdpAll: false };
type Overrides = Omit<Partial<PortName>, 'flags' | 'options'> & { flags?: Partial<PortName['flags']>; options?: Partial<PortName['options']> };

/** The full expected object: an all-hardware bare eth0 changed by `o`. */
function expected(spec: string, o: Overrides = {}): PortName {
  const { flags, options, ...rest } = o;
  return {
    spec,
    scheme: undefined,
    ifname: 'eth0',
    vale: null,
    pipe: null,
    mode: 'all-hw',
    ring: null,
    flags: { ...NO_FLAGS, ...flags },
    memId: null,
    options: { ...NO_OPTIONS, ...options },
    netmapName: 'eth0',
    ...rest,
  };
}
const conf = (c: Partial<NonNullable<PortName['options']['conf']>>) => ({ txRings: 0, rxRings: 0, hostTxRings: 0, hostRxRings: 0, txSlots: 0, rxSlots: 0, ...c });

const VALID: Array<[string, Overrides]> = [
  // rings
  ['eth0', {}],
  ['eth0-2', { mode: 'one-hw', ring: 2 }],
  ['eth0-0', { mode: 'one-hw', ring: 0 }],
  ['eth0-4094', { mode: 'one-hw', ring: 4094 }],
  ['eth0^', { mode: 'host' }],
  ['eth0^1', { mode: 'one-host', ring: 1 }],
  ['eth0*', { mode: 'hw+host' }],
  // schemes
  ['netmap:eth0', { scheme: 'netmap' }],
  ['xdp:eth0-1', { scheme: 'xdp', mode: 'one-hw', ring: 1 }],
  ['packet:eth0', { scheme: 'packet' }],
  ['netmap:eth0^2/x', { scheme: 'netmap', mode: 'one-host', ring: 2, flags: { exclusive: true } }],
  // names
  ['eth0.100', { ifname: 'eth0.100', netmapName: 'eth0.100' }],
  ['enp3s0f1_x', { ifname: 'enp3s0f1_x', netmapName: 'enp3s0f1_x' }],
  ['abcdefghijklmno', { ifname: 'abcdefghijklmno', netmapName: 'abcdefghijklmno' }],
  ['vale0', { ifname: 'vale0', netmapName: 'vale0' }], // no ':' -> an interface called vale0
  // '+' is a name character in libnetmap (and Linux): not a ring selector
  ['eth0+', { ifname: 'eth0+', netmapName: 'eth0+' }],
  ['netmap:a+b-1', { scheme: 'netmap', ifname: 'a+b', netmapName: 'a+b', mode: 'one-hw', ring: 1 }],
  // flags
  ['eth0/R', { flags: { rxOnly: true } }],
  ['eth0/T', { flags: { txOnly: true } }],
  ['eth0/x', { flags: { exclusive: true } }],
  ['eth0/r', { flags: { monitorRx: true } }],
  ['eth0/t', { flags: { monitorTx: true } }],
  ['eth0/rtz', { flags: { monitorRx: true, monitorTx: true, zcopyMonitor: true } }],
  // netmap makes any z a zero-copy monitor of both sides (netmap_monitor.c); netmap's own
  // test scripts open vale0:v0/z and netmap:pipe{1/z
  ['eth0/zt', { flags: { monitorRx: true, monitorTx: true, zcopyMonitor: true } }],
  ['eth0/z', { flags: { monitorRx: true, monitorTx: true, zcopyMonitor: true } }],
  ['eth0/rz', { flags: { monitorRx: true, monitorTx: true, zcopyMonitor: true } }],
  ['vale0:v0/z', { scheme: 'vale', ifname: 'v0', vale: { switch: 'vale0', port: 'v0' }, mode: 'vale', netmapName: 'vale0:v0', flags: { monitorRx: true, monitorTx: true, zcopyMonitor: true } }],
  ['netmap:pipe{1/z', { scheme: 'netmap', ifname: 'pipe', pipe: '1', mode: 'pipe-master', netmapName: 'pipe{1', flags: { monitorRx: true, monitorTx: true, zcopyMonitor: true } }],
  ['eth0/xR', { flags: { exclusive: true, rxOnly: true } }],
  ['eth0-2/R', { mode: 'one-hw', ring: 2, flags: { rxOnly: true } }],
  ['eth0*/T', { mode: 'hw+host', flags: { txOnly: true } }],
  // memory region
  ['eth0@2', { memId: 2 }],
  ['eth0@65535', { memId: 65535 }],
  ['eth0-1/R@3@conf:rings=2', { mode: 'one-hw', ring: 1, flags: { rxOnly: true }, memId: 3, options: { conf: conf({ txRings: 2, rxRings: 2 }) } }],
  // options
  ['eth0@conf:rings=4,slots=1024', { options: { conf: conf({ txRings: 4, rxRings: 4, txSlots: 1024, rxSlots: 1024 }) } }],
  ['eth0@conf:rings=4', { options: { conf: conf({ txRings: 4, rxRings: 4 }) } }],
  ['eth0@conf:rings=4,tx-rings=2', { options: { conf: conf({ txRings: 2, rxRings: 4 }) } }],
  ['eth0@conf:tx_slots=512,host-rings=1,host-rx-rings=2', { options: { conf: conf({ txSlots: 512, hostTxRings: 1, hostRxRings: 2 }) } }],
  ['eth0@conf:rx-rings=65535,slots=4294967295', { options: { conf: conf({ rxRings: 65535, txSlots: 4294967295, rxSlots: 4294967295 }) } }],
  [
    'eth0@extmem:file=/dev/hugepages/nm,buf-num=65536',
    { options: { extmem: { file: '/dev/hugepages/nm', ifNum: 0, ifSize: 0, ringNum: 0, ringSize: 0, bufNum: 65536, bufSize: 0 } } },
  ],
  [
    'eth0@extmem=/tmp/x:y',
    { options: { extmem: { file: '/tmp/x:y', ifNum: 0, ifSize: 0, ringNum: 0, ringSize: 0, bufNum: 0, bufSize: 0 } } },
  ],
  [
    'eth0@extmem:if-num=1,if-size=2,ring-num=3,ring-size=4,buf-num=5,buf-size=6,file=f',
    { options: { extmem: { file: 'f', ifNum: 1, ifSize: 2, ringNum: 3, ringSize: 4, bufNum: 5, bufSize: 6 } } },
  ],
  ['eth0@offset=64', { options: { offset: { initial: 64, bits: 64 } } }],
  ['eth0@offset:initial=0,bits=16', { options: { offset: { initial: 0, bits: 16 } } }],
  ['eth0@share=netmap:eth1', { options: { share: 'netmap:eth1' } }],
  ['eth0@share:port=vale0:a', { options: { share: 'vale0:a' } }], // libnetmap's key form
  ['xdp:eth0@zerocopy@native', { scheme: 'xdp', options: { xdpBind: 'zerocopy', xdpAttach: 'native' } }],
  ['eth0-3@skb@copy', { mode: 'one-hw', ring: 3, options: { xdpBind: 'copy', xdpAttach: 'skb' } }],
  ['xdp:eth0-2@all', { scheme: 'xdp', mode: 'one-hw', ring: 2, options: { xdpAll: true } }],
  ['eth0@conf:rings=2@offset=8@share=vale0:a', { options: { conf: conf({ txRings: 2, rxRings: 2 }), offset: { initial: 8, bits: 64 }, share: 'vale0:a' } }],
  // VALE
  ['vale0:p1', { scheme: 'vale', ifname: 'p1', vale: { switch: 'vale0', port: 'p1' }, mode: 'vale', netmapName: 'vale0:p1' }],
  ['vale:p1', { scheme: 'vale', ifname: 'p1', vale: { switch: 'vale', port: 'p1' }, mode: 'vale', netmapName: 'vale:p1' }],
  ['vale0:eth0', { scheme: 'vale', ifname: 'eth0', vale: { switch: 'vale0', port: 'eth0' }, mode: 'vale', netmapName: 'vale0:eth0' }],
  ['vale0:p1-1', { scheme: 'vale', ifname: 'p1', vale: { switch: 'vale0', port: 'p1' }, mode: 'vale', ring: 1, netmapName: 'vale0:p1' }],
  [
    'vale_sw_1:port_2/T@conf:slots=256',
    { scheme: 'vale', ifname: 'port_2', vale: { switch: 'vale_sw_1', port: 'port_2' }, mode: 'vale', flags: { txOnly: true }, netmapName: 'vale_sw_1:port_2', options: { conf: conf({ txSlots: 256, rxSlots: 256 }) } },
  ],
  // pipes
  ['eth0{1', { pipe: '1', mode: 'pipe-master', netmapName: 'eth0{1' }],
  ['eth0}1', { pipe: '1', mode: 'pipe-slave', netmapName: 'eth0}1' }],
  ['p{web/T', { ifname: 'p', pipe: 'web', mode: 'pipe-master', flags: { txOnly: true }, netmapName: 'p{web' }],
  ['p{1@2', { ifname: 'p', pipe: '1', mode: 'pipe-master', memId: 2, netmapName: 'p{1' }],
  ['netmap:eth0{7-1', { scheme: 'netmap', pipe: '7', mode: 'pipe-master', ring: 1, netmapName: 'eth0{7' }],
  ['vale0:p1{2', { scheme: 'vale', ifname: 'p1', vale: { switch: 'vale0', port: 'p1' }, pipe: '2', mode: 'pipe-master', netmapName: 'vale0:p1{2' }],
];

test('every valid form parses into the exact normalised object', () => {
  for (const [spec, o] of VALID) assert.equal(parsePortName(spec), expected(spec, o), spec);
});

test('the result is plain data: it survives structuredClone (worker messages) unchanged', () => {
  for (const spec of ['eth0-2/R@conf:rings=4', 'vale0:p1{2@extmem=/f', 'xdp:eth0@zerocopy']) {
    const name = parsePortName(spec);
    assert.equal(structuredClone(name), name, spec);
    assert.is(Object.getPrototypeOf(name), Object.prototype);
  }
});

// [spec, position, exact message]
const INVALID: Array<[string, number, string]> = [
  ["", 0, "port \"\": position 0 (end): expected an interface name (e.g. eth0, eth0-2/R, vale0:p1, eth0{1), got an empty string"],
  ["eth0-", 5, "port \"eth0-\": position 5 (end): expected a ring number after '-' (0..4094), got end of name"],
  ["eth0-x", 5, "port \"eth0-x\": position 5: expected a ring number after '-', got \"x\" (interface names cannot contain '-': it selects a ring)"],
  ["eth0-4095", 5, "port \"eth0-4095\": position 5: expected a ring number after '-' in 0..4094, got 4095"],
  ["eth0^x", 5, "port \"eth0^x\": position 5: expected '/', '@' or the end of the name after the ring selector, got \"x\""],
  ["eth0^5000", 5, "port \"eth0^5000\": position 5: expected a host ring number after '^' in 0..4094, got 5000"],
  ["eth0{1+", 6, "port \"eth0{1+\": position 6: expected '-N', '/', '@' or the end of the name, got \"+\""],
  ["eth-a", 4, "port \"eth-a\": position 4: expected a ring number after '-', got \"a\" (interface names cannot contain '-': it selects a ring)"],
  ["eth0-1^", 6, "port \"eth0-1^\": position 6: expected '/', '@' or the end of the name after the ring selector, got \"^\""],
  ["eth0*1", 5, "port \"eth0*1\": position 5: expected '/', '@' or the end of the name after the ring selector, got \"1\""],
  ["eth0**", 5, "port \"eth0**\": position 5: expected '/', '@' or the end of the name after the ring selector, got \"*\""],
  ["eth0 ", 4, "port \"eth0 \": position 4: expected an interface name character (letters, digits, '_', '.', '+'), a ring selector, '/', '@' or the end of the name, got \" \""],
  ["eth#0", 3, "port \"eth#0\": position 3: expected an interface name character (letters, digits, '_', '.', '+'), a ring selector, '/', '@' or the end of the name, got \"#\""],
  ["eth0:1", 0, "port \"eth0:1\": position 0: expected a scheme ('netmap:', 'xdp:', 'packet:'), a VALE port ('valeX:Y') or a bare interface name, got \"eth0:\""],
  ["netmap:vale0:p", 12, "port \"netmap:vale0:p\": position 12: expected an interface name character, a ring selector, '/', '@' or the end of the name, got \":\" (VALE ports take no scheme: write vale0:...)"],
  [".", 0, "port \".\": position 0: expected an interface name other than \".\" or \"..\", got \".\""],
  ["..", 0, "port \"..\": position 0: expected an interface name other than \".\" or \"..\", got \"..\""],
  ["abcdefghijklmnop", 15, "port \"abcdefghijklmnop\": position 15: expected an interface name of at most 15 characters (Linux IFNAMSIZ), got 16 characters in \"abcdefghijklmnop\""],
  ["netmap:", 7, "port \"netmap:\": position 7 (end): expected an interface name (letters, digits, '_', '.', '+'), got end of name"],
  ["xdp:-1", 4, "port \"xdp:-1\": position 4: expected an interface name (letters, digits, '_', '.', '+'), got \"-\""],
  ["foo:eth0", 0, "port \"foo:eth0\": position 0: expected a scheme ('netmap:', 'xdp:', 'packet:'), a VALE port ('valeX:Y') or a bare interface name, got \"foo:\""],
  ["pcap:x.pcap", 0, "port \"pcap:x.pcap\": position 0: expected an interface port, got \"pcap:\" (pcap: ports are file/generator ports, parsed by the --port spec reader, not interface names)"],
  ["gen:count=1", 0, "port \"gen:count=1\": position 0: expected an interface port, got \"gen:\" (gen: ports are file/generator ports, parsed by the --port spec reader, not interface names)"],
  ["vale0:", 6, "port \"vale0:\": position 6 (end): expected a VALE port name (letters, digits, '_') after \"vale0:\", got end of name"],
  ["vale-0:p", 4, "port \"vale-0:p\": position 4: expected a VALE switch name ('vale' then letters, digits, '_'), got \"-\""],
  ["vale0:p-x", 8, "port \"vale0:p-x\": position 8: expected a ring number after '-', got \"x\" (interface names cannot contain '-': it selects a ring)"],
  ["valeabcdefghijklm:p", 0, "port \"valeabcdefghijklm:p\": position 0: expected a VALE switch name of at most 15 characters, got 17 characters in \"valeabcdefghijklm\""],
  ["vale0:abcdefghijklmnop", 21, "port \"vale0:abcdefghijklmnop\": position 21: expected a VALE port name of at most 15 characters, got 16 characters in \"abcdefghijklmnop\""],
  ["vale0:p^", 7, "port \"vale0:p^\": position 7: expected '-N', '/', '@' or the end of the name, got \"^\" (a VALE port has no host rings)"],
  ["eth0{", 5, "port \"eth0{\": position 5 (end): expected a pipe id (letters, digits, '_') after \"{\", got end of name"],
  ["eth0}", 5, "port \"eth0}\": position 5 (end): expected a pipe id (letters, digits, '_') after \"}\", got end of name"],
  ["eth0{1*", 6, "port \"eth0{1*\": position 6: expected '-N', '/', '@' or the end of the name, got \"*\" (a pipe has no host rings)"],
  ["eth0{a.b", 6, "port \"eth0{a.b\": position 6: expected '-N', '/', '@' or the end of the name, got \".\""],
  ["eth0/", 5, "port \"eth0/\": position 5 (end): expected a flag (R T x r t z) after '/', got end of name"],
  ["eth0/@conf=4", 5, "port \"eth0/@conf=4\": position 5: expected a flag (R T x r t z) after '/', got \"@\""],
  ["eth0/Q", 5, "port \"eth0/Q\": position 5: expected a flag (R T x r t z), '@' or the end of the name, got \"Q\""],
  ["eth0/RR", 6, "port \"eth0/RR\": position 6: expected each flag at most once, got \"R\" again"],
  ["eth0/RT", 5, "port \"eth0/RT\": position 5: expected R (RX rings only) or T (TX rings only), not both, got \"/RT\" (together they select no ring)"],
  ["eth0//R", 5, "port \"eth0//R\": position 5: expected a flag (R T x r t z), '@' or the end of the name, got \"/\""],
  ["eth0@", 5, "port \"eth0@\": position 5 (end): expected an option name (conf, extmem, offset, share, zerocopy, copy, native, skb, all) after '@', got end of name"],
  ["eth0@0", 5, "port \"eth0@0\": position 5: expected a memory region id in 1..65535, got 0"],
  ["eth0@65536", 5, "port \"eth0@65536\": position 5: expected a memory region id in 1..65535, got 65536"],
  ["eth0@2/R", 6, "port \"eth0@2/R\": position 6: expected '@' or the end of the name after the memory region id, got \"/\" (flags go before '@': write NAME/FLAGS@N)"],
  ["eth0@2@3", 7, "port \"eth0@2@3\": position 7: expected an option name (conf, extmem, offset, share, zerocopy, copy, native, skb, all), got \"3\" (the memory region id @N may be given once, before the options)"],
  ["eth0@bogus", 5, "port \"eth0@bogus\": position 5: expected an option name (conf, extmem, offset, share, zerocopy, copy, native, skb, all), got \"bogus\""],
  ["eth0@conf", 9, "port \"eth0@conf\": position 9 (end): expected ':KEY=VALUE,...' after '@conf', got end of name"],
  // libnetmap: "syntax error: '=' not valid after 'conf'" (conf has no default key)
  ["eth0@conf=4", 9, "port \"eth0@conf=4\": position 9: expected ':KEY=VALUE,...' after '@conf', got \"=\" (@conf has no default key, as in libnetmap: write @conf:rings=4)"],
  ["eth0@conf=", 9, "port \"eth0@conf=\": position 9: expected ':KEY=VALUE,...' after '@conf', got \"=\" (@conf has no default key, as in libnetmap: write @conf:rings=N)"],
  ["eth0@conf:rings=0", 16, "port \"eth0@conf:rings=0\": position 16: expected an integer 1..65535 for key \"rings\" of @conf, got \"0\""],
  ["eth0@conf:rings=70000", 16, "port \"eth0@conf:rings=70000\": position 16: expected an integer 1..65535 for key \"rings\" of @conf, got \"70000\""],
  ["eth0@conf:", 10, "port \"eth0@conf:\": position 10 (end): expected a key of @conf (rings, tx-rings, rx-rings, host-rings, host-tx-rings, host-rx-rings, slots, tx-slots, rx-slots), got end of name"],
  ["eth0@conf:ringz=4", 10, "port \"eth0@conf:ringz=4\": position 10: expected a key of @conf (rings, tx-rings, rx-rings, host-rings, host-tx-rings, host-rx-rings, slots, tx-slots, rx-slots), got \"ringz\""],
  ["eth0@conf:rings", 15, "port \"eth0@conf:rings\": position 15 (end): expected '=' and a value after key \"rings\" of @conf, got end of name"],
  ["eth0@conf:rings=", 16, "port \"eth0@conf:rings=\": position 16 (end): expected a value for key \"rings\" of @conf, got end of name"],
  ["eth0@conf:rings=4,rings=8", 18, "port \"eth0@conf:rings=4,rings=8\": position 18: expected each key of @conf at most once, got \"rings\" again"],
  ["eth0@conf:slots=x", 16, "port \"eth0@conf:slots=x\": position 16: expected an integer 1..4294967295 for key \"slots\" of @conf, got \"x\""],
  ["eth0@conf:rings=4@conf:slots=8", 18, "port \"eth0@conf:rings=4@conf:slots=8\": position 18: expected each option at most once, got \"@conf\" again"],
  ["eth0@extmem", 11, "port \"eth0@extmem\": position 11 (end): expected '=VALUE' or ':KEY=VALUE,...' after '@extmem', got end of name"],
  ["eth0@extmem:if-num=3", 20, "port \"eth0@extmem:if-num=3\": position 20 (end): expected key \"file\" in @extmem, got end of name (it is mandatory)"],
  ["eth0@extmem:file=/f,if-num=-1", 27, "port \"eth0@extmem:file=/f,if-num=-1\": position 27: expected an integer 1..4294967295 for key \"if-num\" of @extmem, got \"-1\""],
  ["eth0@offset:bits=8", 18, "port \"eth0@offset:bits=8\": position 18 (end): expected key \"initial\" in @offset, got end of name (it is mandatory)"],
  ["eth0@offset=x", 12, "port \"eth0@offset=x\": position 12: expected an integer 0..9007199254740991 for key \"initial\" of @offset, got \"x\""],
  ["eth0@offset:initial=0,bits=65", 27, "port \"eth0@offset:initial=0,bits=65\": position 27: expected an integer 1..64 for key \"bits\" of @offset, got \"65\""],
  ["eth0@share", 10, "port \"eth0@share\": position 10 (end): expected '=VALUE' or ':KEY=VALUE,...' after '@share', got end of name"],
  ["eth0@share=", 11, "port \"eth0@share=\": position 11 (end): expected a value after '@share=', got end of name"],
  ["eth0@share:file=x", 11, "port \"eth0@share:file=x\": position 11: expected a key of @share (port), got \"file\""],
  ["eth0@zerocopy=1", 13, "port \"eth0@zerocopy=1\": position 13: expected '@' or the end of the name (option \"zerocopy\" takes no value), got \"=\""],
  ["eth0@zerocopy@copy", 14, "port \"eth0@zerocopy@copy\": position 14: expected one of '@zerocopy' and '@copy', got \"@copy\" (@zerocopy was given already)"],
  ["eth0@native@skb", 12, "port \"eth0@native@skb\": position 12: expected one of '@native' and '@skb', got \"@skb\" (@native was given already)"],
  ["eth0@copy:x", 9, "port \"eth0@copy:x\": position 9: expected '@' or the end of the name (option \"copy\" takes no value), got \":\""],
  ["eth0@all=1", 8, "port \"eth0@all=1\": position 8: expected '@' or the end of the name (option \"all\" takes no value), got \"=\""],
  ["eth0@all@all", 9, "port \"eth0@all@all\": position 9: expected each option at most once, got \"@all\" again"],
  ["eth0@conf;", 9, "port \"eth0@conf;\": position 9: expected '=', ':', '@' or the end of the name after option \"conf\", got \";\""],
  ["eth0-1x", 6, "port \"eth0-1x\": position 6: expected '/', '@' or the end of the name after the ring selector, got \"x\""],
  ["vale0:p1{abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdef", 67, "port \"vale0:p1{abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdef\": position 67 (end): expected a netmap port name of at most 63 characters, got 67 characters in \"vale0:p1{abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdef\""],
];

test('every invalid form fails with its exact message and position', () => {
  for (const [spec, position, message] of INVALID) {
    try {
      parsePortName(spec);
      assert.unreachable(`${JSON.stringify(spec)} parsed`);
    } catch (err) {
      if (!(err instanceof PortNameError)) throw err;
      assert.is(err.message, message, spec);
      assert.is(err.position, position, `${spec}: position`);
      assert.is(err.spec, spec);
      assert.ok(err instanceof UsageError, 'a usage error (exit status 2)');
      assert.not.match(err.message, /\n/);
    }
  }
});

// Issue 7, held against libnetmap (nmreq.c/nmport.c) and the kernel, one test per difference.
test('libnetmap: @conf has no default key, so eth0@conf=4 is refused (write @conf:rings=4)', () => {
  assert.throws(() => parsePortName('eth0@conf=4'), (err: Error) => err instanceof PortNameError && /@conf has no default key, as in libnetmap: write @conf:rings=4\)$/.test(err.message));
  assert.equal(parsePortName('eth0@conf:rings=4').options.conf, conf({ txRings: 4, rxRings: 4 }));
});

test("libnetmap and netmap's test scripts: /z alone is a zero-copy monitor, of both sides like /rz (the kernel sets RX and TX)", () => {
  const both = { ...NO_FLAGS, monitorRx: true, monitorTx: true, zcopyMonitor: true };
  for (const spec of ['vale0:v0/z', 'netmap:pipe{1/z', 'eth0/z', 'eth0/rz', 'eth0/tz', 'eth0/rtz']) assert.equal(parsePortName(spec).flags, both, spec);
});

test("libnetmap: '+' is a name character (eth0+ is the interface eth0+), not a ring selector", () => {
  const name = parsePortName('eth0+');
  assert.is(name.ifname, 'eth0+');
  assert.is(name.mode, 'all-hw');
  assert.is(name.netmapName, 'eth0+');
});

// netmap's own parser table (utils/ctrl-api-test.c, nmreq_parse_tests), with what libnetmap's
// full parse (nmport_parse: header, register, options) gives: [spec, nr_name, nr_mode,
// nr_ringid, nr_flags, nr_mem_id] or null = refused. Where nmwasm differs on purpose
// (docs/PORTS.md), the row says what nmwasm does and why.
type Reg = [name: string, mode: number, ringid: number, flags: number, memId: number];
const NETMAP_TABLE: Array<[string, Reg | null, string?]> = [
  ['netmap:eth0', ['eth0', 1, 0, 0, 0]],
  ['netmap:eth0-1', ['eth0', 4, 1, 0, 0]],
  ['netmap:eth0-', null],
  ['netmap:eth0/x', ['eth0', 1, 0, 0x800, 0]],
  ['netmap:eth0/z', ['eth0', 1, 0, 0x700, 0], 'libnetmap sends 0x400 (ZCOPY_MON); the kernel adds MONITOR_RX|TX to it, nmwasm sends all three'],
  ['netmap:eth0/r', ['eth0', 1, 0, 0x200, 0]],
  ['netmap:eth0/t', ['eth0', 1, 0, 0x100, 0]],
  ['netmap:eth0-2/Tx', ['eth0', 4, 2, 0x4000 | 0x800, 0]],
  ['netmap:eth0*', ['eth0', 3, 0, 0, 0]],
  ['netmap:eth0^', ['eth0', 2, 0, 0, 0]],
  ['netmap:eth0@2', ['eth0', 1, 0, 0, 2]],
  ['netmap:eth0@2/R', null, '(nmwasm) flags before @N; libnetmap takes either order'],
  ['netmap:eth0@netmap:lo/R', null],
  ['netmap:eth0/R@xxx', null],
  ['netmap:eth0@2/R@2', null, '(nmwasm) flags before @N, @N once; libnetmap takes either'],
  ['netmap:eth0@2/R@3', null],
  ['netmap:eth0@', null],
  ['netmap:', null],
  ['netmap:^', null],
  ['netmap:{', null],
  ['netmap:vale0:0', null],
  ['eth0', ['eth0', 1, 0, 0, 0], 'a bare name: nmwasm chooses the backend; libnetmap needs netmap:'],
  ['vale0:0', ['vale0:0', 1, 0, 0, 0]],
  ['vale:0', ['vale:0', 1, 0, 0, 0]],
  ['valeXXX:YYY', ['valeXXX:YYY', 1, 0, 0, 0]],
  ['valeXXX:YYY-4', ['valeXXX:YYY', 4, 4, 0, 0]],
  ['netmapXXX:eth0', null],
  ['netmap:14', ['14', 1, 0, 0, 0]],
  ['netmap:eth0&', null],
  ['netmap:pipe{0', ['pipe{0', 1, 0, 0, 0]],
  ['netmap:pipe{in', ['pipe{in', 1, 0, 0, 0]],
  ['netmap:pipe{in-7', ['pipe{in', 4, 7, 0, 0]],
  ['vale0:0{0', ['vale0:0{0', 1, 0, 0, 0]],
  ['netmap:pipe{1}2', null],
  ['vale0:0@opt', null],
  ['vale0:0/Tx@opt', null],
  ['vale0:0-3@opt', null],
  ['vale0:0@', null],
  ['', null],
];

test("netmap's own parser table (ctrl-api-test.c): nmwasm accepts and encodes what libnetmap does", () => {
  for (const [spec, want, why] of NETMAP_TABLE) {
    let got: Reg | null = null;
    try {
      const f = netmapRegisterFields(parsePortName(spec));
      got = [f.nrName, f.nrMode, f.nrRingid, f.nrFlags, f.nrMemId];
    } catch (err) {
      if (!(err instanceof PortNameError)) throw err;
    }
    assert.equal(got, want, `${spec}${why ? ` (${why})` : ''}`);
  }
});

const ALL: BackendProbe = { netmap: true, xdp: true, packet: true };
const NO_NETMAP: BackendProbe = { netmap: false, xdp: true, packet: true };
const PACKET_ONLY: BackendProbe = { netmap: false, xdp: false, packet: true };
const NOTHING: BackendProbe = { netmap: false, xdp: false, packet: false };

const CHOICES: Array<[string, BackendProbe, Backend, string]> = [
  ['eth0-2/R', ALL, 'netmap', 'netmap: /dev/netmap exists'],
  ['eth0-2/R', NO_NETMAP, 'xdp', 'AF_XDP: /dev/netmap is absent'],
  ['eth0-2/R', PACKET_ONLY, 'packet', 'AF_PACKET: /dev/netmap is absent and AF_XDP is unavailable'],
  ['eth0/r', NO_NETMAP, 'packet', 'AF_PACKET: /dev/netmap is absent and AF_XDP cannot honour monitors (/r, /t)'],
  ['eth0/x', NO_NETMAP, 'xdp', 'AF_XDP: /dev/netmap is absent'],
  ['eth0-3@skb@copy', ALL, 'xdp', 'AF_XDP: netmap cannot honour @zerocopy/@copy'],
  ['eth0@conf:slots=1000', NO_NETMAP, 'packet', 'AF_PACKET: /dev/netmap is absent and AF_XDP needs power-of-two ring sizes'],
  ['vale0:p1', ALL, 'netmap', 'netmap: /dev/netmap exists'],
  ['vale0:p1', NOTHING, 'software', "nmwasm's software pipes/VALE: /dev/netmap is absent"],
  ['eth0{1', NO_NETMAP, 'software', "nmwasm's software pipes/VALE: /dev/netmap is absent"],
  ['netmap:eth0^', ALL, 'netmap', 'netmap: the name says netmap:'],
  ['xdp:eth0-1', ALL, 'xdp', 'AF_XDP: the name says xdp:'],
  ['packet:eth0/r', ALL, 'packet', 'AF_PACKET: the name says packet:'],
];

test('backend choice: scheme, else netmap > AF_XDP > AF_PACKET among those that honour the name', () => {
  for (const [spec, probe, backend, reason] of CHOICES) {
    assert.equal(chooseBackend(parsePortName(spec), probe), { backend, reason }, `${spec} ${JSON.stringify(probe)}`);
  }
});

const REFUSED_CHOICES: Array<[string, BackendProbe, string]> = [
  ['eth0^', NO_NETMAP, 'port "eth0^": no available backend can honour host rings (^, ^N, *): netmap can, but /dev/netmap is absent (the netmap kernel module is not loaded)'],
  ['eth0/rz', PACKET_ONLY, 'port "eth0/rz": no available backend can honour zero-copy monitors (/z): netmap can, but /dev/netmap is absent (the netmap kernel module is not loaded)'],
  ['eth0@extmem=/f', NO_NETMAP, 'port "eth0@extmem=/f": no available backend can honour @extmem: netmap can, but /dev/netmap is absent (the netmap kernel module is not loaded)'],
  ['eth0', NOTHING, 'port "eth0": no backend is available: /dev/netmap is absent, AF_XDP is unavailable, AF_PACKET is unavailable'],
  ['netmap:eth0-1', NO_NETMAP, 'port "netmap:eth0-1": netmap: was asked for, but /dev/netmap is absent (the netmap kernel module is not loaded); AF_XDP is available (xdp:eth0-1); AF_PACKET is available (packet:eth0-1)'],
  ['xdp:eth0/r', PACKET_ONLY, 'port "xdp:eth0/r": xdp: was asked for, but AF_XDP sockets are not available; AF_PACKET is available (packet:eth0/r)'],
  ['packet:eth0', { netmap: false, xdp: true, packet: false }, 'port "packet:eth0": packet: was asked for, but AF_PACKET sockets are not available; AF_XDP is available (xdp:eth0)'],
  ['packet:eth0^', ALL, 'port "packet:eth0^": AF_PACKET cannot honour host rings (^, ^N, *); netmap can (netmap:eth0^)'],
];

test('backend choice refusals say which backend could and why it is not here', () => {
  for (const [spec, probe, message] of REFUSED_CHOICES) {
    try {
      chooseBackend(parsePortName(spec), probe);
      assert.unreachable(spec);
    } catch (err) {
      if (!(err instanceof PortSupportError)) throw err;
      assert.is(err.message, message, spec);
    }
  }
});

const REFUSALS: Array<[Backend, string, string]> = [
  ['packet', 'packet:eth0^', 'port "packet:eth0^": AF_PACKET cannot honour host rings (^, ^N, *); netmap can (netmap:eth0^)'],
  ['xdp', 'xdp:eth0^1', 'port "xdp:eth0^1": AF_XDP cannot honour host rings (^, ^N, *); netmap can (netmap:eth0^1)'],
  ['xdp', 'xdp:eth0/r', 'port "xdp:eth0/r": AF_XDP cannot honour monitors (/r, /t); netmap can (netmap:eth0/r); AF_PACKET can (packet:eth0/r)'],
  ['packet', 'packet:eth0/x', 'port "packet:eth0/x": AF_PACKET cannot honour exclusive binding (/x); netmap can (netmap:eth0/x); AF_XDP can (xdp:eth0/x)'],
  ['packet', 'packet:eth0/tz', 'port "packet:eth0/tz": AF_PACKET cannot honour zero-copy monitors (/z); netmap can (netmap:eth0/tz)'],
  ['xdp', 'xdp:eth0{1', "port \"xdp:eth0{1\": AF_XDP cannot honour netmap pipes ({ and }); netmap can (netmap:eth0{1); nmwasm's software pipes/VALE can (eth0{1)"],
  ['packet', 'packet:eth0@2', 'port "packet:eth0@2": AF_PACKET cannot honour memory region ids (@N); netmap can (netmap:eth0@2)'],
  ['xdp', 'xdp:eth0@conf:rings=4', 'port "xdp:eth0@conf:rings=4": AF_XDP cannot honour @conf ring counts; netmap can (netmap:eth0@conf:rings=4)'],
  ['packet', 'packet:eth0/z', 'port "packet:eth0/z": AF_PACKET cannot honour zero-copy monitors (/z); netmap can (netmap:eth0/z)'],
  ['xdp', 'xdp:eth0@conf:slots=1000', 'port "xdp:eth0@conf:slots=1000": AF_XDP needs ring sizes that are powers of two, got 1000 slots; netmap can (netmap:eth0@conf:slots=1000)'],
  ['netmap', 'netmap:eth0@zerocopy', 'port "netmap:eth0@zerocopy": netmap cannot honour @zerocopy/@copy; AF_XDP can (xdp:eth0@zerocopy)'],
  ['packet', 'packet:eth0@skb', 'port "packet:eth0@skb": AF_PACKET cannot honour @native/@skb; AF_XDP can (xdp:eth0@skb)'],
  ['netmap', 'netmap:eth0-2@all', 'port "netmap:eth0-2@all": netmap cannot honour @all; AF_XDP can (xdp:eth0-2@all)'],
  ['xdp', 'xdp:eth0@offset=8', 'port "xdp:eth0@offset=8": AF_XDP cannot honour @offset; netmap can (netmap:eth0@offset=8)'],
  ['packet', 'packet:eth0@share=netmap:eth1', 'port "packet:eth0@share=netmap:eth1": AF_PACKET cannot honour @share; netmap can (netmap:eth0@share=netmap:eth1)'],
  ['software', 'eth0', "port \"eth0\": nmwasm's software pipes/VALE cannot honour interface rings; netmap can (netmap:eth0); AF_XDP can (xdp:eth0); AF_PACKET can (packet:eth0)"],
  ['software', 'vale0:p1/r', "port \"vale0:p1/r\": nmwasm's software pipes/VALE cannot honour monitors (/r, /t); netmap can (vale0:p1/r)"],
  ['pcap', 'eth0/T', 'port "eth0/T": pcap: cannot honour interface rings; netmap can (netmap:eth0/T); AF_XDP can (xdp:eth0/T); AF_PACKET can (packet:eth0/T)'],
  ['gen', 'vale0:p1', "port \"vale0:p1\": gen: cannot honour VALE ports (valeX:Y); netmap can (vale0:p1); nmwasm's software pipes/VALE can (vale0:p1)"],
  ['xdp', 'xdp:eth0/r@2', 'port "xdp:eth0/r@2": AF_XDP cannot honour monitors (/r, /t); netmap can (netmap:eth0/r@2)'],
];

test('checkSupported refuses what a backend cannot honour and names one that can', () => {
  for (const [backend, spec, message] of REFUSALS) {
    try {
      checkSupported(backend, parsePortName(spec));
      assert.unreachable(`${backend} ${spec}`);
    } catch (err) {
      if (!(err instanceof PortSupportError)) throw err;
      assert.is(err.message, message, `${backend} ${spec}`);
      assert.is(err.backend, backend);
    }
  }
});

const HONOURED: Array<[Backend, string]> = [
  ['netmap', 'netmap:eth0*/rtz@2@conf:rings=4@extmem=/f@offset=8@share=eth1'],
  ['xdp', 'xdp:eth0-2/R@conf:slots=2048@zerocopy@native'],
  ['xdp', 'xdp:eth0/x'],
  ['packet', 'packet:eth0-1/r@conf:slots=1000'],
  ['software', 'vale0:p1-1/T@conf:rings=2,slots=512'],
  ['software', 'eth0}3/x'],
  ['software', 'p{1-0/x@3@conf:slots=256'],
];

test('checkSupported accepts what a backend honours', () => {
  for (const [backend, spec] of HONOURED) checkSupported(backend, parsePortName(spec));
});

test('docs/PORTS.md: every form in its table has a row here', () => {
  const doc = readFileSync(fileURLToPath(new URL('../../docs/PORTS.md', import.meta.url)), 'utf8');
  const section = doc.slice(doc.indexOf('## Every form'), doc.indexOf('### pcap: and gen:'));
  const forms = [...section.matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]!);
  assert.ok(forms.length >= 30, `found ${forms.length} forms`);
  const tested = new Set(VALID.map(([spec]) => spec));
  for (const form of forms) {
    if (form.startsWith('pcap:') || form.startsWith('gen:')) {
      // parsed by host/ports/portspec.ts; this parser hands them back with a message saying so
      assert.throws(() => parsePortName(form), /file\/generator ports, parsed by the --port spec reader/);
      continue;
    }
    assert.ok(tested.has(form), `PORTS.md form ${form} has no VALID row`);
  }
  // and the messages quoted in PORTS.md are the real ones
  const quoted = doc.match(/`(port "eth0\^": no available backend[^`]+)`/);
  assert.ok(quoted, 'PORTS.md quotes the eth0^ refusal');
  assert.is(quoted![1]!.replace(/\s+/g, ' '), REFUSED_CHOICES[0]![2]);
});

test.run();
