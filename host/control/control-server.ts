// The host's control socket (docs/CONTROL.md): a UNIX socket at controlDir()/NAME.sock,
// directory 0700, socket 0600, every peer checked with SO_PEERCRED (root or the host's own
// uid; anyone else gets one error line and the connection is closed). Newline-delimited
// JSON, one request and one response a line. A live host of the same name is refused in
// one line; the stale socket of a killed host is detected (nothing accepts on it) and
// replaced. Control path only: nothing here touches the packet path.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, lstatSync, mkdirSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, quote } from '../cli/errors.ts';
import { loadNative } from '../ports/native.ts';
import { safeLine } from '../cli/text.ts';
import { CONTROL_PROTOCOL, socketPath, type ControlResponse, type HostInfo, type SwapHook, type SwapRequest } from './control-types.ts';

/** What the host gives the control server: live views and the stop. */
export interface HostHooks {
  /** `ps`: the host and its clauses with current rates. */
  info(): HostInfo;
  /** `stats`: the live counters, shaped like the final --json summary (one per clause). */
  stats(): Record<string, unknown>[];
  /** `unload`: stops the host cleanly; resolves with the final summaries once it ended. */
  unload(): Promise<Record<string, unknown>[]>;
  /** `swap` (host/engine/swap.ts); absent in a build without hot swap. */
  swap?: SwapHook;
}

/** Longest request line accepted (a swap names two paths). */
const MAX_LINE = 64 * 1024;

/** A client answer within this time, or the host takes the socket as stale. */
const PROBE_MS = 2000;

/** Probes a socket path: 'live' when a process accepts on it, 'stale' when nothing does
 * (ECONNREFUSED: a killed host's leftover), 'absent' when there is no such file. */
function probe(path: string): Promise<'live' | 'stale' | 'absent'> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    const timer = setTimeout(() => {
      s.destroy();
      resolve('live'); // accepted but slow: a live host under load, never replaced
    }, PROBE_MS);
    s.once('connect', () => {
      clearTimeout(timer);
      s.destroy();
      resolve('live');
    });
    s.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code === 'ENOENT' ? 'absent' : err.code === 'ECONNREFUSED' ? 'stale' : 'live');
    });
  });
}

/** Creates the socket directory 0700 (owned by this uid) or checks an existing one. */
function ensureDir(dir: string, name: string): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new UsageError(`--name ${name}: cannot create the control socket directory ${quote(dir)} (${e.code}): run as root or set XDG_RUNTIME_DIR to a directory of yours`);
  }
  const st = lstatSync(dir);
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory()) throw new UsageError(`--name ${name}: expected ${quote(dir)} to be a directory, got another kind of file: remove it or set XDG_RUNTIME_DIR`);
  if (st.uid !== uid) throw new UsageError(`--name ${name}: expected the control socket directory ${quote(dir)} to belong to uid ${uid}, got uid ${st.uid}: remove it or set XDG_RUNTIME_DIR`);
  if ((st.mode & 0o777) !== 0o700) chmodSync(dir, 0o700);
}

/** The control server of one host. */
export class ControlServer {
  private readonly sockets = new Set<Socket>();
  private ino = 0;
  private closed = false;

  private constructor(
    readonly name: string,
    readonly path: string,
    private readonly server: Server,
    private readonly hooks: HostHooks,
  ) {}

  /** Opens the control socket of host `name` (checked against NAME_RE). A live host of that
   * name: UsageError (one line). A stale socket is replaced; `onNotice` says so. */
  static async open(name: string, hooks: HostHooks, onNotice: (line: string) => void): Promise<ControlServer> {
    const path = socketPath(name);
    ensureDir(dirname(path), name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      st = undefined;
    }
    if (st !== undefined) {
      if (!st.isSocket()) throw new UsageError(`--name ${name}: ${quote(path)} exists and is not a socket: remove it or pick another --name`);
      const state = await probe(path);
      if (state === 'live') throw new UsageError(`--name ${name}: a host named ${name} is already running (socket ${quote(path)}): pick another --name, or stop it with nmwasm unload ${name}`);
      if (state === 'stale') {
        unlinkSync(path);
        onNotice(`${name}: replaced the stale control socket ${path} of a host that is gone`);
      }
    }
    const server = createServer({ allowHalfOpen: false });
    const control = new ControlServer(name, path, server, hooks);
    server.on('connection', (socket) => control.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) => reject(new UsageError(`--name ${name}: cannot listen on ${quote(path)} (${err.code}): ${err.code === 'EADDRINUSE' ? 'another host took the name meanwhile; pick another --name' : 'check the directory'}`)));
      server.listen(path, () => resolve());
    });
    chmodSync(path, 0o600); // the directory is 0700 meanwhile: nobody else reached it
    control.ino = statSync(path).ino;
    server.unref(); // the host's lifetime is its engines', not the socket's
    return control;
  }

  /** Stops accepting, ends open connections once their answers are written, removes the
   * socket file (only if it is still this host's). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    for (const s of this.sockets) s.end();
    try {
      if (statSync(this.path).ino === this.ino) unlinkSync(this.path);
    } catch {
      // already gone
    }
  }

  private accept(socket: Socket): void {
    // SO_PEERCRED on the accepted fd: root and the host's own uid only.
    const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let uid: number;
    try {
      if (typeof fd !== 'number' || fd < 0) throw new Error('no file descriptor');
      uid = loadNative().peerCred(fd).uid;
    } catch {
      socket.end(`${JSON.stringify({ v: CONTROL_PROTOCOL, ok: false, error: 'refused: cannot read the credentials of this connection (SO_PEERCRED)' })}\n`);
      return;
    }
    const own = process.getuid?.() ?? 0;
    if (uid !== 0 && uid !== own) {
      socket.end(`${JSON.stringify({ v: CONTROL_PROTOCOL, ok: false, error: `refused: uid ${uid} is neither root nor the host's uid ${own}` })}\n`);
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_LINE && !buffered.includes('\n')) {
        this.reply(socket, { v: CONTROL_PROTOCOL, ok: false, error: `request line over ${MAX_LINE} bytes` });
        socket.end();
        return;
      }
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim() !== '') void this.handle(socket, line);
      }
    });
  }

  private reply(socket: Socket, response: ControlResponse): void {
    if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(response)}\n`);
  }

  private async handle(socket: Socket, line: string): Promise<void> {
    const v = CONTROL_PROTOCOL;
    const fail = (error: string): void => this.reply(socket, { v, ok: false, error: safeLine(error) });
    let req: unknown;
    try {
      req = JSON.parse(line);
    } catch {
      return fail('expected one JSON object a line, got text that is not JSON');
    }
    if (typeof req !== 'object' || req === null || Array.isArray(req)) return fail('expected a JSON object {"v":1,"op":...}');
    const r = req as Record<string, unknown>;
    if (r.v !== v) return fail(`expected protocol version ${v}, got ${quote(String(r.v), 20)}: use the nmwasm of this host`);
    try {
      switch (r.op) {
        case 'hello':
          return this.reply(socket, { v, ok: true, name: this.name, pid: process.pid });
        case 'ps':
          return this.reply(socket, { v, ok: true, host: this.hooks.info() });
        case 'stats':
          return this.reply(socket, { v, ok: true, name: this.name, live: true, clauses: this.hooks.stats() });
        case 'unload': {
          const summaries = await this.hooks.unload();
          return this.reply(socket, { v, ok: true, name: this.name, clauses: summaries });
        }
        case 'swap': {
          const swap = checkSwapRequest(r);
          if (typeof swap === 'string') return fail(swap);
          if (!this.hooks.swap) return fail('swap is not available in this build');
          const result = await this.hooks.swap(swap);
          return this.reply(socket, { v, ok: true, name: this.name, swap: result });
        }
        default:
          return fail(`unknown op ${quote(String(r.op), 30)} (expected hello, ps, stats, swap or unload)`);
      }
    } catch (err) {
      return fail(err instanceof Error ? err.message : String(err));
    }
  }
}

/** Checks a swap request's fields (plain data for the engine hook) or says what is wrong. */
export function checkSwapRequest(r: Record<string, unknown>): SwapRequest | string {
  if (typeof r.module !== 'string' || r.module.length === 0 || r.module.length > 4096) return 'swap: expected "module": a path, got none';
  const out: SwapRequest = { module: r.module };
  if (r.config !== undefined) {
    if (typeof r.config !== 'string' || r.config.length === 0 || r.config.length > 4096) return 'swap: expected "config": a path';
    out.config = r.config;
  }
  for (const key of ['clause', 'module_index'] as const) {
    const x = r[key];
    if (x === undefined) continue;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > 65535) return `swap: expected "${key}": an integer 0..65535, got ${quote(String(x), 20)}`;
    out[key] = x;
  }
  return out;
}
