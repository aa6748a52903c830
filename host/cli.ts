// nmwasm command line: `load` (run a filter over a port), `test` (run it over a capture
// and count verdicts, no root needed), `inspect` (print what a module declares). Every
// input is validated here; a bad one exits 2 with ONE line on stderr and writes no output
// file. Exit 0 on success, 1 when a run fails after it started.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, describeError, exitCodeOf, quote } from './errors.ts';
import { availableSchemes, parseInterfacePort, parsePortSpec } from './portspec.ts';
import { loadModule, type LoadedModule, type ModuleDescription } from './module.ts';
import { readConfig } from './config.ts';
import { DEFAULT_BATCH_TIMEOUT_MS, Engine, type EngineOptions, type RunResult } from './engine.ts';
import { StatusLine, summaryJson, summaryText, type SummaryContext } from './stats.ts';
import { loadNative, type PlainPortSpec } from './native.ts';
import { PortPool, planSharedPorts } from './portpool.ts';

const HELP = `nmwasm: run WebAssembly packet filters over netmap-style rings

usage:
  nmwasm load MODULE --port SPEC [--to SPEC]... [--bidir] [--out SPEC] [--config FILE]
                     [--count N] [--duration S] [--on-fault open|closed] [--batch-timeout MS] [--json]
                     [+ MODULE --port SPEC ...]...
  nmwasm test MODULE --pcap FILE [--config FILE] [--out FILE] [--json] [--trace]
  nmwasm inspect MODULE [--json]

MODULE      a .wasm file built against the nmwasm ABI v1 (docs/ABI.md), or an npm package
            whose package.json has "nmwasm": {"module": "path.wasm"}
--port      input port: ${availableSchemes('in').join(' | ')}
--to        output port: the first gets PASS, each one FORWARD n in order (bridge --port to it)
--bidir     with one --to: also run the filter from the --to port back to the --port port
--out       output port after the --to ports (PASS when there is no --to): ${availableSchemes('out').join(' | ')}
--config    file handed to the filter's nmwasm_init (at most 960 KiB)
--count     stop after N packets got a verdict;  --duration: stop after S seconds
--on-fault  verdict for packets while the filter is failed: closed = DROP (default), open = PASS
--batch-timeout  budget of one batch in ms (default ${DEFAULT_BATCH_TIMEOUT_MS}); a slower batch restarts the ring worker
--json      machine-readable summary on stdout;  --trace (test): every packet's verdict
+           starts another filter clause in the same host, e.g. a chain over software pipes:
            load fw.wasm --port pcap:in.pcap --to 'p{1' + counter.wasm --port 'p}1' --out pcap:out.pcap
            (without /dev/netmap, pipes and VALE ports are nmwasm's own: zero copy between them)

exit status: 0 success, 2 bad input (one line on stderr), 1 failure during the run`;

type Values = Record<string, string | boolean | undefined>;

/** Parses argv strictly; turns parseArgs errors into one-line UsageErrors. */
function parse(command: string, args: string[], options: ParseArgsConfig['options']): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    return { values: values as Values, positionals };
  } catch (err) {
    throw new UsageError(`nmwasm ${command}: ${(err as Error).message.split('\n')[0]} (see nmwasm --help)`);
  }
}

function oneModule(command: string, positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError(`nmwasm ${command}: expected MODULE (a .wasm file or npm package name), got nothing`);
  if (positionals.length > 1) throw new UsageError(`nmwasm ${command}: expected one MODULE, got ${positionals.length} arguments (${positionals.map((p) => quote(p, 30)).join(' ')})`);
  return positionals[0]!;
}

/** Parses a decimal integer option in [min, max]. */
export function integerOption(name: string, text: string | undefined, min: number, max: number): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`--${name}: expected an integer ${min}..${max}, got ${quote(text)}`);
  }
  return Number(text);
}

/** Parses a positive decimal number of seconds. */
export function secondsOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(text) || !(value > 0) || value > 1e7) throw new UsageError(`--${name}: expected a positive number of seconds, got ${quote(text)}`);
  return value;
}

function onFaultOption(text: string | undefined): 'open' | 'closed' {
  if (text === undefined || text === 'closed') return 'closed';
  if (text === 'open') return 'open';
  throw new UsageError(`--on-fault: expected open or closed, got ${quote(text)}`);
}

function str(values: Values, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

// ---- inspect ---------------------------------------------------------------------------
function describeText(d: ModuleDescription): string {
  const mem = `memory ${d.memory.initialPages} pages (${(d.memory.initialPages * 65536) / (1 << 20)} MiB)${d.memory.maxPages !== undefined ? `, max ${d.memory.maxPages}` : ''}`;
  const lines = [`${d.path}: nmwasm ABI v${d.abiVersion}, ${d.bytes} bytes, ${mem}${d.hasStart ? ', start function' : ''}`, 'exports:'];
  for (const e of d.exports) lines.push(`  ${e.name}: ${e.signature ?? e.kind}`);
  lines.push(d.imports.length ? 'imports:' : 'imports: none');
  for (const i of d.imports) lines.push(`  ${i.module}.${i.name}: ${i.signature}`);
  const m = d.manifest;
  if (!m) lines.push('manifest: none');
  else {
    lines.push(`manifest: ${m.name ?? '(unnamed)'}${m.version ? ` ${m.version}` : ''}${m.description ? ` - ${m.description}` : ''}`);
    if (m.config) lines.push(`  config: ${m.config}`);
    if (m.stats.length) lines.push(`  stats: ${m.stats.join(', ')}`);
  }
  return lines.join('\n');
}

function inspect(args: string[]): number {
  const { values, positionals } = parse('inspect', args, { json: { type: 'boolean' } });
  if (values.help) return help();
  const spec = oneModule('inspect', positionals);
  const { description } = loadModule(spec);
  process.stdout.write(values.json ? `${JSON.stringify(description, null, 2)}\n` : `${describeText(description)}\n`);
  return 0;
}

// ---- load / test -----------------------------------------------------------------------
interface RunRequest {
  moduleSpec: string;
  loaded: LoadedModule;
  config: Uint8Array;
  configName: string | undefined;
  input: PlainPortSpec;
  outputs: PlainPortSpec[];
  onFault: 'open' | 'closed';
  batchTimeoutMs: number;
  count: number;
  durationMs: number;
  json: boolean;
  trace: boolean;
  startup?: string[]; // lines printed once the ports are open (backend choice, AF_PACKET limits)
  group?: number; // the load clause ("+"-separated) it came from: a normal end stops only its own group
}

/** Thrown after --help was printed inside a clause. */
class HelpShown extends Error {}

/** Start-up lines: the backend chosen for each interface, pipe or VALE port and why; what
 * AF_PACKET cannot do. */
function startupLines(portText: string, input: PlainPortSpec, outTexts: string[], outputs: PlainPortSpec[]): string[] {
  const lines: string[] = [];
  const chosen = (text: string, spec: PlainPortSpec, role: 'in' | 'out'): void => {
    if (spec.kind === 'packet' || spec.kind === 'xdp' || spec.kind === 'soft' || spec.kind === 'netmap') lines.push(parseInterfacePort(text, role).reason);
  };
  chosen(portText, input, 'in');
  outputs.forEach((spec, i) => chosen(outTexts[i]!, spec, 'out'));
  if (input.kind === 'packet') {
    const what = outputs.length > 0 ? 'DROP only keeps a packet from reaching the --to/--out ports (inline-copy mode)' : 'the filter watches a copy (monitor mode)';
    lines.push(`${input.name}: AF_PACKET cannot take packets away from the kernel: the kernel still receives every frame of ${input.ifname}; ${what}`);
  }
  return lines;
}

/** Runs one engine per request (two for --bidir), all stopped together; one summary each. */
async function run(reqs: RunRequest[]): Promise<number> {
  const events: EngineOptions['onEvent'] = (kind, _ring, line) => {
    status.stop();
    process.stderr.write(`${kind === 'log' ? 'log: ' : ''}${line}\n`);
    status.start();
  };
  const engines: Engine[] = [];
  // An AF_XDP queue used as an input and an output (--bidir) is one port that does both.
  const planned = planSharedPorts(reqs.flatMap((r) => [r.input, ...r.outputs]));
  let at = 0;
  for (const req of reqs) {
    req.input = planned[at++]!;
    req.outputs = req.outputs.map(() => planned[at++]!);
  }
  const pool = new PortPool(loadNative());
  try {
    for (const req of reqs) {
      const engine = new Engine({
        loaded: req.loaded,
        moduleName: req.moduleSpec,
        config: req.config,
        ...(req.configName !== undefined ? { configName: req.configName } : {}),
        input: req.input,
        outputs: req.outputs,
        onFault: req.onFault,
        batchTimeoutMs: req.batchTimeoutMs,
        count: req.count,
        durationMs: req.durationMs,
        trace: req.trace,
        onEvent: events,
        deferStart: true,
        pool,
      });
      engines.push(engine);
    }
  } catch (err) {
    // A later port failed to open: stop the engines already running before reporting it.
    for (const engine of engines) engine.stop('signal');
    await Promise.allSettled(engines.map((e) => e.done));
    throw err;
  }
  // Every port of every clause is open: say what was chosen, then start the workers (a pipe's
  // reader exists before its writer sends).
  const said = new Set<string>(); // a port shared by two directions is described once
  const say = (line: string): void => {
    if (said.has(line)) return;
    said.add(line);
    process.stderr.write(`${line}\n`);
  };
  reqs.forEach((req, i) => {
    for (const line of req.startup ?? []) say(line);
    for (const line of engines[i]!.portNotices) say(`warning: ${line}`);
  });
  for (const engine of engines) engine.start();
  const status = new StatusLine(process.stdout, () => engines.flatMap((e) => e.ringRuns));
  if (!reqs[0]!.json) status.start();
  const onSignal = (): void => {
    for (const engine of engines) engine.stop('signal');
  };
  // SIGHUP (the terminal went away) stops like SIGTERM: every packet gets its verdict and the
  // --out file is committed instead of the process dying with its temp file left behind.
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  let results: RunResult[];
  try {
    // A failure ends every engine. A normal end (end of input, --count, --duration) ends the
    // engines of its own clause (the two directions of --bidir); other clauses end by
    // themselves, e.g. a pipe's reader once its writers have left and its queue is empty.
    results = await Promise.all(
      engines.map((e, i) =>
        e.done.then(
          (result) => {
            engines.forEach((other, j) => {
              if (j !== i && reqs[j]!.group === reqs[i]!.group) other.stop('signal');
            });
            return result;
          },
          (err: unknown) => {
            onSignal();
            throw err;
          },
        ),
      ),
    );
  } finally {
    status.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
  }
  reqs.forEach((req, i) => {
    const ctx: SummaryContext = { module: req.moduleSpec, port: req.input.name, outputs: req.outputs.map((o) => o.name) };
    process.stdout.write(req.json ? `${JSON.stringify(summaryJson(results[i]!, ctx, req.trace))}\n` : `${summaryText(results[i]!, ctx)}\n`);
  });
  return 0;
}

/** The input of a bridge (--to): on AF_XDP it takes every frame (xdpKernelClasses off). */
function bridgeInput(input: PlainPortSpec): PlainPortSpec {
  return input.kind === 'xdp' ? { ...input, xdpKernelClasses: false } : input;
}

/** Splits `load` arguments into filter clauses at each lone "+". */
function splitClauses(args: string[]): string[][] {
  const clauses: string[][] = [[]];
  for (const arg of args) {
    if (arg === '+') clauses.push([]);
    else clauses[clauses.length - 1]!.push(arg);
  }
  return clauses;
}

/** `nmwasm load`: one filter clause, or several joined by "+" (one host process, so
 * software pipes and VALE ports connect them without a copy). */
async function load(args: string[]): Promise<number> {
  const clauses = splitClauses(args);
  const reqs: RunRequest[] = [];
  clauses.forEach((clause, i) => {
    const what = clauses.length > 1 ? `nmwasm load (filter ${i + 1} of ${clauses.length})` : 'nmwasm load';
    if (clause.length === 0) throw new UsageError(`${what}: expected MODULE --port SPEC between the "+" separators, got nothing`);
    reqs.push(...loadClause(clause, what, i));
  });
  return run(reqs);
}

/** Parses one filter clause of `load` into its run requests (two with --bidir). */
function loadClause(args: string[], what: string, group: number): RunRequest[] {
  const { values, positionals } = parse('load', args, {
    port: { type: 'string' },
    to: { type: 'string', multiple: true },
    bidir: { type: 'boolean' },
    out: { type: 'string', multiple: false },
    config: { type: 'string' },
    count: { type: 'string' },
    duration: { type: 'string' },
    'on-fault': { type: 'string' },
    'batch-timeout': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values.help) {
    help();
    throw new HelpShown();
  }
  const moduleSpec = oneModule('load', positionals);
  const portText = str(values, 'port');
  if (portText === undefined) throw new UsageError(`${what}: expected --port SPEC (${availableSchemes('in').join(' or ')}), got none`);
  let input = parsePortSpec(portText, 'in');
  const outText = str(values, 'out');
  const toTexts = (values.to as unknown as string[] | undefined) ?? [];
  const outputs = [...toTexts.map((t) => parsePortSpec(t, 'out')), ...(outText === undefined ? [] : [parsePortSpec(outText, 'out')])];
  const bidir = values.bidir === true;
  if (bidir && (toTexts.length !== 1 || outText !== undefined)) {
    throw new UsageError(`--bidir: expected exactly one --to port and no --out, got ${toTexts.length} --to${outText !== undefined ? ' and an --out' : ''}`);
  }
  if (bidir && (input.kind === 'pcap' || input.kind === 'gen')) {
    throw new UsageError(`--bidir: expected a --port that can also send (an interface, pipe or VALE port), got ${quote(portText)}`);
  }
  const count = integerOption('count', str(values, 'count'), 1, Number.MAX_SAFE_INTEGER) ?? 0;
  const duration = secondsOption('duration', str(values, 'duration'));
  const onFault = onFaultOption(str(values, 'on-fault'));
  const batchTimeoutMs = integerOption('batch-timeout', str(values, 'batch-timeout'), 1, 60_000) ?? DEFAULT_BATCH_TIMEOUT_MS;
  const configName = str(values, 'config');
  const config = readConfig(configName);
  const loaded = loadModule(moduleSpec);
  // An unbounded generator with --count generates exactly that many packets.
  if (count > 0 && input.kind === 'gen' && (input.count === 0 || input.count > count)) input = { ...input, count };
  // A bridge carries every frame, ARP and ICMP included: an AF_XDP input then leaves nothing to the kernel.
  if (toTexts.length > 0) input = bridgeInput(input);
  const common = { moduleSpec, loaded, config, configName, onFault, batchTimeoutMs, count, durationMs: duration ? duration * 1000 : 0, json: values.json === true, trace: false, group };
  const reqs: RunRequest[] = [{ ...common, input, outputs, startup: startupLines(portText, input, [...toTexts, ...(outText === undefined ? [] : [outText])], outputs) }];
  if (bidir) {
    // The way back: the --to port as an input, the --port port as its output.
    const backInput = bridgeInput(parsePortSpec(toTexts[0]!, 'in'));
    const backOutputs = [parsePortSpec(portText, 'out')];
    reqs.push({ ...common, input: backInput, outputs: backOutputs, startup: startupLines(toTexts[0]!, backInput, [portText], backOutputs) });
  }
  return reqs;
}

async function testCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse('test', args, {
    pcap: { type: 'string' },
    config: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
    trace: { type: 'boolean' },
    'on-fault': { type: 'string' },
    'batch-timeout': { type: 'string' },
  });
  if (values.help) return help();
  const moduleSpec = oneModule('test', positionals);
  const pcap = str(values, 'pcap');
  if (pcap === undefined || pcap.length === 0) throw new UsageError('nmwasm test: expected --pcap FILE (a pcap or pcapng capture), got none');
  const out = str(values, 'out');
  if (out !== undefined && out.length === 0) throw new UsageError('--out: expected a file name, got an empty string');
  const onFault = onFaultOption(str(values, 'on-fault'));
  const batchTimeoutMs = integerOption('batch-timeout', str(values, 'batch-timeout'), 1, 60_000) ?? DEFAULT_BATCH_TIMEOUT_MS;
  const configName = str(values, 'config');
  const config = readConfig(configName);
  const loaded = loadModule(moduleSpec);
  return run([{
    moduleSpec,
    loaded,
    config,
    configName,
    input: { kind: 'pcap', name: pcap, path: pcap },
    outputs: out === undefined ? [] : [{ kind: 'pcap-out', name: out, path: out }],
    onFault,
    batchTimeoutMs,
    count: 0,
    durationMs: 0,
    json: values.json === true,
    trace: values.trace === true,
  }]);
}

function help(): number {
  process.stdout.write(`${HELP}\n`);
  return 0;
}

/** Runs the CLI with `argv` (without node and script); resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'load':
        try {
          return await load(rest);
        } catch (err) {
          if (err instanceof HelpShown) return 0;
          throw err;
        }
      case 'test':
        return await testCommand(rest);
      case 'inspect':
        return inspect(rest);
      case undefined:
      case '-h':
      case '--help':
      case 'help':
        return help();
      default:
        throw new UsageError(`nmwasm: unknown command ${quote(command)} (expected load, test or inspect; see nmwasm --help)`);
    }
  } catch (err) {
    process.stderr.write(`${describeError(err)}\n`);
    return exitCodeOf(err);
  }
}

const invokedDirectly = process.argv[1] !== undefined && /(?:cli\.ts|nmwasm(?:\.mjs)?)$/.test(process.argv[1]);
if (invokedDirectly) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
