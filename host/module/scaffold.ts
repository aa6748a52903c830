// `nmwasm new NAME`: writes a filter package (docs/PACKAGES.md) that builds and tests out of
// the box: package.json with its "nmwasm" block, asconfig.json at the recommended flags,
// assembly/index.ts (a filter over the SDK, `nmwasm/sdk`), a small capture it ships
// (test/sample.pcap) and a test that runs the filter over it, a README. Never writes into
// an existing non-empty directory.
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { UsageError, quote } from '../cli/errors.ts';
import { ASC_OPTIONS, ASC_RELEASE } from './build.ts';
import { ABI_VERSION } from './module.ts';
import { FILTER_KEYWORD } from './package.ts';
import { printable } from '../cli/text.ts';

const NAME = /^(?:@([a-z0-9][a-z0-9._-]*)\/)?([a-z0-9][a-z0-9._-]{0,100})$/;
/** Packets in the shipped capture. */
export const SAMPLE_PACKETS = 12;

/** Checks NAME (an npm package name, optionally scoped) and returns the directory it goes in. */
export function scaffoldDir(name: string, cwd: string): string {
  const m = NAME.exec(name);
  if (!m) throw new UsageError(`nmwasm new: expected NAME as an npm package name (lowercase letters, digits, . _ -; optionally @scope/name), got ${quote(name, 60)}`);
  return resolve(cwd, m[2]!);
}

/** Writes the package `name` into a new directory under `cwd`; `nmwasmVersion` is the range
 * its devDependency on nmwasm gets. Returns the directory. */
export function scaffold(name: string, cwd: string, nmwasmVersion: string): string {
  const dir = scaffoldDir(name, cwd);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new UsageError(`nmwasm new: ${printable(dir, 200)} already exists and is not empty; choose another NAME or remove it`);
  const base = name.replace(/^@[^/]+\//, '');
  const files: Record<string, string | Uint8Array> = {
    'package.json': `${JSON.stringify(packageJson(name, base, nmwasmVersion), null, 2)}\n`,
    'asconfig.json': `${JSON.stringify({ options: ASC_OPTIONS, targets: { release: ASC_RELEASE } }, null, 2)}\n`,
    'assembly/index.ts': FILTER_SOURCE,
    'test/filter.test.mjs': TEST_SOURCE,
    'test/sample.pcap': samplePcap(),
    'README.md': readme(name, base),
    '.gitignore': 'node_modules/\n*.tgz\n',
  };
  try {
    for (const [rel, content] of Object.entries(files)) {
      const file = join(dir, rel);
      mkdirSync(join(file, '..'), { recursive: true });
      writeFileSync(file, content, { flag: 'wx' }); // never replaces a file
    }
  } catch (err) {
    throw new UsageError(`nmwasm new: cannot write ${printable(dir, 200)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return dir;
}

function packageJson(name: string, base: string, nmwasmVersion: string): Record<string, unknown> {
  return {
    name,
    version: '0.1.0',
    description: `nmwasm filter ${base}: passes every packet and counts packets and bytes`,
    keywords: [FILTER_KEYWORD],
    license: 'BSD-2-Clause',
    type: 'module',
    files: ['build/', 'assembly/', 'README.md'],
    scripts: { build: 'nmwasm build', test: 'node --test test/' },
    devDependencies: { nmwasm: nmwasmVersion },
    nmwasm: {
      abi: ABI_VERSION,
      module: `build/${base}.wasm`,
      entry: 'assembly/index.ts',
      config: 'none',
      configFormat: 'none',
      stats: ['packets', 'bytes'],
    },
  };
}

const FILTER_SOURCE = `// An nmwasm filter (docs/ABI.md of nmwasm): nmwasm_process gets one batch of ring slots
// and writes one verdict per slot. This one passes every packet and counts packets and
// bytes; the counter names are "stats" in package.json, in the same order.
import { ringNumSlots, slotLen, nextSlot, setVerdict, statAdd, VERDICT_PASS } from "nmwasm/sdk";
export { nmwasm_abi_v1 } from "nmwasm/sdk";

const PACKETS: u32 = 0, BYTES: u32 = 1;
const stats: usize = memory.data(8 * 2, 8);

/** Address of the counters named by "stats" in package.json. */
export function nmwasm_stats(): usize { return stats; }

/** One batch: slots first .. first+count-1 (mod the ring size). */
export function nmwasm_process(ring: usize, verdicts: usize, first: u32, count: u32): i32 {
  const numSlots = ringNumSlots(ring);
  let bytes: u64 = 0;
  let slot = first;
  for (let k: u32 = 0; k < count; k++) {
    bytes += <u64>slotLen(ring, slot);
    setVerdict(verdicts, slot, VERDICT_PASS);
    slot = nextSlot(slot, numSlots);
  }
  statAdd(stats, PACKETS, <u64>count);
  statAdd(stats, BYTES, bytes);
  return 0;
}
`;

const TEST_SOURCE = `// Runs the built filter over test/sample.pcap with \`nmwasm test --json\` and checks its
// verdicts and counters. Run \`npm run build\` first (npm test does not build).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dir = fileURLToPath(new URL('..', import.meta.url));
const local = fileURLToPath(new URL('../node_modules/.bin/nmwasm', import.meta.url));
const nmwasm = existsSync(local) ? local : 'nmwasm';

test('passes and counts every packet of the sample capture', () => {
  const res = spawnSync(nmwasm, ['test', '.', '--pcap', 'test/sample.pcap', '--json'], { cwd: dir, encoding: 'utf8' });
  assert.ifError(res.error); // ENOENT: nmwasm is not installed (npm install nmwasm)
  assert.equal(res.status, 0, res.stderr);
  const summary = JSON.parse(res.stdout);
  assert.equal(summary.packets, ${SAMPLE_PACKETS});
  assert.equal(summary.verdicts.pass, ${SAMPLE_PACKETS});
  assert.equal(summary.filterStats.packets, ${SAMPLE_PACKETS});
  assert.ok(summary.filterStats.bytes >= ${SAMPLE_PACKETS * 60});
});
`;

function readme(name: string, base: string): string {
  return `# ${name}

An [nmwasm](https://www.npmjs.com/package/nmwasm) packet filter: passes every packet and counts
packets and bytes (counters \`packets\`, \`bytes\`). No config.

    npm run build      # nmwasm build: assembly/index.ts -> build/${base}.wasm, sha256 into package.json
    npm test           # runs the filter over test/sample.pcap (${SAMPLE_PACKETS} packets)
    npx nmwasm load . --port gen:count=1000
    npx nmwasm test . --pcap capture.pcap

\`npm pack\` makes a tarball that \`nmwasm load\` takes as it is, or installed by name
(\`nmwasm load ${name} --port ...\`). The package format is nmwasm's docs/PACKAGES.md.
`;
}

/** A classic little-endian pcap of SAMPLE_PACKETS Ethernet/IPv4/UDP frames of 60..115 bytes. */
export function samplePcap(): Uint8Array {
  const records: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  records.push(header);
  for (let i = 0; i < SAMPLE_PACKETS; i++) {
    const len = 60 + i * 5;
    const frame = Buffer.alloc(len);
    Buffer.from([0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x08, 0x00]).copy(frame, 0);
    const ip = 14;
    frame[ip] = 0x45;
    frame.writeUInt16BE(len - 14, ip + 2);
    frame[ip + 8] = 64;
    frame[ip + 9] = 17; // UDP
    Buffer.from([10, 0, 0, 1, 10, 0, 0, 2]).copy(frame, ip + 12);
    let sum = 0;
    for (let j = 0; j < 20; j += 2) sum += frame.readUInt16BE(ip + j);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    frame.writeUInt16BE(~sum & 0xffff, ip + 10);
    const udp = ip + 20;
    frame.writeUInt16BE(40000 + i, udp);
    frame.writeUInt16BE(53, udp + 2);
    frame.writeUInt16BE(len - udp, udp + 4);
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1_700_000_000 + i, 0);
    rec.writeUInt32LE(len, 8);
    rec.writeUInt32LE(len, 12);
    records.push(rec, frame);
  }
  return new Uint8Array(Buffer.concat(records));
}
