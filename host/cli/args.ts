// Command-line argument parsing for the nmwasm commands: options against a per-command
// table, with nmwasm's own one-line errors ("nmwasm load: unknown option --prot; did you
// mean --port?") instead of node:util parseArgs' text. Pure: no I/O.
import { UsageError, quote } from './errors.ts';

export interface OptionDef {
  type: 'string' | 'boolean';
  multiple?: boolean; // a string option that may be repeated (--to)
  value?: string; // how the help names its value (SPEC, FILE, N, S, MS)
}
export type OptionTable = Readonly<Record<string, OptionDef>>;

export interface ParsedArgs {
  values: Record<string, string | string[] | boolean | undefined>;
  positionals: string[];
  help: boolean;
}

/** Edit distance between `a` and `b` counting an insertion, a deletion, a substitution or a
 * swap of two neighbours as one edit (optimal string alignment; "prot" -> "port" is 1). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * The candidate closest to `word`, if it is close enough to be a typo: 1 edit for words of
 * up to 3 characters, 2 up to 6, else 3; or else a prefix of at least 3 characters of
 * exactly one candidate ("dur" -> "duration"). Ties go to the first candidate.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, c.toLowerCase());
    const len = Math.min(w.length, c.length);
    const limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
    if (d <= limit && d < bestDistance && d < Math.max(w.length, c.length)) {
      best = c;
      bestDistance = d;
    }
  }
  if (best !== undefined) return best;
  const prefixed = candidates.filter((c) => w.length >= 3 && c.toLowerCase().startsWith(w));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** "; did you mean X?" or "" (for the end of an error message). */
export function suggestion(word: string, candidates: readonly string[], spell: (c: string) => string = (c) => c): string {
  const c = closest(word, candidates);
  return c === undefined ? '' : `; did you mean ${spell(c)}?`;
}

/**
 * Parses `args` of `nmwasm COMMAND` against `table` (plus --help/-h). `--name value` and
 * `--name=value` both work; a value may start with '-' (`--duration -1` reaches the
 * option's own check) unless it is itself an option of the table. `--` ends the options.
 * `others` maps the options of the other commands to their command, for the hint "an
 * option of nmwasm test". Throws a one-line UsageError naming the option.
 */
export function parseCommandArgs(command: string, args: readonly string[], table: OptionTable, others: Readonly<Record<string, string>> = {}): ParsedArgs {
  const values: ParsedArgs['values'] = {};
  const positionals: string[] = [];
  let help = false;
  const where = `nmwasm ${command}`;
  const names = Object.keys(table);
  const isOption = (arg: string): boolean => arg === '-h' || (arg.startsWith('--') && (arg.slice(2).split('=')[0]! in table || arg.slice(2).split('=')[0] === 'help'));
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positionals.push(...args.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') {
      help = true;
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) {
      // Short options: only -h exists.
      const long = closest(arg.slice(1), names);
      throw new UsageError(`${where}: unknown option ${quote(arg, 40)} (nmwasm has no short options but -h)${long ? `; did you mean --${long}?` : ''} (see nmwasm ${command} --help)`);
    }
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
    const def = table[name];
    if (!def) {
      const shown = /^[A-Za-z0-9-]{1,40}$/.test(name) ? `--${name}` : quote(`--${name}`, 40);
      const hint = suggestion(name, names, (c) => `--${c}`) || (others[name] ? ` (it is an option of nmwasm ${others[name]})` : '');
      throw new UsageError(`${where}: unknown option ${shown}${hint} (see nmwasm ${command} --help)`);
    }
    if (def.type === 'boolean') {
      if (eq >= 0) throw new UsageError(`--${name}: expected no value (it is a switch), got ${quote(arg.slice(eq + 1), 40)}`);
      values[name] = true;
      continue;
    }
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = args[i + 1];
      const what = def.value ?? 'a value';
      if (next === undefined) throw new UsageError(`--${name}: expected ${what} after it, got nothing`);
      if (isOption(next)) throw new UsageError(`--${name}: expected ${what} after it, got the option ${quote(next, 40)}`);
      if (next === '+') throw new UsageError(`--${name}: expected ${what} after it, got "+" (the separator of load clauses)`);
      value = next;
      i++;
    }
    if (def.multiple) {
      const list = (values[name] as string[] | undefined) ?? [];
      list.push(value);
      values[name] = list;
    } else if (values[name] !== undefined) {
      throw new UsageError(`--${name}: expected once, got it twice (${quote(values[name] as string, 40)} and ${quote(value, 40)})`);
    } else values[name] = value;
  }
  return { values, positionals, help };
}
