// Test helper (not a test): runs `nmwasm test MODULE --pcap FILE --config RULES --json --trace`
// over many captures, a few processes at a time, and returns each packet's final verdict.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const root = join(import.meta.dirname, '..', '..');
export const cli = join(root, 'dist', 'nmwasm.mjs');
export const firewallWasm = join(root, 'filters', 'build', 'firewall.wasm');

/** Fails with what to run when the bundle or the firewall module has not been built. */
export function requireBuilt(): void {
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build:js'`);
  if (!existsSync(firewallWasm)) throw new Error(`${firewallWasm} is missing: run 'npm run build:filters'`);
}

export interface TraceResult {
  path: string;
  /** final verdict per packet in capture order, or null when the run failed */
  verdicts: number[] | null;
  error: string;
}

/** Reads the `trace` of a `--json --trace` summary: digits, or an array of numbers. */
export function traceVerdicts(stdout: string): number[] {
  const line = stdout.split('\n').find((l) => l.startsWith('{'));
  if (!line) throw new Error(`no JSON summary line in the output: ${stdout.slice(0, 300)}`);
  const summary = JSON.parse(line) as { trace?: unknown; packets?: unknown; faultVerdicts?: unknown };
  if (summary.faultVerdicts !== 0) throw new Error(`the filter faulted (faultVerdicts ${String(summary.faultVerdicts)}): the trace is not its verdicts: ${line.slice(0, 300)}`);
  const trace = summary.trace;
  const verdicts = typeof trace === 'string' ? Array.from(trace, Number) : Array.isArray(trace) ? trace.map(Number) : null;
  if (!verdicts) throw new Error(`the JSON summary has no trace (string or array): ${line.slice(0, 300)}`);
  if (typeof summary.packets === 'number' && summary.packets !== verdicts.length) {
    throw new Error(`the JSON summary counts ${summary.packets} packets but its trace has ${verdicts.length} verdicts`);
  }
  return verdicts;
}

function runOne(path: string, rules: string): Promise<TraceResult> {
  // NB: a generous --batch-timeout: with two runs at a time on two cores, a busy machine can
  // stretch nmwasm_init past the default 100 ms; this test is about verdicts, not latency.
  const args = [cli, 'test', firewallWasm, '--pcap', path, '--config', rules, '--json', '--trace', '--batch-timeout', '10000'];
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) {
        resolve({ path, verdicts: null, error: `exit ${err.code ?? err.signal}: ${stderr.trim().slice(0, 400)}` });
        return;
      }
      try {
        resolve({ path, verdicts: traceVerdicts(stdout), error: '' });
      } catch (e) {
        resolve({ path, verdicts: null, error: (e as Error).message });
      }
    });
  });
}

/**
 * Runs the firewall over every capture with `workers` processes at a time; results in input
 * order. A failed run is retried once (on a loaded two-core machine a run can miss a deadline
 * of the host); each retry is reported on stderr so that flakiness stays visible.
 */
export async function firewallTraces(paths: string[], rules: string, workers = 2): Promise<TraceResult[]> {
  const out: TraceResult[] = new Array(paths.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < paths.length) {
      const i = next++;
      let result = await runOne(paths[i]!, rules);
      if (!result.verdicts) {
        process.stderr.write(`nmwasm test ${paths[i]} failed, retrying once: ${result.error}\n`);
        const retry = await runOne(paths[i]!, rules);
        result = retry.verdicts ? retry : { ...retry, error: `${result.error}; retry: ${retry.error}` };
      }
      out[i] = result;
    }
  };
  await Promise.all(Array.from({ length: Math.min(workers, paths.length) }, worker));
  return out;
}
