// The ratelimit package through the test API (host/module/testapi.ts runFilter): generated traffic
// from many IPv4 and IPv6 sources with timestamps, so the token buckets see a known rate
// whatever the machine's speed; the rate per source holds within 5%, sources under their
// rate lose nothing, and the buckets survive nmwasm_state_save / nmwasm_state_load.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runFilter, type FrameInput } from '../../host/module/testapi.ts';
import { wasmPath } from './harness.ts';
import * as f from './frames.ts';

const MODULE = wasmPath('ratelimit');
const RULES = `
10.1.0.0/16     rate 200 burst 20   # 64 sources at 1000/s
10.0.0.0/8      rate 100 burst 10   # 32 sources in 10.2/16 at 300/s (first match wins: not the line above)
2001:db8::/32   rate 400 burst 40   # 16 IPv6 sources at 800/s
default         rate 100            # 16 sources at 50/s: under their rate
`;
const SECONDS = 5;
const T0 = 1_700_000_000_000_000_000n; // ns

interface Source { addr: string; pps: number; rate: number; burst: number; v6: boolean }
const sources: Source[] = [
  ...Array.from({ length: 64 }, (_, i) => ({ addr: `10.1.${i >> 3}.${(i & 7) + 1}`, pps: 1000, rate: 200, burst: 20, v6: false })),
  ...Array.from({ length: 32 }, (_, i) => ({ addr: `10.2.0.${i + 1}`, pps: 300, rate: 100, burst: 10, v6: false })),
  ...Array.from({ length: 16 }, (_, i) => ({ addr: `2001:db8:${i}::1`, pps: 800, rate: 400, burst: 40, v6: true })),
  ...Array.from({ length: 16 }, (_, i) => ({ addr: `192.168.7.${i + 1}`, pps: 50, rate: 100, burst: 100, v6: false })),
];

/** Every source sends at its rate with a deterministic jitter of +-40% of its period, for
 * SECONDS; ARP frames are mixed in (not IP: passed). Sorted by time, as a port delivers them. */
function traffic(): { frames: FrameInput[]; source: number[] } {
  let seed = 12345;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const all: { t: bigint; s: number; data: Uint8Array }[] = [];
  sources.forEach((src, s) => {
    const period = 1e9 / src.pps;
    const frame = src.v6 ? f.udp6(src.addr, '2001:db8:ffff::1', 1000 + s, 53) : f.udp4(src.addr, '192.0.2.1', 1000 + s, 53);
    for (let k = 0; k < src.pps * SECONDS; k++) all.push({ t: T0 + BigInt(Math.round(period * (k + 0.5 + 0.8 * (rand() - 0.5)))), s, data: frame });
  });
  for (let k = 0; k < 500; k++) all.push({ t: T0 + BigInt(k) * 10_000_000n, s: -1, data: f.arp() });
  all.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.s - b.s));
  return { frames: all.map((x) => ({ data: x.data, timestampNs: x.t })), source: all.map((x) => x.s) };
}

const { frames, source } = traffic();

test('each source is held to its prefix rate within 5% over 5 s of generated traffic', () => {
  const run = runFilter(MODULE, frames, { config: RULES, batchSize: 256 });
  const passed = new Array<number>(sources.length).fill(0);
  run.frames.forEach((r, i) => {
    const s = source[i]!;
    if (s < 0) assert.is(r.verdict, 'PASS', 'ARP is not rate-limited');
    else if (r.verdict === 'PASS') passed[s]!++;
    else assert.is(r.verdict, 'DROP');
  });
  sources.forEach((src, s) => {
    const offered = src.pps * SECONDS;
    if (src.pps <= src.rate) {
      assert.is(passed[s], offered, `${src.addr}: under its rate, nothing dropped`);
      return;
    }
    const rate = passed[s]! / SECONDS;
    assert.ok(Math.abs(rate - src.rate) <= 0.05 * src.rate, `${src.addr}: ${rate} packets/s passed, configured ${src.rate}`);
  });
  const total = passed.reduce((a, b) => a + b, 0) + 500;
  assert.equal(run.totals, { packets: frames.length, pass: total, drop: frames.length - total, host: 0, forward: 0, fault: 0 });
  assert.equal(run.counters, { packets: BigInt(frames.length), passed: BigInt(total), dropped: BigInt(frames.length - total), unmatched: 500n, evicted: 0n });
  assert.equal(run.logs.map((l) => l.line), ['ratelimit: 4 rules']);
});

test('the buckets survive nmwasm_state_save / nmwasm_state_load: a swap mid-run changes no verdict', () => {
  const whole = runFilter(MODULE, frames, { config: RULES, batchSize: 256 });
  const cut = frames.findIndex((x) => (x.timestampNs as bigint) >= T0 + 2_500_000_000n);
  const before = runFilter(MODULE, frames.slice(0, cut), { config: RULES, batchSize: 256 });
  const state = before.saveState();
  assert.ok(state !== null && state.length > 8);
  const after = runFilter(MODULE, frames.slice(cut), { config: RULES, batchSize: 256, state: state! });
  assert.equal(after.frames.map((r) => r.verdict), whole.frames.slice(cut).map((r) => r.verdict));
  // Without the state every source starts with a full bucket again: its burst passes twice.
  const fresh = runFilter(MODULE, frames.slice(cut), { config: RULES, batchSize: 256 });
  assert.ok(fresh.totals.pass > after.totals.pass, `fresh ${fresh.totals.pass} vs carried ${after.totals.pass}`);
});

test('a new version with other rules: carried buckets are re-matched and capped at the new burst', () => {
  const src = '10.1.0.1';
  const burst = Array.from({ length: 30 }, (_, k) => ({ data: f.udp4(src, '192.0.2.1', 1, 2), timestampNs: T0 + BigInt(k) }));
  const first = runFilter(MODULE, burst, { config: '10.0.0.0/8 rate 1 burst 100' });
  assert.is(first.totals.pass, 30);
  const state = first.saveState()!;
  // 70 tokens left; the new rules allow a burst of 5 only.
  const next = runFilter(MODULE, burst.map((x) => ({ ...x, timestampNs: T0 + 1000n })), { config: '10.0.0.0/8 rate 1 burst 5', state });
  assert.is(next.totals.pass, 5);
  // A source no new rule matches is not carried: it passes unmatched.
  const other = runFilter(MODULE, burst, { config: '192.168.0.0/16 rate 1 burst 1', state });
  assert.equal([other.totals.pass, other.counters.unmatched], [30, 30n]);
});

test('a blob that is not ratelimit state is refused with the module\'s reason', () => {
  assert.throws(() => runFilter(MODULE, [f.arp()], { config: 'default rate 1', state: Uint8Array.from([1, 2, 3, 4, 0, 0, 0, 0]) }), /nmwasm_state_load refused the state: state: not a ratelimit state blob \(expected magic RLS1\)/);
  const truncated = new Uint8Array(12);
  new DataView(truncated.buffer).setUint32(0, 0x31534c52, true);
  new DataView(truncated.buffer).setUint32(4, 5, true);
  assert.throws(() => runFilter(MODULE, [f.arp()], { config: 'default rate 1', state: truncated }), /blob length does not match its bucket count/);
});

test('config errors name the line and the field', () => {
  const cases: [string, RegExp][] = [
    ['', /no rules: expected at least one line/],
    ['10.0.0.0/8 rat 5', /line 1: unknown field 'rat' \(expected rate N or burst N\)/],
    ['default rate 5\n10.0.0.0/33 rate 1', /line 2: bad source prefix '10\.0\.0\.0\/33'/],
    ['default burst 5', /line 1: missing field rate at end of line/],
    ['default rate 0', /line 1: bad rate '0' \(expected packets per second, 1\.\.1000000000\)/],
    ['default rate 5 burst', /line 1: missing value after 'burst'/],
    ['default rate 5 rate 6', /line 1: rate given twice 'rate'/],
  ];
  for (const [config, message] of cases) {
    try {
      runFilter(MODULE, [f.arp()], { config });
      assert.unreachable(`config ${JSON.stringify(config)} accepted`);
    } catch (err) {
      assert.match((err as Error).message, /^config: configuration rejected by the filter's nmwasm_init: /);
      assert.match((err as Error).message, message);
    }
  }
});

test.run();
