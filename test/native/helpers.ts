// Shared helpers of the native addon tests: open ports, map a ring into a real
// WebAssembly.Memory and act as the "guest" from JS (read slots, write verdicts).
import { COUNTER_SLOTS, loadNative, type NativeAddon, type PlainPortSpec, type RingHandle, type RingLayout } from '../../host/ports/native.ts';

export const WINDOW_BASE = 0x100000;
export const native: NativeAddon = loadNative();

export function genSpec(over: Partial<Extract<PlainPortSpec, { kind: 'gen' }>> = {}): PlainPortSpec {
  return { kind: 'gen', name: 'gen0', count: 1000, sizeMin: 64, sizeMax: 1518, imix: false, flows: 64, mix: [1, 1, 1, 1, 1, 1, 1], seed: 1, pps: 0, seq: false, rings: 1, ...over };
}

export function newCounters(): Float64Array {
  return new Float64Array(new SharedArrayBuffer(COUNTER_SLOTS * 8));
}

/** A mapped ring plus JS accessors for what the guest sees. */
export class GuestRing {
  readonly memory = new WebAssembly.Memory({ initial: 1100 });
  readonly layout: RingLayout;
  constructor(readonly handle: RingHandle) {
    this.layout = handle.layout();
    handle.map(this.view(), WINDOW_BASE);
  }
  view(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }
  dv(): DataView {
    return new DataView(this.memory.buffer);
  }
  get ring(): number {
    return WINDOW_BASE + this.layout.ringOfs;
  }
  get head(): number {
    return this.dv().getUint32(this.ring + 20, true);
  }
  get tail(): number {
    return this.dv().getUint32(this.ring + 28, true);
  }
  slotAddr(i: number): number {
    return this.ring + 256 + 16 * i;
  }
  bufIdx(i: number): number {
    return this.dv().getUint32(this.slotAddr(i), true);
  }
  len(i: number): number {
    return this.dv().getUint16(this.slotAddr(i) + 4, true);
  }
  ts(i: number): bigint {
    return this.dv().getBigUint64(this.slotAddr(i) + 8, true);
  }
  /** Bytes of the packet in slot i (a copy). */
  packet(i: number): Uint8Array {
    const bufOfs = Number(this.dv().getBigInt64(this.ring, true));
    const start = this.ring + bufOfs + this.bufIdx(i) * this.layout.bufSize;
    return this.view().slice(start, start + this.len(i));
  }
  verdictAddr(i: number): number {
    return WINDOW_BASE + this.layout.verdictOfs + i;
  }
  setVerdict(i: number, v: number): void {
    this.view()[this.verdictAddr(i)] = v;
  }
  /** Slot indices of the current batch of size n. */
  batchSlots(n: number): number[] {
    const out: number[] = [];
    for (let k = 0; k < n; k++) out.push((this.head + k) % this.layout.numSlots);
    return out;
  }
}

/** Runs the port to its end, giving every packet `verdictOf(bytes)`; returns all packets seen. */
export function drain(g: GuestRing, verdictOf: (pkt: Uint8Array) => number, keep = true): Uint8Array[] {
  const seen: Uint8Array[] = [];
  let n = g.handle.sync(0, false);
  while (n > 0) {
    for (const i of g.batchSlots(n)) {
      const pkt = g.packet(i);
      if (keep) seen.push(pkt);
      g.setVerdict(i, verdictOf(pkt));
    }
    n = g.handle.sync(n, false);
  }
  return seen;
}

export function openAndAttach(spec: PlainPortSpec, opts: { outputs?: number[]; trace?: boolean; faultVerdict?: 0 | 1; numSlots?: number; budget?: BigInt64Array } = {}) {
  const port = native.openPort(spec, { numSlots: opts.numSlots ?? 256, bufSize: 2048 });
  const counters = newCounters();
  const handle = native.attachRing(port.id, 0, { outputs: opts.outputs ?? [], counters, faultVerdict: opts.faultVerdict ?? 0, trace: opts.trace ?? false, ...(opts.budget ? { budget: opts.budget } : {}) });
  return { port, counters, handle, guest: new GuestRing(handle) };
}
