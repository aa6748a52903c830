// Typed contract of the native addon (build/Release/nmwasm.node).
// TypeScript validates every user input and hands the addon plain, already
// checked data; the addon trusts it. Native errors are Error objects with the
// extra fields of NativeErrorFields.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Counter slots of one ring, a Float64Array over a SharedArrayBuffer.
 * Written with plain stores by the ring's owner (native or the ring worker) and
 * read without locks by the main thread (values are monotonic, tearing-free on x86-64). */
export const Counter = {
  // written by native, in RingHandle.sync
  packets: 0, // packets handed to the filter (slots delivered)
  bytes: 1, // bytes of those packets
  batches: 2, // batches delivered (== calls of nmwasm_process while healthy)
  pass: 3,
  drop: 4,
  host: 5,
  forward: 6,
  faultVerdicts: 7, // packets that got the fault verdict (not in pass or drop: pass+drop+host+forward+faultVerdicts = completed packets)
  violations: 8, // slots whose buf_idx/len/verdict broke the ABI; never counted in a batch synced with faulted = true
  outPackets: 9, // packets written to an output port
  outBytes: 10,
  eof: 11, // 1 once a finite source is exhausted and every slot released
  expected: 12, // total packets of a finite source, 0 if unknown
  // written by the ring worker
  wasmCalls: 13, // calls of nmwasm_process
  traps: 14,
  timeouts: 15, // written by the main thread's watchdog
  restarts: 16,
  batchStartedAt: 17, // ms since the Unix epoch (performance.timeOrigin + performance.now()) when the current batch began, 0 when idle
  logSuppressed: 18,
  failed: 19, // 1 while the instance is failed (fault verdicts applied)
  // written by native, in RingHandle.sync
  outSwapped: 20, // of outPackets: moved to the output by buffer swap, no copy (ports sharing memory)
  outDrops: 21, // packets an output refused (its queue stayed full, too long for it, ...)
  hostRefused: 22, // PASS (no output) or HOST packets the host stack refused (AF_XDP re-injection failed)
} as const;
export const COUNTER_SLOTS = 24;

export interface NativeErrorFields {
  code: string; // e.g. 'ENOENT', 'EPCAP_TRUNCATED', 'ELINKTYPE'
  port?: string; // the port name the error is about
  syscall?: string;
  errno?: number;
}

/** Plain, validated port descriptions (made by host/ports/portspec.ts). */
export type PlainPortSpec =
  | { kind: 'pcap'; name: string; path: string }
  | {
      kind: 'gen';
      name: string;
      count: number; // 0 = unbounded
      sizeMin: number; // on-wire frame size incl. FCS, 64..1518; slot len = size - 4
      sizeMax: number;
      imix: boolean; // 7:4:1 of 64/594/1518, overrides sizeMin/Max
      flows: number; // 1..65536
      mix: number[]; // weights, in order: tcp4 udp4 icmp4 tcp6 udp6 icmp6 arp
      seed: number; // u32
      pps: number; // paced rate over all rings, 1..1e9; 0 = unpaced
      seq: boolean; // the last 8 bytes of a frame: ring << 56 | the ring's frame number, big-endian
      rings: number; // 1..64; a flow's ring is a hash of its 5-tuple
    }
  | { kind: 'pcap-out'; name: string; path: string }
  | LivePortSpec
  | NetmapPortSpec
  | SoftPortSpec;

/** A software pipe end or VALE port (native/ports/port_soft.cc; mirrors SoftPortSpec in
 * native/ports/port.h): nmwasm's own, between the ports of one process, used when /dev/netmap
 * is absent. */
export interface SoftPortSpec {
  kind: 'soft';
  name: string; // the port name as written, for messages
  endpoint: string; // "NAME{ID", "NAME}ID" or "valeX:Y" (ring selector, flags, options stripped)
  peer: string; // pipes: the other end; VALE: ''
  switch: string; // VALE: the switch ("vale0"); pipes: ''
  ring: number; // -N: the one ring an input reads; -1 = every ring
  rings: number; // @conf rings, 0 = default (1); the first opener of an endpoint decides
  slots: number; // @conf slots 64..16384, 0 = default (1024)
  exclusive: boolean; // /x: no other input may read this endpoint
  memId: number; // @N: buffers in shared memory region N (zero copy between its ports); 0 = a private pool (copy at the boundary)
  rx: boolean; // an input (--port)
  tx: boolean; // an output (--to, --out)
}

/** A netmap port (native/netmap/port_netmap.cc; mirrors NetmapPortSpec in native/netmap/port_netmap.h): the
 * register fields of host/ports/portname.ts netmapRegisterFields. The addon lists 'netmap' in
 * backends() only while /dev/netmap exists. */
export interface NetmapPortSpec {
  kind: 'netmap';
  name: string; // the port name as written, for messages
  nrName: string; // nmreq_header.nr_name
  nrMode: number; // NR_REG_*
  nrRingid: number;
  nrFlags: number; // NR_*
  nrMemId: number; // 0 = netmap decides
  txSlots: number; // @conf counts, 0 = netmap decides
  rxSlots: number;
  txRings: number;
  rxRings: number;
  hostTxRings: number;
  hostRxRings: number;
  rx: boolean; // an input port (RX rings)
  tx: boolean; // an output port (TX rings)
}

/** A kernel interface port: AF_PACKET (`packet`, native/ports/port_packet.cc) or AF_XDP (`xdp`,
 * native/ports/port_xdp.cc). host/ports/portspec.ts checked that the interface exists and is up and
 * that `queue` is below its RX queue count. Mirrors LivePortSpec in native/ports/port.h. */
export interface LivePortSpec {
  kind: 'packet' | 'xdp';
  name: string; // the port name as written, for messages
  ifname: string; // 1..15 chars
  queue: number; // the one queue of IF-N, -1 = every queue
  rings: number; // input rings (one worker each) when queue = -1, 1 otherwise; 0 = output only
  rx: boolean; // open the receive side (an input port)
  tx: boolean; // open the transmit side (an output: --to, --out)
  rxSlots: number; // @conf rx-slots, 0 = backend default
  txSlots: number; // @conf tx-slots, 0 = backend default
  xdpBind: 'zerocopy' | 'copy' | ''; // AF_XDP bind mode, '' = the driver decides
  xdpAttach: 'native' | 'skb' | ''; // AF_XDP attach mode, '' = the driver decides
  xdpKernelClasses: boolean; // AF_XDP input: ARP/ICMP/ICMPv6 stay with the kernel; false for a bridge (--to): every frame to the filter
  flowTtlMs?: number; // AF_XDP input: how long a flow verdict holds in the kernel (--flow-ttl; docs/ABI.md "Flow verdicts"), 0 = never cached; absent = 0
  busyPoll?: boolean; // AF_XDP: busy polling on the sockets (--busy-poll)
}

export interface PortOptions {
  numSlots: number; // power of two, 64..16384
  bufSize: number; // 2048
}

export interface PortInfo {
  id: number;
  name: string;
  rings: number;
  memSize: number; // bytes of packet memory to map (page multiple)
  expected: number; // packets of a finite source, 0 if unknown
  notices: string[]; // one-line start-up warnings of the backend (offloads, ...)
}

export interface RingLayout {
  ringOfs: number; // offsets inside the packet memory
  verdictOfs: number;
  numSlots: number;
  bufSize: number;
  memSize: number;
}

export interface AttachOptions {
  outputs: number[]; // port ids: outputs[0] gets PASS, outputs[n] gets FORWARD n
  counters: Float64Array; // COUNTER_SLOTS entries over a SharedArrayBuffer
  faultVerdict: 0 | 1; // DROP or PASS
  trace: boolean; // record each packet's final verdict (nmwasm test)
  /** Packets the run may still take from its input, shared by its rings (one entry over a
   * SharedArrayBuffer): sync claims from it before refilling the ring, so the run takes
   * exactly this many; set it to 0 to take no more (a stop). Left out: no limit. */
  budget?: BigInt64Array;
}

/** RingHandle.sync's answer when nothing is in hand because the budget is spent. */
export const SYNC_NO_BUDGET = -2;

export interface RingHandle {
  /** mmap the port's packet memory at byte `offset` of the wasm memory viewed by `view`
   * (MAP_SHARED|MAP_FIXED); offset + memSize must lie inside view.byteLength. */
  map(view: Uint8Array, offset: number): void;
  /** Replace that mapping with fresh anonymous zero pages (never leaves a hole). */
  unmap(view: Uint8Array, offset: number): void;
  layout(): RingLayout;
  /** Completes the `done` slots from the current head (applying the verdicts, or the
   * fault verdict to all of them when `faulted`), publishes head once, refills the ring,
   * and returns the size of the next batch: > 0 slots from the new head, 0 = nothing
   * now (live ports), SYNC_NO_BUDGET = nothing in hand and the attach budget is spent (no
   * wait then), -1 = end of a finite source (all slots released). With `waitMs`, a
   * port with a descriptor (see wait) that has nothing now is polled up to waitMs and synced
   * again before returning. NB: the one N-API call per batch, the idle wait included. */
  sync(done: number, faulted: boolean, waitMs?: number): number;
  /** Final verdicts of every packet, in order, when attached with trace. */
  takeTrace(): Uint8Array;
  /** Blocks until the ring's port may have packets (poll on its descriptor) or `timeoutMs`
   * passed: 1 = readable, 0 = timed out, -1 = the port has no descriptor (software ports;
   * returns at once). The ring worker's idle wait on live ports: it checks the stop flag
   * after each call. */
  wait(timeoutMs: number): number;
  detach(): void;
}

/** Link states of portLink (mirrors LinkState in native/ports/link_watch.h). */
export const LinkState = { up: 0, down: 1, gone: 2 } as const;

export interface PortLink {
  link: number; // LinkState: up (also every port without an interface), down (not up or no carrier), gone (deleted: the port ended)
  oversize: number; // frames the kernel dropped because they are longer than the port's frames (AF_XDP), since open
  kernelDrop: number; // packets the kernel dropped from flow verdicts without handing them to the port (AF_XDP), since open
  kernelPass: number; // packets the kernel passed to its stack from flow verdicts (AF_XDP), since open
}

export interface NativeAddon {
  openPort(spec: PlainPortSpec, opts: PortOptions): PortInfo;
  /** Looks at the port's interface now (slow path: an ioctl; the engine's link monitor calls it
   * every 250 ms). Once gone, the port's rings end (sync returns -1 after the last batch). */
  portLink(id: number): PortLink;
  /** Flushes and closes; an output file is renamed into place only here. */
  closePort(id: number): void;
  /** Closes without committing: an output file being written is removed. */
  abortPort(id: number): void;
  attachRing(portId: number, ring: number, opts: AttachOptions): RingHandle;
  /** Maps the port's packet memory at `offset` of a wasm memory view without attaching to a
   * ring (a swap's new instance, ahead of the switch); checked as RingHandle.map. */
  mapPortMemory(portId: number, view: Uint8Array, offset: number): void;
  /** Backends built into this addon: always 'packet'; 'xdp' when built with AF_XDP support. */
  backends(): string[];
  /** Makes the calling thread's CPU clock readable by threadCpuMs(threadId) until the thread
   * exits (host/engine/worker.ts calls it with its worker threadId). */
  registerThreadClock(threadId: number): void;
  /** CPU ms used so far by the thread registered under threadId; -1 if none is (any more). */
  threadCpuMs(threadId: number): number;
  /** Ends the process now with `code`, waiting for no thread (the stop deadline of host/cli/cli.ts). */
  hardExit(code: number): never;
  /** SO_PEERCRED of a connected UNIX socket `fd` (the control socket's access check);
   * throws a native error {code, syscall: 'getsockopt', errno} when fd is no such socket. */
  peerCred(fd: number): { pid: number; uid: number; gid: number };
}

let cached: NativeAddon | undefined;

/** Loads the addon once per thread; throws an error naming the file if it was not built. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'build', 'Release', 'nmwasm.node'), join(here, '..', '..', 'build', 'Release', 'nmwasm.node')];
  const file = candidates.find((f) => existsSync(f));
  if (!file) throw new Error(`native addon not found (looked for ${candidates.join(', ')}): run npm install to build it`);
  cached = createRequire(import.meta.url)(file) as NativeAddon;
  return cached;
}
