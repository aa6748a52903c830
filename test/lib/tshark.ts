// Reference dissection with Wireshark's tools: which captures are Ethernet (capinfos), and
// per packet the headers the firewall matches on (tshark -T fields), derived from the
// outermost IPv4/IPv6 layer the way filters/packages/firewall/README.md defines it.
//
// How a tshark record becomes PacketHeaders (fromFields):
// - frame.protocols gives the layer stack. The network header is the first `ip`/`ipv6`
//   layer, and only when every layer before it is one the README enters (Ethernet, VLAN and
//   802.1ad tags, MPLS, PPPoE session + PPP, LLC/SNAP). IP that tshark finds behind anything
//   else (MACsec, Arista AVSP, NSH, ISL, pseudowires...) is not the firewall's network header.
// - Fields are printed with every occurrence (-E occurrence=a), because the first occurrence of
//   a field may come from an inner layer when the outer one lacks it. The outermost layer is
//   first in tree order, so its value is occurrence 0 once the layer is known to carry the
//   field: an `ip` layer whose version is not 4 (tshark then hands the bytes to IPv6 or stops),
//   or which lacks src/dst/proto (bad header length, bad total length, truncated), is treated
//   as no network header at all.
// - IPv6 extension headers are walked in frame.protocols order; the k-th layer of one kind
//   takes occurrence k of that kind's next-header field.
// - Ports come from a `tcp`/`udp` layer directly after the network header (and its extension
//   headers), only with both port fields present and not a non-first fragment.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { parseIPv4, parseIPv6, type Family, type PacketHeaders } from './rules-reference.ts';

/** Reassembly off: every frame is judged on its own bytes, as the firewall sees it. */
export const TSHARK_PREFS = ['ip.defragment:FALSE', 'ipv6.defragment:FALSE', 'tcp.desegment_tcp_streams:FALSE', 'tcp.reassemble_out_of_order:FALSE'];

export const FIELDS = [
  'frame.number', 'frame.protocols', 'frame.cap_len',
  'ip.version', 'ip.src', 'ip.dst', 'ip.proto', 'ip.frag_offset',
  'ipv6.version', 'ipv6.src', 'ipv6.dst', 'ipv6.nxt',
  'ipv6.hopopts.nxt', 'ipv6.routing.nxt', 'ipv6.fraghdr.nxt', 'ipv6.fraghdr.offset', 'ipv6.dstopts.nxt', 'ah.next_header', 'mip6.proto',
  'tcp.srcport', 'tcp.dstport', 'udp.srcport', 'udp.dstport',
  '_ws.malformed', '_ws.expert.severity',
] as const;
export type FieldName = (typeof FIELDS)[number];
/** Every occurrence of each field, in tree order (outermost first). */
export type FieldValues = Record<FieldName, string[]>;

/** Layers the README's parser walks through before the network header. */
// 'sll': a Linux cooked capture, which nmwasm reads as Ethernet (docs/PORTS.md).
export const ENTERED_LAYERS = new Set(['eth', 'sll', 'ethertype', 'vlan', 'ieee8021ad', 'mpls', 'pppoes', 'ppp', 'llc']);
/** IPv6 extension-header layers the README skips, with the field holding their next header. */
const IPV6_EXTENSIONS: Record<string, FieldName> = {
  'ipv6.hopopts': 'ipv6.hopopts.nxt',
  'ipv6.routing': 'ipv6.routing.nxt',
  'ipv6.fraghdr': 'ipv6.fraghdr.nxt',
  'ipv6.dstopts': 'ipv6.dstopts.nxt',
  ah: 'ah.next_header',
  mipv6: 'mip6.proto',
};
const EXTENSION_NUMBERS = new Set([0, 43, 44, 51, 60, 135]);
/** tshark's expert severity value for "Error" (PI_ERROR). */
const EXPERT_ERROR = 0x00800000;
const AGGREGATOR = ';';

export interface TsharkPacket extends PacketHeaders {
  frame: number;
  protocols: string;
  /** tshark printed a [Malformed Packet] item */
  malformed: boolean;
  /** tshark raised an expert item of severity Error (bogus header length, version, ...) */
  expertError: boolean;
  /** why the network header or the ports are absent, when they are */
  note: string;
  fields: FieldValues;
}

/** tshark marks the packet malformed: a [Malformed Packet] item or an Error expert item. */
export const markedMalformed = (p: TsharkPacket): boolean => p.malformed || p.expertError;

const num = (v: string | undefined): number => (v === undefined || v === '' ? -1 : Number(v));

/** Derives what the firewall matches on from one tshark record (see the file comment). */
export function fromFields(f: FieldValues): TsharkPacket {
  const layers = f['frame.protocols'][0]?.split(':') ?? [];
  const base: TsharkPacket = {
    frame: num(f['frame.number'][0]),
    protocols: layers.join(':'),
    malformed: f['_ws.malformed'].length > 0,
    expertError: f['_ws.expert.severity'].some((s) => Number(s) === EXPERT_ERROR),
    family: 0, src: new Uint8Array(0), dst: new Uint8Array(0), proto: -1, sport: -1, dport: -1,
    note: '',
    fields: f,
  };
  const at = layers.findIndex((l) => l === 'ip' || l === 'ipv6');
  if (at < 0) return { ...base, note: 'no IP layer' };
  const before = layers.slice(0, at).find((l) => !ENTERED_LAYERS.has(l));
  if (before !== undefined) return { ...base, note: `IP behind ${before}: not entered` };

  let family: Family, src: Uint8Array | null, dst: Uint8Array | null, proto: number;
  let next = at + 1;
  let nonFirstFragment = false;
  if (layers[at] === 'ip') {
    if (num(f['ip.version'][0]) !== 4) return { ...base, note: `IPv4 ethertype with version ${f['ip.version'][0] ?? '?'}` };
    family = 4;
    src = f['ip.src'][0] ? parseIPv4(f['ip.src'][0]) : null;
    dst = f['ip.dst'][0] ? parseIPv4(f['ip.dst'][0]) : null;
    proto = num(f['ip.proto'][0]);
    nonFirstFragment = num(f['ip.frag_offset'][0]) > 0;
  } else {
    if (num(f['ipv6.version'][0]) !== 6) return { ...base, note: `IPv6 ethertype with version ${f['ipv6.version'][0] ?? '?'}` };
    family = 6;
    src = f['ipv6.src'][0] ? parseIPv6(f['ipv6.src'][0]) : null;
    dst = f['ipv6.dst'][0] ? parseIPv6(f['ipv6.dst'][0]) : null;
    proto = num(f['ipv6.nxt'][0]);
    const seen: Record<string, number> = {};
    for (; next < layers.length && proto >= 0; next++) {
      const layer = layers[next]!;
      const field = IPV6_EXTENSIONS[layer];
      if (!field) break;
      const k = seen[layer] ?? 0;
      seen[layer] = k + 1;
      proto = num(f[field][k]);
      if (layer === 'ipv6.fraghdr' && num(f['ipv6.fraghdr.offset'][k]) > 0) nonFirstFragment = true;
    }
    if (EXTENSION_NUMBERS.has(proto)) proto = -1; // the chain goes on where tshark stopped
  }
  if (!src || !dst || proto < 0 && family === 4) return { ...base, note: 'network header incomplete' };
  const headers = { ...base, family, src, dst, proto };
  const l4 = layers[next];
  if (nonFirstFragment) return { ...headers, note: 'non-first fragment' };
  if ((proto === 6 && l4 === 'tcp') || (proto === 17 && l4 === 'udp')) {
    const sport = num(f[`${l4}.srcport`][0]);
    const dport = num(f[`${l4}.dstport`][0]);
    if (sport >= 0 && dport >= 0) return { ...headers, sport, dport };
    return { ...headers, note: 'port pair incomplete' };
  }
  if (proto === 6 || proto === 17) return { ...headers, note: `protocol ${proto} but next layer is ${l4 ?? 'none'}` };
  return headers;
}

/** Splits tshark `-T fields` output (our FIELDS, occurrence=a) into one FieldValues per line. */
export function parseFieldLines(text: string): FieldValues[] {
  const rows: FieldValues[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const cols = line.split('\t');
    if (cols.length !== FIELDS.length) throw new Error(`tshark output: expected ${FIELDS.length} tab-separated fields per line, got ${cols.length}: ${line.slice(0, 200)}`);
    const row = {} as FieldValues;
    FIELDS.forEach((name, i) => {
      row[name] = cols[i] === '' ? [] : cols[i]!.split(AGGREGATOR);
    });
    rows.push(row);
  }
  return rows;
}

/** Runs tshark over one capture file and returns every packet's record, in frame order. */
export function dissect(path: string): TsharkPacket[] {
  const args = ['-n', '-r', path, ...TSHARK_PREFS.flatMap((p) => ['-o', p]), '-T', 'fields', '-E', 'header=n', '-E', 'separator=/t',
    '-E', 'occurrence=a', '-E', `aggregator=${AGGREGATOR}`, '-E', 'quote=n', ...FIELDS.flatMap((f) => ['-e', f])];
  const res = spawnSync('tshark', args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (res.error) throw new Error(`tshark: could not run it (${res.error.message}); install the Debian package tshark`);
  if (res.status !== 0) throw new Error(`tshark -r ${path}: exit status ${res.status}: ${res.stderr.trim().slice(0, 500)}`);
  return parseFieldLines(res.stdout).map(fromFields);
}

/** Expert and malformed messages tshark attaches to one frame (for failure messages). */
export function expertMessages(path: string, frame: number): string[] {
  const res = spawnSync('tshark', ['-n', '-r', path, ...TSHARK_PREFS.flatMap((p) => ['-o', p]), '-Y', `frame.number == ${frame}`,
    '-T', 'fields', '-E', 'occurrence=a', '-E', 'aggregator=\u0001', '-e', '_ws.expert.message', '-e', '_ws.malformed'], { encoding: 'utf8' });
  return res.stdout.split(/[\t\n\u0001]/).filter((s) => s !== '');
}

export interface CaptureInfo {
  path: string;
  name: string;
  /** capinfos' short encapsulation name, e.g. "ether" */
  encapsulation: string;
  packets: number;
}

/** capinfos over every file in `dir`: the readable captures, and the names it refused. */
export function listCaptures(dir: string, names: string[]): { captures: CaptureInfo[]; unreadable: string[] } {
  const res = spawnSync('capinfos', ['-T', '-r', '-B', '-E', '-c', ...names], { cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.error) throw new Error(`capinfos: could not run it (${res.error.message}); install the Debian package tshark`);
  const captures: CaptureInfo[] = [];
  for (const line of res.stdout.split('\n')) {
    if (line === '') continue;
    const [name, encapsulation, packets] = line.split('\t');
    if (!name || !encapsulation || packets === undefined) throw new Error(`capinfos: unexpected line '${line}'`);
    captures.push({ path: join(dir, name), name, encapsulation, packets: Number(packets) });
  }
  const listed = new Set(captures.map((c) => c.name));
  return { captures, unreadable: names.filter((n) => !listed.has(n)) };
}

/**
 * Dissects many captures with one tshark run: mergecap concatenates them (-a) and the records
 * are split back by each file's packet count. NB: tshark's start-up costs about a second, so
 * one run per file would take minutes for the corpus. Concatenation shares dissector state
 * across files (conversations, heuristics); that can change layers above the transport header
 * and so the malformed marks, never the headers used here -- callers re-dissect a file alone
 * (dissect) before relying on a mark.
 */
export function dissectConcatenated(captures: CaptureInfo[]): Map<string, TsharkPacket[]> {
  const dir = mkdtempSync(join(tmpdir(), 'nmwasm-tshark-'));
  try {
    const merged = join(dir, 'all.pcapng');
    execFileSync('mergecap', ['-a', '-w', merged, ...captures.map((c) => c.path)], { stdio: ['ignore', 'ignore', 'pipe'] });
    const all = dissect(merged);
    const expected = captures.reduce((n, c) => n + c.packets, 0);
    if (all.length !== expected) throw new Error(`tshark over the concatenation of ${captures.length} captures: ${all.length} packets, capinfos counted ${expected}`);
    const out = new Map<string, TsharkPacket[]>();
    let at = 0;
    for (const c of captures) {
      out.set(c.name, all.slice(at, at + c.packets).map((p, i) => ({ ...p, frame: i + 1 })));
      at += c.packets;
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Short text of the fields a verdict depends on, for failure messages. */
export function describePacket(p: TsharkPacket): string {
  const addr = (a: Uint8Array): string => (a.length === 4 ? Array.from(a).join('.') : a.length === 16 ? Buffer.from(a).toString('hex').replace(/(....)(?!$)/g, '$1:') : '-');
  const marks = [p.malformed ? 'malformed' : '', p.expertError ? 'expert-error' : ''].filter(Boolean).join(',') || 'clean';
  return `frame ${p.frame} [${p.protocols}] family ${p.family} ${addr(p.src)} -> ${addr(p.dst)} proto ${p.proto} ports ${p.sport}/${p.dport} (${marks})${p.note ? ` note: ${p.note}` : ''}`;
}

export const captureName = (path: string): string => basename(path);
