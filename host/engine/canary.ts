// Canary worker (worker_thread, one per hot-swap; host/engine/swap.ts): a fresh instance of the new
// module, nmwasm_init with its config, then one nmwasm_process call on a sample of the clause's
// recent live packets copied into the canary's OWN memory (a ring built at the packet window,
// no port mapped). Verdicts are discarded; a trap, a non-zero return or a broken ABI rule
// fails the canary. The main thread bounds it in wall time and terminates it on overrun.
import { parentPort, workerData } from 'node:worker_threads';
import { NMWASM_CONFIG_BASE, NMWASM_DATA_BASE, NMWASM_WINDOW_BASE } from '../module/module.ts';
import { printable } from '../cli/text.ts';

export interface CanaryData {
  module: WebAssembly.Module;
  config: Uint8Array;
  sample: Uint8Array; // u32 count, then per packet u32 len + bytes (host/engine/ringshared.ts SAMPLE_BYTES)
  outputs: number; // output ports of the clause: FORWARD n must be below this
}
export type CanaryMessage = { type: 'sampling' } | { type: 'result'; ok: boolean; reason?: string; packets: number };

const SLOTS = 64;
const BUF_SIZE = 2048;
const SLOTS_OFS = 256;
const VERDICT_OFS = SLOTS_OFS + SLOTS * 16;
const BUF_OFS = 4096;

function run(d: CanaryData): CanaryMessage {
  let memory: WebAssembly.Memory | null = null;
  let lastLog = '';
  const text = (ptr: number, len: number): string => {
    if (memory === null) return '';
    const b = new Uint8Array(memory.buffer);
    ptr >>>= 0;
    return ptr < b.length ? new TextDecoder().decode(b.subarray(ptr, Math.min(ptr + Math.min(len >>> 0, 1024), b.length))) : '';
  };
  const imports = {
    env: {
      abort(): never {
        throw new Error('abort called');
      },
      nmwasm_log(ptr: number, len: number): void {
        lastLog = printable(text(ptr, len), 200);
      },
      nmwasm_now: () => performance.now(),
    },
  };
  const fail = (reason: string, packets = 0): CanaryMessage => ({ type: 'result', ok: false, reason, packets });
  const why = (err: unknown): string => printable(err instanceof Error ? err.message : String(err), 200);
  let instance: WebAssembly.Instance;
  try {
    instance = new WebAssembly.Instance(d.module, imports);
  } catch (err) {
    return fail(`instantiation failed: ${why(err)}`);
  }
  const ex = instance.exports as Record<string, unknown>;
  memory = ex.memory as WebAssembly.Memory;
  const mem = new Uint8Array(memory.buffer);
  if (mem.length < NMWASM_DATA_BASE) return fail(`memory of ${mem.length} bytes is under the ${NMWASM_DATA_BASE} bytes the ABI needs`);
  mem.set(d.config, NMWASM_CONFIG_BASE);
  const init = ex.nmwasm_init as ((p: number, l: number) => number) | undefined;
  if (init) {
    let rc: number;
    try {
      rc = init(NMWASM_CONFIG_BASE, d.config.length);
    } catch (err) {
      return fail(`nmwasm_init trapped: ${why(err)}`);
    }
    if (rc !== 0) return fail(`nmwasm_init rejected the configuration (returned ${rc})${lastLog ? `: ${lastLog}` : ''}`);
  }
  parentPort!.postMessage({ type: 'sampling' } satisfies CanaryMessage);
  // The sample, as a ring of SLOTS slots at the packet window of the canary's own memory.
  const sv = new DataView(d.sample.buffer, d.sample.byteOffset, d.sample.byteLength);
  const count = Math.min(sv.getUint32(0, true), SLOTS);
  if (count === 0) return { type: 'result', ok: true, packets: 0 };
  const ring = NMWASM_WINDOW_BASE;
  const dv = new DataView(memory.buffer);
  dv.setUint32(ring, BUF_OFS, true);
  dv.setUint32(ring + 8, SLOTS, true);
  dv.setUint32(ring + 12, BUF_SIZE, true);
  dv.setUint16(ring + 18, 1, true);
  dv.setUint32(ring + 28, count % SLOTS, true);
  let at = 4;
  for (let i = 0; i < count; i++) {
    const len = sv.getUint32(at, true);
    mem.set(d.sample.subarray(at + 4, at + 4 + len), ring + BUF_OFS + i * BUF_SIZE);
    dv.setUint32(ring + SLOTS_OFS + i * 16, i, true);
    dv.setUint16(ring + SLOTS_OFS + i * 16 + 4, len, true);
    at += 4 + len;
  }
  mem.fill(0xff, ring + VERDICT_OFS, ring + VERDICT_OFS + SLOTS);
  let rc: number;
  try {
    rc = (ex.nmwasm_process as (r: number, v: number, f: number, c: number) => number)(ring, ring + VERDICT_OFS, 0, count);
  } catch (err) {
    return fail(`trap on the sample of ${count} live packets: ${why(err)}`, count);
  }
  if (rc !== 0) return fail(`nmwasm_process returned ${rc} on the sample of ${count} live packets`, count);
  const after = new Uint8Array(memory.buffer);
  const adv = new DataView(memory.buffer);
  for (let i = 0; i < count; i++) {
    const v = after[ring + VERDICT_OFS + i]!;
    const valid = v === 0 || v === 1 || v === 2 || v === 0x40 || v === 0x41 || (v >= 0x80 && v < 0x80 + d.outputs);
    if (!valid) return fail(`invalid verdict 0x${v.toString(16)} for sample packet ${i} (of ${count})`, count);
    const len = adv.getUint16(ring + SLOTS_OFS + i * 16 + 4, true);
    if (len < 14 || len > BUF_SIZE) return fail(`sample packet ${i}: slot len set to ${len} (expected 14..${BUF_SIZE})`, count);
    if (adv.getUint32(ring + SLOTS_OFS + i * 16, true) !== i) return fail(`sample packet ${i}: buf_idx changed`, count);
  }
  return { type: 'result', ok: true, packets: count };
}

// Started warm (no workerData): the canary's data comes in a message. A worker whose canary
// passed runs the next one too (host/engine/swap.ts keeps it warm); one that failed is terminated.
if (workerData) parentPort!.postMessage(run(workerData as CanaryData));
else parentPort!.on('message', (d: CanaryData) => parentPort!.postMessage(run(d)));
