// nmwasm command line: `load` (run a filter over a port), `test` (run it over a capture
// and count verdicts, no root needed), `inspect` (print what a module declares). Every
// input is validated here; a bad one exits 2 with ONE line on stderr and writes no output
// file. Exit 0 on success, 1 when a run fails after it started.
import { existsSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { UsageError, describeError, exitCodeOf, quote } from './errors.ts';
import { closest, parseCommandArgs, suggestion, type OptionTable } from './args.ts';
import { availableSchemes, parseInterfacePort, parsePortSpec } from '../ports/portspec.ts';
import { DEFAULT_LIMITS, LIMIT_BOUNDS, loadModule, type LoadedModule, type ModuleDescription, type ModuleLimits } from '../module/module.ts';
import { jsonPrintable, printable, safeLine } from './text.ts';
import { readConfig } from '../module/config.ts';
import { DEFAULT_BATCH_TIMEOUT_MS, Engine, type EngineOptions, type RunResult } from '../engine/engine.ts';
import { StatusLine, sumCounters, summaryJson, summaryText, type SummaryContext } from './stats.ts';
import { loadNative, type PlainPortSpec } from '../ports/native.ts';
import { PortPool, planSharedPorts } from '../engine/portpool.ts';
import { portRouteLines } from '../ports/portroutes.ts';
import { checkFilterConfig } from '../module/filterconfig.ts';
import { buildCommand, newCommand } from './package-cli.ts';
import { CLIENT_OPTIONS, clientCommand } from '../control/control-client.ts';
import { HostControl, checkHostName, defaultHostName, nmwasmVersion, type HostOptions } from '../control/control-host.ts';
import { parseMetricsAddress } from '../control/metrics.ts';
import { commandHelp } from './help.ts';
import { traceText } from './trace.ts';
import { watchModule } from '../control/watch.ts';
import { makeSwapHook } from '../engine/swap.ts';

/** --flow-ttl default and bound (ms). */
export const DEFAULT_FLOW_TTL_MS = 1000;
const FLOW_TTL_MAX_MS = 3_600_000;

const HELP = `nmwasm: run WebAssembly packet filters over netmap-style rings

usage:
  nmwasm load MODULE [MODULE]... --port SPEC [--to SPEC]... [--bidir] [--out SPEC] [--config FILE]...
                     [--count N] [--duration S] [--on-fault open|closed|previous] [--batch-timeout MS]
                     [--watch] [--json] [--name NAME] [--status-interval S] [--metrics ADDR:PORT [--metrics-public]]
                     [--flow-ttl MS] [--busy-poll]
                     [+ MODULE --port SPEC ...]...
  nmwasm test MODULE --port pcap:FILE [--config FILE] [--out pcap:FILE] [--json] [--trace]
             (--pcap FILE and --out FILE, without pcap:, are the same)
  nmwasm inspect MODULE [--json]
  nmwasm new NAME            write a filter package NAME/ that builds and tests as it is
  nmwasm build [DIR]         compile the filter package in DIR (default .), embed its manifest
  (load, test and inspect also take the module limits below)
  nmwasm ps [--json]
  nmwasm stats NAME [--json]
  nmwasm swap NAME MODULE [--clause N] [--module N] [--config FILE] [--json]
  nmwasm unload NAME [--json]
  nmwasm --version;  nmwasm COMMAND --help: the help of one command

MODULE      a .wasm file built against the nmwasm ABI v1 (docs/ABI.md), a filter package:
            its directory, its name in node_modules, or its .tgz from npm pack (docs/PACKAGES.md);
            load: several MODULEs run as a chain on every batch, in order: PASS hands the packet to
            the next one, DROP, HOST and FORWARD end it, the last one's PASS is the ring's (as
            libxdp's dispatcher; docs/ABI.md section 9); each is counted, faulted and swapped alone
--port      input port: ${availableSchemes('in').join(' | ')}
--to        output port: the first gets PASS, each one FORWARD n in order (bridge --port to it)
--bidir     with one --to: also run the filter from the --to port back to the --port port
--out       output port after the --to ports (PASS when there is no --to): ${availableSchemes('out').join(' | ')}
--config    file handed to the filter's nmwasm_init (at most 960 KiB); load with a chain: repeated,
            one per MODULE in order (fewer: the later modules get none; --config '': none for that one)
--count     stop after N packets got a verdict;  --duration: stop after S seconds (0.001..10000000)
--on-fault  verdict for packets while the filter is failed: closed = DROP (default), open = PASS;
            load: previous = DROP, and a hot-swapped module that faults is replaced by the last good one
--watch     load: hot-swap a module when its file or its --config file changes (canary first,
            docs/ABI.md section 8); a file that does not validate leaves the old module running
--batch-timeout  CPU budget of one batch in ms (default ${DEFAULT_BATCH_TIMEOUT_MS}); a batch over it is killed and a standby takes over
--flow-ttl MS  (AF_XDP input) how long a DROP or PASS the filter marks for the packet's flow is
            applied by the kernel without the filter (default ${DEFAULT_FLOW_TTL_MS}; 0: never; docs/ABI.md "Flow verdicts")
--busy-poll (AF_XDP) the sockets poll the interface themselves (SO_PREFER_BUSY_POLL, SO_BUSY_POLL)
--json      machine-readable summary on stdout
--trace     (test) one line per frame: its number (as tcpdump -# counts), verdict and length,
            and the lines the filter logged for it (docs/FILTERS.md "Tracing")
--max-memory MIB  linear memory a module may use above the host's 64 MiB (default ${DEFAULT_LIMITS.memoryMiB})
--max-table N     elements per table (default ${DEFAULT_LIMITS.tableElements});  --max-code MIB: code section (default ${DEFAULT_LIMITS.codeMiB})
--max-data MIB    data segments together (default ${DEFAULT_LIMITS.dataMiB}); a module over a limit is refused (docs/ABI.md section 7)
--name      (load) host name for the control socket $XDG_RUNTIME_DIR/nmwasm/NAME.sock, else
            /run/nmwasm/NAME.sock, used by ps, stats, swap and unload (default: from --port; docs/CONTROL.md)
--status-interval S  seconds between status lines on stderr when stdout is not a terminal
            (default 10; 0: none); on a terminal the live line is redrawn every second
--metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics (docs/CONTROL.md)
--metrics-public  allow a --metrics address that is not loopback (the network can read them)
NAME        a running host's name (nmwasm ps lists them)
--clause N  (swap) 0-based clause of the host (default 0);  --module N: module of its chain (default 0)
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
  config: { type: 'string', multiple: true, value: 'a FILE' },
  count: { type: 'string', value: 'a number of packets' },
  duration: { type: 'string', value: 'a number of seconds' },
  'on-fault': { type: 'string', value: 'open, closed or previous' },
  'batch-timeout': { type: 'string', value: 'a number of milliseconds' },
  watch: { type: 'boolean' },
  json: { type: 'boolean' },
  name: { type: 'string', value: 'a host NAME' },
  'status-interval': { type: 'string', value: 'a number of seconds' },
  metrics: { type: 'string', value: 'ADDR:PORT' },
  'metrics-public': { type: 'boolean' },
  'flow-ttl': { type: 'string', value: 'a number of milliseconds' },
  'busy-poll': { type: 'boolean' },
  ...LIMIT_OPTIONS,
};
const TEST_OPTIONS: OptionTable = {
  port: { type: 'string', value: 'pcap:FILE' },
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
const COMMANDS: Record<string, OptionTable> = { load: LOAD_OPTIONS, test: TEST_OPTIONS, inspect: INSPECT_OPTIONS, new: {}, build: {}, ...CLIENT_OPTIONS };

/** Parses argv of `nmwasm command` strictly (host/cli/args.ts): one-line UsageErrors with a suggestion. */
function parse(command: string, args: string[]): { values: Values; positionals: string[] } {
  const others: Record<string, string> = {};
  for (const [name, table] of Object.entries(COMMANDS)) if (name !== command) for (const option of Object.keys(table)) others[option] ??= name;
  const { values, positionals, help } = parseCommandArgs(command, args, COMMANDS[command]!, others);
  return { values: { ...values, help }, positionals };
}

/** The MODULEs of a load clause (a chain when several); an option written without its dashes
 * ("port gen:") is said as such rather than taken for a module. */
function chainModules(positionals: string[]): string[] {
  if (positionals.length === 0) throw new UsageError('nmwasm load: expected MODULE (a .wasm file or npm package name), got nothing');
  const options = Object.keys(COMMANDS.load!);
  for (const p of positionals.slice(1)) {
    const hint = closest(p.replace(/^-+/, ''), options);
    if (hint !== undefined && !existsSync(p)) throw new UsageError(`nmwasm load: expected MODULE arguments (a chain), got ${quote(p, 30)}, which is no file; did you mean --${hint}?`);
  }
  return positionals;
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
    if (m.abi !== undefined || m.entry !== undefined) lines.push(`  built for ABI v${m.abi ?? '?'}${m.entry ? ` from ${p(m.entry)}` : ''}`);
    const configText = m.config && m.config !== m.configFormat ? p(m.config) : undefined; // the author's line, when it says more than the format
    if (m.config || m.configFormat) lines.push(`  config: ${[m.configFormat, configText].filter((x) => x !== undefined).join(' - ')}`);
    if (m.configSchema !== undefined) lines.push(`  config schema: ${printable(JSON.stringify(m.configSchema), 400)}`);
    if (m.stats.length) lines.push(`  stats: ${m.stats.map(p).join(', ')}`);
  }
  return lines.join('\n');
}

function inspect(args: string[]): number {
  const { values, positionals } = parse('inspect', args);
  if (values.help) return help('inspect');
  const spec = oneModule('inspect', positionals);
  const loaded = loadModule(spec, limitsOption(values));
  const { description } = loaded;
  const pkg = loaded.package;
  const pkgLine = pkg ? `package: ${printable(pkg.name, 120)}${pkg.version ? `@${printable(pkg.version, 40)}` : ''} (${printable(pkg.where, 200)}), sha256 checked\n` : '';
  process.stdout.write(values.json ? `${jsonPrintable(JSON.stringify(pkg ? { ...description, package: pkg } : description, null, 2))}\n` : `${pkgLine}${describeText(description)}\n`);
  return 0;
}

// ---- load / test -----------------------------------------------------------------------
interface RunRequest {
  moduleSpec: string;
  loaded: LoadedModule;
  config: Uint8Array;
  configName: string | undefined;
  /** load: the modules of the chain after the first, in order (docs/ABI.md section 9). */
  then?: ChainModule[];
  input: PlainPortSpec;
  outputs: PlainPortSpec[];
  onFault: 'open' | 'closed';
  revert?: boolean; // --on-fault previous
  watch?: { limits: ModuleLimits }; // --watch: the module file (moduleSpec) and configName
  limits?: ModuleLimits; // the --max-* limits a swapped-in module is held to (as at load)
  batchTimeoutMs: number;
  count: number;
  durationMs: number;
  json: boolean;
  trace: boolean;
  startup?: string[]; // lines printed once the ports are open (backend choice, AF_PACKET limits)
  group?: number; // the load clause ("+"-separated) it came from: a normal end stops only its own group
  host?: HostRequest; // load: the host options given in this clause
}

/** A module of a load clause's chain after the first. */
interface ChainModule {
  moduleSpec: string;
  loaded: LoadedModule;
  config: Uint8Array;
  configName: string | undefined;
}

/** Host-wide options of `load` as given in one clause (checked). */
interface HostRequest {
  name?: string;
  statusIntervalS?: number;
  metricsText?: string;
  metricsPublic: boolean;
}

/** Default seconds between status lines when stdout is not a terminal. */
const DEFAULT_STATUS_INTERVAL_S = 10;

/** Thrown after --help was printed inside a clause. */
class HelpShown extends Error {}

/** Start-up lines: the backend chosen for each interface, pipe or VALE port and why; what
 * AF_PACKET cannot do; where PASS and DROP go on each port (host/ports/portroutes.ts). */
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

interface RunHooks {
  /** Hold the filter's log lines back (the --trace pass prints them per frame). */
  quietLogs?: boolean;
  /** Called after every engine ended, before the summaries are printed, with the log lines
   * held back (at most 10,000). */
  beforeSummary?: (results: RunResult[], heldLogs: string[]) => void;
}

/** Runs one engine per request (two for --bidir), all stopped together; prints one summary
 * each and returns the results in request order. */
async function run(reqs: RunRequest[], control?: HostControl, statusIntervalS = 0, hooks: RunHooks = {}): Promise<RunResult[]> {
  const heldLogs: string[] = [];
  const events: EngineOptions['onEvent'] = (kind, _ring, line) => {
    if (kind === 'log' && hooks.quietLogs) {
      if (heldLogs.length < 10_000) heldLogs.push(line);
      return;
    }
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
        ...(req.then && req.then.length > 0 ? { then: req.then.map((m) => ({ loaded: m.loaded, moduleName: m.moduleSpec, config: m.config, ...(m.configName !== undefined ? { configName: m.configName } : {}) })) } : {}),
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
  for (const line of control?.startupNotices ?? []) say(line);
  for (const engine of engines) engine.start();
  const status = new StatusLine(process.stdout, () => engines.flatMap((e) => e.ringRuns), { intervalS: statusIntervalS, durationMs: Math.max(...reqs.map((r) => r.durationMs)), log: process.stderr });
  // A script may wait for the first status line: the rings are being read by then.
  if (!reqs[0]!.json || !process.stdout.isTTY) void Promise.all(engines.map((e) => e.running)).then(() => status.arm());
  const unwatch = reqs.flatMap((req, i) => (req.watch ? [req, ...(req.then ?? [])].map((m, index) => watchModule({ engine: engines[i]!, index, modulePath: m.moduleSpec, configPath: m.configName, limits: req.watch!.limits, say: (line) => events('notice', -1, line) })) : []));
  const stopAll = (): void => {
    for (const engine of engines) engine.stop('signal');
  };
  // The final summaries: to stdout, and to a control client waiting on `unload`.
  const printSummaries = (results: RunResult[]): void => {
    const summaries = reqs.map((req, i) => summaryJson(results[i]!, contextOf(req), req.trace));
    control?.finish(summaries);
    reqs.forEach((req, i) => {
      process.stdout.write(req.json ? `${jsonPrintable(JSON.stringify(summaries[i]))}\n` : `${summaryText(results[i]!, contextOf(req))}\n`);
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
  control?.attach(engines, onSignal);
  // `nmwasm swap NAME ...` through the control socket: validated, canaried and switched as --watch does.
  if (control) control.swapHook = makeSwapHook(() => engines, reqs.map((r) => r.limits ?? DEFAULT_LIMITS), { swaps: control.swaps, canaryFailures: control.canaryFailures });
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
  hooks.beforeSummary?.(results, heldLogs);
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
  // Not here: the command still decides its exit status (nmwasm test: 1 when the filter
  // faulted); an exit 0 here hid it whenever a loaded machine was slow to end a killed worker.
  leftBehind = true;
}

/** A run ended without one of its killed workers (endLingering): the process ends with
 * hardExit once the command has its exit status, instead of waiting for that thread. */
let leftBehind = false;

function contextOf(req: RunRequest): SummaryContext {
  return { module: [req.moduleSpec, ...(req.then ?? []).map((m) => m.moduleSpec)].join(' -> '), port: req.input.name, outputs: req.outputs.map((o) => o.name), onFault: req.onFault };
}

/** The host options of all clauses: each may be given once, in any clause. */
function hostOptions(reqs: RunRequest[]): HostRequest {
  const merged: HostRequest = { metricsPublic: false };
  for (const req of reqs) {
    const h = req.host;
    if (!h) continue;
    for (const [key, option] of [['name', 'name'], ['statusIntervalS', 'status-interval'], ['metricsText', 'metrics']] as const) {
      if (h[key] === undefined) continue;
      if (merged[key] !== undefined && merged[key] !== h[key]) throw new UsageError(`--${option}: expected once per host (it applies to every clause), got it in two clauses`);
      (merged as unknown as Record<string, unknown>)[key] = h[key];
    }
    merged.metricsPublic ||= h.metricsPublic;
  }
  return merged;
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
  // The control socket and the metrics endpoint open before any port: a name in use or a
  // refused address leaves nothing open.
  const host = hostOptions(reqs);
  const hostOpts: HostOptions = host.metricsText !== undefined ? { metrics: parseMetricsAddress(host.metricsText, host.metricsPublic) } : {};
  if (host.metricsText === undefined && host.metricsPublic) throw new UsageError('--metrics-public: expected --metrics ADDR:PORT with it, got no --metrics');
  const hostClauses = reqs.map((req) => ({ group: req.group ?? 0, moduleSpec: req.moduleSpec, loaded: req.loaded, then: (req.then ?? []).map((m) => ({ moduleSpec: m.moduleSpec, loaded: m.loaded })), ctx: contextOf(req), trace: req.trace }));
  const name = host.name ?? defaultHostName(reqs[0]!.input.name);
  const control = await HostControl.open(name, host.name === undefined, hostClauses, hostOpts, (line) => process.stderr.write(`${safeLine(line)}\n`));
  let results: RunResult[];
  try {
    results = await run(reqs, control, host.statusIntervalS ?? DEFAULT_STATUS_INTERVAL_S);
  } finally {
    // After the answers to unload are written (they were queued when run() settled).
    await new Promise((resolve) => setImmediate(resolve));
    control.close();
  }
  // A clause ended by a deleted interface failed (the others ran on): exit 1.
  return results.some((r) => r.stoppedBy === 'link') ? 1 : 0;
}

/** Parses one filter clause of `load` into its run requests (two with --bidir). */
function loadClause(args: string[], what: string, group: number): RunRequest[] {
  const { values, positionals } = parse('load', args);
  if (values.help) {
    help('load');
    throw new HelpShown();
  }
  const moduleSpecs = chainModules(positionals);
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
  const configNames = (values.config as string[] | undefined) ?? [];
  if (configNames.length > moduleSpecs.length) {
    throw new UsageError(`--config: expected at most one per MODULE (${moduleSpecs.length}), in module order, got ${configNames.length}`);
  }
  const limits = limitsOption(values);
  const chain: ChainModule[] = moduleSpecs.map((spec, i) => {
    const configName = configNames[i] === '' ? undefined : configNames[i]; // --config '': none for this module
    const config = readConfig(configName);
    const loaded = loadModule(spec, limits);
    checkFilterConfig(spec, loaded.description.manifest, configName, config);
    return { moduleSpec: spec, loaded, config, configName };
  });
  const { moduleSpec, loaded, config, configName } = chain[0]!;
  // An unbounded generator with --count generates exactly that many packets.
  if (count > 0 && input.kind === 'gen' && (input.count === 0 || input.count > count)) input = { ...input, count };
  // A bridge carries every frame, ARP and ICMP included: an AF_XDP input then leaves nothing to the kernel.
  if (toTexts.length > 0) input = bridgeInput(input);
  const flowTtlMs = integerOption('flow-ttl', str(values, 'flow-ttl'), 0, FLOW_TTL_MAX_MS, 'milliseconds');
  if (flowTtlMs !== undefined && input.kind !== 'xdp') throw new UsageError(`--flow-ttl: expected an AF_XDP --port (xdp:IF), got ${quote(portText)} (${input.kind})`);
  if (input.kind === 'xdp') input = { ...input, flowTtlMs: flowTtlMs ?? DEFAULT_FLOW_TTL_MS };
  if (values['busy-poll'] === true) {
    if (input.kind !== 'xdp' && !outputs.some((o) => o.kind === 'xdp')) throw new UsageError(`--busy-poll: expected an AF_XDP port (xdp:IF) in the clause, got none (--port ${quote(portText)} is ${input.kind})`);
    if (input.kind === 'xdp') input = { ...input, busyPoll: true };
    outputs.forEach((o, i) => {
      if (o.kind === 'xdp') outputs[i] = { ...o, busyPoll: true };
    });
  }
  const statusText = str(values, 'status-interval');
  const host: HostRequest = {
    ...(str(values, 'name') !== undefined ? { name: checkHostName(str(values, 'name')!) } : {}),
    ...(statusText !== undefined ? { statusIntervalS: statusText === '0' ? 0 : secondsOption('status-interval', statusText)! } : {}),
    ...(str(values, 'metrics') !== undefined ? { metricsText: str(values, 'metrics')! } : {}),
    metricsPublic: values['metrics-public'] === true,
  };
  const common = { moduleSpec, loaded, config, configName, then: chain.slice(1), onFault, revert, limits, ...(values.watch === true ? { watch: { limits } } : {}), batchTimeoutMs, count, durationMs: duration ? duration * 1000 : 0, json: values.json === true, trace: false, group, host };
  const reqs: RunRequest[] = [{ ...common, input, outputs, startup: startupLines(portText, input, [...toTexts, ...(outText === undefined ? [] : [outText])], outputs) }];
  if (bidir) {
    // The way back: the --to port as an input, the --port port as its output.
    let backInput = bridgeInput(portOption('--to', toTexts[0]!, 'in'));
    if (backInput.kind === 'xdp' && values['busy-poll'] === true) backInput = { ...backInput, busyPoll: true };
    const backOutputs = [portOption('--port', portText, 'out')].map((o) => (o.kind === 'xdp' && values['busy-poll'] === true ? { ...o, busyPoll: true } : o));
    reqs.push({ ...common, input: backInput, outputs: backOutputs, startup: startupLines(toTexts[0]!, backInput, [portText], backOutputs) });
  }
  return reqs;
}

async function testCommand(args: string[]): Promise<number> {
  const { values, positionals } = parse('test', args);
  if (values.help) return help('test');
  const moduleSpec = oneModule('test', positionals);
  const pcap = testInputFile(str(values, 'port'), str(values, 'pcap'));
  const out = testOutputFile(str(values, 'out'));
  const onFault = onFaultOption(str(values, 'on-fault'));
  const batchTimeoutMs = integerOption('batch-timeout', str(values, 'batch-timeout'), 1, 60_000, 'milliseconds') ?? DEFAULT_BATCH_TIMEOUT_MS;
  const configName = str(values, 'config');
  const config = readConfig(configName);
  const loaded = loadModule(moduleSpec, limitsOption(values));
  checkFilterConfig(moduleSpec, loaded.description.manifest, configName, config);
  const trace = values.trace === true;
  // Text trace: the filter's log lines are printed per frame by the trace pass instead.
  const textTrace = trace && values.json !== true;
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
    trace,
  }], undefined, 0, textTrace ? { quietLogs: true, beforeSummary: (results, logs) => printTrace(moduleSpec, pcap, config, onFault, limitsOption(values), results[0]!, logs) } : {});
  return testVerdict(pcap, result!);
}

/** The capture `nmwasm test` reads: `--port pcap:FILE` (as `load` spells it) or `--pcap FILE`. */
function testInputFile(port: string | undefined, pcap: string | undefined): string {
  if (port !== undefined && pcap !== undefined) throw new UsageError(`nmwasm test: expected one of --port pcap:FILE or --pcap FILE, got both (${quote(port, 60)} and ${quote(pcap, 60)})`);
  if (port !== undefined) {
    const spec = portOption('--port', port, 'in');
    if (spec.kind !== 'pcap') throw new UsageError(`--port ${quote(port, 60)}: nmwasm test reads a capture: expected pcap:FILE, got a ${spec.kind} port (run it with nmwasm load)`);
    return spec.path;
  }
  if (pcap === undefined || pcap.length === 0) throw new UsageError(`nmwasm test: expected --port pcap:FILE or --pcap FILE (a pcap or pcapng capture), got ${pcap === undefined ? 'none' : 'an empty string'}`);
  return pcap.startsWith('pcap:') ? testInputFile(pcap, undefined) : pcap;
}

/** The capture `nmwasm test` writes: `--out pcap:FILE` (as `load` spells it) or `--out FILE`. */
function testOutputFile(out: string | undefined): string | undefined {
  if (out === undefined) return undefined;
  if (out.length === 0) throw new UsageError('--out: expected pcap:FILE or a file name, got an empty string');
  if (!out.startsWith('pcap:')) return out;
  const spec = portOption('--out', out, 'out');
  return spec.kind === 'pcap-out' ? spec.path : out;
}

/** Prints the text --trace (host/cli/trace.ts) after the run, unless the run timed out; then the
 * run's own log lines, held back during it, are printed as they came instead. */
function printTrace(moduleSpec: string, pcap: string, config: Uint8Array, onFault: 'open' | 'closed', limits: ModuleLimits, result: RunResult, heldLogs: string[]): void {
  const fallBack = (why: string): void => {
    process.stderr.write(`trace: not printed: ${why}\n`);
    for (const line of heldLogs) process.stderr.write(`log: ${safeLine(line)}\n`);
  };
  if (sumCounters(result.rings).faults.timeouts > 0) return fallBack('a batch overran --batch-timeout, and the trace pass runs without a watchdog');
  try {
    process.stdout.write(`${traceText(moduleSpec, pcap, config, onFault, limits).join('\n')}\n`);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    fallBack(err.message);
  }
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

/** Prints the help: of one command, or all of it. */
function help(command?: string): number {
  process.stdout.write(`${command === undefined ? HELP : commandHelp(HELP, command, COMMANDS[command]!)}\n`);
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
      case 'new':
        return newCommand(rest);
      case 'build':
        return await buildCommand(rest);
      case 'ps':
      case 'stats':
      case 'swap':
      case 'unload':
        return await clientCommand(command, rest, help);
      case '--version':
      case '-V':
      case 'version':
        process.stdout.write(`nmwasm ${nmwasmVersion()} (control protocol 1, ABI v1)\n`);
        return 0;
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
  const expected = '(expected load, test, inspect, new, build, ps, stats, swap or unload; see nmwasm --help)';
  if (word.startsWith('-')) {
    const name = word.replace(/^-+/, '').split('=')[0]!;
    const owner = commands.find((c) => name in COMMANDS[c]!);
    return new UsageError(`nmwasm: expected a command first, got the option ${quote(word, 40)} ${expected}${owner ? `; e.g. nmwasm ${owner} MODULE ${word.split('=')[0]} ...` : ''}`);
  }
  if (/\.wasm$/i.test(word)) return new UsageError(`nmwasm: expected a command before MODULE, got ${quote(word, 60)} ${expected}; e.g. nmwasm load ${quote(word, 60)} --port SPEC`);
  return new UsageError(`nmwasm: unknown command ${quote(word, 40)}${suggestion(word, commands)} ${expected}`);
}

// The CLI runs when this file is the program: `node dist/nmwasm.mjs`, the npm bin symlink
// (any name: realpath), `tsx host/cli/cli.ts`; not when a test imports main().
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
    if (leftBehind) loadNative().hardExit(code);
  });
}
