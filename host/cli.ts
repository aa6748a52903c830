// nmwasm command line: `load` (run a filter over a port), `test` (run it over a capture
// and count verdicts, no root needed), `inspect` (print what a module declares). Every
// input is validated here; a bad one exits 2 with ONE line on stderr and writes no output
// file. Exit 0 on success, 1 when a run fails after it started.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, describeError, exitCodeOf, quote } from './errors.ts';
import { closest, parseCommandArgs, suggestion, type OptionTable } from './args.ts';
import { availableSchemes, parseInterfacePort, parsePortSpec } from './portspec.ts';
import { DEFAULT_LIMITS, LIMIT_BOUNDS, loadModule, type LoadedModule, type ModuleDescription, type ModuleLimits } from './module.ts';
import { jsonPrintable, printable, safeLine } from './text.ts';
import { readConfig } from './config.ts';
import { DEFAULT_BATCH_TIMEOUT_MS, Engine, type EngineOptions, type RunResult } from './engine.ts';
import { StatusLine, sumCounters, summaryJson, summaryText, type SummaryContext } from './stats.ts';
import { loadNative, type PlainPortSpec } from './native.ts';
import { PortPool, planSharedPorts } from './portpool.ts';
import { portRouteLines } from './portroutes.ts';
import { watchModule } from './watch.ts';

const HELP = `nmwasm: run WebAssembly packet filters over netmap-style rings

usage:
  nmwasm load MODULE --port SPEC [--to SPEC]... [--bidir] [--out SPEC] [--config FILE]
                     [--count N] [--duration S] [--on-fault open|closed|previous] [--batch-timeout MS]
                     [--watch] [--json]
                     [+ MODULE --port SPEC ...]...
  nmwasm test MODULE --pcap FILE [--config FILE] [--out FILE] [--json] [--trace]
  nmwasm inspect MODULE [--json]
  (load, test and inspect also take the module limits below)

MODULE      a .wasm file built against the nmwasm ABI v1 (docs/ABI.md), or an npm package
            whose package.json has "nmwasm": {"module": "path.wasm"}
--port      input port: ${availableSchemes('in').join(' | ')}
--to        output port: the first gets PASS, each one FORWARD n in order (bridge --port to it)
--bidir     with one --to: also run the filter from the --to port back to the --port port
--out       output port after the --to ports (PASS when there is no --to): ${availableSchemes('out').join(' | ')}
--config    file handed to the filter's nmwasm_init (at most 960 KiB)
--count     stop after N packets got a verdict;  --duration: stop after S seconds (0.001..10000000)
--on-fault  verdict for packets while the filter is failed: closed = DROP (default), open = PASS;
            load: previous = DROP, and a hot-swapped module that faults is replaced by the last good one
--watch     load: hot-swap the module when its file or the --config file changes (canary first,
            docs/ABI.md section 8); a file that does not validate leaves the old module running
--batch-timeout  CPU budget of one batch in ms (default ${DEFAULT_BATCH_TIMEOUT_MS}); a batch over it is killed and a standby takes over
--json      machine-readable summary on stdout;  --trace (test): every packet's verdict
--max-memory MIB  linear memory a module may use above the host's 64 MiB (default ${DEFAULT_LIMITS.memoryMiB})
--max-table N     elements per table (default ${DEFAULT_LIMITS.tableElements});  --max-code MIB: code section (default ${DEFAULT_LIMITS.codeMiB})
--max-data MIB    data segments together (default ${DEFAULT_LIMITS.dataMiB}); a module over a limit is refused (docs/ABI.md section 7)
+           starts another filter clause in the same host, e.g. a chain over software pipes:
            load fw.wasm --port pcap:in.pcap --to 'p{1' + counter.wasm --port 'p}1' --out pcap:out.pcap
            (without /dev/netmap, pipes and VALE ports are nmwasm's own: each filter sees only its
             own rings; packets are copied per hop, or moved between ports of one region @N)

exit status: 0 success, 2 bad input (one line on stderr), 1 failure during the run
            (test: also when the filter faulted, i.e. any packet got the fault verdict)`;

type Values = Record<string, string | string[] | boolean | undefined>;

/** The --max-* options, shared by load, test and inspect. */
const LIMIT_OPTIONS: OptionTable = {
  'max-memory': { type: 'string', value: 'a number of MiB' },
  'max-table': { type: 'string', value: 'a number of table elements' },
  'max-code': { type: 'string', value: 'a number of MiB' },
  'max-data': { type: 'string', value: 'a number of MiB' },
};

// The options of each command (besides --help/-h).
const LOAD_OPTIONS: OptionTable = {
  port: { type: 'string', value: 'a port SPEC' },
  to: { type: 'string', multiple: true, value: 'a port SPEC' },
  bidir: { type: 'boolean' },
  out: { type: 'string', value: 'a port SPEC' },
  config: { type: 'string', value: 'a FILE' },
  count: { type: 'string', value: 'a number of packets' },
  duration: { type: 'string', value: 'a number of seconds' },
  'on-fault': { type: 'string', value: 'open, closed or previous' },
  'batch-timeout': { type: 'string', value: 'a number of milliseconds' },
  watch: { type: 'boolean' },
  json: { type: 'boolean' },
  ...LIMIT_OPTIONS,
};
const TEST_OPTIONS: OptionTable = {
  pcap: { type: 'string', value: 'a capture FILE' },
  config: { type: 'string', value: 'a FILE' },
  out: { type: 'string', value: 'a FILE' },
  json: { type: 'boolean' },
  trace: { type: 'boolean' },
  'on-fault': { type: 'string', value: 'open or closed' },
  'batch-timeout': { type: 'string', value: 'a number of milliseconds' },
  ...LIMIT_OPTIONS,
};
const INSPECT_OPTIONS: OptionTable = { json: { type: 'boolean' }, ...LIMIT_OPTIONS };
const COMMANDS: Record<string, OptionTable> = { load: LOAD_OPTIONS, test: TEST_OPTIONS, inspect: INSPECT_OPTIONS };

/** Parses argv of `nmwasm command` strictly (host/args.ts): one-line UsageErrors with a suggestion. */
function parse(command: string, args: string[]): { values: Values; positionals: string[] } {
  const others: Record<string, string> = {};
  for (const [name, table] of Object.entries(COMMANDS)) if (name !== command) for (const option of Object.keys(table)) others[option] ??= name;
  const { values, positionals, help } = parseCommandArgs(command, args, COMMANDS[command]!, others);
  return { values: { ...values, help }, positionals };
}

function oneModule(command: string, positionals: string[]): string {
  if (positionals.length === 0) throw new UsageError(`nmwasm ${command}: expected MODULE (a .wasm file or npm package name), got nothing`);
  if (positionals.length > 1) {
    // An option written without its dashes ("port gen:") is the usual cause.
    const options = Object.keys(COMMANDS[command]!);
    const hint = positionals.slice(1).map((p) => closest(p.replace(/^-+/, ''), options)).find((c) => c !== undefined);
    throw new UsageError(`nmwasm ${command}: expected one MODULE, got ${positionals.length} arguments (${positionals.map((p) => quote(p, 30)).join(' ')})${hint ? `; did you mean --${hint}?` : ''}`);
  }
  return positionals[0]!;
}

/** Parses a decimal integer option in [min, max]; `unit` names what it counts in the error. */
export function integerOption(name: string, text: string | undefined, min: number, max: number, unit = ''): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`--${name}: expected an integer ${min}..${max}${unit ? ` (${unit})` : ''}, got ${quote(text)}`);
  }
  return Number(text);
}

/** Longest --duration: 10^7 s (115 days); shortest: 1 ms. */
const SECONDS_MAX = 1e7;
const SECONDS_MIN = 0.001;

/** Parses a positive decimal number of seconds (0.001..10000000, e.g. 10, 0.5, .25). */
export function secondsOption(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$/.test(text) || !(value >= SECONDS_MIN) || value > SECONDS_MAX) {
    const why = text.startsWith('-') ? ' (a negative time)' : /^[0-9.]+$/.test(text) && value < SECONDS_MIN ? ' (under 1 ms)' : value > SECONDS_MAX ? ' (over 115 days)' : /[0-9]\s*[a-z]+$/i.test(text) ? ' (no unit: seconds only)' : '';
    throw new UsageError(`--${name}: expected a positive number of seconds ${SECONDS_MIN}..${SECONDS_MAX} (e.g. 10 or 0.5), got ${quote(text)}${why}`);
  }
  return value;
}

function onFaultOption(text: string | undefined, words: string[] = ['open', 'closed']): 'open' | 'closed' {
  if (text === undefined || text === 'closed') return 'closed';
  if (text === 'open') return 'open';
  throw new UsageError(`--on-fault: expected ${words.slice(0, -1).join(', ')} or ${words.at(-1)!}, got ${quote(text)}${suggestion(text, words)}`);
}

/** The module limits from the --max-* options (defaults for the absent ones). */
function limitsOption(values: Values): ModuleLimits {
  return {
    memoryMiB: integerOption('max-memory', str(values, 'max-memory'), 1, LIMIT_BOUNDS.memoryMiB) ?? DEFAULT_LIMITS.memoryMiB,
    tableElements: integerOption('max-table', str(values, 'max-table'), 1, LIMIT_BOUNDS.tableElements) ?? DEFAULT_LIMITS.tableElements,
    codeMiB: integerOption('max-code', str(values, 'max-code'), 1, LIMIT_BOUNDS.codeMiB) ?? DEFAULT_LIMITS.codeMiB,
    dataMiB: integerOption('max-data', str(values, 'max-data'), 1, LIMIT_BOUNDS.dataMiB) ?? DEFAULT_LIMITS.dataMiB,
  };
}

function str(values: Values, key: string): string | undefined {
  const v = values[key];
  return typeof v === 'string' ? v : undefined;
}

// ---- inspect ---------------------------------------------------------------------------
/** The module description as text; every name and manifest string from the module is escaped. */
function describeText(d: ModuleDescription): string {
  const p = (text: string): string => printable(text, 200);
  const mem = `memory ${d.memory.initialPages} pages (${(d.memory.initialPages * 65536) / (1 << 20)} MiB)${d.memory.maxPages !== undefined ? `, max ${d.memory.maxPages}` : ''}`;
  const lines = [`${p(d.path)}: nmwasm ABI v${d.abiVersion}, ${d.bytes} bytes, ${mem}${d.hasStart ? ', start function' : ''}`, 'exports:'];
  if (d.boundedInstructions > 0) lines.splice(1, 0, `bulk instructions bounded: ${d.boundedInstructions} (docs/SANDBOX.md)`);
  for (const e of d.exports) lines.push(`  ${p(e.name)}: ${e.signature ?? e.kind}`);
  lines.push(d.imports.length ? 'imports:' : 'imports: none');
  for (const i of d.imports) lines.push(`  ${i.module}.${i.name}: ${i.signature}`);
  const m = d.manifest;
  if (!m) lines.push('manifest: none');
  else {
    lines.push(`manifest: ${m.name !== undefined ? p(m.name) : '(unnamed)'}${m.version ? ` ${p(m.version)}` : ''}${m.description ? ` - ${p(m.description)}` : ''}`);
    if (m.config) lines.push(`  config: ${p(m.config)}`);
    if (m.stats.length) lines.push(`  stats: ${m.stats.map(p).join(', ')}`);
  }
  return lines.join('\n');
}

function inspect(args: string[]): number {
  const { values, positionals } = parse('inspect', args);
  if (values.help) return help();
  const spec = oneModule('inspect', positionals);
  const { description } = loadModule(spec, limitsOption(values));
  process.stdout.write(values.json ? `${jsonPrintable(JSON.stringify(description, null, 2))}\n` : `${describeText(description)}\n`);
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
  revert?: boolean; // --on-fault previous
  watch?: { limits: ModuleLimits }; // --watch: the module file (moduleSpec) and configName
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
 * AF_PACKET cannot do; where PASS and DROP go on each port (host/portroutes.ts). */
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
  lines.push(...portRouteLines(portText, input, outTexts, outputs));
  return lines;
}

/** Runs one engine per request (two for --bidir), all stopped together; prints one summary
 * each and returns the results in request order. */
async function run(reqs: RunRequest[]): Promise<RunResult[]> {
  const events: EngineOptions['onEvent'] = (kind, _ring, line) => {
    status.stop();
    process.stderr.write(`${kind === 'log' ? 'log: ' : ''}${safeLine(line)}\n`);
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
        revert: req.revert === true,
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
  const unwatch = reqs.flatMap((req, i) => (req.watch ? [watchModule({ engine: engines[i]!, modulePath: req.moduleSpec, configPath: req.configName, limits: req.watch.limits, say: (line) => events('notice', -1, line) })] : []));
  const stopAll = (): void => {
    for (const engine of engines) engine.stop('signal');
  };
  const printSummaries = (results: RunResult[]): void => {
    reqs.forEach((req, i) => {
      const ctx: SummaryContext = { module: req.moduleSpec, port: req.input.name, outputs: req.outputs.map((o) => o.name), onFault: req.onFault };
      process.stdout.write(req.json ? `${jsonPrintable(JSON.stringify(summaryJson(results[i]!, ctx, req.trace)))}\n` : `${summaryText(results[i]!, ctx)}\n`);
    });
  };
  // A signal stops gracefully (every batch in flight gets its verdicts, outputs are
  // committed); whatever still runs STOP_DEADLINE_MS later is cut off: the summary of what
  // was counted, then exit 1 without waiting for any thread.
  let deadline: NodeJS.Timeout | null = null;
  let signalAt = 0;
  const onSignal = (): void => {
    stopAll();
    if (deadline !== null) return;
    signalAt = performance.now();
    deadline = setTimeout(() => {
      status.stop();
      process.stderr.write(`nmwasm: the run did not end within ${STOP_DEADLINE_MS} ms of the stop signal: ending now; the counts below are those so far\n`);
      printSummaries(engines.map((e) => e.snapshot()));
      loadNative().hardExit(1);
    }, STOP_DEADLINE_MS);
    deadline.unref();
  };
  // SIGHUP (the terminal went away) stops like SIGTERM: every packet gets its verdict and the
  // --out file is committed instead of the process dying with its temp file left behind.
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  for (const sig of signals) process.on(sig, onSignal);
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
            stopAll();
            throw err;
          },
        ),
      ),
    );
  } finally {
    for (const stop of unwatch) stop();
    status.stop();
    if (deadline !== null) clearTimeout(deadline);
    for (const sig of signals) process.off(sig, onSignal);
  }
  printSummaries(results);
  await endLingering(engines, signalAt > 0 ? Math.min(Math.max(signalAt + STOP_DEADLINE_MS - performance.now(), 0), LINGER_MS) : LINGER_MS);
  return results;
}

/** Bound on the stop: from a signal to the end of the process (margin under 1 s for a
 * main thread that is itself short of CPU). */
const STOP_DEADLINE_MS = 750;
/** How long a run that has ended waits for its killed workers to exit. */
const LINGER_MS = 300;

/** A killed worker whose guest code never reaches a termination check would keep the
 * process alive: wait up to `waitMs` for it, then end without it (the summary is already
 * written). */
async function endLingering(engines: Engine[], waitMs: number): Promise<void> {
  if (engines.every((e) => e.lingeringWorkers === 0)) return;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), waitMs)));
  const exited = Promise.all(engines.map((e) => e.workersExited())).then(() => false);
  const late = await Promise.race([exited, timedOut]);
  clearTimeout(timer);
  if (!late) return;
  process.stderr.write(`nmwasm: a killed ring worker still runs guest code after the run ended: exiting without it\n`);
  loadNative().hardExit(0);
}

/** The input of a bridge (--to): on AF_XDP it takes every frame (xdpKernelClasses off). */
function bridgeInput(input: PlainPortSpec): PlainPortSpec {
  return input.kind === 'xdp' ? { ...input, xdpKernelClasses: false } : input;
}

/** parsePortSpec, its errors naming the option the spec was given with (portspec.ts says
 * --port for an input and --out for an output; --to and --bidir's way back differ). */
function portOption(option: '--port' | '--to' | '--out', text: string, role: 'in' | 'out'): PlainPortSpec {
  try {
    return parsePortSpec(text, role);
  } catch (err) {
    if (err instanceof UsageError) {
      const m = /^--(?:port|out)(?=[ :])/.exec(err.message);
      if (m && m[0] !== option) throw new UsageError(option + err.message.slice(m[0].length));
    }
    throw err;
  }
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
  const results = await run(reqs);
  // A clause ended by a deleted interface failed (the others ran on): exit 1.
  return results.some((r) => r.stoppedBy === 'link') ? 1 : 0;
}

/** Parses one filter clause of `load` into its run requests (two with --bidir). */
function loadClause(args: string[], what: string, group: number): RunRequest[] {
  const { values, positionals } = parse('load', args);
  if (values.help) {
    help();
    throw new HelpShown();
  }
  const moduleSpec = oneModule('load', positionals);
  const portText = str(values, 'port');
  if (portText === undefined) throw new UsageError(`${what}: expected --port SPEC (${availableSchemes('in').join(' or ')}), got none`);
  let input = portOption('--port', portText, 'in');
  const outText = str(values, 'out');
  const toTexts = (values.to as unknown as string[] | undefined) ?? [];
  const outputs = [...toTexts.map((t) => portOption('--to', t, 'out')), ...(outText === undefined ? [] : [portOption('--out', outText, 'out')])];
  const bidir = values.bidir === true;
  if (bidir && (toTexts.length !== 1 || outText !== undefined)) {
    throw new UsageError(`--bidir: expected exactly one --to port and no --out, got ${toTexts.length} --to${outText !== undefined ? ' and an --out' : ''}`);
  }
  if (bidir && (input.kind === 'pcap' || input.kind === 'gen')) {
    throw new UsageError(`--bidir: expected a --port that can also send (an interface, pipe or VALE port), got ${quote(portText)}`);
  }
  const count = integerOption('count', str(values, 'count'), 1, Number.MAX_SAFE_INTEGER, 'packets') ?? 0;
  const duration = secondsOption('duration', str(values, 'duration'));
  const onFaultText = str(values, 'on-fault');
  const revert = onFaultText === 'previous';
  const onFault = onFaultOption(revert ? 'closed' : onFaultText, ['open', 'closed', 'previous']);
  const batchTimeoutMs = integerOption('batch-timeout', str(values, 'batch-timeout'), 1, 60_000, 'milliseconds') ?? DEFAULT_BATCH_TIMEOUT_MS;
  const configName = str(values, 'config');
  const config = readConfig(configName);
  const limits = limitsOption(values);
  const loaded = loadModule(moduleSpec, limits);
  // An unbounded generator with --count generates exactly that many packets.
  if (count > 0 && input.kind === 'gen' && (input.count === 0 || input.count > count)) input = { ...input, count };
  // A bridge carries every frame, ARP and ICMP included: an AF_XDP input then leaves nothing to the kernel.
  if (toTexts.length > 0) input = bridgeInput(input);
  const common = { moduleSpec, loaded, config, configName, onFault, revert, ...(values.watch === true ? { watch: { limits } } : {}), batchTimeoutMs, count, durationMs: duration ? duration * 1000 : 0, json: values.json === true, trace: false, group };
  const reqs: RunRequest[] = [{ ...common, input, outputs, startup: startupLines(portText, input, [...toTexts, ...(outText === undefined ? [] : [outText])], outputs) }];
  if (bidir) {
    // The way back: the --to port as an input, the --port port as its output.
    const backInput = bridgeInput(portOption('--to', toTexts[0]!, 'in'));
    const backOutputs = [portOption('--port', portText, 'out')];
    reqs.push({ ...common, input: backInput, outputs: backOutputs, startup: startupLines(toTexts[0]!, backInput, [portText], backOutputs) });
  }
  return reqs;
}

async function testCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse('test', args);
  if (values.help) return help();
  const moduleSpec = oneModule('test', positionals);
  const pcap = str(values, 'pcap');
  if (pcap === undefined || pcap.length === 0) throw new UsageError(`nmwasm test: expected --pcap FILE (a pcap or pcapng capture), got ${pcap === undefined ? 'none' : 'an empty string'}`);
  const out = str(values, 'out');
  if (out !== undefined && out.length === 0) throw new UsageError('--out: expected a file name, got an empty string');
  const onFault = onFaultOption(str(values, 'on-fault'));
  const batchTimeoutMs = integerOption('batch-timeout', str(values, 'batch-timeout'), 1, 60_000, 'milliseconds') ?? DEFAULT_BATCH_TIMEOUT_MS;
  const configName = str(values, 'config');
  const config = readConfig(configName);
  const loaded = loadModule(moduleSpec, limitsOption(values));
  const [result] = await run([{
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
  return testVerdict(pcap, result!);
}

/** `nmwasm test` fails (exit 1, one line on stderr) when the filter faulted: a packet that got
 * the fault verdict was not judged by the filter. */
function testVerdict(pcap: string, result: RunResult): number {
  const t = sumCounters(result.rings);
  const f = t.faults;
  const faults = f.traps + f.timeouts + f.violations + f.badReturns + f.initFaults + f.crashes;
  if (t.faultVerdicts === 0 && faults === 0) return 0;
  process.stderr.write(`nmwasm test: the filter faulted ${faults} time(s) on ${quote(pcap)}: ${t.faultVerdicts} of ${t.packets} packets got the fault verdict instead of the filter's (exit status 1)\n`);
  return 1;
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
        throw unknownCommand(command);
    }
  } catch (err) {
    process.stderr.write(`${describeError(err)}\n`);
    return exitCodeOf(err);
  }
}

/** The error for `nmwasm WORD` when WORD is no command: a typo, an option or a module first. */
function unknownCommand(word: string): UsageError {
  const commands = Object.keys(COMMANDS);
  const expected = '(expected load, test or inspect; see nmwasm --help)';
  if (word.startsWith('-')) {
    const name = word.replace(/^-+/, '').split('=')[0]!;
    const owner = commands.find((c) => name in COMMANDS[c]!);
    return new UsageError(`nmwasm: expected a command first, got the option ${quote(word, 40)} ${expected}${owner ? `; e.g. nmwasm ${owner} MODULE ${word.split('=')[0]} ...` : ''}`);
  }
  if (/\.wasm$/i.test(word)) return new UsageError(`nmwasm: expected a command before MODULE, got ${quote(word, 60)} ${expected}; e.g. nmwasm load ${quote(word, 60)} --port SPEC`);
  return new UsageError(`nmwasm: unknown command ${quote(word, 40)}${suggestion(word, commands)} ${expected}`);
}

// The CLI runs when this file is the program: `node dist/nmwasm.mjs`, the npm bin symlink
// (any name: realpath), `tsx host/cli.ts`; not when a test imports main().
function isMainModule(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isMainModule()) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
