// The reference rules parser (test/lib/rules-reference.ts) against the firewall module
// (filters/build/firewall.wasm): both accept and refuse the same files, the firewall's error
// names the same line, and for accepted files the firewall's compiled rule table (README,
// "Compiled rule table") holds what the reference parsed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { load, type Harness } from '../filters/harness.ts';
import { parseRules, RulesError, type Rule, type RuleSet } from '../lib/rules-reference.ts';
import { ACCEPTED, REJECTED } from './rules-cases.ts';
import { requireBuilt, root } from './nmwasm-runner.ts';

const RULE_SIZE = 80;
requireBuilt();

function compiled(h: Harness): { rules: string[]; defaultAction: number } {
  const at = h.fn('firewall_rules')!(), count = h.fn('firewall_rule_count')!();
  const bytes = h.bytes();
  const rules: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = bytes.subarray(at + i * RULE_SIZE, at + (i + 1) * RULE_SIZE);
    const v = new DataView(r.buffer, r.byteOffset, RULE_SIZE);
    const hasPorts = (v.getUint32(12, true) & 1) === 1;
    const masked = (addr: number, mask: number) => Buffer.from(r.subarray(addr, addr + 16).map((b, j) => b & r[mask + j]!)).toString('hex');
    rules.push(describe(r[0]!, r[1]!, r[2]!, r[3] === 0xff ? -1 : r[3]!, hasPorts ? `${v.getUint16(4, true)}-${v.getUint16(6, true)}` : '-',
      hasPorts ? `${v.getUint16(8, true)}-${v.getUint16(10, true)}` : '-', masked(16, 32), Buffer.from(r.subarray(32, 48)).toString('hex'),
      masked(48, 64), Buffer.from(r.subarray(64, 80)).toString('hex')));
  }
  return { rules, defaultAction: h.fn('firewall_default')!() };
}

function describe(action: number, dir: number, family: number, proto: number, sport: string, dport: string, src: string, smask: string, dst: string, dmask: string): string {
  return `action ${action} dir ${dir} family ${family} proto ${proto} sport ${sport} dport ${dport} src ${src}/${smask} dst ${dst}/${dmask}`;
}

function expected(set: RuleSet): string[] {
  const pad = (b: Uint8Array | undefined) => Buffer.concat([Buffer.from(b ?? []), Buffer.alloc(16 - (b?.length ?? 0))]).toString('hex');
  return set.rules.map((r: Rule) => {
    const ports = r.sport !== null || r.dport !== null;
    const range = (p: [number, number] | null) => (ports ? `${(p ?? [0, 65535])[0]}-${(p ?? [0, 65535])[1]}` : '-');
    return describe(r.action, r.dir, r.family, r.proto, range(r.sport), range(r.dport), pad(r.src?.addr), pad(r.src?.mask), pad(r.dst?.addr), pad(r.dst?.mask));
  });
}

function firewall(text: string): { rc: number; h: Harness } {
  const h = load('firewall', { dir: 1 });
  return { rc: h.init(text), h };
}

test('the firewall accepts what the reference accepts, and compiles the same rules', () => {
  for (const text of [...ACCEPTED, readFileSync(join(root, 'test', 'fixtures', 'firewall.rules'), 'utf8')]) {
    const { rc, h } = firewall(text);
    const label = JSON.stringify(text.slice(0, 80));
    assert.is(rc, 0, `${label} refused by the firewall: ${h.logs.join(' | ')}`);
    const set = parseRules(text);
    const got = compiled(h);
    assert.equal(got.rules, expected(set), `compiled table of ${label}`);
    assert.is(got.defaultAction, set.defaultAction, `default of ${label}`);
  }
});

test('the firewall refuses what the reference refuses, naming the same line and word', () => {
  for (const { text, line, word } of REJECTED) {
    assert.throws(() => parseRules(text), (e: unknown) => e instanceof RulesError);
    const { rc, h } = firewall(text);
    const label = JSON.stringify(text.slice(0, 80));
    assert.is.not(rc, 0, `${label} accepted by the firewall`);
    const log = h.logs.join(' | ');
    assert.ok(log.includes(`line ${line}`), `${label}: the firewall's error should name line ${line}: ${log}`);
    assert.ok(log.includes(word), `${label}: the firewall's error should name '${word}': ${log}`);
  }
});

test.run();
