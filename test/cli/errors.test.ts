// Every bad input exits 2 with ONE line on stderr and writes no output file
// (spawning the bundled CLI, dist/nmwasm.mjs).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, pcaps, haveNative, fixtures, root } from './helpers.ts';
import { abiModule, buildModule } from '../host/wasm-builder.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-cli-'));
const file = (name: string, content: string | Uint8Array): string => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};
const pass = file('pass.wasm', abiModule());
const text = file('text.wasm', 'this is not wasm');
const noMarker = file('nomarker.wasm', buildModule({ funcs: [{ export: 'nmwasm_process', params: ['i32', 'i32', 'i32', 'i32'], results: ['i32'] }] }));
const badSig = file('badsig.wasm', buildModule({ funcs: [{ export: 'nmwasm_abi_v1', params: [], results: [] }, { export: 'nmwasm_process', params: ['i32'], results: ['i32'] }] }));
const forbidden = file('forbidden.wasm', abiModule({ imports: [{ module: 'wasi_snapshot_preview1', name: 'proc_exit', params: ['i32'], results: [] }] }));
// nmwasm_init logs "hello" (the data segment at 0x4000000) and returns 1: the config is rejected.
const rejects = file('rejects.wasm', abiModule({ init: [0x41, 0x80, 0x80, 0x80, 0x20, 0x41, 5, 0x10, 1, 0x41, 1] }));
const rules = file('rules.txt', 'pass tcp\n');
const badRules = file('bad.rules', 'pass tcp\npass tcp from 10.0.0.300\n');
const ethernet = join(pcaps, 'babel_rfc6126bis.pcap');
const truncated = file('truncated.pcap', readFileSync(ethernet).subarray(0, 100)); // cut inside a record
const shortHeader = file('short-header.pcap', readFileSync(ethernet).subarray(0, 20));
const garbage = file('garbage.pcap', 'garbage, not a capture at all');
const notEthernet = join(pcaps, 'dns-badcookie.pcap');

let outN = 0;
const outFile = (): string => join(dir, `out${outN++}.pcap`);

type Case = [name: string, args: (out: string) => string[], stderr: RegExp, needsNative?: boolean];
const cases: Case[] = [
  ['not wasm', (o) => ['load', text, '--port', 'gen:count=10', '--out', `pcap:${o}`], /text\.wasm: not a WebAssembly module \(expected magic \\0asm, got "this"\)/],
  ['missing module', (o) => ['test', join(dir, 'nope.wasm'), '--pcap', ethernet, '--out', o], /nope\.wasm: module file not found/],
  ['no marker', (o) => ['load', noMarker, '--port', 'gen:', '--out', `pcap:${o}`], /missing the ABI marker export nmwasm_abi_v1/],
  ['wrong signature', (o) => ['test', badSig, '--pcap', ethernet, '--out', o], /export nmwasm_process has type \(i32\) -> i32, expected \(i32, i32, i32, i32\) -> i32/],
  ['forbidden import', (o) => ['load', forbidden, '--port', 'gen:', '--out', `pcap:${o}`], /forbidden import wasi_snapshot_preview1\.proc_exit/],
  ['missing pcap', (o) => ['test', pass, '--pcap', join(dir, 'missing.pcap'), '--out', o], /missing\.pcap.*\(ENOENT/, true],
  ['truncated pcap', (o) => ['test', pass, '--pcap', truncated, '--out', o], /truncated\.pcap.*\(EPCAP_/, true],
  ['pcap header cut short', (o) => ['test', pass, '--pcap', shortHeader, '--out', o], /short-header\.pcap.*\(EPCAP_TRUNCATED\)/, true],
  ['garbage pcap', (o) => ['test', pass, '--pcap', garbage, '--out', o], /garbage\.pcap.*\(EPCAP_/, true],
  ['not ethernet', (o) => ['test', pass, '--pcap', notEthernet, '--out', o], /dns-badcookie\.pcap.*\(ELINKTYPE\)/, true],
  ['pcap via --port', (o) => ['load', pass, '--port', `pcap:${truncated}`, '--out', `pcap:${o}`], /truncated\.pcap.*\(EPCAP_/, true],
  ['missing config', (o) => ['test', pass, '--pcap', ethernet, '--config', join(dir, 'none.rules'), '--out', o], /--config .*none\.rules: cannot read the file \(no such file\)/],
  ['config rejected', (o) => ['test', rejects, '--pcap', ethernet, '--config', rules, '--out', o], /--config .*rules\.txt: configuration rejected by the filter's nmwasm_init: hello$/, true],
  ['config rejected (load)', (o) => ['load', rejects, '--port', 'gen:', '--out', `pcap:${o}`], /rejects\.wasm: configuration rejected by the filter's nmwasm_init: hello$/, true],
  ['unknown scheme', (o) => ['load', pass, '--port', 'foo:bar', '--out', `pcap:${o}`], /--port "foo:bar": unknown port scheme/],
  ['netmap not here', (o) => ['load', pass, '--port', 'netmap:eth0', '--out', `pcap:${o}`], /"netmap:eth0": (netmap: was asked for, but \/dev\/netmap is absent|netmap interface ports are not available yet)/],
  ['bad out scheme', () => ['load', pass, '--port', 'gen:', '--out', 'gen:'], /--out "gen:": gen: cannot be used as an output/],
  ['bad gen option', (o) => ['load', pass, '--port', 'gen:size=9000', '--out', `pcap:${o}`], /size: expected an integer 64\.\.1518, got 9000/],
  ['bad count', (o) => ['load', pass, '--port', 'gen:', '--count', '12x', '--out', `pcap:${o}`], /--count: expected an integer 1\.\.\d+ \(packets\), got "12x"/],
  ['zero count', (o) => ['load', pass, '--port', 'gen:', '--count', '0', '--out', `pcap:${o}`], /--count: expected an integer 1\.\./],
  ['bad duration', (o) => ['load', pass, '--port', 'gen:', '--duration=-1', '--out', `pcap:${o}`], /^--duration: expected a positive number of seconds 0\.001\.\.10000000 \(e\.g\. 10 or 0\.5\), got "-1" \(a negative time\)$/],
  // node's parseArgs said "Option '--duration' argument is ambiguous..." here
  ['negative duration as the next argument', (o) => ['load', pass, '--port', 'gen:', '--duration', '-1', '--out', `pcap:${o}`], /^--duration: expected a positive number of seconds 0\.001\.\.10000000 \(e\.g\. 10 or 0\.5\), got "-1" \(a negative time\)$/],
  ['duration not a number', (o) => ['load', pass, '--port', 'gen:', '--duration', '1h', '--out', `pcap:${o}`], /^--duration: expected a positive number of seconds .*, got "1h" \(no unit: seconds only\)$/],
  ['duration zero', (o) => ['load', pass, '--port', 'gen:', '--duration', '0', '--out', `pcap:${o}`], /^--duration: expected a positive number of seconds .*, got "0" \(under 1 ms\)$/],
  ['duration too long', (o) => ['load', pass, '--port', 'gen:', '--duration', '99999999', '--out', `pcap:${o}`], /^--duration: expected a positive number of seconds .*, got "99999999" \(over 115 days\)$/],
  ['duration missing', (o) => ['load', pass, '--port', 'gen:', '--out', `pcap:${o}`, '--duration'], /^--duration: expected a number of seconds after it, got nothing$/],
  ['bad batch timeout', (o) => ['load', pass, '--port', 'gen:', '--batch-timeout', '0', '--out', `pcap:${o}`], /^--batch-timeout: expected an integer 1\.\.60000 \(milliseconds\), got "0"$/],
  ['negative batch timeout', (o) => ['test', pass, '--pcap', ethernet, '--batch-timeout', '-5', '--out', o], /^--batch-timeout: expected an integer 1\.\.60000 \(milliseconds\), got "-5"$/],
  ['flow ttl not a number', (o) => ['load', pass, '--port', 'gen:', '--flow-ttl', '1s', '--out', `pcap:${o}`], /^--flow-ttl: expected an integer 0\.\.3600000 \(milliseconds\), got "1s"$/],
  ['flow ttl too long', (o) => ['load', pass, '--port', 'gen:', '--flow-ttl', '3600001', '--out', `pcap:${o}`], /^--flow-ttl: expected an integer 0\.\.3600000 \(milliseconds\), got "3600001"$/],
  ['flow ttl on a generator', (o) => ['load', pass, '--port', 'gen:', '--flow-ttl', '500', '--out', `pcap:${o}`], /^--flow-ttl: expected an AF_XDP --port \(xdp:IF\), got "gen:" \(gen\)$/],
  ['busy poll without AF_XDP', (o) => ['load', pass, '--port', 'gen:', '--busy-poll', '--out', `pcap:${o}`], /^--busy-poll: expected an AF_XDP port \(xdp:IF\) in the clause, got none \(--port "gen:" is gen\)$/],
  ['fractional count', (o) => ['load', pass, '--port', 'gen:', '--count', '1.5', '--out', `pcap:${o}`], /^--count: expected an integer 1\.\.\d+ \(packets\), got "1\.5"$/],
  ['negative count', (o) => ['load', pass, '--port', 'gen:', '--count', '-3', '--out', `pcap:${o}`], /^--count: expected an integer 1\.\.\d+ \(packets\), got "-3"$/],
  ['bad on-fault', (o) => ['load', pass, '--port', 'gen:', '--on-fault', 'maybe', '--out', `pcap:${o}`], /^--on-fault: expected open, closed or previous, got "maybe"$/],
  ['on-fault typo', (o) => ['test', pass, '--pcap', ethernet, '--on-fault', 'close', '--out', o], /^--on-fault: expected open or closed, got "close"; did you mean closed\?$/],
  ['unknown option', (o) => ['load', pass, '--port', 'gen:', '--frobnicate', '--out', `pcap:${o}`], /^nmwasm load: unknown option --frobnicate \(see nmwasm load --help\)$/],
  ['misspelt option', (o) => ['load', pass, '--prot', 'gen:', '--out', `pcap:${o}`], /^nmwasm load: unknown option --prot; did you mean --port\? \(see nmwasm load --help\)$/],
  ['misspelt option with =', (o) => ['load', pass, '--port', 'gen:', '--durration=3', '--out', `pcap:${o}`], /^nmwasm load: unknown option --durration; did you mean --duration\? \(see nmwasm load --help\)$/],
  ['misspelt test option', (o) => ['test', pass, '--pcapp', ethernet, '--out', o], /^nmwasm test: unknown option --pcapp; did you mean --pcap\? \(see nmwasm test --help\)$/],
  ['option of another command', (o) => ['test', pass, '--pcap', ethernet, '--count', '3', '--out', o], /^nmwasm test: unknown option --count \(it is an option of nmwasm load\) \(see nmwasm test --help\)$/],
  ['short option', (o) => ['load', pass, '-p', 'gen:', '--out', `pcap:${o}`], /^nmwasm load: unknown option "-p" \(nmwasm has no short options but -h\)/],
  ['switch given a value', (o) => ['load', pass, '--port', 'gen:', '--json=yes', '--out', `pcap:${o}`], /^--json: expected no value \(it is a switch\), got "yes"$/],
  ['value missing before an option', (o) => ['load', pass, '--port', '--json', '--out', `pcap:${o}`], /^--port: expected a port SPEC after it, got the option "--json"$/],
  ['option given twice', (o) => ['load', pass, '--port', 'gen:', '--port', 'gen:count=1', '--out', `pcap:${o}`], /^--port: expected once, got it twice \("gen:" and "gen:count=1"\)$/],
  ['--to names itself', (o) => ['load', pass, '--port', 'gen:', '--to', 'gen:', '--out', `pcap:${o}`], /^--to "gen:": gen: cannot be used as an output/],
  ['empty --pcap', (o) => ['test', pass, '--pcap=', '--out', o], /^nmwasm test: expected --port pcap:FILE or --pcap FILE \(a pcap or pcapng capture\), got an empty string$/],
  ['misspelt scheme', (o) => ['load', pass, '--port', 'gne:count=3', '--out', `pcap:${o}`], /^--port "gne:count=3": unknown port scheme; did you mean "gen:count=3"\?/],
  ['option without dashes', (o) => ['load', pass, 'port', 'gen:', '--out', `pcap:${o}`], /^nmwasm load: expected MODULE arguments \(a chain\), got "port", which is no file; did you mean --port\?$/],
  ['misspelt command', () => ['lod', pass, '--port', 'gen:'], /^nmwasm: unknown command "lod"; did you mean load\? \(expected load, test, inspect, new, build, ps, stats, swap or unload; see nmwasm --help\)$/],
  ['module before the command', () => [pass, '--port', 'gen:'], /^nmwasm: expected a command before MODULE, got ".*pass\.wasm" .*; e\.g\. nmwasm load ".*pass\.wasm" --port SPEC$/],
  ['option before the command', () => ['--port', 'gen:'], /^nmwasm: expected a command first, got the option "--port" .*; e\.g\. nmwasm load MODULE --port \.\.\.$/],
  ['no port', (o) => ['load', pass, '--out', `pcap:${o}`], /nmwasm load: expected --port SPEC/],
  ['no pcap', (o) => ['test', pass, '--out', o], /nmwasm test: expected --port pcap:FILE or --pcap FILE/],
  ['no module', () => ['inspect'], /nmwasm inspect: expected MODULE/],
  ['two modules', () => ['inspect', pass, pass], /expected one MODULE, got 2 arguments/],
  ['init never returns', (o) => ['load', join(fixtures, 'slow-init.wasm'), '--port', 'gen:count=10', '--out', `pcap:${o}`], /slow-init\.wasm: the start function or nmwasm_init ran longer than its start budget of 5000 ms/, true],
  ['bad firewall rules', (o) => ['test', join(root, 'filters', 'build', 'firewall.wasm'), '--pcap', ethernet, '--config', badRules, '--out', o], /--config .*bad\.rules: configuration rejected by the filter's nmwasm_init: .*line 2/, true],
  ['unknown command', () => ['frob'], /nmwasm: unknown command "frob" \(expected load, test, inspect, new, build, ps, stats, swap or unload/],
];

for (const [name, args, pattern, needsNative] of cases) {
  test(`bad input: ${name}`, () => {
    if (needsNative && !haveNative) return;
    const out = outFile();
    // init never returns: the start budget is 5000 ms of CPU, which a ring worker at load 30
    // on 2 cores gets in about 75 s of wall time; the guard only ends a hung run.
    const res = runCli(args(out), root, name === 'init never returns' ? 600_000 : 60_000);
    assert.is(res.status, 2, `exit status (stderr: ${res.stderr})`);
    // NB: an init failure comes after the ports opened: their start-up lines (where PASS and DROP go)
    // come first, and on a slow machine a periodic status line (stdout is not a terminal) may too,
    // and the reaper's notes on the killed worker when the machine was slow to end it.
    const lines = res.stderr.split('\n').filter((l) => l.length > 0 && !/: PASS -> .*, DROP -> |: output of |^status: |^ring \d+: (a|the) killed ring worker (is still running|exited) /.test(l));
    assert.is(lines.length, 1, `one line on stderr, got: ${res.stderr}`);
    assert.match(lines[0]!, pattern);
    assert.is(res.stdout, '');
    assert.not.ok(existsSync(out), 'no output file');
  });
}

test('--help exits 0 and lists the commands', () => {
  const res = runCli(['--help']);
  assert.is(res.status, 0);
  assert.match(res.stdout, /nmwasm load MODULE \[MODULE\]\.\.\. --port SPEC/);
  assert.match(res.stdout, /nmwasm test MODULE --port pcap:FILE/);
  assert.match(res.stdout, /nmwasm inspect MODULE/);
});

test('inspect prints the ABI version, exports, imports and manifest', () => {
  const withManifest = file('manifest.wasm', abiModule({ customs: [{ name: 'nmwasm.manifest', payload: '{"name":"demo","version":"2.1","config":"none"}' }] }));
  const res = runCli(['inspect', withManifest]);
  assert.is(res.status, 0, res.stderr);
  assert.match(res.stdout, /nmwasm ABI v1/);
  assert.match(res.stdout, /nmwasm_process: \(i32, i32, i32, i32\) -> i32/);
  assert.match(res.stdout, /env\.nmwasm_log: \(i32, i32\) -> \(\)/);
  assert.match(res.stdout, /manifest: demo 2\.1/);
  const json = JSON.parse(runCli(['inspect', withManifest, '--json']).stdout);
  assert.is(json.abiVersion, 1);
  assert.equal(json.manifest, { name: 'demo', version: '2.1', config: 'none', stats: [] });
});

test.run();
