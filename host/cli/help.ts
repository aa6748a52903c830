// Per-command help (`nmwasm COMMAND --help`), cut from the one help text in host/cli/cli.ts so
// the two never disagree: the command's usage lines, the lines of its options (an option
// line starts with --NAME at column 0 and continues on lines indented by 12 spaces), and
// the exit status. Pure: no I/O.
import type { OptionTable } from './args.ts';

/** The help of `command` out of the full help text `help`; `table` holds its options. */
export function commandHelp(help: string, command: string, table: OptionTable): string {
  const lines = help.split('\n');
  const out: string[] = [`nmwasm ${command}: ${SUMMARY[command] ?? ''}`, '', 'usage:'];
  // Usage lines: "  nmwasm COMMAND ..." and their continuations (deeper indented).
  let inUsage = false;
  for (const line of lines) {
    if (/^ {2}nmwasm /.test(line)) inUsage = line.startsWith(`  nmwasm ${command} `) || line === `  nmwasm ${command}`;
    else if (!/^ {3,}/.test(line)) inUsage = false;
    if (inUsage) out.push(line);
  }
  out.push('');
  // Option blocks: kept when their first option (or MODULE/+ word) belongs to the command.
  let keep = false;
  for (const line of lines) {
    const head = /^(--[a-z-]+|MODULE|NAME|\+)\s/.exec(line);
    if (head) {
      const word = head[1]!;
      keep = word.startsWith('--') ? word.slice(2) in table : word === 'MODULE' ? MODULE_COMMANDS.has(command) : word === 'NAME' ? NAME_COMMANDS.has(command) : command === 'load';
    } else if (!/^ {12}/.test(line)) keep = false;
    if (keep) out.push(line);
  }
  const exit = lines.findIndex((l) => l.startsWith('exit status:'));
  if (exit >= 0) out.push('', ...lines.slice(exit));
  return out.join('\n');
}

const MODULE_COMMANDS = new Set(['load', 'test', 'inspect', 'swap']);
const NAME_COMMANDS = new Set(['stats', 'swap', 'unload']);

const SUMMARY: Record<string, string> = {
  load: 'run filters over ports as a long-lived host with a control socket',
  test: 'run a filter over a capture and count its verdicts (no root needed)',
  inspect: 'print what a module declares (ABI, exports, imports, manifest)',
  ps: 'list the running hosts: clauses, ports, modules, uptime, rates',
  stats: 'the live counters of a host (the final summary\'s, so far)',
  swap: 'replace a running host\'s module without closing its ports',
  unload: 'stop a host cleanly; its final summary is printed here too',
};
