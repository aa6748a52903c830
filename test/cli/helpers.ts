// Test helper (not a test): runs the bundled CLI (dist/nmwasm.mjs) as a user would, building
// the bundle first when it is missing or older than the host sources.
import { spawnSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readlinkSync, statSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');
export const cli = join(root, 'dist', 'nmwasm.mjs');
export const pcaps = join(root, 'test', 'pcaps', 'tcpdump-tests');
export const fixtures = join(root, 'filters', 'build', 'fixtures');
export const haveNative = existsSync(join(root, 'build', 'Release', 'nmwasm.node'));

/** Builds dist/ with scripts/bundle.mjs when a host source is newer than the bundle. */
export function ensureBundle(): void {
  const hostDir = join(root, 'host');
  const newest = Math.max(...readdirSync(hostDir, { recursive: true }).map((f) => statSync(join(hostDir, String(f))).mtimeMs));
  const built = existsSync(cli) && existsSync(join(root, 'dist', 'worker.mjs')) ? Math.min(statSync(cli).mtimeMs, statSync(join(root, 'dist', 'worker.mjs')).mtimeMs) : 0;
  if (built >= newest) return;
  const res = spawnSync(process.execPath, [join(root, 'scripts', 'bundle.mjs')], { cwd: root, encoding: 'utf8' });
  if (res.status !== 0) throw new Error(`bundle failed: ${res.stderr}`);
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/nmwasm.mjs ...args` to completion; `guardMs` only ends a hung run (status null). */
export function runCli(args: string[], cwd = root, guardMs = 60_000): CliResult {
  const res = spawnSync(process.execPath, [cli, ...args], { cwd, encoding: 'utf8', timeout: guardMs });
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

/** Starts the CLI; resolves with its result once it exits. `output()` is what it wrote so far. */
export function startCli(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<CliResult>; output: () => { stdout: string; stderr: string } } {
  const child = spawn(process.execPath, [cli, ...args], { cwd: root });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  // 'close', not 'exit': the last chunks of stdout/stderr are in once the pipes closed.
  const done = new Promise<CliResult>((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Matches a status line (--status-interval) that counts at least one packet taken. */
/** A long-running `nmwasm load` host in the background with its own environment (its control
 * socket directory): the child and, at its exit, its whole stdout/stderr. */
export function startHost(args: string[], env: NodeJS.ProcessEnv): { child: ReturnType<typeof spawn>; done: Promise<CliResult> } {
  const child = spawn(process.execPath, [cli, ...args], { cwd: root, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const done = new Promise<CliResult>((resolve) => child.on('exit', (status) => resolve({ status, stdout, stderr })));
  return { child, done };
}

export const TOOK_PACKETS = /^status: .*\| [1-9]\S* pkts /m;

/** Resolves once the stderr of a started CLI matches `pattern` (polled every 20 ms): the
 * event a test waits for instead of a sleep, e.g. TOOK_PACKETS with `--status-interval 0.05`.
 * Rejects when the process exits first, or after `guardMs` (a hang guard, not a timing claim). */
export async function untilStderr(run: ReturnType<typeof startCli>, pattern: RegExp, guardMs = 120_000): Promise<void> {
  const end = Date.now() + guardMs;
  for (;;) {
    if (pattern.test(run.output().stderr)) return;
    if (run.child.exitCode !== null || run.child.signalCode !== null) throw new Error(`nmwasm exited (${run.child.exitCode ?? run.child.signalCode}) before its stderr matched ${pattern}: ${run.output().stderr}`);
    if (Date.now() > end) throw new Error(`nmwasm's stderr did not match ${pattern} within ${guardMs} ms (hang guard): ${run.output().stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Number of records in a classic little-endian pcap file. */
export function pcapRecords(path: string): number {
  const b = readFileSync(path);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4 && b.readUInt32LE(0) !== 0xa1b23c4d) throw new Error(`${path}: not a little-endian pcap`);
  let n = 0;
  for (let at = 24; at + 16 <= b.length; n++) at += 16 + b.readUInt32LE(at + 8);
  return n;
}

/** Resolves once a started CLI has opened its ports (its packet memory, a memfd named
 * "nmwasm:PORT", shows in /proc/PID/fd): from then on SIGINT/SIGTERM reach its handlers
 * (installed in the same synchronous step that starts the rings), not Node's default exit.
 * Rejects when the process exits first or after 30 s. */
export async function untilRunning(child: ReturnType<typeof spawn>): Promise<void> {
  const end = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`nmwasm exited (${child.exitCode ?? child.signalCode}) before it opened its ports`);
    if (Date.now() > end) throw new Error('nmwasm did not open its ports within 30 s');
    let fds: string[] = [];
    try {
      fds = readdirSync(`/proc/${child.pid}/fd`);
    } catch {
      // not there yet
    }
    if (fds.some((fd) => {
      try {
        return readlinkSync(`/proc/${child.pid}/fd/${fd}`).includes('memfd:nmwasm:');
      } catch {
        return false;
      }
    })) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
}
