// Minimal capture reader for filter tests: classic pcap (both byte orders, µs and ns)
// and pcapng (SHB/IDB/EPB/SPB, both byte orders). Returns the link type of the first
// interface and the captured bytes of each packet. Throws on a malformed file, naming it.
import { readFileSync, writeFileSync } from 'node:fs';

export interface Capture { linkType: number; packets: Uint8Array[] }

export const LINKTYPE_ETHERNET = 1;

/** Reads the capture at `path` (pcap or pcapng). */
export function readCapture(path: string): Capture {
  const buf = readFileSync(path);
  const data = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  if (data.byteLength < 24) throw new Error(`${path}: too short for a capture file (${data.byteLength} bytes)`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const magic = view.getUint32(0, true);
  if (magic === 0x0a0d0d0a) return readPcapng(path, data, view);
  let le: boolean;
  if (magic === 0xa1b2c3d4 || magic === 0xa1b23c4d) le = true;
  else if (magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1) le = false;
  else throw new Error(`${path}: not a pcap/pcapng file (magic 0x${magic.toString(16)})`);
  const linkType = view.getUint32(20, le) & 0x0fffffff;
  const packets: Uint8Array[] = [];
  let pos = 24;
  while (pos + 16 <= data.byteLength) {
    const incl = view.getUint32(pos + 8, le);
    pos += 16;
    if (incl > data.byteLength - pos) throw new Error(`${path}: record at ${pos - 16} claims ${incl} bytes, ${data.byteLength - pos} left`);
    packets.push(data.subarray(pos, pos + incl));
    pos += incl;
  }
  return { linkType, packets };
}

function readPcapng(path: string, data: Uint8Array, view: DataView): Capture {
  let le = true;
  const linkTypes: number[] = [];
  const packets: Uint8Array[] = [];
  let pos = 0;
  while (pos + 12 <= data.byteLength) {
    const type = view.getUint32(pos, le);
    if (type === 0x0a0d0d0a) le = view.getUint32(pos + 8, true) === 0x1a2b3c4d;
    const len = view.getUint32(pos + 4, le);
    if (len < 12 || len % 4 !== 0 || len > data.byteLength - pos) throw new Error(`${path}: pcapng block at ${pos} has bad length ${len}`);
    if (type === 1) linkTypes.push(view.getUint16(pos + 8, le));
    else if (type === 6 && len >= 32) {
      const caplen = view.getUint32(pos + 20, le);
      if (caplen > len - 32) throw new Error(`${path}: pcapng EPB at ${pos} claims ${caplen} bytes`);
      packets.push(data.subarray(pos + 28, pos + 28 + caplen));
    } else if (type === 3 && len >= 16) {
      packets.push(data.subarray(pos + 12, pos + Math.min(len - 4, 12 + view.getUint32(pos + 8, le))));
    }
    pos += len;
  }
  return { linkType: linkTypes[0] ?? -1, packets };
}

/** Writes `packets` as a classic little-endian microsecond pcap (Ethernet), packet i at i µs. */
export function writeCapture(path: string, packets: readonly Uint8Array[]): void {
  const parts: Buffer[] = [];
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(LINKTYPE_ETHERNET, 20);
  parts.push(header);
  packets.forEach((p, i) => {
    const rec = Buffer.alloc(16);
    rec.writeUInt32LE(1, 0);
    rec.writeUInt32LE(i, 4);
    rec.writeUInt32LE(p.length, 8);
    rec.writeUInt32LE(p.length, 12);
    parts.push(rec, Buffer.from(p));
  });
  writeFileSync(path, Buffer.concat(parts));
}
