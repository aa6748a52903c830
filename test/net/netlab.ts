// Test helper (not a test): network namespaces and veth pairs for the live-port tests,
// removed again even when a test fails (every namespace and root-namespace link made here
// is deleted in cleanup(), which also runs at process exit), and the needs-root guard.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

/** True when running as root. */
export const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
/** True under CI (as .ci/run runs): there a live test that cannot run is a failure, not a skip. */
export const inCI = process.env.CI === 'true';

/**
 * The uvu `test` to register live tests with: the real one as root; otherwise `test.skip`
 * after printing "skipped: needs root", except under CI=true, where it registers one
 * failing test saying so (a skipped live test must not pass CI).
 */
export function rootTest(): typeof test {
  if (isRoot) return test;
  if (inCI) {
    test('needs root', () => {
      throw new Error('needs root: under CI=true the live-port tests must run as root (.ci/run runs as root); skipping is a failure');
    });
    return test.skip as unknown as typeof test;
  }
  process.stdout.write('skipped: needs root\n');
  return test.skip as unknown as typeof test;
}

/** Runs a command, throwing with its stderr when it fails; returns stdout. */
export function sh(cmd: string, args: string[], opts: { input?: string; timeoutMs?: number } = {}): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 30_000, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** A set of namespaces and veth pairs owned by one test file; names carry the pid. */
export class NetLab {
  private readonly namespaces: string[] = [];
  private readonly rootLinks: string[] = [];
  private readonly children: ChildProcess[] = [];
  readonly tag: string;
  private readonly onExit = (): void => this.cleanup();

  constructor(prefix: string) {
    this.tag = `${prefix}${process.pid % 100000}`;
    process.on('exit', this.onExit);
    // A test run killed by a signal (a timeout, Ctrl-C) must not leave namespaces behind either.
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
      process.once(signal, () => {
        this.cleanup();
        process.exit(code);
      });
    }
  }

  /** Creates namespace `<tag><suffix>` with lo up; returns its name. */
  ns(suffix: string): string {
    const name = `${this.tag}${suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.namespaces.push(name);
    this.exec(name, 'ip', ['link', 'set', 'lo', 'up']);
    return name;
  }

  /** Creates a veth pair a <-> b (names <= 15 chars), moves each end into its namespace
   * (null = the root namespace), brings both up, and turns off the offloads that would hand
   * AF_PACKET merged frames or frames with unfinished checksums (see docs/PORTS.md). */
  veth(a: string, nsA: string | null, b: string, nsB: string | null, queues = 1): void {
    const q = queues > 1 ? ['numtxqueues', String(queues), 'numrxqueues', String(queues)] : [];
    sh('ip', ['link', 'add', a, ...q, 'type', 'veth', 'peer', 'name', b, ...q]);
    if (nsA === null) this.rootLinks.push(a);
    else sh('ip', ['link', 'set', 'dev', a, 'netns', nsA]);
    if (nsB !== null) sh('ip', ['link', 'set', 'dev', b, 'netns', nsB]);
    for (const [dev, ns] of [[a, nsA], [b, nsB]] as const) {
      this.run(ns, 'ip', ['link', 'set', 'dev', dev, 'up']);
      this.run(ns, 'ethtool', ['-K', dev, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off'], true);
    }
  }

  /** Runs a command in namespace `ns` (null = root); returns stdout. */
  run(ns: string | null, cmd: string, args: string[], quietFailure = false): string {
    try {
      return ns === null ? sh(cmd, args) : sh('ip', ['netns', 'exec', ns, cmd, ...args]);
    } catch (err) {
      if (quietFailure) return '';
      throw err;
    }
  }

  exec(ns: string, cmd: string, args: string[]): string {
    return this.run(ns, cmd, args);
  }

  /** Starts a long-running command in `ns`; it is killed in cleanup(). */
  start(ns: string | null, cmd: string, args: string[]): { child: ChildProcess; output: () => string } {
    const argv = ns === null ? [cmd, ...args] : ['ip', 'netns', 'exec', ns, cmd, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    this.children.push(child);
    return { child, output: () => out };
  }

  /** Kills the started processes and deletes every namespace and root link made here. Idempotent. */
  cleanup(): void {
    for (const child of this.children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const link of this.rootLinks.splice(0)) spawnSync('ip', ['link', 'del', link], { stdio: 'ignore' });
    for (const ns of this.namespaces.splice(0)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

/** Resolves once `predicate()` holds, checking every 50 ms; rejects after `timeoutMs` naming `what`. */
export async function until(what: string, predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits (up to 30 s) for a started `nmwasm load ... --json` to exit 0 and returns its JSON summary;
 * on a timeout it stops the process and fails with its output. */
export async function jsonSummary<T>(run: { child: ChildProcess; output: () => string }): Promise<T> {
  await until('nmwasm to stop', () => run.child.exitCode !== null, 30_000).catch((err) => {
    run.child.kill('SIGTERM');
    throw new Error(`${(err as Error).message}: ${run.output()}`);
  });
  assert.is(run.child.exitCode, 0, run.output());
  const line = run.output().split('\n').find((l) => l.startsWith('{'));
  assert.ok(line, run.output());
  return JSON.parse(line!) as T;
}
