// The netmap port-name grammar (docs/PORTS.md is its one description): parses
// "[scheme:]IFNAME[-N|^|^N|*][/FLAGS][@MEMID][@option...]", VALE ports "valeX:Y" and
// pipes "NAME{ID" / "NAME}ID" into one plain, fully normalised PortName; chooses the
// backend for a bare name; refuses what a backend cannot honour, naming one that can.
// Pure: no I/O. The facts come from netmap's sys/net/netmap.h (API 14), libnetmap.h
// and netmap(4); the parser is our own, held against libnetmap's (nmreq.c, nmport.c):
// it accepts what libnetmap accepts, except in a few places docs/PORTS.md marks (nmwasm).
import { UsageError, quote } from '../cli/errors.ts';

export type PortScheme = 'netmap' | 'xdp' | 'packet' | 'vale';
/** Which rings a name selects. 'one-*' and pipe/VALE modes use `ring` (null = all). */
export type PortMode = 'all-hw' | 'one-hw' | 'host' | 'one-host' | 'hw+host' | 'pipe-master' | 'pipe-slave' | 'vale';
export type Backend = 'netmap' | 'xdp' | 'packet' | 'software' | 'pcap' | 'gen';

export interface PortFlags {
  rxOnly: boolean; // /R  bind only the RX ring(s)       NR_RX_RINGS_ONLY
  txOnly: boolean; // /T  bind only the TX ring(s)       NR_TX_RINGS_ONLY
  exclusive: boolean; // /x  no other process may bind the rings   NR_EXCLUSIVE
  monitorRx: boolean; // /r  copy monitor of the RX side  NR_MONITOR_RX
  monitorTx: boolean; // /t  copy monitor of the TX side  NR_MONITOR_TX
  zcopyMonitor: boolean; // /z  zero-copy monitor of BOTH sides  NR_ZCOPY_MON (netmap sets RX and TX with it, so do we)
}

/** @conf: ring and slot counts for ports the open itself creates; 0 = the backend decides. */
export interface ConfOption {
  txRings: number;
  rxRings: number;
  hostTxRings: number;
  hostRxRings: number;
  txSlots: number;
  rxSlots: number;
}
/** @extmem: netmap uses memory mmap()ed from `file`; 0 = netmap's priv_* sysctl default. */
export interface ExtmemOption {
  file: string;
  ifNum: number;
  ifSize: number;
  ringNum: number;
  ringSize: number;
  bufNum: number;
  bufSize: number;
}
/** @offset: reserve the low `bits` of each slot's ptr as a buffer offset, initially `initial`. */
export interface OffsetOption {
  initial: number;
  bits: number; // 1..64, 64 = the whole ptr field
}
export interface PortNameOptions {
  conf: ConfOption | null;
  extmem: ExtmemOption | null;
  offset: OffsetOption | null;
  share: string | null; // @share=PORT: use the memory region of PORT
  xdpBind: 'zerocopy' | 'copy' | null; // @zerocopy / @copy (AF_XDP bind flags)
  xdpAttach: 'native' | 'skb' | null; // @native / @skb (XDP program attach mode)
  xdpAll: boolean; // @all: every frame of the queue to the filter, ARP and ICMP included (AF_XDP)
}

export interface PortName {
  spec: string; // as written
  scheme: PortScheme | undefined; // undefined: a bare name, the backend is chosen (chooseBackend)
  ifname: string; // the interface, the pipe's parent, or the VALE port
  vale: { switch: string; port: string } | null; // set for valeX:Y names
  pipe: string | null; // the pipe id of NAME{ID / NAME}ID
  mode: PortMode;
  ring: number | null; // the one ring (pair) selected by -N or ^N, null = all of them
  flags: PortFlags;
  memId: number | null; // @N: netmap memory region, null = netmap decides
  options: PortNameOptions;
  netmapName: string; // what netmap's nr_name gets: "eth0", "vale0:p1", "eth0{1"
}

/** A port name that breaks the grammar; `position` is the 0-based index of the offending character (spec.length = its end). */
export class PortNameError extends UsageError {
  constructor(readonly spec: string, readonly position: number, message: string) {
    super(message);
    this.name = 'PortNameError';
  }
}

/** A well-formed name that a backend cannot honour; the message names a backend that can. */
export class PortSupportError extends UsageError {
  constructor(readonly spec: string, readonly backend: Backend | undefined, message: string) {
    super(message);
    this.name = 'PortSupportError';
  }
}

// Limits (netmap.h / Linux).
export const IFNAME_MAX = 15; // Linux IFNAMSIZ 16 with its NUL
export const NETMAP_NAME_MAX = 63; // NETMAP_REQ_IFNAMSIZ 64 with its NUL
export const RING_MAX = 4094; // libnetmap: ring < NETMAP_RING_MASK (0xfff)
export const MEM_ID_MAX = 65535; // nr_mem_id is a uint16_t
const U16_MAX = 65535;
const U32_MAX = 4294967295;

const IFNAME_CHARS = /[A-Za-z0-9_.+]/; // '+' too: libnetmap and Linux take it as a name character
const IDENT_CHARS = /[A-Za-z0-9_]/;
const FLAG_LETTERS = 'RTxrtz';
const SCHEMES: readonly PortScheme[] = ['netmap', 'xdp', 'packet'];
const OPTION_NAMES = ['conf', 'extmem', 'offset', 'share', 'zerocopy', 'copy', 'native', 'skb', 'all'] as const;
type OptionName = (typeof OPTION_NAMES)[number];

/** Small cursor over the spec that builds positioned errors. */
class Scanner {
  pos = 0;
  constructor(readonly spec: string) {}
  get done(): boolean {
    return this.pos >= this.spec.length;
  }
  peek(offset = 0): string {
    return this.spec[this.pos + offset] ?? '';
  }
  /** What is at `at`, for "got ...": a quoted character or "end of name". */
  seen(at = this.pos): string {
    const ch = this.spec[at];
    return ch === undefined ? 'end of name' : quote(ch);
  }
  fail(expected: string, at = this.pos, got = this.seen(at), hint = ''): PortNameError {
    const where = at >= this.spec.length ? `position ${at} (end)` : `position ${at}`;
    return new PortNameError(this.spec, at, `port ${quote(this.spec)}: ${where}: expected ${expected}, got ${got}${hint ? ` (${hint})` : ''}`);
  }
  /** Reads a run of characters matching `re`. */
  run(re: RegExp): string {
    const start = this.pos;
    while (!this.done && re.test(this.peek())) this.pos++;
    return this.spec.slice(start, this.pos);
  }
  /** Reads a decimal number in [min, max]; `what` names it in errors. */
  number(what: string, min: number, max: number): number {
    const start = this.pos;
    const digits = this.run(/[0-9]/);
    if (digits.length === 0) throw this.fail(`${what} (${min}..${max})`);
    const value = Number(digits);
    if (!Number.isSafeInteger(value) || value < min || value > max) throw this.fail(`${what} in ${min}..${max}`, start, digits);
    return value;
  }
}

/** Parses one port name (any scheme but pcap:/gen:) into a normalised PortName; throws PortNameError. */
export function parsePortName(spec: string): PortName {
  const s = new Scanner(spec);
  if (spec.length === 0) throw s.fail('an interface name (e.g. eth0, eth0-2/R, vale0:p1, eth0{1)', 0, 'an empty string');
  const scheme = readScheme(s);
  let ifname: string;
  let vale: PortName['vale'] = null;
  if (scheme === 'vale') {
    const sw = s.run(IDENT_CHARS); // "vale" + id (readScheme checked it)
    s.pos++; // the ':' (readScheme checked it)
    if (sw.length > IFNAME_MAX) throw s.fail(`a VALE switch name of at most ${IFNAME_MAX} characters`, 0, `${sw.length} characters in ${quote(sw)}`);
    const portStart = s.pos;
    const port = s.run(IDENT_CHARS);
    if (port.length === 0) throw s.fail(`a VALE port name (letters, digits, '_') after ${quote(`${sw}:`)}`);
    if (port.length > IFNAME_MAX) throw s.fail(`a VALE port name of at most ${IFNAME_MAX} characters`, portStart + IFNAME_MAX, `${port.length} characters in ${quote(port)}`);
    vale = { switch: sw, port };
    ifname = port;
  } else {
    ifname = readIfname(s, scheme);
  }
  let pipe: string | null = null;
  let pipeSide: 'pipe-master' | 'pipe-slave' | null = null;
  if (s.peek() === '{' || s.peek() === '}') {
    pipeSide = s.peek() === '{' ? 'pipe-master' : 'pipe-slave';
    s.pos++;
    pipe = s.run(IDENT_CHARS);
    if (pipe.length === 0) throw s.fail(`a pipe id (letters, digits, '_') after ${quote(pipeSide === 'pipe-master' ? '{' : '}')}`);
  }
  const netmapName = spec.slice(scheme === 'vale' || scheme === undefined ? 0 : scheme.length + 1, s.pos);
  if (netmapName.length > NETMAP_NAME_MAX) throw s.fail(`a netmap port name of at most ${NETMAP_NAME_MAX} characters`, s.pos, `${netmapName.length} characters in ${quote(netmapName)}`);

  let mode: PortMode = pipeSide ?? (vale ? 'vale' : 'all-hw');
  let ring: number | null = null;
  const selectorAt = s.pos;
  const soft = pipeSide ? 'a pipe' : vale ? 'a VALE port' : '';
  switch (s.peek()) {
    case '-':
      s.pos++;
      if (/[A-Za-z_.]/.test(s.peek())) throw s.fail("a ring number after '-'", s.pos, s.seen(), "interface names cannot contain '-': it selects a ring");
      ring = s.number("a ring number after '-'", 0, RING_MAX);
      if (!soft) mode = 'one-hw';
      break;
    case '^':
    case '*':
      if (soft) throw s.fail(`'-N', '/', '@' or the end of the name`, selectorAt, s.seen(), `${soft} has no host rings`);
      if (s.peek() === '*') {
        s.pos++;
        mode = 'hw+host';
      } else {
        s.pos++;
        mode = 'host';
        if (/[0-9]/.test(s.peek())) {
          ring = s.number("a host ring number after '^'", 0, RING_MAX);
          mode = 'one-host';
        }
      }
      break;
    default:
      break;
  }
  if (!s.done && s.peek() !== '/' && s.peek() !== '@') {
    const selectors = soft ? `'-N'` : `'-N', '^', '^N', '*'`;
    const what = s.pos === selectorAt ? `${selectors}, '/', '@' or the end of the name` : `'/', '@' or the end of the name after the ring selector`;
    throw s.fail(what);
  }
  const flags = readFlags(s);
  let memId: number | null = null;
  if (s.peek() === '@' && /[0-9]/.test(s.peek(1))) {
    s.pos++;
    memId = s.number('a memory region id', 1, MEM_ID_MAX);
    if (!s.done && s.peek() !== '@') throw s.fail(`'@' or the end of the name after the memory region id`, s.pos, s.seen(), s.peek() === '/' ? "flags go before '@': write NAME/FLAGS@N" : '');
  }
  const options = readOptions(s);
  return { spec, scheme, ifname, vale, pipe, mode, ring, flags, memId, options, netmapName };
}

/** Consumes "netmap:", "xdp:", "packet:" or recognises "valeX:" (left for the caller); undefined for a bare name. */
function readScheme(s: Scanner): PortScheme | undefined {
  const spec = s.spec;
  const m = /^([A-Za-z][A-Za-z0-9_+.-]*):/.exec(spec);
  if (!m) return undefined;
  const word = m[1]!;
  if (/^vale[A-Za-z0-9_]*$/.test(word)) return 'vale';
  const scheme = SCHEMES.find((x) => x === word);
  if (scheme) {
    s.pos = word.length + 1;
    return scheme;
  }
  if (word === 'pcap' || word === 'gen') throw s.fail('an interface port', 0, quote(`${word}:`), `${word}: ports are file/generator ports, parsed by the --port spec reader, not interface names`);
  if (word.startsWith('vale')) {
    const bad = word.search(/[^A-Za-z0-9_]/);
    throw s.fail("a VALE switch name ('vale' then letters, digits, '_')", bad, s.seen(bad));
  }
  throw s.fail("a scheme ('netmap:', 'xdp:', 'packet:'), a VALE port ('valeX:Y') or a bare interface name", 0, quote(`${word}:`));
}

/** Reads an interface name: [A-Za-z0-9_.]{1,15}, not "." or "..". */
function readIfname(s: Scanner, scheme: PortScheme | undefined): string {
  const start = s.pos;
  const name = s.run(IFNAME_CHARS);
  const next = s.peek();
  if (name.length === 0) {
    const hint = next === ':' ? "':' is not allowed in an interface name" : '';
    throw s.fail("an interface name (letters, digits, '_', '.', '+')", s.pos, s.seen(), hint);
  }
  if (next === ':') {
    const hint = /^vale/.test(name) && scheme ? `VALE ports take no scheme: write ${spaceless(name)}:...` : "':' is not allowed in an interface name";
    throw s.fail("an interface name character, a ring selector, '/', '@' or the end of the name", s.pos, s.seen(), hint);
  }
  if (next !== '' && !'-^*/@{}'.includes(next)) {
    throw s.fail("an interface name character (letters, digits, '_', '.', '+'), a ring selector, '/', '@' or the end of the name", s.pos, s.seen());
  }
  if (name === '.' || name === '..') throw s.fail('an interface name other than "." or ".."', start, quote(name));
  if (name.length > IFNAME_MAX) throw s.fail(`an interface name of at most ${IFNAME_MAX} characters (Linux IFNAMSIZ)`, start + IFNAME_MAX, `${name.length} characters in ${quote(name)}`);
  return name;
}

function spaceless(text: string): string {
  return text.replace(/\s+/g, '');
}

/** Reads "/FLAGS" if present. */
function readFlags(s: Scanner): PortFlags {
  const flags: PortFlags = { rxOnly: false, txOnly: false, exclusive: false, monitorRx: false, monitorTx: false, zcopyMonitor: false };
  if (s.peek() !== '/') return flags;
  const slash = s.pos;
  s.pos++;
  if (s.done || s.peek() === '@') throw s.fail(`a flag (${[...FLAG_LETTERS].join(' ')}) after '/'`);
  const seen = new Set<string>();
  while (!s.done && s.peek() !== '@') {
    const ch = s.peek();
    if (!FLAG_LETTERS.includes(ch)) throw s.fail(`a flag (R T x r t z), '@' or the end of the name`);
    if (seen.has(ch)) throw s.fail('each flag at most once', s.pos, `${quote(ch)} again`);
    seen.add(ch);
    s.pos++;
  }
  flags.rxOnly = seen.has('R');
  flags.txOnly = seen.has('T');
  flags.exclusive = seen.has('x');
  flags.zcopyMonitor = seen.has('z');
  // netmap (netmap_monitor.c) turns NR_ZCOPY_MON into a zero-copy monitor of both sides,
  // whatever r/t say: /z, /rz, /tz and /rtz are one port.
  flags.monitorRx = seen.has('r') || flags.zcopyMonitor;
  flags.monitorTx = seen.has('t') || flags.zcopyMonitor;
  if (flags.rxOnly && flags.txOnly) throw s.fail('R (RX rings only) or T (TX rings only), not both', slash + 1, quote(s.spec.slice(slash, s.pos)), 'together they select no ring');
  return flags;
}

const CONF_KEYS = ['rings', 'tx-rings', 'rx-rings', 'host-rings', 'host-tx-rings', 'host-rx-rings', 'slots', 'tx-slots', 'rx-slots'] as const;
const EXTMEM_KEYS = ['file', 'if-num', 'if-size', 'ring-num', 'ring-size', 'buf-num', 'buf-size'] as const;
const OFFSET_KEYS = ['initial', 'bits'] as const;
const SHARE_KEYS = ['port'] as const;

/** Reads "@name[=value|:key=value,...]" options up to the end of the spec. */
function readOptions(s: Scanner): PortNameOptions {
  const options: PortNameOptions = { conf: null, extmem: null, offset: null, share: null, xdpBind: null, xdpAttach: null, xdpAll: false };
  const given = new Set<OptionName>();
  while (!s.done) {
    if (s.peek() !== '@') throw s.fail("'@' or the end of the name");
    s.pos++;
    const nameAt = s.pos;
    const word = s.run(/[A-Za-z0-9_-]/);
    if (word.length === 0) throw s.fail(`an option name (${OPTION_NAMES.join(', ')}) after '@'`);
    const name = OPTION_NAMES.find((n) => n === word);
    if (!name) throw s.fail(`an option name (${OPTION_NAMES.join(', ')})`, nameAt, quote(word), /^[0-9]+$/.test(word) ? 'the memory region id @N may be given once, before the options' : '');
    if (given.has(name)) throw s.fail(`each option at most once`, nameAt, `${quote(`@${name}`)} again`);
    given.add(name);
    const delim = s.peek();
    if (delim !== '' && delim !== '@' && delim !== '=' && delim !== ':') throw s.fail(`'=', ':', '@' or the end of the name after option ${quote(name)}`);
    switch (name) {
      case 'zerocopy':
      case 'copy':
        noBody(s, name);
        if (options.xdpBind) throw s.fail("one of '@zerocopy' and '@copy'", nameAt, quote(`@${name}`), `@${options.xdpBind} was given already`);
        options.xdpBind = name;
        break;
      case 'all':
        noBody(s, name);
        options.xdpAll = true;
        break;
      case 'native':
      case 'skb':
        noBody(s, name);
        if (options.xdpAttach) throw s.fail("one of '@native' and '@skb'", nameAt, quote(`@${name}`), `@${options.xdpAttach} was given already`);
        options.xdpAttach = name;
        break;
      case 'share': {
        const keys = readKeys(s, 'share', SHARE_KEYS, 'port', 'port');
        options.share = keys.get('port')!.value;
        break;
      }
      case 'conf': {
        const keys = readKeys(s, 'conf', CONF_KEYS, null, null);
        const num = (key: (typeof CONF_KEYS)[number], max: number): number => keyNumber(s, 'conf', keys, key, 1, max);
        const rings = num('rings', U16_MAX);
        const hostRings = num('host-rings', U16_MAX);
        const slots = num('slots', U32_MAX);
        options.conf = {
          txRings: num('tx-rings', U16_MAX) || rings,
          rxRings: num('rx-rings', U16_MAX) || rings,
          hostTxRings: num('host-tx-rings', U16_MAX) || hostRings,
          hostRxRings: num('host-rx-rings', U16_MAX) || hostRings,
          txSlots: num('tx-slots', U32_MAX) || slots,
          rxSlots: num('rx-slots', U32_MAX) || slots,
        };
        break;
      }
      case 'extmem': {
        const keys = readKeys(s, 'extmem', EXTMEM_KEYS, 'file', 'file');
        const num = (key: (typeof EXTMEM_KEYS)[number]): number => keyNumber(s, 'extmem', keys, key, 1, U32_MAX);
        options.extmem = {
          file: keys.get('file')!.value,
          ifNum: num('if-num'),
          ifSize: num('if-size'),
          ringNum: num('ring-num'),
          ringSize: num('ring-size'),
          bufNum: num('buf-num'),
          bufSize: num('buf-size'),
        };
        break;
      }
      case 'offset': {
        const keys = readKeys(s, 'offset', OFFSET_KEYS, 'initial', 'initial');
        options.offset = {
          initial: keyNumber(s, 'offset', keys, 'initial', 0, Number.MAX_SAFE_INTEGER),
          bits: keys.has('bits') ? keyNumber(s, 'offset', keys, 'bits', 1, 64) : 64,
        };
        break;
      }
    }
  }
  return options;
}

function noBody(s: Scanner, name: string): void {
  if (s.peek() === '=' || s.peek() === ':') throw s.fail(`'@' or the end of the name (option ${quote(name)} takes no value)`);
}

interface KeyValue {
  value: string;
  at: number; // position of the value
}

/** Reads "=VALUE" (assigned to `defaultKey`; libnetmap's NMREQ_OPTK_DEFAULT, null = none, as
 * for @conf) or ":key=value,key=value" of a multi-key option. */
function readKeys<K extends string>(s: Scanner, option: string, known: readonly K[], defaultKey: K | null, mandatory: K | null): Map<K, KeyValue> {
  const keys = new Map<K, KeyValue>();
  const delim = s.peek();
  if (delim === '=' && defaultKey === null) {
    const example = option === 'conf' && /^[0-9]/.test(s.peek(1)) ? `@conf:rings=${s.spec.slice(s.pos + 1).match(/^[0-9]+/)![0]}` : `@${option}:${known[0]}=N`;
    throw s.fail(`':KEY=VALUE,...' after '@${option}'`, s.pos, s.seen(), `@${option} has no default key, as in libnetmap: write ${example}`);
  }
  if (delim === '=' && defaultKey !== null) {
    s.pos++;
    const at = s.pos;
    const value = s.run(/[^@]/);
    if (value.length === 0) throw s.fail(`a value after '@${option}='`);
    keys.set(defaultKey, { value, at });
  } else if (delim === ':') {
    s.pos++;
    for (;;) {
      const keyAt = s.pos;
      const raw = s.run(/[A-Za-z0-9_-]/);
      const key = known.find((k) => k === raw.replace(/_/g, '-'));
      if (!key) throw s.fail(`a key of @${option} (${known.join(', ')})`, keyAt, raw.length ? quote(raw) : s.seen(keyAt));
      if (keys.has(key)) throw s.fail(`each key of @${option} at most once`, keyAt, `${quote(key)} again`);
      if (s.peek() !== '=') throw s.fail(`'=' and a value after key ${quote(key)} of @${option}`);
      s.pos++;
      const at = s.pos;
      const value = s.run(/[^@,]/);
      if (value.length === 0) throw s.fail(`a value for key ${quote(key)} of @${option}`);
      keys.set(key, { value, at });
      if (s.peek() !== ',') break;
      s.pos++;
    }
  } else {
    throw s.fail(defaultKey === null ? `':KEY=VALUE,...' after '@${option}'` : `'=VALUE' or ':KEY=VALUE,...' after '@${option}'`);
  }
  if (mandatory && !keys.has(mandatory)) throw s.fail(`key ${quote(mandatory)} in @${option}`, s.pos, s.seen(), 'it is mandatory');
  return keys;
}

/** The decimal value of `key` in [min, max], or 0 when the key is absent. */
function keyNumber<K extends string>(s: Scanner, option: string, keys: Map<K, KeyValue>, key: K, min: number, max: number): number {
  const kv = keys.get(key);
  if (!kv) return 0;
  const value = Number(kv.value);
  if (!/^[0-9]+$/.test(kv.value) || !Number.isSafeInteger(value) || value < min || value > max) {
    throw s.fail(`an integer ${min}..${max} for key ${quote(key)} of @${option}`, kv.at, quote(kv.value));
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// What each backend can honour.

/** One line per feature a name can use; `can` lists the backends that honour it. */
interface Feature {
  what: string; // how the message names it
  can: readonly Backend[];
  used: (n: PortName) => boolean;
}

const LABEL: Record<Backend, string> = {
  netmap: 'netmap',
  xdp: 'AF_XDP',
  packet: 'AF_PACKET',
  software: "nmwasm's software pipes/VALE",
  pcap: 'pcap:',
  gen: 'gen:',
};

const isNic = (n: PortName): boolean => n.vale === null && n.pipe === null;
const FEATURES: readonly Feature[] = [
  { what: 'host rings (^, ^N, *)', can: ['netmap'], used: (n) => n.mode === 'host' || n.mode === 'one-host' || n.mode === 'hw+host' },
  { what: 'netmap pipes ({ and })', can: ['netmap', 'software'], used: (n) => n.pipe !== null },
  { what: 'VALE ports (valeX:Y)', can: ['netmap', 'software'], used: (n) => n.vale !== null },
  { what: 'interface rings', can: ['netmap', 'xdp', 'packet'], used: isNic },
  { what: 'TX rings (/T)', can: ['netmap', 'xdp', 'packet', 'software'], used: (n) => n.flags.txOnly },
  { what: 'exclusive binding (/x)', can: ['netmap', 'xdp', 'software'], used: (n) => n.flags.exclusive },
  { what: 'zero-copy monitors (/z)', can: ['netmap'], used: (n) => n.flags.zcopyMonitor },
  { what: 'monitors (/r, /t)', can: ['netmap', 'packet'], used: (n) => n.flags.monitorRx || n.flags.monitorTx },
  { what: 'memory region ids (@N)', can: ['netmap', 'software'], used: (n) => n.memId !== null },
  { what: '@conf ring counts', can: ['netmap', 'software'], used: (n) => !!n.options.conf && (n.options.conf.txRings + n.options.conf.rxRings + n.options.conf.hostTxRings + n.options.conf.hostRxRings) > 0 },
  { what: '@conf slot counts', can: ['netmap', 'xdp', 'packet', 'software'], used: (n) => !!n.options.conf && n.options.conf.txSlots + n.options.conf.rxSlots > 0 },
  { what: '@extmem', can: ['netmap'], used: (n) => n.options.extmem !== null },
  { what: '@offset', can: ['netmap'], used: (n) => n.options.offset !== null },
  { what: '@share', can: ['netmap'], used: (n) => n.options.share !== null },
  { what: '@zerocopy/@copy', can: ['xdp'], used: (n) => n.options.xdpBind !== null },
  { what: '@native/@skb', can: ['xdp'], used: (n) => n.options.xdpAttach !== null },
  { what: '@all', can: ['xdp'], used: (n) => n.options.xdpAll },
];

/** How to write `name` for `backend` (the hint in refusals). */
function spelledFor(backend: Backend, name: PortName): string {
  const rest = name.scheme && name.scheme !== 'vale' ? name.spec.slice(name.scheme.length + 1) : name.spec;
  if (backend === 'netmap' || backend === 'xdp' || backend === 'packet') return name.vale ? rest : `${backend}:${rest}`;
  return rest; // software: a bare pipe or VALE name
}

/** "X can (spelling)" for every backend other than `except` that honours the whole name. */
function canList(name: PortName, except: Backend): string {
  const able = (['netmap', 'xdp', 'packet', 'software'] as const).filter((b) => b !== except && !firstUnsupported(b, name));
  if (able.length === 0) return 'no backend honours this combination';
  return able.map((b) => `${LABEL[b]} can (${spelledFor(b, name)})`).join('; ');
}

/** The first feature of `name` that `backend` cannot honour, or undefined. */
function firstUnsupported(backend: Backend, name: PortName): Feature | undefined {
  return FEATURES.find((f) => f.used(name) && !f.can.includes(backend));
}

/** Throws a PortSupportError when `backend` cannot honour every part of `name`; the message names a backend that can. */
export function checkSupported(backend: Backend, name: PortName): void {
  const feature = firstUnsupported(backend, name);
  if (feature) {
    throw new PortSupportError(name.spec, backend, `port ${quote(name.spec)}: ${LABEL[backend]} cannot honour ${feature.what}; ${canList(name, backend)}`);
  }
  const conf = name.options.conf;
  if (backend === 'xdp' && conf) {
    for (const slots of [conf.txSlots, conf.rxSlots]) {
      if (slots !== 0 && (slots & (slots - 1)) !== 0) {
        throw new PortSupportError(name.spec, backend, `port ${quote(name.spec)}: AF_XDP needs ring sizes that are powers of two, got ${slots} slots; netmap can (${spelledFor('netmap', name)})`);
      }
    }
  }
}

/** Which backends this machine has: /dev/netmap exists, AF_XDP sockets open, AF_PACKET sockets open. */
export interface BackendProbe {
  netmap: boolean;
  xdp: boolean;
  packet: boolean;
}

const ABSENT: Record<'netmap' | 'xdp' | 'packet', string> = {
  netmap: '/dev/netmap is absent (the netmap kernel module is not loaded)',
  xdp: 'AF_XDP sockets are not available',
  packet: 'AF_PACKET sockets are not available',
};

/**
 * Picks the backend for `name`: the scheme's when one is written (refused if the machine
 * lacks it), otherwise the best available one that honours every part of the name —
 * netmap if /dev/netmap exists, else AF_XDP, else AF_PACKET (pipes and VALE ports: netmap,
 * else the software ones). `reason` says why, for the start-up line. Throws PortSupportError.
 */
export function chooseBackend(name: PortName, probe: BackendProbe): { backend: Backend; reason: string } {
  const fail = (message: string): PortSupportError => new PortSupportError(name.spec, undefined, `port ${quote(name.spec)}: ${message}`);
  if (name.scheme === 'netmap' || name.scheme === 'xdp' || name.scheme === 'packet') {
    const backend = name.scheme;
    if (!probe[backend]) {
      const others = (['netmap', 'xdp', 'packet'] as const).filter((b) => b !== backend && probe[b] && !firstUnsupported(b, name));
      const alt = others.length ? `; ${others.map((b) => `${LABEL[b]} is available (${spelledFor(b, name)})`).join('; ')}` : '';
      throw fail(`${name.scheme}: was asked for, but ${ABSENT[backend]}${alt}`);
    }
    checkSupported(backend, name);
    return { backend, reason: `${LABEL[backend]}: the name says ${name.scheme}:` };
  }
  const candidates: Backend[] = isNic(name) ? ['netmap', 'xdp', 'packet'] : ['netmap', 'software'];
  const skipped: string[] = [];
  for (const backend of candidates) {
    const available = backend === 'software' || probe[backend as 'netmap' | 'xdp' | 'packet'];
    if (!available) {
      skipped.push(backend === 'netmap' ? '/dev/netmap is absent' : `${LABEL[backend]} is unavailable`);
      continue;
    }
    const feature = firstUnsupported(backend, name);
    if (feature) {
      skipped.push(`${LABEL[backend]} cannot honour ${feature.what}`);
      continue;
    }
    if (backend === 'xdp' && name.options.conf) {
      try {
        checkSupported(backend, name);
      } catch {
        skipped.push('AF_XDP needs power-of-two ring sizes');
        continue;
      }
    }
    const why = backend === 'netmap' ? '/dev/netmap exists' : skipped.join(' and ');
    return { backend, reason: `${LABEL[backend]}: ${why}` };
  }
  // Nothing available honours it: name the backend that would, and why it is not here.
  const unsupported = candidates.map((b) => firstUnsupported(b, name)).find((f) => f !== undefined);
  if (unsupported) {
    const able = unsupported.can.filter((b) => candidates.includes(b) && b !== 'software');
    const why = able.map((b) => (b === 'netmap' || b === 'xdp' || b === 'packet' ? `${LABEL[b]} can, but ${ABSENT[b]}` : `${LABEL[b]} can`)).join('; ');
    throw fail(`no available backend can honour ${unsupported.what}: ${why || 'no backend can'}`);
  }
  throw fail(`no backend is available: ${skipped.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// netmap's register request, as plain numbers (native/netmap/netmap_abi.h fills the structs).

/** NR_REG_* modes of sys/net/netmap.h (API 14). */
export const NR_REG = { ALL_NIC: 1, SW: 2, NIC_SW: 3, ONE_NIC: 4, ONE_SW: 8 } as const;
/** nr_flags bits of struct nmreq_register (sys/net/netmap.h, API 14). */
export const NR_FLAG = { MONITOR_TX: 0x100, MONITOR_RX: 0x200, ZCOPY_MON: 0x400, EXCLUSIVE: 0x800, RX_RINGS_ONLY: 0x2000, TX_RINGS_ONLY: 0x4000 } as const;

export interface NetmapRegisterFields {
  nrName: string; // nmreq_header.nr_name
  nrMode: number; // nmreq_register.nr_mode (NR_REG_*)
  nrRingid: number; // nmreq_register.nr_ringid
  nrFlags: number; // nmreq_register.nr_flags (NR_*)
  nrMemId: number; // nmreq_register.nr_mem_id, 0 = netmap decides
  txSlots: number; // nr_tx_slots etc.: 0 = netmap decides
  rxSlots: number;
  txRings: number;
  rxRings: number;
  hostTxRings: number;
  hostRxRings: number;
}

/** Maps a parsed name to the fields of netmap's NETMAP_REQ_REGISTER request. */
export function netmapRegisterFields(name: PortName): NetmapRegisterFields {
  let nrMode: number = NR_REG.ALL_NIC;
  if (name.mode === 'one-hw' || (name.ring !== null && (name.mode === 'vale' || name.mode === 'pipe-master' || name.mode === 'pipe-slave'))) nrMode = NR_REG.ONE_NIC;
  else if (name.mode === 'host') nrMode = NR_REG.SW;
  else if (name.mode === 'one-host') nrMode = NR_REG.ONE_SW;
  else if (name.mode === 'hw+host') nrMode = NR_REG.NIC_SW;
  const f = name.flags;
  const nrFlags =
    (f.rxOnly ? NR_FLAG.RX_RINGS_ONLY : 0) |
    (f.txOnly ? NR_FLAG.TX_RINGS_ONLY : 0) |
    (f.exclusive ? NR_FLAG.EXCLUSIVE : 0) |
    (f.monitorRx ? NR_FLAG.MONITOR_RX : 0) |
    (f.monitorTx ? NR_FLAG.MONITOR_TX : 0) |
    (f.zcopyMonitor ? NR_FLAG.ZCOPY_MON : 0);
  const c = name.options.conf;
  return {
    nrName: name.netmapName,
    nrMode,
    nrRingid: name.ring ?? 0,
    nrFlags,
    nrMemId: name.memId ?? 0,
    txSlots: c?.txSlots ?? 0,
    rxSlots: c?.rxSlots ?? 0,
    txRings: c?.txRings ?? 0,
    rxRings: c?.rxRings ?? 0,
    hostTxRings: c?.hostTxRings ?? 0,
    hostRxRings: c?.hostRxRings ?? 0,
  };
}
