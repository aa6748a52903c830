// Reading a capture file into frames in JavaScript, for the test API (host/module/testapi.ts) and
// `nmwasm test --trace`: classic pcap (both byte orders, µs and ns timestamps) and pcapng
// (SHB/IDB/EPB/SPB, both byte orders, per-interface if_tsresol), Ethernet only. The ports
// read captures natively (native/port_pcap*); this is the same format for a test's own use.
import { readFileSync } from 'node:fs';
import { UsageError, quote } from '../cli/errors.ts';

/** One captured frame: its bytes and its receive time in ns since the Unix epoch. */
export interface CapturedFrame {
  data: Uint8Array;
  timestampNs: bigint;
}

const LINKTYPE_ETHERNET = 1;

/** Reads the capture at `path` (pcap or pcapng, Ethernet). Throws a one-line UsageError
 * naming the file and the offset of the first malformed record. */
export function readCaptureFile(path: string): CapturedFrame[] {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (err) {
    throw new UsageError(`${quote(path)}: cannot read the capture (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseCapture(path, new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength));
}

/** Parses capture bytes; `name` names them in errors. */
export function parseCapture(name: string, data: Uint8Array): CapturedFrame[] {
  const bad = (what: string): never => {
    throw new UsageError(`${quote(name)}: ${what}`);
  };
  if (data.byteLength < 24) bad(`expected a pcap or pcapng capture, got ${data.byteLength} bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = view.getUint32(0, true);
  if (magic === 0x0a0d0d0a) return parsePcapng(data, view, bad);
  let le: boolean;
  let nano: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) (le = true), (nano = magic === 0xa1b23c4d);
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) (le = false), (nano = magic === 0x4d3cb2a1);
  else return bad(`expected a pcap or pcapng capture, got magic 0x${magic.toString(16).padStart(8, '0')}`);
  const linkType = view.getUint32(20, le) & 0x0fffffff;
  if (linkType !== LINKTYPE_ETHERNET) bad(`expected Ethernet frames (link type 1), got link type ${linkType}`);
  const frames: CapturedFrame[] = [];
  let pos = 24;
  while (pos < data.byteLength) {
    if (pos + 16 > data.byteLength) bad(`record ${frames.length + 1} at offset ${pos}: truncated header`);
    const sec = view.getUint32(pos, le);
    const frac = view.getUint32(pos + 4, le);
    const incl = view.getUint32(pos + 8, le);
    if (incl > data.byteLength - pos - 16) bad(`record ${frames.length + 1} at offset ${pos}: claims ${incl} bytes, ${data.byteLength - pos - 16} left`);
    frames.push({ data: data.subarray(pos + 16, pos + 16 + incl), timestampNs: BigInt(sec) * 1_000_000_000n + BigInt(frac) * (nano ? 1n : 1000n) });
    pos += 16 + incl;
  }
  return frames;
}

function parsePcapng(data: Uint8Array, view: DataView, bad: (what: string) => never): CapturedFrame[] {
  let le = true;
  const resolutions: bigint[] = []; // ticks per second of each interface
  const frames: CapturedFrame[] = [];
  let pos = 0;
  while (pos + 12 <= data.byteLength) {
    const type = view.getUint32(pos, le);
    if (type === 0x0a0d0d0a) {
      le = view.getUint32(pos + 8, true) === 0x1a2b3c4d;
      resolutions.length = 0;
    }
    const len = view.getUint32(pos + 4, le);
    if (len < 12 || len % 4 !== 0 || len > data.byteLength - pos) bad(`pcapng block at offset ${pos}: bad length ${len}`);
    if (type === 1) {
      if (len < 20) bad(`pcapng interface block at offset ${pos}: too short`);
      const link = view.getUint16(pos + 8, le);
      if (link !== LINKTYPE_ETHERNET) bad(`expected Ethernet frames (link type 1), got link type ${link} (interface ${resolutions.length})`);
      let res = 1_000_000n;
      for (let o = pos + 16; o + 4 <= pos + len - 4; ) {
        const code = view.getUint16(o, le);
        const olen = view.getUint16(o + 2, le);
        if (code === 0) break;
        if (code === 9 && olen >= 1) {
          const v = data[o + 4]!;
          res = v & 0x80 ? 1n << BigInt(v & 0x7f) : 10n ** BigInt(v);
        }
        o += 4 + ((olen + 3) & ~3);
      }
      resolutions.push(res);
    } else if (type === 6) {
      if (len < 32) bad(`pcapng packet block at offset ${pos}: too short`);
      const iface = view.getUint32(pos + 8, le);
      const res = resolutions[iface] ?? bad(`pcapng packet block at offset ${pos}: interface ${iface} was not described`);
      const ticks = (BigInt(view.getUint32(pos + 12, le)) << 32n) | BigInt(view.getUint32(pos + 16, le));
      const caplen = view.getUint32(pos + 20, le);
      if (caplen > len - 32) bad(`pcapng packet block at offset ${pos}: claims ${caplen} bytes`);
      frames.push({ data: data.subarray(pos + 28, pos + 28 + caplen), timestampNs: (ticks * 1_000_000_000n) / res });
    } else if (type === 3) {
      if (resolutions.length === 0) bad(`pcapng simple packet block at offset ${pos}: no interface described`);
      frames.push({ data: data.subarray(pos + 12, pos + Math.min(len - 4, 12 + view.getUint32(pos + 8, le))), timestampNs: 0n });
    }
    pos += len;
  }
  if (pos !== data.byteLength) bad(`pcapng block at offset ${pos}: truncated`);
  return frames;
}
