// Guest and config text reaches the terminal escaped, one printable line each: abort
// messages, nmwasm_log lines, nmwasm_init rejections, manifests shown by inspect (text and
// --json), config file names in errors; fault lines name the clause (module and port);
// a filter stat named "__proto__" survives into the --json summary; the --max-* flags.
// Runs the bundled CLI on filters/build/fixtures/hostile-text.wasm (built by
// scripts/build-filters.mjs) and on modules built by test/host/wasm-builder.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, pcaps, fixtures, haveNative } from './helpers.ts';
import { abiModule } from '../host/wasm-builder.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-text-'));
const hostile = join(fixtures, 'hostile-text.wasm');
const capture = join(pcaps, 'babel_rfc6126bis.pcap'); // 130 Ethernet packets
const config = join(dir, 'any.conf');
writeFileSync(config, 'x');

/** Every character a terminal may act on, except the newline that ends each line. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]/;
/** The fixture's sequence, escaped by host/cli/text.ts printable(). */
const ESCAPED = '\\x1b]0;pwned\\x07\\x1b[2J\\x0dnmwasm: forged host line\\x0a\\x00\\u{202e}\\x9b31m';

function noRawControls(text: string, what: string): void {
  const m = RAW.exec(text);
  assert.ok(m === null, `${what}: raw U+${m?.[0].codePointAt(0)!.toString(16).padStart(4, '0')} at ${m?.index}: ${JSON.stringify(text.slice(0, 400))}`);
}

test('an nmwasm_init rejection quotes the log line escaped, on one line', () => {
  if (!haveNative || !existsSync(hostile)) return;
  const res = runCli(['test', hostile, '--pcap', capture]);
  assert.is(res.status, 2);
  noRawControls(res.stderr, 'stderr');
  assert.is(res.stderr.split('\n').length, 2, res.stderr); // one line and its newline
  assert.ok(res.stderr.includes(`configuration rejected by the filter's nmwasm_init: init ${ESCAPED}`), res.stderr);
});

test('log lines and abort messages are escaped; the fault line names module and port', () => {
  if (!haveNative || !existsSync(hostile)) return;
  const res = runCli(['test', hostile, '--pcap', capture, '--config', config]);
  assert.is(res.status, 1, res.stderr); // the filter faulted (it aborts)
  noRawControls(res.stderr, 'stderr');
  noRawControls(res.stdout, 'stdout');
  const lines = res.stderr.trimEnd().split('\n');
  assert.ok(!lines.some((l) => l.startsWith('nmwasm: forged')), 'a forged host line');
  assert.ok(lines.includes(`log: process ${ESCAPED}`), res.stderr);
  const fault = lines.find((l) => l.includes('trap fault'));
  assert.ok(fault !== undefined, res.stderr);
  assert.ok(fault!.startsWith(`${hostile} on ${capture} ring 0: trap fault: abort: ${ESCAPED}`), fault);
});

test('inspect shows a hostile manifest escaped (text) and as valid JSON without raw controls (--json)', () => {
  if (!existsSync(hostile)) return;
  const text = runCli(['inspect', hostile]);
  assert.is(text.status, 0, text.stderr);
  noRawControls(text.stdout, 'inspect');
  assert.match(text.stdout, /manifest: hostile\\x1b\]0;pwned\\x07 1\\x1b\[2J - forges\\x0anmwasm: a host line\\x00\\u\{202e\}\n/);
  assert.match(text.stdout, /config: any\\x9b31m\n/);
  const json = runCli(['inspect', hostile, '--json']);
  assert.is(json.status, 0, json.stderr);
  noRawControls(json.stdout, 'inspect --json');
  const manifest = JSON.parse(json.stdout).manifest;
  assert.is(manifest.name, 'hostile\u001b]0;pwned\u0007');
  assert.is(manifest.config, 'any\u009b31m'); // the value itself is unchanged
});

test('a config file name is escaped in errors', () => {
  const res = runCli(['test', hostile, '--pcap', capture, '--config', join(dir, 'no\u001b]0;x\u0007such')]);
  assert.is(res.status, 2);
  noRawControls(res.stderr, 'stderr');
  assert.match(res.stderr, /--config .*no\\x1b\]0;x\\x07such: cannot read the file \(no such file\)/);
});

test('a filter stat named "__proto__" is kept in the --json summary', () => {
  if (!haveNative) return;
  const u64 = (n: number): number[] => [n, 0, 0, 0, 0, 0, 0, 0];
  const stats = join(dir, 'proto-stats.wasm');
  writeFileSync(stats, abiModule({
    data: [{ offset: 0x4000000, bytes: [...u64(5), ...u64(7)] }],
    extraFuncs: [{ export: 'nmwasm_stats', params: [], results: ['i32'], body: [0x41, 0x80, 0x80, 0x80, 0x20] }],
    customs: [{ name: 'nmwasm.manifest', payload: '{"stats":["__proto__","b"]}' }],
  }));
  const res = runCli(['test', stats, '--pcap', capture, '--json']);
  assert.is(res.status, 0, res.stderr);
  const filterStats = JSON.parse(res.stdout).filterStats;
  assert.ok(Object.hasOwn(filterStats, '__proto__'), res.stdout);
  assert.is(filterStats.__proto__, 5);
  assert.is(filterStats.b, 7);
});

test('--max-memory refuses a module over it, and raising it admits the module', () => {
  const big = join(dir, 'big-memory.wasm');
  writeFileSync(big, abiModule({ memory: { min: 1025, max: 65536 } }));
  const refused = runCli(['inspect', big]);
  assert.is(refused.status, 2);
  assert.match(refused.stderr, /memory maximum 65536 pages \(4096 MiB\) exceeds the limit of 3072 pages .*raise it with --max-memory MIB/);
  const over = join(dir, 'over.wasm');
  writeFileSync(over, abiModule({ memory: { min: 1025, max: 3000 } }));
  assert.is(runCli(['inspect', over, '--max-memory', '64']).status, 2);
  assert.is(runCli(['inspect', over, '--max-memory', '200']).status, 0);
  const bad = runCli(['inspect', over, '--max-memory', '5000']);
  assert.is(bad.status, 2);
  assert.match(bad.stderr, /^--max-memory: expected an integer 1\.\.4031, got "5000"\n$/);
});

test.run();
