// Robustness over the real tcpdump test captures (Ethernet ones): the accessors fixture
// calls every SDK accessor and the parser over every packet with three different poison
// bytes after the packet; the hashes must be identical (nothing reads at or past len)
// and nothing may trap. The firewall's verdicts must not depend on the poison either.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { load } from './harness.ts';
import { readCapture, LINKTYPE_ETHERNET } from './pcap.ts';

const dir = new URL('../pcaps/tcpdump-tests', import.meta.url).pathname;
const captures: { name: string; packets: Uint8Array[] }[] = [];
let unreadable = 0;
for (const name of readdirSync(dir).sort()) {
  if (!/\.(pcap|pcapng|cap)$/.test(name)) continue;
  try {
    const c = readCapture(`${dir}/${name}`);
    if (c.linkType === LINKTYPE_ETHERNET && c.packets.length > 0) captures.push({ name, packets: c.packets });
  } catch { unreadable++; }
}
const all = captures.flatMap((c) => c.packets);

test('the corpus is there', () => {
  assert.ok(captures.length > 400, `only ${captures.length} Ethernet captures read`);
  assert.ok(all.length > 8000, `only ${all.length} packets`);
  assert.ok(unreadable <= 20, `${unreadable} unreadable captures`);
});

test('accessors fixture: identical hash for every poison, no trap', () => {
  const hashes: bigint[] = [];
  for (const poison of ['0x00', '0xff', '0x5a']) {
    const h = load('fixtures/accessors', { numSlots: 256 });
    assert.is(h.init(poison), 0, h.logs.join(' | '));
    const verdicts = h.run(all, 256, Number(poison) ^ 0x33); // the harness's own poison differs too
    assert.ok(verdicts.every((v) => v === 1));
    const s = h.namedStats();
    assert.is(s['packets'], BigInt(all.length));
    hashes.push(s['hash']!);
  }
  assert.is(hashes[1], hashes[0]);
  assert.is(hashes[2], hashes[0]);
});

test('accessors fixture: the hash does depend on packet bytes (the check can fail)', () => {
  const h1 = load('fixtures/accessors');
  h1.init('0x00');
  h1.run(all.slice(0, 100), 64);
  const h2 = load('fixtures/accessors');
  h2.init('0x00');
  const changed = all.slice(0, 100).map((p) => Uint8Array.from(p));
  changed[50]![20] = changed[50]![20]! ^ 1;
  h2.run(changed, 64);
  assert.is.not(h1.namedStats()['hash'], h2.namedStats()['hash']);
});

test('accessors fixture: bad config is rejected with a reason', () => {
  const h = load('fixtures/accessors');
  assert.is(h.init('poison'), 1);
  assert.equal(h.logs, ['accessors: config must be a poison byte like 0x5a']);
});

test('firewall over every capture: no trap, verdicts independent of the poison', () => {
  const rules = 'pass in tcp from 10.0.0.0/8 port 1-1024\nhost udp to any port 53\ndrop ip6 to fe80::/10\npass icmp\nhost icmp6\ndrop ip4\ndefault pass';
  const runs: number[][] = [];
  for (const poison of [0x00, 0xff, 0x5a]) {
    const h = load('firewall');
    assert.is(h.init(rules), 0);
    runs.push(h.run(all, 256, poison));
  }
  assert.equal(runs[1], runs[0]);
  assert.equal(runs[2], runs[0]);
  const kinds = new Set(runs[0]);
  assert.ok(kinds.has(0) && kinds.has(1) && kinds.has(2), `verdict kinds seen: ${[...kinds].join(',')}`);
});

test('counter over every capture: the family counters partition the packets', () => {
  const h = load('counter');
  h.run(all, 256, 0xff);
  const s = h.namedStats();
  assert.is(s['packets'], BigInt(all.length));
  assert.is(s['ipv4']! + s['ipv6']! + s['arp']! + s['other']!, s['packets']);
  assert.ok(s['tcp']! + s['udp']! + s['icmp']! + s['icmp6']! <= s['ipv4']! + s['ipv6']!);
  assert.ok(s['ipv4']! > 1000n && s['ipv6']! > 100n && s['arp']! > 10n && s['tcp']! > 500n && s['udp']! > 500n);
  assert.is(s['bytes'], BigInt(all.reduce((n, p) => n + Math.min(p.length, 2048), 0)));
});

test.run();
