// `nmwasm test --trace` in text: one line per frame, numbered as tcpdump -# numbers them
// (from 1, in file order), with the verdict's name and the frame's length, and the lines
// the filter logged while it held that frame. The lines come from a second pass of the
// module over the same capture through the test API (host/module/testapi.ts), one frame per
// batch, so every log line belongs to exactly one frame; time in that pass is the
// capture's (slot timestamps and nmwasm_now), so a filter that reads the clock sees the
// capture's pace. The pass runs only after the engine's run ended without a timeout: a
// module that does not return has been stopped by the watchdog there, and is not re-run
// without one.
import { runFilter, type FilterRun } from '../module/testapi.ts';
import { safeLine } from './text.ts';
import type { ModuleLimits } from '../module/module.ts';

/** Formats one trace line: `    N  VERDICT     len L` (`len A->B` when the filter changed it). */
export function traceLine(frame: number, verdict: string, fault: boolean, inLen: number, outLen: number): string {
  const v = fault ? `${verdict} (fault)` : verdict;
  return `${String(frame).padStart(5)}  ${v.padEnd(11)} len ${inLen === outLen ? inLen : `${inLen}->${outLen}`}`;
}

/** The trace of `module` over `file`: one line per frame, each followed by its log lines
 * (`    N  log: ...`, escaped to one printable line), then one line per fault. Throws a
 * UsageError for a capture the test API cannot read. */
export function traceText(module: string, file: string, config: Uint8Array, onFault: 'open' | 'closed', limits: ModuleLimits): string[] {
  const run: FilterRun = runFilter(module, file, { config, onFault, batchSize: 1, limits });
  const lines: string[] = [];
  for (const r of run.frames) {
    lines.push(traceLine(r.frame, r.verdict, r.fault, r.inputLength, r.data.length));
    for (const line of r.logs) lines.push(`${String(r.frame).padStart(5)}  log: ${safeLine(line)}`);
  }
  for (const line of run.faults) lines.push(`trace: fault at ${safeLine(line)}`);
  return lines;
}
