// The example filter packages (filters/packages/*): each is a package whose nmwasm.module is
// built, with a README and a manifest; every one validates its config (a wrong one is
// refused with one line naming the line and the field); the reflector's rewrite and the
// counter's carried totals, through the test API (host/module/testapi.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runFilter } from '../../host/module/testapi.ts';
import { root, wasmPath } from './harness.ts';
import * as f from './frames.ts';

const dir = join(root, 'filters/packages');
const names = readdirSync(dir).sort();

test('every package declares its built module, config format, README and manifest (docs/PACKAGES.md block)', () => {
  assert.equal(names, ['counter', 'firewall', 'hexdump', 'host-control', 'ratelimit', 'reflector']);
  for (const name of names) {
    const pkg = JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8'));
    const manifest = JSON.parse(readFileSync(join(dir, name, 'manifest.json'), 'utf8'));
    assert.is(pkg.name, `@nmwasm/${name}`);
    assert.ok(pkg.keywords.includes('nmwasm-filter'), name);
    const sha256 = createHash('sha256').update(readFileSync(wasmPath(name))).digest('hex');
    assert.equal(pkg.nmwasm, { abi: 1, module: `build/${name}.wasm`, sha256, entry: 'index.ts', config: manifest.config, configFormat: manifest.configFormat, stats: manifest.stats });
    assert.ok(['none', 'text'].includes(manifest.configFormat), name);
    assert.is(manifest.abi, 1);
    assert.is(manifest.name, name);
    assert.is(manifest.version, pkg.version);
    for (const file of pkg.files) assert.ok(existsSync(join(dir, name, file)), `${name}: ${file} listed in "files" exists`);
    assert.equal(readFileSync(join(dir, name, pkg.nmwasm.module)), readFileSync(wasmPath(name)), `${name}: the package's module is filters/build/${name}.wasm`);
    if (existsSync(join(dir, name, 'example.rules'))) assert.is(runFilter(wasmPath(name), [f.arp()], { config: readFileSync(join(dir, name, 'example.rules')) }).totals.packets, 1, `${name}: its example config is accepted`);
  }
});

test('a package runs by its name in node_modules, as npm workspaces link it', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'nmwasm-pkgs-'));
  mkdirSync(join(tmp, 'node_modules'));
  symlinkSync(dir, join(tmp, 'node_modules', '@nmwasm'));
  const cwd = process.cwd();
  process.chdir(tmp);
  try {
    const run = runFilter('@nmwasm/ratelimit', [f.udp4('10.0.0.1', '10.0.0.2', 1, 2), f.udp4('10.0.0.1', '10.0.0.2', 1, 2)], { config: 'default rate 1 burst 1' });
    assert.equal(run.frames.map((r) => r.verdict), ['PASS', 'DROP']);
  } finally {
    process.chdir(cwd);
  }
});

test('every package refuses a wrong config with one line naming the line and the field', () => {
  const cases: Record<string, [string, string][]> = {
    counter: [['packets 1', "line 1: unexpected setting 'packets' (expected no config: counter has no settings)"], ['# ok\n\n  bad', "line 3: unexpected setting 'bad'"]],
    'host-control': [['arp host', "line 1: unexpected setting 'arp' (expected no config: host-control has no settings)"]],
    firewall: [['pass tcp\nallow udp', "line 2: "]],
    hexdump: [['rate 5 speed 3', "line 1: unknown setting 'speed' (expected rate N or bytes N)"]],
    ratelimit: [['default rate 5 brust 3', "line 1: unknown field 'brust' (expected rate N or burst N)"]],
    reflector: [['swap udp', "line 1: bad swap 'udp' (expected mac, ip or ports)"], ['swap ip\noutput 128', "line 2: bad output '128' (expected an output port number 0..127)"], ['reflect', "line 1: unknown field 'reflect'"]],
  };
  assert.equal(Object.keys(cases).sort(), names);
  for (const [name, list] of Object.entries(cases)) {
    for (const [config, message] of list) {
      let text = '';
      try {
        runFilter(wasmPath(name), [f.arp()], { config });
      } catch (err) {
        text = (err as Error).message;
      }
      assert.ok(text.startsWith("config: configuration rejected by the filter's nmwasm_init: "), `${name} ${JSON.stringify(config)}: ${text}`);
      assert.ok(text.includes(message), `${name}: ${text}`);
      assert.not.match(text, /\n/);
    }
  }
  // Blank lines and comments are no config.
  assert.is(runFilter(wasmPath('counter'), [f.arp()], { config: '# nothing\n\n' }).totals.pass, 1);
});

/** The 16-bit one's-complement sum of `b` (0xffff when a checksum in it is valid). */
function sum16(b: Uint8Array): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  return s;
}

function withIpChecksum(frame: Uint8Array): Uint8Array {
  const out = Uint8Array.from(frame);
  const c = 0xffff - sum16(out.subarray(14, 34));
  out[24] = c >> 8; out[25] = c & 0xff;
  return out;
}

test('reflector: swaps MACs (and IPs, ports as configured), FORWARDs to output 0, checksums stay valid', () => {
  const udp = withIpChecksum(f.udp4('10.0.0.1', '10.0.0.2', 1111, 2222));
  const tcp6 = f.tcp6('2001:db8::1', '2001:db8::2', 80, 40000);
  const arp = f.arp();
  const mac = runFilter(wasmPath('reflector'), [udp, arp]);
  assert.equal(mac.frames.map((r) => r.verdict), ['FORWARD 0', 'FORWARD 0']);
  assert.equal(Array.from(mac.frames[0]!.data.subarray(0, 12)), [...udp.subarray(6, 12), ...udp.subarray(0, 6)]);
  assert.equal(mac.frames[0]!.data.subarray(12), udp.subarray(12), 'swap mac leaves the rest alone');

  const ports = runFilter(wasmPath('reflector'), [udp, tcp6, arp], { config: 'swap ports\noutput 2' });
  assert.equal(ports.frames.map((r) => r.verdict), ['FORWARD 2', 'FORWARD 2', 'FORWARD 2']);
  const u = ports.frames[0]!.data;
  assert.equal(Array.from(u.subarray(26, 34)), [10, 0, 0, 2, 10, 0, 0, 1]);
  assert.equal(Array.from(u.subarray(34, 38)), [2222 >> 8, 2222 & 0xff, 1111 >> 8, 1111 & 0xff]);
  assert.is(sum16(u.subarray(14, 34)), 0xffff, 'the IPv4 header checksum is still valid');
  const t = ports.frames[1]!.data;
  assert.equal(t.subarray(22, 38), tcp6.subarray(38, 54));
  assert.equal(t.subarray(38, 54), tcp6.subarray(22, 38));
  assert.equal(Array.from(t.subarray(54, 58)), [40000 >> 8, 40000 & 0xff, 0, 80]);
  assert.equal(ports.counters, { packets: 3n, swapped_ip: 2n, swapped_ports: 2n });
  const runt = Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  assert.equal(runFilter(wasmPath('reflector'), [runt], { config: 'swap ports' }).frames[0]!.data, runt, 'a runt goes back as it came');
  const ip = runFilter(wasmPath('reflector'), [udp], { config: 'swap ip' });
  assert.equal(Array.from(ip.frames[0]!.data.subarray(34, 38)), Array.from(udp.subarray(34, 38)), 'swap ip keeps the ports');
});

test('counter: its totals survive nmwasm_state_save / nmwasm_state_load; foreign state is refused', () => {
  const frames = [f.tcp4('1.1.1.1', '2.2.2.2', 1, 2), f.arp(), f.udp6('::1', '::2', 1, 2)];
  const first = runFilter(wasmPath('counter'), frames);
  const state = first.saveState()!;
  const second = runFilter(wasmPath('counter'), frames.slice(0, 1), { state });
  assert.equal(second.counters.packets, 4n);
  assert.equal(second.counters.tcp, 2n);
  assert.equal(second.counters.arp, 1n);
  const rl = runFilter(wasmPath('ratelimit'), [f.udp4('10.0.0.1', '10.0.0.2', 1, 2)], { config: 'default rate 5' }).saveState()!;
  assert.throws(() => runFilter(wasmPath('counter'), frames, { state: rl }), /nmwasm_state_load refused the state: state: not a counter state blob/);
  assert.throws(() => runFilter(wasmPath('hexdump'), frames, { state }), /does not export nmwasm_state_load/);
});

test.run();
