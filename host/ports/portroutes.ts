// What happens to a packet the filter passes or drops, per port: the start-up lines
// "xdp:eth0-2: PASS -> kernel stack (re-injected), DROP -> discarded", one per input and one
// per output of a clause. The behaviour itself is documented once, in docs/PORTS.md
// ("PASS and DROP on each backend"); these lines must say the same.
import type { PlainPortSpec } from './native.ts';
import { NR_FLAG, NR_REG } from './portname.ts';

/** Whether `spec` is a netmap monitor (/r, /t, /z): it sees copies of another process's port. */
export function isNetmapMonitor(spec: PlainPortSpec): boolean {
  return spec.kind === 'netmap' && (spec.nrFlags & (NR_FLAG.MONITOR_RX | NR_FLAG.MONITOR_TX | NR_FLAG.ZCOPY_MON)) !== 0;
}

/** The port as the user should read it: the name as written, with the backend's scheme in
 * front when the name left the choice to nmwasm (a bare `eth0-2/R`). */
export function portLabel(text: string, spec: PlainPortSpec): string {
  if (spec.kind === 'xdp' || spec.kind === 'packet' || spec.kind === 'netmap') return text.startsWith(`${spec.kind}:`) ? text : `${spec.kind}:${text}`;
  return text;
}

/** Where PASS goes on input `spec` when the clause has no output. */
function passWithoutOutput(spec: PlainPortSpec): string {
  switch (spec.kind) {
    case 'xdp':
      // Loopback's checksum offload is fixed on and its packets lose their route when taken:
      // the stack drops what is re-injected there (docs/PORTS.md).
      return spec.ifname === 'lo' ? 'kernel stack (re-injected, but on lo the stack drops TCP/UDP: use packet:lo)' : 'kernel stack (re-injected)';
    case 'packet':
      return 'kernel stack (the kernel keeps its copy)';
    case 'netmap':
      if (isNetmapMonitor(spec)) return 'counted (monitor: the monitored port\'s traffic is unchanged)';
      if (/^vale|[{}]/.test(spec.nrName)) return 'counted (no output; a VALE port or pipe has no host stack)';
      if (spec.nrMode === NR_REG.SW || spec.nrMode === NR_REG.ONE_SW) return 'counted (no output; host rings are not forwarded to the NIC)';
      return 'kernel stack (NS_FORWARD)';
    default:
      return 'counted (no output)';
  }
}

/** What DROP does on input `spec`. */
function dropMeans(spec: PlainPortSpec, outputs: number): string {
  switch (spec.kind) {
    case 'netmap':
      if (isNetmapMonitor(spec)) return outputs > 0 ? 'kept from the outputs only (monitor: the monitored port is unchanged)' : 'counted only (monitor: the monitored port is unchanged)';
      return 'discarded';
    case 'xdp':
      return 'discarded';
    case 'packet':
      return outputs > 0 ? 'kept from the outputs only (the kernel still has its copy)' : 'counted only (monitor: the kernel still has its copy)';
    default:
      return outputs > 0 ? 'not written (counted)' : 'counted';
  }
}

/**
 * One line per port of a clause: for the input, where PASS and DROP go; for each output,
 * which verdicts reach it. `inText`/`outTexts` are the names as written. Pure.
 */
export function portRouteLines(inText: string, input: PlainPortSpec, outTexts: readonly string[], outputs: readonly PlainPortSpec[]): string[] {
  const outLabels = outputs.map((spec, i) => portLabel(outTexts[i]!, spec));
  const pass = outLabels.length > 0 ? outLabels[0]! : passWithoutOutput(input);
  const inLabel = portLabel(inText, input);
  const lines = [`${inLabel}: PASS -> ${pass}, DROP -> ${dropMeans(input, outputs.length)}`];
  outLabels.forEach((label, i) => lines.push(`${label}: output of ${inLabel}, gets ${i === 0 ? 'PASS and ' : ''}FORWARD ${i}`));
  return lines;
}
