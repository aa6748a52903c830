// Port specs: the one grammar of --port / --out / --pcap strings, parsed into the plain,
// validated objects of host/ports/native.ts (PlainPortSpec). The native addon trusts them.
//
//   pcap:FILE                      read a capture (pcap or pcapng); as --out: write a pcap
//   gen:[OPT=VALUE[,OPT=VALUE]...] synthetic traffic, options:
//       count=N        packets to generate, 0 = unbounded (default 0)
//       size=N|N-M|imix  on-wire frame size incl. FCS, 64..1518 (default 64); imix = 7:4:1 of 64/594/1518
//       flows=N        distinct 5-tuples, 1..65536 (default 16)
//       mix=P:W[+P:W]...  weights per protocol P in tcp4 udp4 icmp4 tcp6 udp6 icmp6 arp; P alone = weight 1;
//                      unlisted protocols get 0 (default: tcp4:40+udp4:30+icmp4:5+tcp6:10+udp6:10+icmp6:3+arp:2)
//       seed=N         u32 seed of the generator (default 1)
//       pps=N          paced rate over all rings, packets per second 1..1000000000 (default 0 = unpaced)
//       seq            the last 8 bytes of each frame: a big-endian u64 sequence number
//       rings=N        1..64 rings (one worker each); a flow's ring is a hash of its 5-tuple (default 1)
//
// Every other name (netmap:, xdp:, packet:, a bare interface, VALE ports, pipes) goes to
// host/ports/portname.ts (docs/PORTS.md is its grammar): chooseBackend picks the backend from what
// this machine has (probeBackends), and an interface port becomes a LivePortSpec after the
// edge checks (the interface exists and is up, the queue is in range); a VALE port or pipe
// becomes a NetmapPortSpec when /dev/netmap exists, else a SoftPortSpec (nmwasm's own
// software pipes and VALE switch, between the ports of one process).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { UsageError, quote } from '../cli/errors.ts';
import { suggestion } from '../cli/args.ts';
import { loadNative, type LivePortSpec, type NetmapPortSpec, type PlainPortSpec, type SoftPortSpec } from './native.ts';
import { chooseBackend, checkSupported, netmapRegisterFields, parsePortName, type BackendProbe, type PortName } from './portname.ts';

/** Whether a spec names a packet source/filter port (--port, --pcap) or an output (--out). */
export type PortRole = 'in' | 'out';

interface SchemeRow {
  scheme: string; // text before the first ':'
  summary: string; // one-line usage, listed in errors
  roles: readonly PortRole[];
  /** Parses the text after "scheme:"; `spec` is the whole spec for messages. */
  parse?: (rest: string, spec: string, role: PortRole) => PlainPortSpec;
}

export const GEN_PROTOCOLS = ['tcp4', 'udp4', 'icmp4', 'tcp6', 'udp6', 'icmp6', 'arp'] as const;
/** Default generator mix, in GEN_PROTOCOLS order. */
export const GEN_DEFAULT_MIX: readonly number[] = [40, 30, 5, 10, 10, 3, 2];
export const FRAME_MIN = 64;
export const FRAME_MAX = 1518;
const MAX_WEIGHT = 1_000_000;
const MAX_COUNT = Number.MAX_SAFE_INTEGER;
const MAX_PPS = 1_000_000_000;
/** gen: rings; a ring's number is the top byte of its sequence numbers (native/ports/port_gen.cc). */
export const GEN_MAX_RINGS = 64;
const GEN_KEYS = ['count', 'size', 'flows', 'mix', 'seed', 'pps', 'seq', 'rings'];

const SCHEMES: readonly SchemeRow[] = [
  { scheme: 'pcap', summary: 'pcap:FILE', roles: ['in', 'out'], parse: parsePcap },
  { scheme: 'gen', summary: 'gen:[count=N,size=64|64-1518|imix,flows=N,mix=tcp4:40+udp4:30+...,seed=N,pps=N,seq,rings=N]', roles: ['in'], parse: parseGen },
  // Interface ports: parsed by host/ports/portname.ts (parseInterfacePort).
  { scheme: 'netmap', summary: 'netmap:IF[-N|^|^N|*][/RTxrtz][@opts]', roles: ['in', 'out'] },
  { scheme: 'xdp', summary: 'xdp:IF[-N]', roles: ['in', 'out'], parse: (_rest, spec, role) => parseInterfacePort(spec, role).spec },
  { scheme: 'packet', summary: 'packet:IF[-N]', roles: ['in', 'out'], parse: (_rest, spec, role) => parseInterfacePort(spec, role).spec },
  { scheme: 'vale', summary: 'valeX:PORT | NAME{PIPE | NAME}PIPE', roles: ['in', 'out'], parse: (_rest, spec, role) => parseInterfacePort(spec, role).spec },
];

/** The schemes that work now, for help texts and errors. */
export function availableSchemes(role: PortRole): string[] {
  return SCHEMES.filter((row) => row.parse && row.roles.includes(role)).map((row) => row.summary);
}

function optionName(role: PortRole): string {
  return role === 'in' ? '--port' : '--out';
}

function notYet(spec: string, what: string): UsageError {
  return new UsageError(`port ${quote(spec)}: ${what} ports are not available yet in this version (available: ${availableSchemes('in').join(', ')})`);
}

/** Parses one port spec into a PlainPortSpec; throws a one-line UsageError naming the spec. */
export function parsePortSpec(spec: string, role: PortRole): PlainPortSpec {
  if (spec.length === 0) throw new UsageError(`${optionName(role)}: expected a port spec (${availableSchemes(role).join(' or ')}), got an empty string`);
  // A scheme is a word followed by ':' at the very start; later colons belong to the rest
  // (netmap @opts, file names).
  const schemeMatch = /^([A-Za-z][A-Za-z0-9_]*):/.exec(spec);
  if (!schemeMatch) {
    // No scheme: the netmap grammar's bare interface / vale / pipe forms.
    if (/\.(pcap|pcapng|cap)$/i.test(spec)) throw new UsageError(`${optionName(role)} ${quote(spec)}: expected a port spec, got a file name (write pcap:${spec})`);
    if (/[{}]/.test(spec)) return parseInterfacePort(spec, role).spec;
    if (/^[A-Za-z0-9_.-]+([-^*].*|\/.*|@.*)?$/.test(spec) && !SCHEMES.some((row) => row.scheme === spec)) return parseInterfacePort(spec, role).spec;
    throw unknownScheme(spec, role);
  }
  const scheme = schemeMatch[1]!;
  const rest = spec.slice(scheme.length + 1);
  const row = SCHEMES.find((r) => r.scheme === scheme);
  if (!row) {
    if (/^vale[A-Za-z0-9_]*$/.test(scheme)) return parseInterfacePort(spec, role).spec;
    throw unknownScheme(spec, role);
  }
  if (!row.parse && scheme === 'netmap') return parseInterfacePort(spec, role).spec; // refused there with the reason
  if (!row.parse) throw notYet(spec, `${scheme}:`);
  if (!row.roles.includes(role)) {
    throw new UsageError(`${optionName(role)} ${quote(spec)}: ${scheme}: cannot be used as ${role === 'out' ? 'an output' : 'an input'} (expected ${availableSchemes(role).join(' or ')})`);
  }
  return row.parse(rest, spec, role);
}

function unknownScheme(spec: string, role: PortRole): UsageError {
  const known = SCHEMES.map((row) => `${row.scheme}:`).join(' ');
  const colon = spec.indexOf(':');
  const hint = colon > 0 ? suggestion(spec.slice(0, colon), SCHEMES.map((row) => row.scheme), (c) => quote(`${c}:${spec.slice(colon + 1)}`)) : '';
  return new UsageError(`${optionName(role)} ${quote(spec)}: unknown port scheme${hint} (expected one of ${known}; available now: ${availableSchemes(role).join(', ')})`);
}

function parsePcap(rest: string, spec: string, role: PortRole): PlainPortSpec {
  if (rest.length === 0) throw new UsageError(`${optionName(role)} ${quote(spec)}: expected pcap:FILE, got no file name`);
  if (rest.includes('\0')) throw new UsageError(`${optionName(role)} ${quote(spec)}: expected a file name, got a NUL byte`);
  return role === 'in' ? { kind: 'pcap', name: spec, path: rest } : { kind: 'pcap-out', name: spec, path: rest };
}

/** Parses a decimal integer in [min, max]; throws naming the spec and option. */
function parseInteger(text: string, min: number, max: number, spec: string, option: string): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`--port ${quote(spec)}: ${option}: expected an integer ${min}..${max}, got ${quote(text)}`);
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--port ${quote(spec)}: ${option}: expected an integer ${min}..${max}, got ${text}`);
  }
  return value;
}

function parseGen(rest: string, spec: string): PlainPortSpec {
  const gen = {
    kind: 'gen' as const,
    name: spec,
    count: 0,
    sizeMin: FRAME_MIN,
    sizeMax: FRAME_MIN,
    imix: false,
    flows: 16,
    mix: [...GEN_DEFAULT_MIX],
    seed: 1,
    pps: 0,
    seq: false,
    rings: 1,
  };
  if (rest.length === 0) return gen;
  const seen = new Set<string>();
  for (const item of rest.split(',')) {
    if (item === 'seq') {
      if (seen.has('seq')) throw new UsageError(`--port ${quote(spec)}: seq: expected once, got it twice`);
      seen.add('seq');
      gen.seq = true;
      continue;
    }
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`--port ${quote(spec)}: expected OPTION=VALUE (count, size, flows, mix, seed, pps, rings) or seq, got ${quote(item)}`);
    const key = item.slice(0, eq);
    const value = item.slice(eq + 1);
    if (seen.has(key)) throw new UsageError(`--port ${quote(spec)}: ${key}: expected once, got it twice`);
    seen.add(key);
    switch (key) {
      case 'count':
        gen.count = parseInteger(value, 0, MAX_COUNT, spec, 'count');
        break;
      case 'flows':
        gen.flows = parseInteger(value, 1, 65536, spec, 'flows');
        break;
      case 'seed':
        gen.seed = parseInteger(value, 0, 0xffff_ffff, spec, 'seed');
        break;
      case 'size':
        Object.assign(gen, parseSize(value, spec));
        break;
      case 'mix':
        gen.mix = parseMix(value, spec);
        break;
      case 'pps':
        gen.pps = parseInteger(value, 1, MAX_PPS, spec, 'pps');
        break;
      case 'rings':
        gen.rings = parseInteger(value, 1, GEN_MAX_RINGS, spec, 'rings');
        break;
      case 'seq':
        throw new UsageError(`--port ${quote(spec)}: seq: expected no value (write seq alone), got ${quote(item)}`);
      default:
        throw new UsageError(`--port ${quote(spec)}: unknown gen option ${quote(key)}${suggestion(key, GEN_KEYS)} (expected ${GEN_KEYS.join(', ')})`);
    }
  }
  return gen;
}

function parseSize(value: string, spec: string): { sizeMin: number; sizeMax: number; imix: boolean } {
  if (value === 'imix') return { sizeMin: FRAME_MIN, sizeMax: FRAME_MAX, imix: true };
  const dash = value.indexOf('-');
  if (dash < 0) {
    const size = parseInteger(value, FRAME_MIN, FRAME_MAX, spec, 'size');
    return { sizeMin: size, sizeMax: size, imix: false };
  }
  const sizeMin = parseInteger(value.slice(0, dash), FRAME_MIN, FRAME_MAX, spec, 'size');
  const sizeMax = parseInteger(value.slice(dash + 1), FRAME_MIN, FRAME_MAX, spec, 'size');
  if (sizeMin > sizeMax) throw new UsageError(`--port ${quote(spec)}: size: expected MIN-MAX with MIN <= MAX, got ${value}`);
  return { sizeMin, sizeMax, imix: false };
}

function parseMix(value: string, spec: string): number[] {
  const mix = GEN_PROTOCOLS.map(() => 0);
  const seen = new Set<string>();
  for (const part of value.split('+')) {
    const colon = part.indexOf(':');
    const proto = colon < 0 ? part : part.slice(0, colon);
    const index = (GEN_PROTOCOLS as readonly string[]).indexOf(proto);
    if (index < 0) throw new UsageError(`--port ${quote(spec)}: mix: expected a protocol among ${GEN_PROTOCOLS.join(' ')}, got ${quote(proto)}`);
    if (seen.has(proto)) throw new UsageError(`--port ${quote(spec)}: mix: protocol ${proto} given twice`);
    seen.add(proto);
    mix[index] = colon < 0 ? 1 : parseInteger(part.slice(colon + 1), 0, MAX_WEIGHT, spec, `mix ${proto}`);
  }
  if (mix.every((w) => w === 0)) throw new UsageError(`--port ${quote(spec)}: mix: expected at least one non-zero weight, got all zero`);
  return mix;
}

// ---- interface ports (AF_PACKET, AF_XDP) ------------------------------------------------

let probed: BackendProbe | undefined;

/** What this machine has: /dev/netmap exists; the addon was built with AF_XDP; AF_PACKET always. */
export function probeBackends(): BackendProbe {
  if (probed) return probed;
  let xdp = false;
  try {
    xdp = loadNative().backends().includes('xdp');
  } catch {
    xdp = false; // no addon: the run fails later with the build hint
  }
  probed = { netmap: existsSync('/dev/netmap'), xdp, packet: true };
  return probed;
}

/** An interface as /sys/class/net shows it. */
export interface InterfaceFacts {
  exists: boolean;
  up: boolean;
  rxQueues: number;
}

/** Reads /sys/class/net/IF: existence, IFF_UP, RX queue count (at least 1). */
export function interfaceFacts(ifname: string): InterfaceFacts {
  const dir = `/sys/class/net/${ifname}`;
  if (!existsSync(dir)) return { exists: false, up: false, rxQueues: 0 };
  let up = true;
  try {
    up = (Number.parseInt(readFileSync(`${dir}/flags`, 'utf8').trim(), 16) & 1) !== 0;
  } catch {
    // unreadable flags: let the native open decide
  }
  let rxQueues = 1;
  try {
    rxQueues = Math.max(1, readdirSync(`${dir}/queues`).filter((q) => q.startsWith('rx-')).length);
  } catch {
    // no queues directory: one queue
  }
  return { exists: true, up, rxQueues };
}

/** A parsed interface port: the plain spec and, for the start-up line, why its backend was chosen. */
export interface InterfacePort {
  spec: LivePortSpec | NetmapPortSpec | SoftPortSpec;
  reason: string;
}

/**
 * Parses an interface port name (bare, netmap:, xdp:, packet:) with host/ports/portname.ts, chooses its
 * backend (`probe`, default: this machine) and checks the interface (`facts`, default: /sys).
 * Throws a one-line UsageError: grammar, unsupported combination, unknown interface, interface
 * down, queue out of range, wrong direction.
 */
export function parseInterfacePort(text: string, role: PortRole, probe: BackendProbe = probeBackends(), facts: (ifname: string) => InterfaceFacts = interfaceFacts): InterfacePort {
  const name: PortName = parsePortName(text);
  const { backend, reason } = chooseBackend(name, probe);
  if (backend !== 'xdp' && backend !== 'packet' && backend !== 'netmap' && backend !== 'software') throw notYet(text, `${backend}:`);
  checkSupported(backend, name);
  const where = `${optionName(role)} ${quote(text)}`;
  if (role === 'in' && name.flags.txOnly) throw new UsageError(`${where}: /T selects the TX side only, but an input port needs its RX side (drop /T)`);
  if (role === 'out' && (name.flags.monitorRx || name.flags.monitorTx))
    throw new UsageError(`${where}: a monitor (/r, /t, /z) only sees another process's traffic and cannot send: name the port without the monitor flag`);
  if (role === 'out' && name.flags.rxOnly) throw new UsageError(`${where}: an output port needs its TX side, got /R (RX only)`);
  if (backend === 'software') return { spec: softPortSpec(where, text, name, role), reason: `${text}: ${reason}` };
  if (backend === 'netmap') {
    // The kernel checks VALE/pipe names and ring numbers at register time (one-line native error).
    if (!name.vale && name.pipe === null) checkInterface(where, name, facts);
    return { spec: { kind: 'netmap', name: text, ...netmapRegisterFields(name), rx: role === 'in', tx: role === 'out' }, reason: `${text}: ${reason}` };
  }
  const iface = checkInterface(where, name, facts);
  const queue = name.ring ?? -1;
  // One ring per queue for AF_XDP; AF_PACKET fans a whole interface out over one ring per core.
  const allRings = backend === 'xdp' ? iface.rxQueues : Math.min(availableParallelism(), 64);
  const conf = name.options.conf;
  const spec: LivePortSpec = {
    kind: backend,
    name: text,
    ifname: name.ifname,
    queue,
    rings: role === 'out' ? 0 : queue >= 0 ? 1 : allRings,
    rx: role === 'in',
    tx: role === 'out',
    rxSlots: conf?.rxSlots ?? 0,
    txSlots: conf?.txSlots ?? 0,
    xdpBind: name.options.xdpBind ?? '',
    xdpAttach: name.options.xdpAttach ?? '',
    xdpKernelClasses: !name.options.xdpAll, // @all, and the CLI for a bridge's inputs (--to), clear it
  };
  return { spec, reason: `${text}: ${reason}` };
}

export const SOFT_SLOTS_MIN = 64;
export const SOFT_SLOTS_MAX = 16384;
export const SOFT_RINGS_MAX = 64;

/** A software pipe end or VALE port (backend 'software'): the endpoint it reads (input) and
 * the one it writes (output: a pipe's other end, or its own VALE port into the switch). */
function softPortSpec(where: string, text: string, name: PortName, role: PortRole): SoftPortSpec {
  const conf = name.options.conf;
  const rings = conf ? Math.max(conf.rxRings, conf.txRings) : 0;
  const slots = conf ? Math.max(conf.rxSlots, conf.txSlots) : 0;
  if (rings > SOFT_RINGS_MAX) throw new UsageError(`${where}: @conf: expected at most ${SOFT_RINGS_MAX} rings for a software port, got ${rings}`);
  if (slots !== 0 && (slots < SOFT_SLOTS_MIN || slots > SOFT_SLOTS_MAX)) {
    throw new UsageError(`${where}: @conf: expected ${SOFT_SLOTS_MIN}..${SOFT_SLOTS_MAX} slots for a software port, got ${slots}`);
  }
  const base = { kind: 'soft' as const, name: text, ring: name.ring ?? -1, rings, slots, exclusive: name.flags.exclusive, memId: name.memId ?? 0, rx: role === 'in', tx: role === 'out' };
  if (name.pipe !== null) {
    // netmapName is "PARENT{ID" or "PARENT}ID": the parent (an interface or a VALE port) only names the pipe.
    const side = name.mode === 'pipe-master' ? '{' : '}';
    const parent = name.netmapName.slice(0, name.netmapName.length - name.pipe.length - 1);
    return { ...base, endpoint: `${parent}${side}${name.pipe}`, peer: `${parent}${side === '{' ? '}' : '{'}${name.pipe}`, switch: '' };
  }
  return { ...base, endpoint: name.netmapName, peer: '', switch: name.vale!.switch };
}

/** The interface of `name` exists, is up, and has the ring `name` selects; throws a one-line UsageError otherwise. */
function checkInterface(where: string, name: PortName, facts: (ifname: string) => InterfaceFacts): InterfaceFacts {
  const iface = facts(name.ifname);
  if (!iface.exists) throw new UsageError(`${where}: no interface named ${quote(name.ifname)} (list them with: ip link)`);
  if (!iface.up) throw new UsageError(`${where}: interface ${name.ifname} is down (bring it up: ip link set ${name.ifname} up)`);
  const queue = name.mode === 'one-hw' ? name.ring ?? -1 : -1; // host ring numbers are not NIC queues
  if (queue >= iface.rxQueues) throw new UsageError(`${where}: queue ${queue} is out of range: ${name.ifname} has ${iface.rxQueues} RX queue(s) (0..${iface.rxQueues - 1})`);
  return iface;
}
