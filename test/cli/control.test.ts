// The control plane end to end (docs/CONTROL.md), with the bundled CLI and real sockets:
// a host of three clauses (gen: -> a 2-ring software pipe -> a reader; an idle writer keeps
// the pipe open so the host waits, quiescent, once the generator ended); `ps --json`,
// `stats --json`, a scrape of /metrics, `unload --json` and the host's own final summary
// agree with the counts the test computes, exactly; a second host with a live name is
// refused in one line; a SIGKILLed host's stale socket is replaced; user nobody cannot
// connect (the 0700 directory, and SO_PEERCRED when the directory and socket are opened
// up); --metrics on a non-loopback address is refused without --metrics-public;
// --version and per-command help.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli, ensureBundle, haveNative, root, type CliResult, startHost as startHostIn } from './helpers.ts';
import { abiModule } from '../host/wasm-builder.ts';

ensureBundle();
const dir = mkdtempSync(join(tmpdir(), 'nmwasm-control-'));
const xdg = join(dir, 'xdg');
const env = { ...process.env, XDG_RUNTIME_DIR: xdg };
const sockDir = join(xdg, 'nmwasm');
const pass = join(dir, 'pass.wasm');
writeFileSync(pass, abiModule());
const drop = join(dir, 'drop.wasm');
writeFileSync(drop, abiModule({ verdict: 0 }));
const GEN = 3000;
const tag = `t${process.pid}`;
// The hosts need the native addon; the nobody case needs root (runuser).
const live = haveNative ? test : (() => {}) as unknown as typeof test;
const asRoot = haveNative && process.getuid?.() === 0 ? test : live === test ? (() => {}) as unknown as typeof test : live;

function nm(args: string[], user?: string): CliResult {
  const argv = user ? ['-u', user, '--', process.execPath, cli, ...args] : [cli, ...args];
  const res = spawnSync(user ? 'runuser' : process.execPath, argv, { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

const startHost = (args: string[]): ReturnType<typeof startHostIn> => startHostIn(args, env);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `stats --json` until `ready(answer)` holds (60 s at most). */
async function until(name: string, ready: (a: Stats) => boolean): Promise<Stats> {
  const end = Date.now() + 60_000;
  for (;;) {
    const res = nm(['stats', name, '--json']);
    if (res.status === 0) {
      const a = JSON.parse(res.stdout) as Stats;
      if (ready(a)) return a;
    }
    if (Date.now() > end) throw new Error(`host ${name} not ready: ${res.stderr}${res.stdout}`);
    await sleep(100);
  }
}

interface Clause {
  port: string;
  rings: number;
  packets: number;
  bytes: number;
  verdicts: Record<string, number>;
  faultVerdicts: number;
  wasmCalls: number;
  stoppedBy: string;
}
interface Stats {
  v: number;
  ok: boolean;
  name: string;
  clauses: Clause[];
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

const counts = (c: Clause) => ({ packets: c.packets, bytes: c.bytes, verdicts: c.verdicts });
const verdictSum = (c: Clause): number => Object.values(c.verdicts).reduce((a, b) => a + b, 0);

/** The value of each `metric{...clause="N"...}` line summed per clause. */
function metricByClause(text: string, metric: string, extra = ''): number[] {
  const sums: number[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`) || !line.includes(extra)) continue;
    const clause = Number(/clause="(\d+)"/.exec(line)![1]);
    sums[clause] = (sums[clause] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sums;
}

live('ps, stats, /metrics, unload and the final summary agree on a 2-ring host; counts add up', async () => {
  const name = `${tag}-a`;
  const port = await freePort();
  // Clause 0 generates GEN packets into a 2-ring pipe; clause 1 reads both rings (the one
  // under test) and drops; clause 2 is an idle writer of the same pipe, so clause 1 waits
  // for more once the generator ended: the host is quiescent and every count is exact.
  const host = startHost([
    'load', pass, '--port', `gen:count=${GEN}`, '--to', `${tag}a{1@conf:rings=2`, '--json', '--name', name, '--metrics', `127.0.0.1:${port}`,
    '+', drop, '--port', `${tag}a}1@conf:rings=2`, '--json',
    '+', pass, '--port', `${tag}idle}1`, '--to', `${tag}a{1`, '--json',
  ]);
  try {
    const stats = await until(name, (a) => a.clauses[1]!.packets === GEN && verdictSum(a.clauses[1]!) === GEN);
    assert.ok(existsSync(join(sockDir, `${name}.sock`)));
    const mode = spawnSync('stat', ['-c', '%a', sockDir, join(sockDir, `${name}.sock`)], { encoding: 'utf8' }).stdout.trim().split('\n');
    assert.equal(mode, ['700', '600'], 'directory 0700, socket 0600');
    // stats: exactly what went through, on 2 rings.
    const [gen, reader, idle] = stats.clauses as [Clause, Clause, Clause];
    assert.is(gen.packets, GEN);
    assert.is(gen.verdicts.pass, GEN);
    assert.is(reader.rings, 2);
    assert.equal(reader.verdicts, { pass: 0, drop: GEN, host: 0, forward: 0, fault: 0 });
    assert.is(reader.bytes, gen.bytes);
    assert.is(idle.packets, 0);
    // ps: the host, its clauses, modules with their sha256.
    const ps = nm(['ps', '--json']);
    assert.is(ps.status, 0, ps.stderr);
    assert.is(ps.stdout.trim().split('\n').length, 1, 'one line');
    const h = (JSON.parse(ps.stdout) as { hosts: { name: string; pid: number; clauses: { port: string; rings: number; packets: number; modules: { sha256: string }[] }[] }[] }).hosts.find((x) => x.name === name)!;
    assert.ok(h, 'ps lists the host');
    assert.is(h.pid, host.child.pid);
    assert.equal(h.clauses.map((c) => c.port), [`gen:count=${GEN}`, `${tag}a}1@conf:rings=2`, `${tag}idle}1`]);
    assert.is(h.clauses[1]!.rings, 2);
    assert.is(h.clauses[1]!.packets, GEN);
    assert.is(h.clauses[1]!.modules[0]!.sha256, createHash('sha256').update(readFileSync(drop)).digest('hex'));
    // /metrics: the same counts, per ring adding up to the clause.
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.equal(metricByClause(text, 'nmwasm_packets_total'), [GEN, GEN, 0]);
    assert.equal(metricByClause(text, 'nmwasm_bytes_total'), [gen.bytes, reader.bytes, 0]);
    assert.equal(metricByClause(text, 'nmwasm_verdicts_total', 'verdict="drop"'), [0, GEN, 0]);
    assert.equal(metricByClause(text, 'nmwasm_verdicts_total'), [GEN, GEN, 0], 'verdicts add up to packets');
    const ringLines = text.split('\n').filter((l) => l.startsWith('nmwasm_packets_total{') && l.includes('clause="1"'));
    assert.is(ringLines.length, 2, 'one series per ring');
    assert.ok(ringLines.every((l) => Number(l.split(' ').pop()) > 0), `both rings got packets: ${ringLines.join(' | ')}`);
    assert.match(text, /# TYPE nmwasm_faults_total counter/);
    // The batch histogram counts every guest call; memory and occupancy are per ring.
    assert.match(text, /# TYPE nmwasm_batch_duration_seconds histogram/);
    assert.equal(metricByClause(text, 'nmwasm_batch_duration_seconds_count'), stats.clauses.map((c) => c.wasmCalls));
    assert.equal(metricByClause(text, 'nmwasm_batch_duration_seconds_bucket', 'le="+Inf"'), stats.clauses.map((c) => c.wasmCalls));
    assert.ok(metricByClause(text, 'nmwasm_instance_memory_bytes')[1]! >= 2 * 64 * 1024 * 1024, 'two instances of at least 64 MiB');
    assert.match(text, /nmwasm_ring_occupancy_slots\{[^}]*clause="1",ring="1"/);
    // unload: a clean stop; the final summaries go to the client and to the host's stdout.
    const unload = nm(['unload', name, '--json']);
    assert.is(unload.status, 0, unload.stderr);
    const final = JSON.parse(unload.stdout) as Stats;
    const res = await host.done;
    assert.is(res.status, 0, res.stderr);
    const printed = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as Clause);
    assert.equal(final.clauses.map(counts), printed.map(counts), 'unload answer = host summary');
    assert.equal(final.clauses.map(counts), stats.clauses.map(counts), 'final = live stats of the quiescent host');
    for (const c of printed) assert.is(verdictSum(c), c.packets, `${c.port}: packets = pass+drop+host+forward+fault`);
    assert.equal(printed.map((c) => c.stoppedBy), ['eof', 'signal', 'signal']);
    assert.not.ok(existsSync(join(sockDir, `${name}.sock`)), 'the socket is removed at the end');
  } finally {
    host.child.kill('SIGKILL');
  }
});

live('a second host with a live name is refused in one line (exit 2); the first runs on', async () => {
  const name = `${tag}-b`;
  const host = startHost(['load', pass, '--port', `${tag}b}1`, '--name', name]);
  try {
    await until(name, () => true);
    const second = nm(['load', pass, '--port', 'gen:count=10', '--name', name]);
    assert.is(second.status, 2);
    assert.is(second.stdout, '');
    assert.is(second.stderr.trim().split('\n').length, 1, second.stderr);
    assert.match(second.stderr, new RegExp(`^--name ${name}: a host named ${name} is already running`));
    const unload = nm(['unload', name]);
    assert.is(unload.status, 0, unload.stderr);
    assert.is((await host.done).status, 0);
  } finally {
    host.child.kill('SIGKILL');
  }
});

live('the stale socket of a SIGKILLed host is detected and replaced', async () => {
  const name = `${tag}-c`;
  const first = startHost(['load', pass, '--port', `${tag}c}1`, '--name', name]);
  await until(name, () => true);
  first.child.kill('SIGKILL');
  await first.done;
  assert.ok(existsSync(join(sockDir, `${name}.sock`)), 'a killed host leaves its socket');
  const gone = nm(['stats', name]);
  assert.is(gone.status, 2);
  assert.match(gone.stderr, /^nmwasm stats: host .* is gone \(its socket .* is stale/);
  const second = startHost(['load', pass, '--port', `${tag}c}1`, '--name', name]);
  try {
    const s = await until(name, () => true);
    assert.is(s.name, name);
    const unload = nm(['unload', name]);
    assert.is(unload.status, 0, unload.stderr);
    const res = await second.done;
    assert.is(res.status, 0, res.stderr);
    assert.match(res.stderr, new RegExp(`${name}: replaced the stale control socket`));
  } finally {
    second.child.kill('SIGKILL');
  }
});

asRoot('user nobody cannot control the host: the 0700 directory, and SO_PEERCRED behind it', async () => {
  const name = `${tag}-d`;
  chmodSync(dir, 0o755);
  chmodSync(xdg, 0o755);
  const host = startHost(['load', pass, '--port', `${tag}d}1`, '--name', name]);
  try {
    await until(name, () => true);
    const denied = nm(['stats', name], 'nobody');
    assert.is(denied.status, 2, denied.stderr);
    assert.is(denied.stderr.trim().split('\n').length, 1);
    assert.match(denied.stderr.trimEnd(), /^nmwasm stats: permission denied on .*: only root and the host's own user may control it$/);
    // Even with the directory and socket opened up, the host refuses the peer (SO_PEERCRED).
    chmodSync(sockDir, 0o711);
    chmodSync(join(sockDir, `${name}.sock`), 0o666);
    for (const command of [['stats', name], ['unload', name], ['swap', name, pass]]) {
      const refused = nm(command, 'nobody');
      assert.is(refused.status, 2, refused.stderr);
      assert.is(refused.stderr.trim().split('\n').length, 1);
      assert.match(refused.stderr.trimEnd(), new RegExp(`^nmwasm ${command[0]}: host ${name}: refused: uid 65534 is neither root nor the host's uid 0$`));
    }
    // nobody sees no host in ps; root still controls it.
    assert.match(nm(['ps', '--json'], 'nobody').stdout, /^\{"v":1,"hosts":\[\]\}$/m);
    const unload = nm(['unload', name]);
    assert.is(unload.status, 0, unload.stderr);
    assert.is((await host.done).status, 0);
  } finally {
    host.child.kill('SIGKILL');
  }
});

live('swap through the socket: a good module is switched in (exit 0), a refused one leaves the old serving (exit 2, one line)', async () => {
  const name = `${tag}-e`;
  const host = startHost(['load', pass, '--port', `${tag}e}1`, '--name', name]);
  try {
    await until(name, () => true);
    const initFails = join(root, 'filters', 'build', 'fixtures', 'init-fails.wasm');
    const refused = nm(['swap', name, initFails]);
    assert.is(refused.status, 2, refused.stderr);
    assert.is(refused.stderr.trimEnd().split('\n').length, 1, refused.stderr);
    assert.match(refused.stderr, /canary failed/);
    const missing = nm(['swap', name, join(root, 'no-such-module.wasm')]);
    assert.is(missing.status, 2);
    assert.match(missing.stderr, /no-such-module\.wasm/);
    const swap = nm(['swap', name, drop, '--json']);
    assert.is(swap.status, 0, swap.stderr);
    const answer = JSON.parse(swap.stdout) as { ok: boolean };
    assert.is(answer.ok, true, swap.stdout);
    const bad = nm(['swap', name, drop, '--clause', 'x']);
    assert.is(bad.status, 2);
    assert.is(bad.stderr, '--clause: expected an integer 0..65535, got "x"\n');
    assert.is(nm(['unload', name]).status, 0);
    await host.done;
  } finally {
    host.child.kill('SIGKILL');
  }
});

test('--metrics on a non-loopback address is refused without --metrics-public; bad addresses name the option', () => {
  const refused = nm(['load', pass, '--port', 'gen:count=10', '--metrics', '0.0.0.0:9464']);
  assert.is(refused.status, 2);
  assert.is(refused.stdout, '');
  assert.is(refused.stderr, '--metrics: expected a loopback address (127.0.0.1, [::1], localhost), got "0.0.0.0:9464": it would serve the metrics to the network; add --metrics-public to allow that\n');
  for (const [value, re] of [['9464', /^--metrics: expected ADDR:PORT/], ['127.0.0.1:0', /^--metrics: expected ADDR:PORT/], ['[::1:9464', /^--metrics: expected ADDR:PORT/], ['example.com:80', /^--metrics: expected ADDR:PORT/]] as const) {
    const res = nm(['load', pass, '--port', 'gen:count=10', '--metrics', value]);
    assert.is(res.status, 2, value);
    assert.match(res.stderr, re);
  }
  assert.match(nm(['load', pass, '--port', 'gen:count=10', '--metrics-public']).stderr, /^--metrics-public: expected --metrics ADDR:PORT with it/);
});

live('--metrics 0.0.0.0:P with --metrics-public serves', async () => {
  const port = await freePort();
  const name = `${tag}-f`;
  const host = startHost(['load', pass, '--port', `${tag}f}1`, '--name', name, '--metrics', `0.0.0.0:${port}`, '--metrics-public']);
  try {
    await until(name, () => true);
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.is(res.status, 200);
    assert.match(await res.text(), new RegExp(`nmwasm_uptime_seconds\\{host="${name}"\\}`));
    assert.is((await fetch(`http://127.0.0.1:${port}/other`)).status, 404);
    assert.is(nm(['unload', name]).status, 0);
    await host.done;
  } finally {
    host.child.kill('SIGKILL');
  }
});

test('client errors: one line, exit 2', () => {
  for (const [args, re] of [
    [['stats', `${tag}-none`], new RegExp(`^nmwasm stats: no host named ${tag}-none \\(no socket .*; nmwasm ps lists the hosts\\)$`)],
    [['stats'], /^nmwasm stats: expected a host NAME \(see nmwasm ps\), got nothing$/],
    [['unload', '../x'], /^nmwasm unload: expected a host NAME of letters/],
    [['ps', 'x'], /^nmwasm ps: expected no arguments/],
    [['load', pass, '--port', 'gen:count=1', '--name', 'a/b'], /^--name: expected 1\.\.64 letters/],
    [['load', pass, '--port', 'gen:count=1', '--status-interval', '-1'], /^--status-interval: expected a positive number of seconds/],
  ] as const) {
    const res = nm([...args]);
    assert.is(res.status, 2, args.join(' '));
    assert.is(res.stderr.trim().split('\n').length, 1, res.stderr);
    assert.match(res.stderr.trimEnd(), re);
  }
});

test('--version and per-command --help', () => {
  const v = nm(['--version']);
  assert.is(v.status, 0);
  assert.is(v.stdout, `nmwasm ${(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version} (control protocol 1, ABI v1)\n`);
  const stats = nm(['stats', '--help']);
  assert.is(stats.status, 0);
  assert.match(stats.stdout, /^nmwasm stats: /);
  assert.match(stats.stdout, /nmwasm stats NAME \[--json\]/);
  assert.not.match(stats.stdout, /--port/);
  const load = nm(['load', '--help']);
  assert.match(load.stdout, /--name/);
  assert.match(load.stdout, /--metrics ADDR:PORT/);
  assert.not.match(load.stdout, /--pcap /);
  assert.not.match(load.stdout, /nmwasm ps/);
  const t = nm(['test', '--help']);
  assert.match(t.stdout, /--pcap/);
  assert.not.match(t.stdout, /--name/);
  assert.match(nm(['swap', '--help']).stdout, /--clause N/);
});

live('a derived name: a second host on the same port gets NAME-2; a status line on stderr every --status-interval', async () => {
  const port = `${tag}g}1`; // software pipes are per process: two hosts may use the same one
  const derived = `${tag}g-1`;
  const a = startHost(['load', pass, '--port', port, '--status-interval', '0.2']);
  try {
    await until(derived, () => true);
    const b = startHost(['load', pass, '--port', port]);
    try {
      await until(`${derived}-2`, () => true);
      assert.is(nm(['unload', `${derived}-2`]).status, 0);
      assert.is((await b.done).status, 0);
    } finally {
      b.child.kill('SIGKILL');
    }
    await sleep(500);
    assert.is(nm(['unload', derived]).status, 0);
    const res = await a.done;
    assert.is(res.status, 0, res.stderr);
    assert.match(res.stderr, /^status: \d\d:\d\d \| 0 pkts 0 B \| 0 pps 0 bit\/s \| pass 0 drop 0/m);
  } finally {
    a.child.kill('SIGKILL');
  }
});

test.run();
