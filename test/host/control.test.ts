// Pure parts of the control plane: host names, the --metrics address rule, swap request
// checks, per-command help cut from the full help, humanized status-line units.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { defaultHostName, checkHostName } from '../../host/control/control-host.ts';
import { parseMetricsAddress } from '../../host/control/metrics.ts';
import { checkSwapRequest } from '../../host/control/control-server.ts';
import { controlDir, socketPath } from '../../host/control/control-types.ts';
import { commandHelp } from '../../host/cli/help.ts';
import { clock, humanBits, humanBytes } from '../../host/cli/stats.ts';

test('default host names derive from the input port', () => {
  assert.is(defaultHostName('gen:count=5'), 'gen-count-5');
  assert.is(defaultHostName('pcap:/x/in.pcap'), 'pcap-in.pcap');
  assert.is(defaultHostName('eth0-1'), 'eth0-1');
  assert.is(defaultHostName('p}1@conf:rings=2'), 'p-1-conf-rings-2');
  assert.is(defaultHostName('{{{'), 'nmwasm');
  assert.ok(defaultHostName(`gen:${'x'.repeat(200)}`).length <= 64);
  assert.is(checkHostName('fw-1.a_b'), 'fw-1.a_b');
  for (const bad of ['', '../x', 'a/b', '.hidden', '-x', 'x'.repeat(65), 'a b']) assert.throws(() => checkHostName(bad), /^--name: expected 1\.\.64 letters/);
});

test('the socket lives under $XDG_RUNTIME_DIR/nmwasm, else /run/nmwasm', () => {
  assert.is(controlDir({ XDG_RUNTIME_DIR: '/run/user/1000' }), '/run/user/1000/nmwasm');
  assert.is(controlDir({}), '/run/nmwasm');
  assert.is(controlDir({ XDG_RUNTIME_DIR: 'relative' }), '/run/nmwasm');
  assert.is(socketPath('fw', { XDG_RUNTIME_DIR: '/r' }), '/r/nmwasm/fw.sock');
});

test('--metrics: loopback only unless public; the address is checked', () => {
  assert.equal(parseMetricsAddress('127.0.0.1:9464', false), { host: '127.0.0.1', port: 9464 });
  assert.equal(parseMetricsAddress('127.1.2.3:1', false), { host: '127.1.2.3', port: 1 });
  assert.equal(parseMetricsAddress('[::1]:9464', false), { host: '::1', port: 9464 });
  assert.equal(parseMetricsAddress('localhost:80', false), { host: 'localhost', port: 80 });
  assert.equal(parseMetricsAddress('0.0.0.0:9464', true), { host: '0.0.0.0', port: 9464 });
  assert.equal(parseMetricsAddress('[::]:9464', true), { host: '::', port: 9464 });
  for (const open of ['0.0.0.0:9464', '10.0.0.1:9464', '[::]:1']) assert.throws(() => parseMetricsAddress(open, false), /expected a loopback address .* add --metrics-public/);
  for (const bad of ['9464', ':9464', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '::1:9464', '[127.0.0.1]:9', 'host.example:9', '127.0.0.1:9x']) {
    assert.throws(() => parseMetricsAddress(bad, true), /^--metrics: expected ADDR:PORT/, bad);
  }
});

test('swap requests are checked field by field', () => {
  assert.equal(checkSwapRequest({ module: '/a.wasm' }), { module: '/a.wasm' });
  assert.equal(checkSwapRequest({ module: '/a.wasm', config: '/c', clause: 1, module_index: 2 }), { module: '/a.wasm', config: '/c', clause: 1, module_index: 2 });
  assert.match(checkSwapRequest({}) as string, /expected "module"/);
  assert.match(checkSwapRequest({ module: 'a', clause: -1 }) as string, /"clause": an integer/);
  assert.match(checkSwapRequest({ module: 'a', module_index: 1.5 }) as string, /"module_index": an integer/);
  assert.match(checkSwapRequest({ module: 'a', config: 5 }) as string, /"config": a path/);
});

test('per-command help keeps the command usage and its options only', () => {
  const help = [
    'usage:',
    '  nmwasm load MODULE --port SPEC',
    '                     [--count N]',
    '  nmwasm stats NAME [--json]',
    '',
    'MODULE      a module',
    '--port      input port',
    '            continued',
    '--json      json',
    '--pcap      a capture',
    'NAME        a host',
    '',
    'exit status: 0',
  ].join('\n');
  const load = commandHelp(help, 'load', { port: { type: 'string' }, json: { type: 'boolean' } });
  assert.match(load, /nmwasm load MODULE --port SPEC\n {21}\[--count N\]/);
  assert.match(load, /--port      input port\n {12}continued/);
  assert.not.match(load, /--pcap|nmwasm stats|NAME {8}/);
  const stats = commandHelp(help, 'stats', { json: { type: 'boolean' } });
  assert.match(stats, /nmwasm stats NAME/);
  assert.match(stats, /NAME {8}a host/);
  assert.not.match(stats, /MODULE|--port/);
  assert.match(stats, /exit status: 0$/);
});

test('status line units', () => {
  assert.is(humanBytes(512), '512 B');
  assert.is(humanBytes(1536), '1.50 KiB');
  assert.is(humanBytes(61862), '60.4 KiB');
  assert.is(humanBytes(3 * 1024 ** 3), '3.00 GiB');
  assert.is(humanBits(950), '950 bit/s');
  assert.is(humanBits(1.2e6), '1.20 Mbit/s');
  assert.is(humanBits(9.87e9), '9.87 Gbit/s');
  assert.is(clock(5), '00:05');
  assert.is(clock(3723), '1:02:03');
  assert.is(clock(-3), '00:00');
});

test.run();
