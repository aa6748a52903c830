// `nmwasm test --out FILE` writes exactly the packets the filter passed, byte for byte and
// with their original timestamps: the firewall runs over real captures (classic pcap and
// pcapng) with --trace; tshark reads both the input and the written file, and the output
// must equal the input's packets whose traced verdict is PASS, in order.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureBundle, runCli, pcaps, root } from './helpers.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-out-'));
const firewall = join(root, 'filters', 'build', 'firewall.wasm');
const rules = join(root, 'test', 'fixtures', 'firewall.rules');

interface Frame { time: string; bytes: string }

/** Every frame of a capture as tshark reads it: epoch time (ns digits) and raw bytes in hex. */
function tsharkFrames(file: string): Frame[] {
  const res = spawnSync('tshark', ['-r', file, '-T', 'json', '-x', '-o', 'ip.defragment:FALSE'], { encoding: 'utf8', maxBuffer: 512 << 20 });
  assert.is(res.status, 0, `tshark -r ${file}: ${res.stderr}`);
  const packets = JSON.parse(res.stdout) as Array<{ _source: { layers: { frame: Record<string, string>; frame_raw: [string, ...unknown[]] } } }>;
  return packets.map((p) => ({ time: p._source.layers.frame['frame.time_epoch']!, bytes: p._source.layers.frame_raw[0] }));
}

const captures = ['babel_rfc6126bis.pcap', 'ipv6-routing-header.pcap', 'dhcp-rfc3004.pcap', 'hncp.pcap', 'afs.pcap', 'ahcp.pcapng', 'bgp-extended-msg.pcapng'];

let passedTotal = 0;
let droppedTotal = 0;
for (const name of captures) {
  test(`--out keeps the passed packets of ${name} byte-identical, with their timestamps`, () => {
    const input = join(pcaps, name);
    const out = join(dir, `${name}.out.pcap`);
    const res = runCli(['test', firewall, '--pcap', input, '--config', rules, '--out', out, '--trace', '--json']);
    assert.is(res.status, 0, `nmwasm test ${name}: ${res.stderr}`);
    const summary = JSON.parse(res.stdout) as { trace: string; out: { packets: number } };
    const inFrames = tsharkFrames(input);
    assert.is(summary.trace.length, inFrames.length, 'one traced verdict per input packet');
    const expected = inFrames.filter((_, i) => summary.trace[i] === '1');
    const written = tsharkFrames(out);
    assert.is(written.length, expected.length, 'packets in the --out file');
    assert.is(summary.out.packets, expected.length, 'out counter');
    for (let i = 0; i < expected.length; i++) {
      assert.is(written[i]!.bytes, expected[i]!.bytes, `${name}: bytes of passed packet ${i + 1}`);
      assert.is(written[i]!.time, expected[i]!.time, `${name}: timestamp of passed packet ${i + 1}`);
    }
    passedTotal += expected.length;
    droppedTotal += inFrames.length - expected.length;
  });
}

test('the captures exercised both outcomes (a run that passed or dropped everything proves less)', () => {
  assert.ok(passedTotal > 20, `passed ${passedTotal}`);
  assert.ok(droppedTotal > 20, `not passed ${droppedTotal}`);
});

test.run();
