// The control clients: `nmwasm ps`, `nmwasm stats NAME`, `nmwasm swap NAME MODULE`,
// `nmwasm unload NAME` (docs/CONTROL.md). Each sends one request line to the host's socket
// and prints its answer: text, or with --json ONE line of JSON. Any error is one line on
// stderr and exit status 2 (host/cli/errors.ts UsageError).
import { createConnection } from 'node:net';
import { readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { UsageError, quote } from '../cli/errors.ts';
import { parseCommandArgs, type OptionTable } from '../cli/args.ts';
import { jsonPrintable, printable } from '../cli/text.ts';
import { compact, humanBits, humanBytes } from '../cli/stats.ts';
import { CONTROL_PROTOCOL, NAME_RE, controlDir, socketPath, type HostInfo } from './control-types.ts';

/** The options of the client commands (besides --help/-h). */
export const CLIENT_OPTIONS: Record<string, OptionTable> = {
  ps: { json: { type: 'boolean' } },
  stats: { json: { type: 'boolean' } },
  unload: { json: { type: 'boolean' } },
  swap: {
    json: { type: 'boolean' },
    clause: { type: 'string', value: 'a clause number' },
    module: { type: 'string', value: 'a module number' },
    config: { type: 'string', value: 'a FILE' },
  },
};

/** How long a client waits for an answer: unload and swap wait for the host's work. */
const ANSWER_MS: Record<string, number> = { ps: 5000, stats: 5000, hello: 5000, unload: 120_000, swap: 120_000 };

/** Checks a host NAME given on the command line (same rule as --name). */
export function checkName(what: string, name: string | undefined): string {
  if (name === undefined) throw new UsageError(`${what}: expected a host NAME (see nmwasm ps), got nothing`);
  if (!NAME_RE.test(name)) throw new UsageError(`${what}: expected a host NAME of letters, digits, ".", "_" and "-" (1..64, not starting with "." or "-"), got ${quote(name, 70)}`);
  return name;
}

/** Sends one request to host `name` and resolves with its answer (ok: true); a refused,
 * missing or failing host rejects with a one-line UsageError naming the host. */
export function request(what: string, name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const path = socketPath(name);
  return new Promise((resolvePromise, reject) => {
    const socket = createConnection(path);
    let buffered = '';
    let settled = false;
    const done = (err: UsageError | null, value?: Record<string, unknown>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolvePromise(value!);
    };
    const timer = setTimeout(() => done(new UsageError(`${what}: host ${name} did not answer within ${(ANSWER_MS[String(body.op)] ?? 5000) / 1000} s (socket ${quote(path)})`)), ANSWER_MS[String(body.op)] ?? 5000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify({ v: CONTROL_PROTOCOL, ...body })}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      const nl = buffered.indexOf('\n');
      if (nl < 0) return;
      let answer: Record<string, unknown>;
      try {
        answer = JSON.parse(buffered.slice(0, nl)) as Record<string, unknown>;
      } catch {
        return done(new UsageError(`${what}: host ${name} answered a line that is not JSON (socket ${quote(path)})`));
      }
      if (answer.ok !== true) return done(new UsageError(`${what}: host ${name}: ${printable(String(answer.error ?? 'error'), 300)}`));
      done(null, answer);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'ENOENT' ? `no host named ${name} (no socket ${quote(path)}; nmwasm ps lists the hosts)`
        : err.code === 'EACCES' ? `permission denied on ${quote(path)}: only root and the host's own user may control it`
        : err.code === 'ECONNREFUSED' ? `host ${name} is gone (its socket ${quote(path)} is stale; the next host of that name replaces it)`
        : `cannot reach host ${name} at ${quote(path)} (${err.code ?? err.message})`;
      done(new UsageError(`${what}: ${why}`));
    });
    socket.on('close', () => done(new UsageError(`${what}: host ${name} closed the connection without an answer`)));
  });
}

/** `nmwasm ps`: every live host in the control directory. Stale sockets are skipped. */
async function ps(json: boolean): Promise<number> {
  let names: string[] = [];
  try {
    names = readdirSync(controlDir()).filter((f) => f.endsWith('.sock')).map((f) => f.slice(0, -5)).filter((n) => NAME_RE.test(n)).sort();
  } catch {
    names = []; // no directory: no host
  }
  const hosts: HostInfo[] = [];
  for (const name of names) {
    try {
      hosts.push((await request('nmwasm ps', name, { op: 'ps' })).host as HostInfo);
    } catch {
      // stale, or another user's: not listed
    }
  }
  if (json) {
    process.stdout.write(`${jsonPrintable(JSON.stringify({ v: CONTROL_PROTOCOL, hosts }))}\n`);
    return 0;
  }
  if (hosts.length === 0) {
    process.stdout.write(`no hosts (control sockets in ${controlDir()})\n`);
    return 0;
  }
  const lines: string[] = [];
  for (const h of hosts) {
    lines.push(`${printable(h.name, 64)}  pid ${h.pid}  up ${duration(h.uptimeS)}  ${h.clauses.length} clause(s)`);
    for (const c of h.clauses) {
      const mods = c.modules.map((m) => `${printable(m.name, 60)}${m.version ? `@${printable(m.version, 20)}` : ''} sha256:${m.sha256.slice(0, 12)}`).join(' > ');
      const outs = c.outputs.length > 0 ? ` -> ${c.outputs.map((o) => printable(o, 60)).join(', ')}` : '';
      lines.push(`  [${c.clause}] ${printable(c.port, 80)}${outs}  ${c.rings} ring(s)  ${mods}  ${compact(c.pps)} pps ${humanBits(c.bps)}  ${c.running ? 'running' : 'ended'}`);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}

/** "1h02m03s", "4m05s", "12s". */
export function duration(seconds: number): string {
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m${String(r).padStart(2, '0')}s` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

/** Text of live or final clause summaries (the --json summary's fields). */
function clausesText(clauses: Record<string, unknown>[]): string {
  return clauses
    .map((c) => {
      const v = c.verdicts as Record<string, number>;
      const head = `${printable(String(c.module), 80)} on ${printable(String(c.port), 80)}: ${c.packets} packets (${humanBytes(Number(c.bytes))}) in ${(Number(c.elapsedMs) / 1000).toFixed(2)} s, ${c.rings} ring(s)${c.stoppedBy !== 'running' ? `, stopped by ${String(c.stoppedBy)}` : ''}`;
      // A chain (docs/ABI.md section 9): one line per module.
      const modules = Array.isArray(c.modules) && c.modules.length > 1 ? (c.modules as Record<string, unknown>[]) : [];
      const moduleLines = modules.map((m) => {
        const mv = m.verdicts as Record<string, number>;
        return `\nmodule ${Number(m.index)} ${printable(String(m.module), 80)}: ${Number(m.packets)} packets: pass ${mv.pass}, drop ${mv.drop}, host ${mv.host}, forward ${mv.forward}, fault ${mv.fault}`;
      });
      return `${head}\nverdicts: pass ${v.pass}, drop ${v.drop}, host ${v.host}, forward ${v.forward}, fault ${v.fault}${moduleLines.join('')}`;
    })
    .join('\n');
}

/** Runs client command `command` with `args`; resolves to the exit status. */
export async function clientCommand(command: string, args: string[], help: (command: string) => number): Promise<number> {
  const { values, positionals, help: wantHelp } = parseCommandArgs(command, args, CLIENT_OPTIONS[command]!);
  if (wantHelp) return help(command);
  const json = values.json === true;
  const what = `nmwasm ${command}`;
  if (command === 'ps') {
    if (positionals.length > 0) throw new UsageError(`${what}: expected no arguments, got ${quote(positionals.join(' '), 60)}`);
    return ps(json);
  }
  const name = checkName(what, positionals[0]);
  const print = (answer: Record<string, unknown>, text: string): void => {
    process.stdout.write(json ? `${jsonPrintable(JSON.stringify(answer))}\n` : `${text}\n`);
  };
  if (command === 'stats' || command === 'unload') {
    if (positionals.length > 1) throw new UsageError(`${what}: expected one host NAME, got ${positionals.length} arguments`);
    const answer = await request(what, name, { op: command });
    print(answer, clausesText(answer.clauses as Record<string, unknown>[]));
    return 0;
  }
  // swap NAME MODULE [--clause N] [--module N] [--config FILE]
  if (positionals.length !== 2) throw new UsageError(`${what}: expected NAME MODULE, got ${positionals.length} argument(s)`);
  const index = (key: 'clause' | 'module'): number | undefined => {
    const text = values[key] as string | undefined;
    if (text === undefined) return undefined;
    if (!/^[0-9]{1,5}$/.test(text) || Number(text) > 65535) throw new UsageError(`--${key}: expected an integer 0..65535, got ${quote(text, 30)}`);
    return Number(text);
  };
  const body: Record<string, unknown> = { op: 'swap', module: resolve(positionals[1]!) };
  if (values.config !== undefined) body.config = resolve(values.config as string);
  const clause = index('clause');
  const moduleIndex = index('module');
  if (clause !== undefined) body.clause = clause;
  if (moduleIndex !== undefined) body.module_index = moduleIndex;
  const answer = await request(what, name, body);
  const s = answer.swap as { ok: boolean; reason?: string; canary?: { packets: number; faults: number }; stallUs?: number; stallCpuUs?: number };
  if (!s.ok) throw new UsageError(`${what}: host ${name} refused the swap: ${printable(s.reason ?? 'no reason given', 300)}`);
  print(answer, `swapped: canary ${s.canary ? `${s.canary.packets} packets, ${s.canary.faults} faults` : 'none'}, stall ${s.stallUs ?? 0} us (CPU ${s.stallCpuUs ?? 0} us)`);
  return 0;
}
