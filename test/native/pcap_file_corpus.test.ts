// native/pcap_file.{h,cc} against the real tcpdump corpus and tshark/capinfos/mergecap
// (Debian package tshark). The reader and writer are exercised through test/native/pcap_dump.cc,
// built here with g++ and AddressSanitizer/UBSan, so an out-of-bounds read on a hostile file
// fails the test. Needs: g++, tshark, capinfos, mergecap, and the corpus in test/pcaps/tcpdump-tests.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const corpusDir = join(root, 'test', 'pcaps', 'tcpdump-tests');
const work = mkdtempSync(join(tmpdir(), 'nmwasm-pcap-'));
const driver = join(work, 'pcap_dump');
const broken = JSON.parse(readFileSync(join(root, 'test', 'fixtures', 'broken-pcaps.json'), 'utf8')) as {
  broken: { file: string; linkType: number; expect: string }[];
  notCaptures: { file: string; expect: string }[];
};
const ERROR_CODES = new Set(['ENOENT', 'EACCES', 'EISDIR', 'EINVAL', 'EPCAP_TRUNCATED', 'EPCAP_FORMAT', 'EPCAP_CORRUPT', 'ELINKTYPE']);

// ---------------------------------------------------------------------------------------
// Tools

function run(cmd: string, args: string[], opts: { allowFail?: boolean } = {}) {
  const res = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1' } });
  if (res.error) throw new Error(`${cmd} could not run (${res.error.message}); install it (apt-get install tshark g++)`);
  if (!opts.allowFail && res.status !== 0) throw new Error(`${cmd} ${args.slice(0, 4).join(' ')} exited ${res.status}: ${res.stderr}`);
  return res;
}

// Runs the tool on several files, two processes at a time.
async function parallel<T>(items: string[], fn: (item: string) => Promise<T>): Promise<Map<string, T>> {
  const out = new Map<string, T>();
  let next = 0;
  const worker = async () => { while (next < items.length) { const item = items[next++]!; out.set(item, await fn(item)); } };
  await Promise.all([worker(), worker()]);
  return out;
}

function runAsync(cmd: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args);
    let stdout = '', stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

type Packet = { caplen: number; origlen: number; ts: bigint | null; hash: number };
type Dump = { error?: { code: string; message: string; err: number }; count: number; packets: Packet[] };

// Our reader: path -> Dump (through the ASan-built driver; any sanitizer report fails).
function dump(files: string[]): Map<string, Dump> {
  const out = new Map<string, Dump>();
  for (let i = 0; i < files.length; i += 400) {
    const res = run(driver, ['read', ...files.slice(i, i + 400)], { allowFail: true });
    assert.is(res.status, 0, `pcap_dump crashed or a sanitizer fired:\n${res.stderr.slice(0, 4000)}`);
    assert.is(res.stderr, '', 'pcap_dump wrote to stderr');
    let cur: Dump | undefined;
    for (const line of res.stdout.split('\n')) {
      if (line.startsWith('F ')) { cur = { count: -1, packets: [] }; out.set(line.slice(2), cur); }
      else if (line.startsWith('N ')) cur!.count = Number(line.slice(2));
      else if (line.startsWith('E ')) cur!.error = JSON.parse(line.slice(2));
      else if (line.startsWith('X ')) assert.unreachable(`rewind/next disagree with packetCount: ${line}`);
      else if (line) {
        const [c, o, t, h] = line.split(' ');
        cur!.packets.push({ caplen: Number(c), origlen: Number(o), ts: BigInt(t ?? ''), hash: Number(h) });
      }
    }
  }
  return out;
}

// "1213789568.367761000" -> ns; null for the negative values tshark prints after an overflow;
// 0 when tshark has no time (Simple Packet Blocks carry none; our reader gives 0).
function epochNs(s: string | undefined): bigint | null {
  if (s === undefined) return 0n;
  if (s.startsWith('-')) return null;
  const [sec, frac = ''] = s.split('.');
  return BigInt(sec ?? '') * 1_000_000_000n + BigInt((frac + '000000000').slice(0, 9));
}

function fnv1a(bytes: number[]): number {
  let h = 2166136261;
  for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
  return h;
}

// tshark's view of a file: per packet caplen, origlen, ts (ns) and FNV-1a of the bytes (one
// tshark run: JSON of the frame layer with its raw bytes).
async function tshark(file: string): Promise<Packet[]> {
  const res = await runAsync('tshark', ['-n', '-r', file, '-T', 'json', '-x', '-j', 'frame']);
  if (res.status !== 0) throw new Error(`tshark -r ${file} exited ${res.status}: ${res.stderr}`);
  const frames = JSON.parse(res.stdout) as { _source: { layers: { frame_raw?: [string]; frame: Record<string, string> } } }[];
  return frames.map(({ _source: { layers } }) => ({
    caplen: Number(layers.frame['frame.cap_len']),
    origlen: Number(layers.frame['frame.len']),
    ts: epochNs(layers.frame['frame.time_epoch']),
    hash: fnv1a([...Buffer.from(layers.frame_raw?.[0] ?? '', 'hex')]),
  }));
}

function comparePackets(name: string, ours: Packet[], theirs: Packet[]) {
  assert.is(ours.length, theirs.length, `${name}: packet count`);
  for (let i = 0; i < ours.length; i++) {
    const a = ours[i]!, b = theirs[i]!;
    const what = `${name} packet ${i + 1}`;
    assert.is(a.caplen, b.caplen, `${what}: caplen`);
    assert.is(a.origlen, b.origlen, `${what}: origlen`);
    assert.is(a.ts, b.ts, `${what}: timestamp (ns)`);
    assert.is(a.hash, b.hash, `${what}: bytes`);
  }
}

function assertCleanError(file: string, d: Dump | undefined, code?: string) {
  assert.ok(d, `${file}: not dumped`);
  assert.ok(d!.error, `${file}: opened (${d!.count} packets) but should be refused${code ? ` with ${code}` : ''}`);
  const { code: got, message } = d!.error!;
  assert.ok(ERROR_CODES.has(got), `${file}: unexpected code ${got}`);
  if (code) assert.is(got, code, `${file}: ${message}`);
  assert.ok(message.startsWith(file + ': '), `${file}: message must start with the path: ${message}`);
  assert.not.match(message, /\n/, 'message is one line');
}

// ---------------------------------------------------------------------------------------
// Capture builders for the crafted files

const le = (be: boolean) => !be;
function u16(v: number, be = false) { const b = Buffer.alloc(2); le(be) ? b.writeUInt16LE(v) : b.writeUInt16BE(v); return b; }
function u32(v: number, be = false) { const b = Buffer.alloc(4); le(be) ? b.writeUInt32LE(v >>> 0) : b.writeUInt32BE(v >>> 0); return b; }
function u64(v: bigint, be = false) { const b = Buffer.alloc(8); le(be) ? b.writeBigUInt64LE(BigInt.asUintN(64, v)) : b.writeBigUInt64BE(BigInt.asUintN(64, v)); return b; }

let seed = 12345;
function rand(n: number) { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return (seed >>> 8) % n; }
function frame(len: number) { const b = Buffer.alloc(len); for (let i = 0; i < len; i++) b[i] = i === 12 ? 8 : i === 13 ? 0 : rand(256); return b; }

function pcapHeader(o: { be?: boolean; nanos?: boolean; linkType?: number; major?: number; minor?: number }) {
  const be = !!o.be;
  return Buffer.concat([u32(o.nanos ? 0xa1b23c4d : 0xa1b2c3d4, be), u16(o.major ?? 2, be), u16(o.minor ?? 4, be),
    u32(0, be), u32(0, be), u32(65535, be), u32(o.linkType ?? 1, be)]);
}
function pcapRecord(o: { be?: boolean; sec: number; frac: number; data: Buffer; origlen?: number; caplen?: number }) {
  const be = !!o.be;
  return Buffer.concat([u32(o.sec, be), u32(o.frac, be), u32(o.caplen ?? o.data.length, be), u32(o.origlen ?? o.data.length, be), o.data]);
}
function block(type: number, body: Buffer, be: boolean) {
  const padded = Buffer.concat([body, Buffer.alloc((4 - (body.length % 4)) % 4)]);
  const len = padded.length + 12;
  return Buffer.concat([u32(type, be), u32(len, be), padded, u32(len, be)]);
}
function option(code: number, value: Buffer, be: boolean) {
  return Buffer.concat([u16(code, be), u16(value.length, be), value, Buffer.alloc((4 - (value.length % 4)) % 4)]);
}
const endOfOptions = Buffer.alloc(4);
function shb(be: boolean) { return block(0x0a0d0d0a, Buffer.concat([u32(0x1a2b3c4d, be), u16(1, be), u16(0, be), u64(-1n, be)]), be); }
function idb(be: boolean, linkType: number, snaplen: number, options: Buffer[] = []) {
  const opts = options.length ? Buffer.concat([...options, endOfOptions]) : Buffer.alloc(0);
  return block(1, Buffer.concat([u16(linkType, be), u16(0, be), u32(snaplen, be), opts]), be);
}
function epb(be: boolean, ifId: number, ticks: bigint, data: Buffer, origlen = data.length, caplen = data.length, options: Buffer[] = []) {
  const padded = Buffer.concat([data, Buffer.alloc((4 - (data.length % 4)) % 4)]);
  const opts = options.length ? Buffer.concat([...options, endOfOptions]) : Buffer.alloc(0);
  return block(6, Buffer.concat([u32(ifId, be), u32(Number(ticks >> 32n), be), u32(Number(ticks & 0xffffffffn), be), u32(caplen, be), u32(origlen, be), padded, opts]), be);
}
function pb(be: boolean, ifId: number, ticks: bigint, data: Buffer, origlen = data.length) {
  return block(2, Buffer.concat([u16(ifId, be), u16(0, be), u32(Number(ticks >> 32n), be), u32(Number(ticks & 0xffffffffn), be), u32(data.length, be), u32(origlen, be), data]), be);
}
function spb(be: boolean, origlen: number, data: Buffer) { return block(3, Buffer.concat([u32(origlen, be), data]), be); }

function craft(name: string, ...parts: Buffer[]) {
  const path = join(work, name);
  writeFileSync(path, Buffer.concat(parts));
  return path;
}

// ---------------------------------------------------------------------------------------
// Setup: build the driver, list the corpus, ask capinfos (one process for all files)

const corpus = readdirSync(corpusDir).sort().map((f) => join(corpusDir, f));
let ours: Map<string, Dump>;
const capinfos = new Map<string, { encap: string; count: number }>();
const capinfosRefused = new Set<string>();

test.before(() => {
  run('g++', ['-std=c++17', '-O1', '-g', '-Wall', '-Wextra', '-Werror', '-fsanitize=address,undefined', '-fno-sanitize-recover=all',
    '-o', driver, join(root, 'test', 'native', 'pcap_dump.cc'), join(root, 'native/formats/pcap_file.cc'), join(root, 'native/formats/pcap_writer.cc')]);
  ours = dump(corpus);
  const res = run('capinfos', ['-T', '-r', '-E', '-c', ...corpus], { allowFail: true });
  for (const line of res.stdout.split('\n').filter(Boolean)) {
    const [file, encap, count] = line.split('\t');
    capinfos.set(file!, { encap: encap!, count: Number(count) });
  }
  for (const m of res.stderr.matchAll(/capinfos: The file "([^"]+)"/g)) capinfosRefused.add(m[1]!);
});

// KEEP_PCAP_TEST_FILES=1 keeps the crafted files for inspection.
test.after(() => { if (!process.env.KEEP_PCAP_TEST_FILES) rmSync(work, { recursive: true, force: true }); });

// ---------------------------------------------------------------------------------------
// Corpus

test('corpus: 831 files are all seen', () => {
  assert.is(corpus.length, 831);
  assert.is(ours.size, 831);
  assert.is(capinfos.size + capinfosRefused.size, 831);
});

test('corpus: broken-pcaps.json is exactly what capinfos refuses, and each is refused cleanly', () => {
  const listed = [...broken.broken, ...broken.notCaptures].map((b) => join(corpusDir, b.file)).sort();
  assert.equal(listed, [...capinfosRefused].sort());
  assert.is(broken.broken.length, 14);
  for (const b of [...broken.broken, ...broken.notCaptures]) assertCleanError(join(corpusDir, b.file), ours.get(join(corpusDir, b.file)), b.expect);
  for (const b of broken.broken) assert.ok(ours.get(join(corpusDir, b.file))!.error!.message.includes(`link type ${b.linkType} (`));
});

test('corpus: Ethernet and Linux cooked captures open with capinfos\'s packet count; all others are refused with ELINKTYPE', () => {
  let ether = 0, packets = 0, cooked = 0;
  for (const [file, info] of capinfos) {
    const d = ours.get(file)!;
    if (info.encap === 'ether' || info.encap === 'linux-sll') {
      assert.not.ok(d.error, `${file}: ${d.error?.message}`);
      assert.is(d.count, info.count, `${file}: packet count`);
      if (info.encap === 'linux-sll') { cooked++; continue; }
      ether++;
      packets += d.count;
    } else {
      assertCleanError(file, d, 'ELINKTYPE');
      assert.match(d.error!.message, /link type \d+ \([A-Za-z0-9_]+\).* is not supported: nmwasm filters Ethernet frames \(LINKTYPE_ETHERNET = 1; Linux cooked captures, LINUX_SLL and LINUX_SLL2, are read as Ethernet\)/);
    }
  }
  assert.is(ether, 479);
  assert.is(packets, 8510);
  assert.is(cooked, 32);
  const radiotap = join(corpusDir, [...capinfos].find(([, i]) => i.encap === 'ieee-802-11-radiotap')![0].slice(corpusDir.length + 1));
  assert.match(ours.get(radiotap)!.error!.message, /link type 127 \(IEEE802_11_RADIOTAP\) is not supported/);
});

// tshark takes ~0.5 s to start, so the 479 files go through it as one concatenation made by
// mergecap (-I none keeps each file's interface and timestamp resolution; same wiretap
// readers as `tshark -r FILE`), split back by capinfos's per-file counts.
const etherFiles = () => [...capinfos].filter(([, i]) => i.encap === 'ether').map(([f]) => f);
const merged = join(work, 'merged.pcapng');
// rx_serviceid_oobr.pcap packet 2 has a microsecond field of 3841916976 (>= 10^6): Wireshark
// multiplies it by 1000 in 32 bits and overflows; we keep the exact sum, 3841.916976 s.
const overflowFile = join(corpusDir, 'rx_serviceid_oobr.pcap');

let mergedByTshark: Packet[] = [];

test('corpus: every Ethernet packet equals tshark (caplen, origlen, ns timestamp, bytes)', async () => {
  const files = etherFiles();
  run('mergecap', ['-a', '-I', 'none', '-F', 'pcapng', '-w', merged, ...files]);
  const theirs = await tshark(merged);
  mergedByTshark = theirs.map((p) => ({ ...p }));
  assert.is(theirs.length, 8510);
  let at = 0;
  for (const file of files) {
    const mine = ours.get(file)!.packets;
    const slice = theirs.slice(at, at + capinfos.get(file)!.count);
    at += slice.length;
    if (file === overflowFile) {
      assert.is(mine[1].ts, 3841916976000n);
      slice[1] = { ...slice[1], ts: mine[1].ts };
    }
    comparePackets(file, mine, slice);
  }
  // The exemption above is tshark's own overflow, checked on the original file:
  const direct = await tshark(overflowFile);
  assert.is(direct[1].ts, null, 'tshark no longer prints a negative time for rx_serviceid_oobr.pcap packet 2: drop the exemption');
  comparePackets(overflowFile, ours.get(overflowFile)!.packets.filter((_, i) => i !== 1), direct.filter((_, i) => i !== 1));
});

test('corpus: every Ethernet pcapng file equals tshark reading it directly', async () => {
  const files = etherFiles().filter((f) => f.endsWith('.pcapng'));
  assert.ok(files.length >= 30);
  const theirs = await parallel(files, tshark);
  for (const f of files) comparePackets(f, ours.get(f)!.packets, theirs.get(f)!);
});

// ---------------------------------------------------------------------------------------
// Crafted files: formats and features the corpus lacks, checked against tshark

test('crafted: classic pcap in all four magics equals tshark', async () => {
  const files: string[] = [];
  for (const be of [false, true]) for (const nanos of [false, true]) {
    const max = nanos ? 999_999_999 : 999_999;
    files.push(craft(`classic-${be ? 'be' : 'le'}-${nanos ? 'ns' : 'us'}.pcap`, pcapHeader({ be, nanos }),
      pcapRecord({ be, sec: 0, frac: 0, data: frame(60) }),
      pcapRecord({ be, sec: 1700000000, frac: max, data: frame(1514) }),
      pcapRecord({ be, sec: 0xffffffff, frac: 1, data: frame(9000), origlen: 9000 }),
      pcapRecord({ be, sec: 1234, frac: 5678, data: frame(64), origlen: 1500 })));  // caplen < origlen
  }
  const mine = dump(files);
  const theirs = await parallel(files, tshark);
  for (const f of files) {
    assert.not.ok(mine.get(f)!.error, mine.get(f)!.error?.message);
    comparePackets(f, mine.get(f)!.packets, theirs.get(f)!);
  }
  assert.is(mine.get(files[3])!.packets[2].ts, 0xffffffffn * 1_000_000_000n + 1n);
});

test('crafted: pcapng sections in both byte orders, tsresol/tsoffset, EPB/PB/SPB, skipped blocks equal tshark', async () => {
  const sec = 1_600_000_000n;
  const file = craft('features.pcapng',
    // Section 1, big-endian: default microseconds; 2^-20 s; snaplen 128 for SPB truncation.
    shb(true),
    idb(true, 1, 128),
    idb(true, 1, 0, [option(2, Buffer.from('eth1'), true), option(9, Buffer.from([0x94]), true)]),
    epb(true, 0, sec * 1_000_000n + 123_456n, frame(60)),
    epb(true, 1, (sec << 20n) + 777_777n, frame(1514), 1514, 1514, [option(2, u32(1, true), true)]),
    block(4, Buffer.concat([u16(1, true), u16(4, true), Buffer.from([10, 0, 0, 1]), Buffer.alloc(4)]), true),  // NRB
    block(5, Buffer.concat([u32(0, true), u32(0, true), u32(0, true)]), true),                                   // ISB
    block(0x80000001, Buffer.from('local-use block, skipped'), true),
    pb(true, 1, (sec << 20n) + 1n, frame(100), 200),
    spb(true, 200, frame(128)),
    // Section 2, little-endian: nanoseconds plus an offset of 1000 s; a radiotap interface no packet uses.
    shb(false),
    idb(false, 127, 0),
    idb(false, 1, 0, [option(9, Buffer.from([9]), false), option(14, u64(1000n, false), false)]),
    epb(false, 1, sec * 1_000_000_000n + 999_999_999n, frame(61)),
    idb(false, 1, 0, [option(9, Buffer.from([3]), false)]),
    epb(false, 2, sec * 1000n + 5n, frame(0), 60),
  );
  const mine = dump([file]).get(file)!;
  assert.not.ok(mine.error, mine.error?.message);
  assert.is(mine.count, 6);
  comparePackets(file, mine.packets, await tshark(file));
  assert.is(mine.packets[0].ts, sec * 1_000_000_000n + 123_456_000n);
  assert.is(mine.packets[1].ts, sec * 1_000_000_000n + (777_777n * 1_000_000_000n) / (1n << 20n));
  assert.equal([mine.packets[3].caplen, mine.packets[3].origlen], [128, 200]);
  assert.is(mine.packets[4].ts, (sec + 1000n) * 1_000_000_000n + 999_999_999n);
});

test('crafted: pcapng Custom Blocks are not packets and are skipped (tshark lists them as records)', async () => {
  const file = craft('custom.pcapng', shb(false), idb(false, 1, 0), block(0x40000bad, Buffer.concat([u32(32473), Buffer.from('hi')]), false),
    epb(false, 0, 5n, frame(60)), block(0x00000bad, Buffer.concat([u32(32473), Buffer.from('there')]), false));
  const mine = dump([file]).get(file)!;
  assert.is(mine.count, 1);
  const theirs = await tshark(file);
  assert.is(theirs.length, 3);
  comparePackets(file, mine.packets, [theirs[1]]);
});

test('crafted: classic pcap FCS bits above the link type are ignored; pcap 2.3 opens', () => {
  const fcs = craft('fcs.pcap', pcapHeader({ linkType: 0x14000001 }), pcapRecord({ sec: 1, frac: 2, data: frame(64) }));
  const v23 = craft('v23.pcap', pcapHeader({ minor: 3 }), pcapRecord({ sec: 1, frac: 2, data: frame(64) }));
  const d = dump([fcs, v23]);
  assert.is(d.get(fcs)!.count, 1);
  assert.is(d.get(v23)!.count, 1);
});

// ---------------------------------------------------------------------------------------
// Refusals

test('refusals: missing, directory, empty, short, bad magic, truncated, corrupt, non-Ethernet', () => {
  const eth = (be = false) => [pcapHeader({ be })];
  const cases: [string, string, RegExp][] = [];
  const add = (name: string, code: string, re: RegExp, ...parts: Buffer[]) => cases.push([parts.length ? craft(name, ...parts) : join(work, name), code, re]);
  add('missing.pcap', 'ENOENT', /cannot open capture file: No such file or directory/);
  mkdirSync(join(work, 'dir.pcap'));
  add('dir.pcap', 'EISDIR', /is a directory/);
  add('empty.pcap', 'EPCAP_TRUNCATED', /0 bytes long/, Buffer.alloc(0));
  add('three.pcap', 'EPCAP_TRUNCATED', /3 bytes long/, Buffer.from([0xd4, 0xc3, 0xb2]));
  add('short-header.pcap', 'EPCAP_TRUNCATED', /pcap header is cut short \(20 of 24 bytes\)/, pcapHeader({}).subarray(0, 20));
  add('text.pcap', 'EPCAP_FORMAT', /not a pcap or pcapng file/, Buffer.from('hello, this is text\n'));
  add('version.pcap', 'EPCAP_FORMAT', /unsupported pcap version 3\.0/, pcapHeader({ major: 3, minor: 0 }));
  const two = [pcapRecord({ sec: 1, frac: 1, data: frame(100) }), pcapRecord({ sec: 2, frac: 2, data: frame(100) })];
  add('cut-data.pcap', 'EPCAP_TRUNCATED', /packet 2 at byte offset 140 runs past the end of the file \(100 bytes of data, 99 left\)/,
    ...eth(), two[0], two[1].subarray(0, two[1].length - 1));
  add('cut-header.pcap', 'EPCAP_TRUNCATED', /packet 2 record header at byte offset 140 is cut short \(5 of 16 bytes\)/,
    ...eth(), two[0], two[1].subarray(0, 5));
  add('huge-caplen.pcap', 'EPCAP_CORRUPT', /captured length of 300000 bytes, more than the 262144-byte limit/,
    ...eth(true), pcapRecord({ be: true, sec: 1, frac: 1, data: Buffer.alloc(0), caplen: 300000 }));
  add('radiotap.pcap', 'ELINKTYPE', /link type 127 \(IEEE802_11_RADIOTAP\) is not supported/, pcapHeader({ linkType: 127 }), two[0]);
  add('unknown-link.pcap', 'ELINKTYPE', /link type 4242 \(unknown\)/, pcapHeader({ linkType: 4242 }));
  const good = [shb(false), idb(false, 1, 0)];
  const pkt = epb(false, 0, 1n, frame(60));
  add('ng-cut.pcapng', 'EPCAP_TRUNCATED', /block at byte offset 48 \(near packet 1\) is 92 bytes long but only 91 bytes are left/, ...good, pkt.subarray(0, pkt.length - 1));
  add('ng-cut-header.pcapng', 'EPCAP_TRUNCATED', /block header at byte offset 48 is cut short \(8 of 12 bytes\)/, ...good, pkt.subarray(0, 8));
  const odd = Buffer.from(pkt); odd.writeUInt32LE(103, 4);
  add('ng-odd-length.pcapng', 'EPCAP_CORRUPT', /has length 103, expected a multiple of 4/, ...good, odd, Buffer.alloc(4));
  const tiny = Buffer.from(pkt); tiny.writeUInt32LE(8, 4);
  add('ng-tiny-length.pcapng', 'EPCAP_CORRUPT', /has length 8/, ...good, tiny);
  const trailer = Buffer.from(pkt); trailer.writeUInt32LE(100, pkt.length - 4);
  add('ng-trailer.pcapng', 'EPCAP_CORRUPT', /has length 92 but its trailing length field says 100/, ...good, trailer);
  add('ng-no-interface.pcapng', 'EPCAP_CORRUPT', /packet 1 at byte offset 48 refers to interface 3 but its section defines 1 interface/,
    ...good, epb(false, 3, 1n, frame(60)));
  add('ng-interface-of-old-section.pcapng', 'EPCAP_CORRUPT', /refers to interface 0 but its section defines 0/, ...good, shb(true), epb(true, 0, 1n, frame(60)));
  add('ng-caplen-over-block.pcapng', 'EPCAP_CORRUPT', /has 200 bytes of data but its block holds only 60/, ...good, epb(false, 0, 1n, frame(60), 200, 200));
  add('ng-bad-bom.pcapng', 'EPCAP_CORRUPT', /byte-order magic 0x12345678/, block(0x0a0d0d0a, Buffer.concat([u32(0x12345678), Buffer.alloc(12)]), false));
  add('ng-bad-tsresol.pcapng', 'EPCAP_CORRUPT', /if_tsresol 0x00000032/, shb(false), idb(false, 1, 0, [option(9, Buffer.from([50]), false)]));
  const overrun = idb(false, 1, 0, [option(2, Buffer.from('abcd'), false)]); overrun.writeUInt16LE(200, 16 + 2);
  add('ng-option-overrun.pcapng', 'EPCAP_CORRUPT', /option 2 running past the end of the block/, shb(false), overrun);
  add('ng-radiotap.pcapng', 'ELINKTYPE', /link type 127 \(IEEE802_11_RADIOTAP\) \(packet 2\) is not supported/,
    ...good, idb(false, 127, 0), pkt, epb(false, 1, 1n, frame(60)));
  add('ng-no-shb.pcapng', 'EPCAP_FORMAT', /not a pcap or pcapng file/, idb(false, 1, 0));
  // Structure is reported before the link type.
  add('radiotap-cut.pcap', 'EPCAP_TRUNCATED', /packet 1/, pcapHeader({ linkType: 127 }), two[0].subarray(0, 50));

  const d = dump(cases.map(([f]) => f));
  for (const [file, code, re] of cases) {
    assertCleanError(file, d.get(file), code);
    assert.match(d.get(file)!.error!.message, re, file);
  }
  assert.is(d.get(cases[0][0])!.error!.err, 2, 'ENOENT carries errno 2');
});

test('hostile: every truncation and 3000 random mutations are refused cleanly or read in bounds', () => {
  const sources = [join(corpusDir, 'empty.pcapng'), join(corpusDir, 'OSPFv2_Capture_FINAL.pcapng'), join(corpusDir, '3560_CDP.pcap'),
    join(work, 'features.pcapng'), join(work, 'classic-be-ns.pcap')].filter(existsSync);
  assert.ok(sources.length >= 4);
  const files: string[] = [];
  sources.forEach((src, s) => {
    const bytes = readFileSync(src).subarray(0, 6000);
    for (let n = 0; n < bytes.length; n += bytes.length > 2000 ? 7 : 1) files.push(craft(`cut-${s}-${n}`, bytes.subarray(0, n)));
    for (let m = 0; m < 600; m++) {
      const copy = Buffer.from(bytes);
      for (let k = 1 + rand(4); k > 0; k--) {
        const at = rand(copy.length);
        if (rand(2)) copy[at] = rand(256);
        else if (at + 4 <= copy.length) copy.writeUInt32LE([0, 0xffffffff, 0x7fffffff, 12, 13, 16, 262145, rand(1 << 30)][rand(8)], at & ~3);
      }
      files.push(craft(`mut-${s}-${m}`, copy));
    }
  });
  const d = dump(files);
  let refused = 0;
  for (const f of files) {
    const r = d.get(f)!;
    if (r.error) { assertCleanError(f, r); refused++; continue; }
    assert.is(r.packets.length, r.count);
    for (const p of r.packets) assert.ok(p.caplen <= 262144, `${f}: caplen ${p.caplen}`);
  }
  assert.ok(refused > files.length / 4, `only ${refused} of ${files.length} damaged files refused`);
});

// ---------------------------------------------------------------------------------------
// Linux cooked captures (SLL, SLL2): read as Ethernet with a synthesized 14-byte header

type RawFrame = { caplen: number; origlen: number; ts: bigint | null; raw: Buffer; protocols: string };
async function tsharkRaw(file: string): Promise<RawFrame[]> {
  const res = await runAsync('tshark', ['-n', '-r', file, '-T', 'json', '-x', '-j', 'frame']);
  if (res.status !== 0) throw new Error(`tshark -r ${file} exited ${res.status}: ${res.stderr}`);
  const frames = JSON.parse(res.stdout) as { _source: { layers: { frame_raw?: [string]; frame: Record<string, string> } } }[];
  return frames.map(({ _source: { layers } }) => ({
    caplen: Number(layers.frame['frame.cap_len']),
    origlen: Number(layers.frame['frame.len']),
    ts: epochNs(layers.frame['frame.time_epoch']),
    raw: Buffer.from(layers.frame_raw?.[0] ?? '', 'hex'),
    protocols: layers.frame['frame.protocols']!,
  }));
}

/** The Ethernet frame nmwasm must give for a cooked frame as tshark shows it (independent of
 * the C++: the cooked header's fields by their documented offsets). */
function expectedEthernet(raw: Buffer, v2: boolean): Buffer {
  const hdr = v2 ? 20 : 16;
  const pktType = v2 ? raw[10]! : raw.readUInt16BE(0);
  const addrLen = v2 ? raw[11]! : raw.readUInt16BE(4);
  const addr = raw.subarray(v2 ? 12 : 6, (v2 ? 12 : 6) + 6);
  const proto = v2 ? raw.subarray(0, 2) : raw.subarray(14, 16);
  const eth = Buffer.alloc(14);
  if (pktType === 1) eth.fill(0xff, 0, 6);
  if (addrLen === 6) addr.copy(eth, 6);
  proto.copy(eth, 12);
  return Buffer.concat([eth, raw.subarray(hdr)]);
}

/** SLL records rewritten as SLL2 (same fields, SLL2 layout), as a classic pcap. */
function toSll2(frames: RawFrame[]): Buffer {
  const parts = [pcapHeader({ nanos: true, linkType: 276 })];
  frames.forEach((f, i) => {
    const data = sll2Raw(f.raw, i);
    parts.push(pcapRecord({ sec: Number(f.ts! / 1_000_000_000n), frac: Number(f.ts! % 1_000_000_000n), data, origlen: f.origlen + 4 }));
  });
  return Buffer.concat(parts);
}

test('cooked: every SLL packet of the corpus and its SLL2 rewrite read as Ethernet; tshark decodes our frames the same', async () => {
  const files = [...capinfos].filter(([, i]) => i.encap === 'linux-sll').map(([f]) => f);
  assert.is(files.length, 32);
  const sllMerged = join(work, 'sll-merged.pcapng');
  run('mergecap', ['-a', '-I', 'none', '-F', 'pcapng', '-w', sllMerged, ...files]);
  const theirs = await tsharkRaw(sllMerged);
  assert.is(theirs.length, files.reduce((n, f) => n + capinfos.get(f)!.count, 0));
  // Packet types other than 0 must be in the set (the SLL2 rewrite adds broadcasts).
  assert.ok(theirs.some((f) => f.raw.readUInt16BE(0) === 4), 'an outgoing packet');
  const sll2 = craft('sll2.pcap', toSll2(theirs));
  const d = dump([sllMerged, sll2]);
  for (const [file, v2] of [[sllMerged, false], [sll2, true]] as const) {
    const mine = d.get(file)!;
    assert.not.ok(mine.error, mine.error?.message);
    // caplen and origlen: the SLL2 records are 4 bytes longer than the SLL ones; both lose their cooked header and gain 14.
    const expected = theirs.map((f, i) => ({ caplen: f.caplen - 2, origlen: f.origlen - 2, ts: f.ts,
      hash: fnv1a([...expectedEthernet(v2 ? sll2Raw(f.raw, i) : f.raw, v2)]) }));
    comparePackets(file, mine.packets, expected);
  }
  // tshark on the frames nmwasm writes (--out: Ethernet) decodes the same protocol stack.
  const out = join(work, 'sll-as-ethernet.pcap');
  run(driver, ['copy', sllMerged, out]);
  const written = await tsharkRaw(out);
  assert.is(written.length, theirs.length);
  for (let i = 0; i < theirs.length; i++) {
    const sllType = theirs[i]!.raw.readUInt16BE(14);
    if (sllType < 0x600) continue;  // not an Ethertype (802.2 LLC, ...): Ethernet reads it as a length
    assert.is(written[i]!.protocols, theirs[i]!.protocols.replace(/^sll:(ethertype:)?/, 'eth:ethertype:'), `packet ${i + 1}: protocols`);
  }
});

/** The SLL2 frame toSll2 builds from the raw bytes of SLL frame `i` (every 5th becomes a broadcast). */
function sll2Raw(raw: Buffer, i: number): Buffer {
  const h = Buffer.alloc(20);
  raw.copy(h, 0, 14, 16);
  h.writeUInt32BE(7, 4);
  raw.copy(h, 8, 2, 4);
  h[10] = i % 5 === 0 ? 1 : raw.readUInt16BE(0);
  h[11] = raw.readUInt16BE(4);
  raw.copy(h, 12, 6, 14);
  return Buffer.concat([h, raw.subarray(16)]);
}

test('cooked: a record shorter than its cooked header gives a 14-byte frame with the missing fields zero', () => {
  const sllHdr = Buffer.from([0, 1, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00]);
  const file = craft('sll-short.pcap', pcapHeader({ linkType: 113 }),
    pcapRecord({ sec: 1, frac: 0, data: sllHdr.subarray(0, 10), origlen: 100 }),
    pcapRecord({ sec: 2, frac: 0, data: Buffer.concat([sllHdr, Buffer.from([0x45, 0])]) }));
  const mine = dump([file]).get(file)!;
  assert.not.ok(mine.error, mine.error?.message);
  const first = Buffer.concat([Buffer.alloc(6, 0xff), Buffer.from([1, 2, 3, 4]), Buffer.alloc(4)]);
  const second = Buffer.concat([Buffer.alloc(6, 0xff), Buffer.from([1, 2, 3, 4, 5, 6, 0x08, 0x00, 0x45, 0])]);
  assert.equal(mine.packets.map((p) => [p.caplen, p.origlen, p.hash]), [[14, 98, fnv1a([...first])], [16, 16, fnv1a([...second])]]);
});

// ---------------------------------------------------------------------------------------
// Writer

test('writer: every Ethernet packet of the corpus, written and read back by tshark, is identical to the ns', async () => {
  assert.is(mergedByTshark.length, 8510, 'needs the merged corpus from the test above');
  const out = join(work, 'out', 'copy.pcap');
  mkdirSync(dirname(out), { recursive: true });
  const res = run(driver, ['copy', merged, out]);
  assert.is(res.stdout.trim(), 'wrote 8510');
  assert.equal(readdirSync(dirname(out)), ['copy.pcap'], 'no temp file left behind');
  const header = readFileSync(out).subarray(0, 24);
  assert.is(header.readUInt32LE(0), 0xa1b23c4d);
  assert.equal([header.readUInt16LE(4), header.readUInt16LE(6), header.readUInt32LE(16), header.readUInt32LE(20)], [2, 4, 262144, 1]);
  const before = mergedByTshark, after = await tshark(out);
  // Classic pcap holds 32-bit seconds: later times (time_2106_overflow.pcapng, time_2107.pcapng)
  // are written as the last representable instant.
  const last = 0xffffffffn * 1_000_000_000n + 999_999_999n;
  const beyond = before.filter((p) => p.ts! > last).length;
  assert.ok(beyond > 0, 'corpus has packets after 2106');
  for (let i = 0; i < before.length; i++) if (before[i].ts! > last) before[i] = { ...before[i], ts: last };
  comparePackets(out, after, before);
  comparePackets(out, dump([out]).get(out)!.packets, before);
});

test('writer: abort and a dropped writer remove the temp file; a missing directory is ENOENT', () => {
  for (const mode of ['abort', 'drop']) {
    const dir = join(work, mode);
    mkdirSync(dir);
    const target = join(dir, 'never.pcap');
    const temp = run(driver, [mode, target]).stdout.trim();
    assert.is(dirname(temp), dir, 'temp file lives beside the target');
    assert.equal(readdirSync(dir), [], `${mode}: directory is empty afterwards`);
  }
  const res = run(driver, ['copy', join(work, 'classic-le-us.pcap'), join(work, 'no-such-dir', 'x.pcap')], { allowFail: true });
  assert.is(res.status, 2);
  assert.match(res.stdout, /^E ENOENT .*no-such-dir\/x\.pcap: cannot create temp file for output pcap/);
});

test.run();
