// The firewall (filters/build/firewall.wasm run by `nmwasm test`) against an independent
// reference over every Ethernet and Linux cooked (SLL, read as Ethernet) capture of
// test/pcaps/tcpdump-tests: the same rules
// (test/fixtures/firewall.rules) evaluated by test/lib/rules-reference.ts on the outermost
// headers tshark decodes (test/lib/tshark.ts, reassembly off). Every packet must get the same
// verdict, except the ones listed in test/fixtures/firewall-tshark-mismatches.json, each of
// which tshark marks malformed and carries the reason the firewall's reading is right.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRules, firstMatch, verdict, type RuleSet } from '../lib/rules-reference.ts';
import { listCaptures, dissectConcatenated, dissect, describePacket, expertMessages, markedMalformed, type CaptureInfo, type TsharkPacket } from '../lib/tshark.ts';
import { firewallTraces, requireBuilt, root } from './nmwasm-runner.ts';

const corpus = join(root, 'test', 'pcaps', 'tcpdump-tests');
const rulesPath = join(root, 'test', 'fixtures', 'firewall.rules');
const mismatchesPath = join(root, 'test', 'fixtures', 'firewall-tshark-mismatches.json');
const brokenPath = join(root, 'test', 'fixtures', 'broken-pcaps.json');
const ETHERNET_CAPTURES = 479;
const COOKED_CAPTURES = 32;
const VERDICT_NAMES = ['drop', 'pass', 'host'];

interface ListedMismatch {
  file: string;
  frame: number;
  nmwasm: number;
  tshark: number;
  reason: string;
}
interface Mismatch {
  file: string;
  frame: number;
  nmwasm: number;
  tshark: number;
  packet: TsharkPacket;
}

/** File names listed in broken-pcaps.json ({broken: [{file}]}, written by the native area). */
function brokenNames(): Set<string> {
  if (!existsSync(brokenPath)) return new Set();
  const data = JSON.parse(readFileSync(brokenPath, 'utf8')) as { broken?: { file?: string }[] };
  if (!Array.isArray(data.broken)) throw new Error(`${brokenPath}: expected {"broken": [{"file": ...}, ...]}`);
  return new Set(data.broken.map((e) => String(e.file)));
}

const key = (file: string, frame: number): string => `${file}#${frame}`;
const vname = (v: number): string => VERDICT_NAMES[v] ?? String(v);

requireBuilt();
const rulesText = readFileSync(rulesPath, 'utf8');
const rules: RuleSet = parseRules(rulesText);
const broken = brokenNames();
const { captures } = listCaptures(corpus, readdirSync(corpus).sort());
const ethernet: CaptureInfo[] = captures.filter((c) => (c.encapsulation === 'ether' || c.encapsulation === 'linux-sll') && !broken.has(c.name));
const reference = dissectConcatenated(ethernet);
const traces = await firewallTraces(ethernet.map((c) => c.path), rulesPath, 2);
const listed: ListedMismatch[] = JSON.parse(readFileSync(mismatchesPath, 'utf8')) as ListedMismatch[];

// Compare; a file with any difference is dissected again on its own (the concatenated run
// shares dissector state between files, which can move malformed marks above the transport).
const failures: string[] = [];
const mismatches: Mismatch[] = [];
let compared = 0;
ethernet.forEach((capture, i) => {
  const trace = traces[i]!;
  if (!trace.verdicts) {
    failures.push(`${capture.name}: nmwasm test failed: ${trace.error}`);
    return;
  }
  let packets = reference.get(capture.name)!;
  if (trace.verdicts.length !== packets.length) {
    failures.push(`${capture.name}: nmwasm gave ${trace.verdicts.length} verdicts, tshark dissected ${packets.length} packets`);
    return;
  }
  if (packets.some((p, j) => verdict(rules, p) !== trace.verdicts![j])) packets = dissect(capture.path);
  packets.forEach((p, j) => {
    compared++;
    const expected = verdict(rules, p);
    const got = trace.verdicts![j]!;
    if (got !== expected) mismatches.push({ file: capture.name, frame: p.frame, nmwasm: got, tshark: expected, packet: p });
  });
});

test(`the corpus has ${ETHERNET_CAPTURES} Ethernet and ${COOKED_CAPTURES} Linux cooked captures and nmwasm ran every one`, () => {
  assert.is(ethernet.filter((c) => c.encapsulation === 'ether').length, ETHERNET_CAPTURES, `Ethernet captures found by capinfos in ${corpus}`);
  assert.is(ethernet.filter((c) => c.encapsulation === 'linux-sll').length, COOKED_CAPTURES, `Linux cooked captures found by capinfos in ${corpus}`);
  assert.equal(failures.length, 0, `${failures.length} runs failed:\n${failures.slice(0, 10).join('\n')}`);
});

test('every packet of every Ethernet capture was compared', () => {
  const expected = ethernet.reduce((n, c) => n + c.packets, 0);
  assert.ok(compared > 0, 'nothing was compared');
  assert.is(compared, expected, `compared ${compared} packets, capinfos counts ${expected}`);
});

test('every rule and the default are the first match of some packet (reference side)', () => {
  const hits = new Array<number>(rules.rules.length + 1).fill(0);
  for (const packets of reference.values()) for (const p of packets) {
    const i = firstMatch(rules, p);
    hits[i < 0 ? rules.rules.length : i]!++;
  }
  const unhit = rules.rules.filter((_, i) => hits[i] === 0).map((r) => `line ${r.line}`);
  if (hits[rules.rules.length] === 0) unhit.push('default');
  assert.ok(rules.rules.length >= 8, `${rulesPath} has ${rules.rules.length} rules, want at least 8`);
  assert.is(unhit.length, 0, `never the first match: ${unhit.join(', ')}`);
});

test('nmwasm and tshark agree on every packet except the listed malformed ones', () => {
  const byKey = new Map(listed.map((m) => [key(m.file, m.frame), m]));
  const problems: string[] = [];
  for (const m of mismatches) {
    const entry = byKey.get(key(m.file, m.frame));
    const path = join(corpus, m.file);
    const raw = () => Object.entries(m.packet.fields).filter(([, v]) => v.length > 0).map(([k, v]) => `${k}=${v.join(',')}`).join(' ');
    const detail = () => `${describePacket(m.packet)}\n    tshark expert: ${expertMessages(path, m.frame).join(' | ') || 'none'}\n    tshark fields: ${raw()}`;
    if (!entry) {
      problems.push(`${m.file} frame ${m.frame}: nmwasm ${vname(m.nmwasm)}, tshark reference ${vname(m.tshark)} -- not listed in ${mismatchesPath}\n    ${detail()}`);
    } else if (entry.nmwasm !== m.nmwasm || entry.tshark !== m.tshark) {
      problems.push(`${m.file} frame ${m.frame}: listed as nmwasm ${vname(entry.nmwasm)} / tshark ${vname(entry.tshark)}, now nmwasm ${vname(m.nmwasm)} / tshark ${vname(m.tshark)}\n    ${detail()}`);
    } else if (!markedMalformed(m.packet)) {
      problems.push(`${m.file} frame ${m.frame}: listed, but tshark does not mark it malformed\n    ${detail()}`);
    }
  }
  assert.is(problems.length, 0, `${problems.length} of ${mismatches.length} differing packets are not accounted for:\n${problems.slice(0, 40).join('\n')}`);
});

test('the mismatch fixture lists only current mismatches, each with a reason', () => {
  const current = new Set(mismatches.map((m) => key(m.file, m.frame)));
  const stale = listed.filter((m) => !current.has(key(m.file, m.frame))).map((m) => `${m.file} frame ${m.frame}`);
  assert.is(stale.length, 0, `listed in ${mismatchesPath} but the verdicts agree now (remove them): ${stale.join(', ')}`);
  const unexplained = listed.filter((m) => typeof m.reason !== 'string' || m.reason.trim().length < 10).map((m) => `${m.file} frame ${m.frame}`);
  assert.is(unexplained.length, 0, `entries without a reason: ${unexplained.join(', ')}`);
});

test.run();
