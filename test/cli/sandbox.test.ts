// The sandbox end to end (docs/SANDBOX.md): a filter whose nmwasm_process is a long chain of
// huge memory.fill instructions is stopped by the watchdog and the host finishes the capture
// and exits. Before the load-time rewrite each "terminated" worker ran its chain to the end
// (about 45 ms per 128 MiB fill, so minutes for this one) and kept the process alive: the
// run below then hit runCli's 60 s hang guard (status null). Also: the hint when `ulimit -v`
// leaves no room for the ~10 GiB address-space reservation of a wasm memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensureBundle, runCli, pcaps, haveNative, cli, fixtures } from './helpers.ts';
import { abiModule, sleb, verdictLoopBody } from '../host/wasm-builder.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-sandbox-'));
const capture = join(pcaps, 'babel_rfc6126bis.pcap'); // 130 Ethernet packets

test('a chain of huge memory.fill in nmwasm_process is stopped; the host finishes and exits', () => {
  if (!haveNative) return;
  const FILLS = 2000; // each fills 128 MiB above the data base
  const body: number[] = [];
  for (let k = 0; k < FILLS; k++) body.push(0x41, ...sleb(0x4000000), 0x41, ...sleb(k & 0x7f), 0x41, ...sleb(128 << 20), 0xfc, 0x0b, 0x00);
  const chain = join(dir, 'fill-chain.wasm');
  writeFileSync(chain, abiModule({ memory: { min: 1024 + 2048 }, process: [...body, ...verdictLoopBody(1)] }));
  const res = runCli(['test', chain, '--pcap', capture, '--batch-timeout', '50', '--json']);
  assert.is(res.status, 1, `status ${res.status} (1: the filter faulted); stderr: ${res.stderr}`);
  assert.match(res.stderr, /fill-chain\.wasm on .*babel_rfc6126bis\.pcap ring 0: timeout fault: a guest call used [\d.]+ ms of CPU in [\d.]+ ms \(budget 50 ms of CPU\)/);
  const summary = JSON.parse(res.stdout);
  assert.is(summary.packets, 130);
  assert.is(summary.verdicts.fault, 130); // all fault verdicts (--on-fault closed)
});

test('under ulimit -v an instance that cannot reserve its address space is explained', () => {
  if (!haveNative) return;
  // 6 GB of address space: enough for node, not for a wasm memory's ~10 GiB reservation.
  const res = spawnSync('sh', ['-c', `ulimit -v 6000000 && exec "${process.execPath}" "${cli}" test "${join(fixtures, 'pass.wasm')}" --pcap "${capture}"`], { encoding: 'utf8', timeout: 60_000 });
  assert.is(res.status, 2, res.stderr);
  assert.match(res.stderr, /Out of memory.*each filter instance reserves about 10 GiB of virtual address space .*raise `ulimit -v`/);
  assert.is(res.stderr.trimEnd().split('\n').length, 1, res.stderr);
});

test.run();
