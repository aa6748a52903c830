// Types of the control protocol (docs/CONTROL.md) shared by the host's control server
// (host/control/control-server.ts), its clients (host/control/control-client.ts) and the hot-swap engine
// hook (host/engine/swap.ts, g3): newline-delimited JSON over a UNIX socket, one request and one
// response a line, versioned by CONTROL_PROTOCOL. Also where a host's socket lives.
import { join } from 'node:path';

/** Version of the control protocol; a client refuses a host answering another major version. */
export const CONTROL_PROTOCOL = 1;

/** A swap request (nmwasm swap): the new module and config by path, which clause and which
 * module of a chain (0-based; default 0 both). */
export interface SwapRequest {
  module: string; // path of the new .wasm (or package)
  config?: string; // path of the new config file
  clause?: number; // 0-based clause of the host
  module_index?: number; // 0-based module of the clause's chain
}

/** What a swap did: ok, or why not; the canary's packets and faults; the ring's stall. */
export interface SwapResult {
  ok: boolean;
  reason?: string;
  canary?: { packets: number; faults: number };
  stallUs?: number;
  stallCpuUs?: number; // the stall in CPU time of the two ring threads (docs/CONTROL.md)
}

/** The engine hook the control server calls for `swap` (implemented by host/engine/swap.ts). */
export type SwapHook = (request: SwapRequest) => Promise<SwapResult>;

/** A request line: {v, id?, op, ...}. */
export type ControlRequest =
  | { v: number; op: 'hello' }
  | { v: number; op: 'ps' }
  | { v: number; op: 'stats' }
  | { v: number; op: 'unload' }
  | ({ v: number; op: 'swap' } & SwapRequest);

/** A response line: {v, ok: true, ...result} or {v, ok: false, error: one line}. */
export type ControlResponse = { v: number; ok: true; [key: string]: unknown } | { v: number; ok: false; error: string };

/** One module of a clause as `ps` shows it. */
export interface ModuleInfo {
  name: string; // the module's manifest name, else the file name as given
  version: string | null; // the manifest's version, null when it declares none
  sha256: string; // of the module's bytes as loaded
  path: string; // as given on the command line
}

/** One clause (a `load` clause, or one direction of --bidir) of a host. */
export interface ClauseInfo {
  clause: number; // 0-based request index
  group: number; // the "+"-separated clause it came from
  port: string;
  outputs: string[];
  rings: number;
  modules: ModuleInfo[];
  running: boolean;
}

/** `ps` for one host. */
export interface HostInfo {
  name: string;
  pid: number;
  uid: number;
  version: string; // nmwasm's version
  protocol: number;
  startedAt: string; // ISO time
  uptimeS: number;
  clauses: (ClauseInfo & { pps: number; bps: number; packets: number })[];
}

/** Host names: what a socket file name may hold (letters, digits, . _ -; 1..64, not starting with a dot). */
export const NAME_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,63}$/;

/** The directory of the control sockets: $XDG_RUNTIME_DIR/nmwasm when XDG_RUNTIME_DIR is set
 * (absolute), else /run/nmwasm. */
export function controlDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_RUNTIME_DIR;
  return xdg !== undefined && xdg.startsWith('/') ? join(xdg, 'nmwasm') : '/run/nmwasm';
}

/** The socket path of host NAME (NAME already checked against NAME_RE). */
export function socketPath(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(controlDir(env), `${name}.sock`);
}
