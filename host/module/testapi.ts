// The test API for filter authors: `import { runFilter } from 'nmwasm/test'` runs a module
// over a capture file or a list of frames, in the calling thread, and returns every frame's
// verdict, its bytes after the filter, the log lines, the module's counters and the verdict
// totals, for uvu or node:test assertions. The module is loaded and validated exactly as
// `nmwasm load` does (ABI checks, limits, bulk-instruction rewrite: host/module/module.ts), its
// ring is laid out as docs/ABI.md section 2 says, and each batch's output is checked like
// the host checks it (verdicts, slot lengths, buffer indices): a trap or a violation fails
// the instance, the batch gets the fault verdict and a fresh instance takes over.
// Deterministic by design: time (slot timestamps and nmwasm_now) comes from the frames.
// NB: there is no batch timeout here: a module that never returns hangs the caller; run an
// untrusted module with `nmwasm test` (its worker has the watchdog).
import { UsageError, quote } from '../cli/errors.ts';
import { DEFAULT_LIMITS, NMWASM_CONFIG_BASE, NMWASM_CONFIG_MAX, NMWASM_DATA_BASE, NMWASM_WINDOW_BASE, checkMagic, loadModule, maxMemoryPages, validateModuleBytes, type LoadedModule, type ModuleLimits } from './module.ts';
import { rewriteModule } from './wasm-rewrite.ts';
import { readCaptureFile } from './capture.ts';
import { printable } from '../cli/text.ts';

/** A frame to run: its bytes (1..2048) and optionally its receive time. */
export interface FrameInput {
  data: Uint8Array;
  /** Receive time, ns since the Unix epoch (slot `ptr`); default: frame i at i µs after 1 s. */
  timestampNs?: bigint | number;
}

export interface RunFilterOptions {
  /** The config handed to nmwasm_init (text or bytes, at most 960 KiB); default none. */
  config?: string | Uint8Array;
  /** Frames per batch (1..256, default 64); 1 ties every log line to one frame. */
  batchSize?: number;
  /** Verdict of the frames of a faulted batch: 'closed' = DROP (default), 'open' = PASS. */
  onFault?: 'closed' | 'open';
  /** A state blob (nmwasm_state_save's bytes) given to nmwasm_state_load after nmwasm_init. */
  state?: Uint8Array;
  /** Module limits (docs/ABI.md section 7); default the CLI's defaults. */
  limits?: Partial<ModuleLimits>;
}

export type VerdictName = 'DROP' | 'PASS' | 'HOST' | `FORWARD ${number}`;

export interface FrameResult {
  /** 1-based, as tcpdump -# numbers frames. */
  frame: number;
  verdict: VerdictName;
  /** True when the frame got the fault verdict instead of the filter's. */
  fault: boolean;
  /** The frame's length as it came in. */
  inputLength: number;
  /** The frame after the filter (rewritten bytes, new length); the input bytes after a fault. */
  data: Uint8Array;
  timestampNs: bigint;
  /** Lines logged by the batch holding this frame (exactly this frame's with batchSize 1). */
  logs: string[];
}

export interface FilterRun {
  frames: FrameResult[];
  /** Every log line, with the first and last frame of the batch that logged it (0 and 0 for
   * the lines nmwasm_init logged). */
  logs: { firstFrame: number; lastFrame: number; line: string }[];
  /** The module's counters by manifest name (empty without nmwasm_stats). */
  counters: Record<string, bigint>;
  totals: { packets: number; pass: number; drop: number; host: number; forward: number; fault: number };
  /** One line per fault (trap, violation, non-zero return). */
  faults: string[];
  /** The final instance's state blob (nmwasm_state_save, without the length prefix), or null. */
  saveState(): Uint8Array | null;
}

const NUM_SLOTS = 256;
const BUF_SIZE = 2048;
const SLOT_BASE = 256;
const VERDICTS = NMWASM_WINDOW_BASE + SLOT_BASE + 16 * NUM_SLOTS;
const BUF_OFS = Math.ceil((SLOT_BASE + 17 * NUM_SLOTS) / 4096) * 4096;
const LOG_MAX = 1024;

/** Name of verdict byte `v` (callers checked it is valid). */
export function verdictName(v: number): VerdictName {
  return v === 0 ? 'DROP' : v === 1 ? 'PASS' : v === 2 ? 'HOST' : `FORWARD ${v & 0x7f}`;
}

/** Runs `module` (a .wasm path, an npm package name, or the module's bytes) over `input` (a
 * pcap/pcapng file or frames) and returns what happened to each frame. Throws a one-line
 * UsageError for bad input: a module the host would refuse, a config the filter rejects
 * (quoting its last log line), a frame outside 1..2048 bytes. */
export function runFilter(module: string | Uint8Array, input: string | readonly (FrameInput | Uint8Array)[], opts: RunFilterOptions = {}): FilterRun {
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > NUM_SLOTS) throw new UsageError(`runFilter: batchSize: expected an integer 1..${NUM_SLOTS}, got ${String(batchSize)}`);
  const onFault = opts.onFault ?? 'closed';
  if (onFault !== 'closed' && onFault !== 'open') throw new UsageError(`runFilter: onFault: expected 'closed' or 'open', got ${quote(String(onFault))}`);
  const config = typeof opts.config === 'string' ? new TextEncoder().encode(opts.config) : (opts.config ?? new Uint8Array(0));
  if (config.length > NMWASM_CONFIG_MAX) throw new UsageError(`runFilter: config: expected at most ${NMWASM_CONFIG_MAX} bytes, got ${config.length}`);
  if (opts.state && opts.state.length > NMWASM_CONFIG_MAX) throw new UsageError(`runFilter: state: expected at most ${NMWASM_CONFIG_MAX} bytes, got ${opts.state.length}`);
  const spec = typeof module === 'string' ? module : 'runFilter module';
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const loaded = typeof module === 'string' ? loadModule(module, limits) : loadBytes(new Uint8Array(module), limits);
  const frames = toFrames(input);
  const guest = new Guest(loaded, spec, config, opts.state);
  const results: FrameResult[] = [];
  const logs: FilterRun['logs'] = guest.initLogs.map((line) => ({ firstFrame: 0, lastFrame: 0, line }));
  const faults: string[] = [];
  const totals = { packets: 0, pass: 0, drop: 0, host: 0, forward: 0, fault: 0 };
  let slot0 = 0;
  for (let i = 0; i < frames.length; i += batchSize) {
    const batch = frames.slice(i, i + batchSize);
    if (!guest.healthy) guest.restart();
    const out = guest.run(batch, slot0, i);
    slot0 = (slot0 + batch.length) % NUM_SLOTS;
    for (const line of out.logs) logs.push({ firstFrame: i + 1, lastFrame: i + batch.length, line });
    if (out.fault) faults.push(`frames ${i + 1}..${i + batch.length}: ${out.fault}`);
    batch.forEach((f, k) => {
      const v = out.fault ? (onFault === 'open' ? 1 : 0) : out.verdicts[k]!;
      totals.packets++;
      if (out.fault) totals.fault++;
      else if (v === 0) totals.drop++;
      else if (v === 1) totals.pass++;
      else if (v === 2) totals.host++;
      else totals.forward++;
      results.push({ frame: i + k + 1, inputLength: f.data.length, verdict: verdictName(v), fault: out.fault !== null, data: out.fault ? f.data : out.data[k]!, timestampNs: f.timestampNs, logs: out.logs });
    });
  }
  return { frames: results, logs, counters: guest.counters(), totals, faults, saveState: () => guest.saveState() };
}

/** loadModule for bytes in memory: the same checks and the same bulk-instruction rewrite. */
function loadBytes(bytes: Uint8Array<ArrayBuffer>, limits: ModuleLimits): LoadedModule {
  const spec = 'runFilter module';
  checkMagic(spec, bytes);
  try {
    new WebAssembly.Module(bytes);
  } catch (err) {
    throw new UsageError(`${spec}: invalid WebAssembly module: ${printable((err as Error).message)}`);
  }
  const description = validateModuleBytes(spec, bytes, limits);
  const rewritten = rewriteModule(bytes, { maxMemoryPages: maxMemoryPages(limits), maxTableElements: limits.tableElements });
  description.boundedInstructions = rewritten.replaced;
  return { description, module: new WebAssembly.Module(rewritten.bytes) };
}

interface Frame { data: Uint8Array; timestampNs: bigint }

function toFrames(input: string | readonly (FrameInput | Uint8Array)[]): Frame[] {
  // A captured frame longer than a buffer is cut to the buffer, as the pcap port cuts it.
  const raw = typeof input === 'string' ? readCaptureFile(input).map((f) => (f.data.length > BUF_SIZE ? { ...f, data: f.data.subarray(0, BUF_SIZE) } : f)) : input;
  if (!Array.isArray(raw)) throw new UsageError('runFilter: input: expected a capture file name or an array of frames');
  return raw.map((f, i) => {
    const data = f instanceof Uint8Array ? f : f?.data;
    if (!(data instanceof Uint8Array)) throw new UsageError(`runFilter: frame ${i + 1}: expected a Uint8Array or {data: Uint8Array}, got ${typeof data}`);
    if (data.length < 1 || data.length > BUF_SIZE) throw new UsageError(`runFilter: frame ${i + 1}: expected 1..${BUF_SIZE} bytes (a frame in one buffer), got ${data.length}`);
    const ts = f instanceof Uint8Array ? undefined : f.timestampNs;
    if (ts !== undefined && (typeof ts === 'bigint' ? ts < 0n : !Number.isSafeInteger(ts) || ts < 0)) throw new UsageError(`runFilter: frame ${i + 1}: timestampNs: expected a non-negative integer of ns, got ${String(ts)}`);
    return { data, timestampNs: ts === undefined ? 1_000_000_000n + BigInt(i) * 1000n : BigInt(ts) };
  });
}

interface BatchOut { verdicts: number[]; data: Uint8Array[]; logs: string[]; fault: string | null }

/** One instance of the module and its ring inside its own memory. */
class Guest {
  healthy = false;
  /** Lines the first instance logged in nmwasm_init. */
  initLogs: string[] = [];
  private instance!: WebAssembly.Instance;
  private memory!: WebAssembly.Memory;
  private logs: string[] = [];
  private nowMs = 0;
  private readonly statNames: string[];

  constructor(private readonly loaded: LoadedModule, private readonly spec: string, private readonly config: Uint8Array, state: Uint8Array | undefined) {
    this.statNames = loaded.description.manifest?.stats ?? [];
    this.start(true);
    this.initLogs = this.logs;
    if (state) this.loadState(state);
  }

  restart(): void { this.start(false); }

  private start(first: boolean): void {
    this.healthy = false;
    const text = (ptr: number, len: number): string => {
      const bytes = new Uint8Array(this.memory.buffer);
      ptr >>>= 0;
      if (ptr > bytes.length) return '';
      return printable(new TextDecoder().decode(bytes.subarray(ptr, Math.min(ptr + Math.min(len >>> 0, LOG_MAX), bytes.length))), LOG_MAX);
    };
    const imports = {
      env: {
        abort: (msg: number): never => { throw new Error(`abort: ${this.asString(msg)}`); },
        nmwasm_log: (ptr: number, len: number): void => { this.logs.push(text(ptr, len)); },
        nmwasm_now: (): number => this.nowMs,
      },
    };
    this.logs = [];
    try {
      this.instance = new WebAssembly.Instance(this.loaded.module, imports);
    } catch (err) {
      throw new UsageError(`${this.spec}: instantiation failed: ${printable((err as Error).message)}`);
    }
    this.memory = this.instance.exports.memory as WebAssembly.Memory;
    const bytes = new Uint8Array(this.memory.buffer);
    if (bytes.length < NMWASM_DATA_BASE) throw new UsageError(`${this.spec}: memory of ${bytes.length} bytes is below the ABI's ${NMWASM_DATA_BASE}`);
    bytes.set(this.config, NMWASM_CONFIG_BASE);
    this.writeRingHeader();
    const init = this.fn('nmwasm_init');
    if (init) {
      let rc: number;
      try {
        rc = init(NMWASM_CONFIG_BASE, this.config.length);
      } catch (err) {
        throw new UsageError(`${this.spec}: nmwasm_init trapped: ${printable((err as Error).message)}`);
      }
      if (rc !== 0) {
        const why = this.logs.at(-1) ?? `nmwasm_init returned ${rc} (the module logged no reason)`;
        throw new UsageError(`${first ? 'config' : this.spec}: configuration rejected by the filter's nmwasm_init: ${why}`);
      }
    }
    this.healthy = true;
  }

  /** An AssemblyScript string at `ptr` (u32 byte length before it, UTF-16), escaped. */
  private asString(ptr: number): string {
    const bytes = new Uint8Array(this.memory.buffer);
    ptr >>>= 0;
    if (ptr < 4 || ptr > bytes.length) return `message at 0x${ptr.toString(16)} not readable`;
    const size = new DataView(this.memory.buffer).getUint32(ptr - 4, true);
    if (size > 2048 || size % 2 !== 0 || ptr + size > bytes.length) return `message at 0x${ptr.toString(16)} not readable`;
    return printable(new TextDecoder('utf-16le').decode(bytes.subarray(ptr, ptr + size)));
  }

  /** The host-owned fields of the ring header, rewritten before every call as the host
   * rewrites them from its shadow copy at every sync (docs/ABI.md section 2). */
  private writeRingHeader(): void {
    const v = new DataView(this.memory.buffer);
    v.setBigInt64(NMWASM_WINDOW_BASE, BigInt(BUF_OFS), true);
    v.setUint32(NMWASM_WINDOW_BASE + 8, NUM_SLOTS, true);
    v.setUint32(NMWASM_WINDOW_BASE + 12, BUF_SIZE, true);
    v.setUint16(NMWASM_WINDOW_BASE + 16, 0, true);
    v.setUint16(NMWASM_WINDOW_BASE + 18, 1, true); // rx
  }

  private fn(name: string): ((...args: number[]) => number) | undefined {
    const f = this.instance.exports[name];
    return typeof f === 'function' ? (f as (...args: number[]) => number) : undefined;
  }

  private loadState(state: Uint8Array): void {
    const load = this.fn('nmwasm_state_load');
    if (!load) throw new UsageError(`${this.spec}: state given, but the module does not export nmwasm_state_load (docs/ABI.md section 8)`);
    new Uint8Array(this.memory.buffer).set(state, NMWASM_CONFIG_BASE);
    const before = this.logs.length;
    const rc = load(NMWASM_CONFIG_BASE, state.length);
    if (rc !== 0) throw new UsageError(`${this.spec}: nmwasm_state_load refused the state: ${this.logs.length > before ? this.logs.at(-1) : `returned ${rc}`}`);
  }

  /** Runs one batch at ring slot `slot0`; checks the guest's output like the host does. */
  run(batch: Frame[], slot0: number, index0: number): BatchOut {
    this.writeRingHeader();
    const v = new DataView(this.memory.buffer);
    const mem = new Uint8Array(this.memory.buffer);
    const slot = (k: number): number => (slot0 + k) % NUM_SLOTS;
    const bufIdx = (s: number): number => NUM_SLOTS - 1 - s; // a permutation: buf_idx != slot
    const bufAt = (s: number): number => NMWASM_WINDOW_BASE + BUF_OFS + bufIdx(s) * BUF_SIZE;
    batch.forEach((f, k) => {
      const s = slot(k);
      mem.set(f.data, bufAt(s));
      mem.fill(0, bufAt(s) + f.data.length, bufAt(s) + BUF_SIZE);
      const a = NMWASM_WINDOW_BASE + SLOT_BASE + 16 * s;
      v.setUint32(a, bufIdx(s), true);
      v.setUint16(a + 4, f.data.length, true);
      v.setUint16(a + 6, 0, true);
      v.setBigUint64(a + 8, f.timestampNs, true);
    });
    mem.fill(0xff, VERDICTS, VERDICTS + NUM_SLOTS);
    const tail = (slot0 + batch.length) % NUM_SLOTS;
    v.setUint32(NMWASM_WINDOW_BASE + 20, slot0, true);
    v.setUint32(NMWASM_WINDOW_BASE + 24, slot0, true);
    v.setUint32(NMWASM_WINDOW_BASE + 28, tail, true);
    const ts = batch[0]!.timestampNs;
    v.setBigInt64(NMWASM_WINDOW_BASE + 40, ts / 1_000_000_000n, true);
    v.setBigInt64(NMWASM_WINDOW_BASE + 48, (ts % 1_000_000_000n) / 1000n, true);
    this.nowMs = Number(ts) / 1e6;
    this.logs = [];
    const fail = (why: string): BatchOut => {
      this.healthy = false;
      return { verdicts: [], data: [], logs: this.logs, fault: why };
    };
    let rc: number;
    try {
      rc = this.fn('nmwasm_process')!(NMWASM_WINDOW_BASE, VERDICTS, slot0, batch.length);
    } catch (err) {
      return fail(`trap: ${printable((err as Error).message)}`);
    }
    if (rc !== 0) return fail(`nmwasm_process returned ${rc}`);
    const after = new DataView(this.memory.buffer);
    const verdicts: number[] = [];
    const data: Uint8Array[] = [];
    for (let k = 0; k < batch.length; k++) {
      const s = slot(k);
      const a = NMWASM_WINDOW_BASE + SLOT_BASE + 16 * s;
      const frame = index0 + k + 1;
      if (after.getUint32(a, true) !== bufIdx(s)) return fail(`violation: frame ${frame}: buf_idx changed`);
      const len = after.getUint16(a + 4, true);
      // As the host: a length the module changed must be 14..buffer size; an unchanged one stands.
      if (len !== batch[k]!.data.length && (len < 14 || len > BUF_SIZE)) return fail(`violation: frame ${frame}: len ${len} outside 14..${BUF_SIZE}`);
      const verdict = after.getUint8(VERDICTS + s);
      if (verdict === 0xff) return fail(`violation: frame ${frame}: verdict left unset`);
      if (verdict > 2 && verdict < 0x80 && verdict !== 0x40 && verdict !== 0x41) return fail(`violation: frame ${frame}: invalid verdict 0x${verdict.toString(16)}`);
      verdicts.push(verdict < 0x80 ? verdict & ~0x40 : verdict); // DROP/PASS for the flow (0x40 | v) are DROP/PASS here
      data.push(new Uint8Array(this.memory.buffer.slice(bufAt(s), bufAt(s) + len)));
    }
    return { verdicts, data, logs: this.logs, fault: null };
  }

  counters(): Record<string, bigint> {
    const stats = this.fn('nmwasm_stats');
    const n = this.statNames.length;
    if (!stats || n === 0 || !this.healthy) return {};
    const addr = stats() >>> 0;
    const v = new DataView(this.memory.buffer);
    if (addr < NMWASM_DATA_BASE || addr + 8 * n > v.byteLength) return {};
    return Object.fromEntries(this.statNames.map((name, i) => [name, v.getBigUint64(addr + 8 * i, true)]));
  }

  saveState(): Uint8Array | null {
    const save = this.fn('nmwasm_state_save');
    if (!save || !this.healthy) return null;
    const addr = save() >>> 0;
    const v = new DataView(this.memory.buffer);
    if (addr < NMWASM_DATA_BASE || addr + 4 > v.byteLength) return null;
    const n = v.getUint32(addr, true);
    if (n > NMWASM_CONFIG_MAX || addr + 4 + n > v.byteLength) return null;
    return new Uint8Array(this.memory.buffer.slice(addr + 4, addr + 4 + n));
  }
}
