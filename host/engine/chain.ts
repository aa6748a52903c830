// A chain of modules on one ring (host/engine/worker.ts, chains of more than one module): runs the
// modules of the chain in order on one batch, with libxdp's dispatcher semantics (docs/ABI.md
// section 9): PASS hands the packet to the next module; DROP, HOST and FORWARD end it; the
// last module's PASS is the ring's PASS.
//
// How a module sees only the packets still PASS: the batch is COMPACTED. Before module k > 0,
// the slots still alive are copied (all 16 bytes: buf_idx, len, flags, timestamp) to the front
// of the batch, in their order, and the ring's head/cur/tail say so; the module gets one call
// for those `m` slots, as if they were the whole batch. Every module thus runs unchanged, reads
// only live packets, and cannot see or change a slot an earlier module ended: the ended slots'
// verdicts and lengths live in this worker's own arrays, not in the window. After each module
// its verdicts, lengths and buf_idx are checked as the native sync checks the last one (a bad
// slot fails the module: the fault verdict for every packet that reached it, as a violating
// batch gets today). At the end the original slots come back in place with their final
// verdicts and new lengths, so the native sync sees the batch as one module would have left it.
//
// A failed module (back-off after a fault) applies the fault verdict to the packets that reach
// it: DROP ends them, PASS hands them on (the chain's last module: the ring's PASS).
//
// NB: per packet this costs a few typed-array copies per module (save, lay out, check,
// restore) in JIT-compiled JS: no allocation, no call, no string. A chain of one module never
// comes here (host/engine/worker.ts calls the module directly, as before chains).
import { Counter, type RingHandle } from '../ports/native.ts';
import { NMWASM_WINDOW_BASE } from '../module/module.ts';
import { enterGuest, errorText, leaveGuest, type Instance, type WorkerContext } from './instance.ts';
import { ModuleCounter, RingState } from './ringshared.ts';

const SLOTS_OFS = 256; // struct netmap_ring: slot[] starts here
const PASS = 1;
const UNSET = 0xff;
const MIN_LEN = 14;
const COUNTS = ModuleCounter.fault + 1; // room for seen .. fault (the back-off slots between stay 0)

export class ChainRunner {
  /** The host's own view of the packet window: a wasm memory (page-aligned, V8-reserved) the
   * port memory is mapped into, so the chain is run and checked whichever module is failed. */
  private readonly memory: WebAssembly.Memory;
  private readonly u8: Uint8Array;
  private readonly u16: Uint16Array;
  private readonly u32: Uint32Array;
  private readonly saved: Uint32Array; // the batch's slots as the sync delivered them, by batch index (lengths updated)
  private readonly fin: Uint8Array; // final verdict by batch index, UNSET while alive
  private readonly live: Int32Array; // batch indices of the packets still alive, in order
  /** This batch's counts per module (ModuleCounter seen..fault), added to the modules' blocks
   * once the whole chain ran: a batch whose call the watchdog kills is counted by no module. */
  private readonly batchCounts: Float64Array;
  private readonly ringW: number; // u32 index of the ring header
  private readonly slotsW: number; // u32 index of slot 0
  private readonly verdicts: number; // byte address of the verdict array
  private mapped = false;

  constructor(
    private readonly ctx: WorkerContext,
    private readonly chain: Instance[],
    private readonly numSlots: number,
    private readonly bufSize: number,
    ringPtr: number,
    verdictPtr: number,
    memSize: number,
  ) {
    if (ringPtr % 8 !== 0) throw new Error(`the ring header at 0x${ringPtr.toString(16)} is not 8-byte aligned: chains cannot run on this port (report this)`);
    this.memory = new WebAssembly.Memory({ initial: Math.ceil((NMWASM_WINDOW_BASE + memSize) / 65536) });
    this.u8 = new Uint8Array(this.memory.buffer);
    this.u16 = new Uint16Array(this.memory.buffer);
    this.u32 = new Uint32Array(this.memory.buffer);
    this.saved = new Uint32Array(numSlots * 4);
    this.fin = new Uint8Array(numSlots);
    this.live = new Int32Array(numSlots);
    this.batchCounts = new Float64Array(chain.length * COUNTS);
    this.ringW = ringPtr >>> 2;
    this.slotsW = (ringPtr + SLOTS_OFS) >>> 2;
    this.verdicts = verdictPtr;
  }

  /** Maps the port memory into the host view (once per attachment). */
  map(ring: RingHandle): void {
    ring.map(this.u8, NMWASM_WINDOW_BASE);
    this.mapped = true;
  }

  /** Unmaps it (ring null: handed over, nothing to undo in this thread). */
  unmap(ring: RingHandle | null): void {
    if (ring !== null && this.mapped) ring.unmap(this.u8, NMWASM_WINDOW_BASE);
    this.mapped = false;
  }

  /** The bytes of the window as the host sees them (canary samples). */
  get bytes(): Uint8Array {
    return this.u8;
  }

  /** Runs every module of the chain on the batch of `n` slots from `first`; leaves the final
   * verdicts and lengths in the window for the sync. Returns the seconds spent in guest code,
   * -1 when no module was called (all failed). */
  run(first: number, n: number, ringPtr: number, faultVerdict: number, numOutputs: number): number {
    const { u8, u16, u32, saved, fin, live } = this;
    const ctx = this.ctx;
    // NB: integers, and the slot index stepped with a compare, not `%` per packet: `first` comes
    // from a Float64Array (a double `%` is a libm fmod call), and an integer `%` is a division
    // (num_slots need not be a power of two on netmap).
    first |= 0;
    n |= 0;
    const numSlots = this.numSlots | 0;
    for (let i = 0, s = first; i < n; i++, s = s + 1 === numSlots ? 0 : s + 1) {
      const w = this.slotsW + s * 4;
      saved[i * 4] = u32[w]!;
      saved[i * 4 + 1] = u32[w + 1]!;
      saved[i * 4 + 2] = u32[w + 2]!;
      saved[i * 4 + 3] = u32[w + 3]!;
      fin[i] = UNSET;
      live[i] = i;
    }
    const counts = this.batchCounts;
    counts.fill(0);
    let m = n;
    let guestMs = 0;
    let called = false;
    const last = this.chain.length - 1;
    for (let k = 0; k <= last && m > 0; k++) {
      const inst = this.chain[k]!;
      const b = inst.block!;
      const c = k * COUNTS;
      if (k > 0) {
        // Lay the live packets out at the front of the batch, each with a fresh verdict.
        for (let j = 0, s = first; j < m; j++, s = s + 1 === numSlots ? 0 : s + 1) {
          const w = this.slotsW + s * 4;
          const i = live[j]! * 4;
          u32[w] = saved[i]!;
          u32[w + 1] = saved[i + 1]!;
          u32[w + 2] = saved[i + 2]!;
          u32[w + 3] = saved[i + 3]!;
          u8[this.verdicts + s] = UNSET;
        }
        u32[this.ringW + 5] = first; // head
        u32[this.ringW + 6] = first; // cur
        u32[this.ringW + 7] = (first + m) % numSlots; // tail
      }
      let ok = inst.healthy;
      if (ok) {
        let rc = 0;
        let trapped: unknown = null;
        ctx.counters[Counter.wasmCalls]!++;
        enterGuest(ctx, k);
        const startedAt = ctx.counters[Counter.batchStartedAt]!;
        try {
          rc = inst.processFn!(ringPtr, this.verdicts, first, m);
        } catch (err) {
          trapped = err;
        }
        leaveGuest(ctx);
        guestMs += performance.timeOrigin + performance.now() - startedAt;
        called = true;
        if (trapped !== null) {
          inst.fail('trap', errorText(trapped));
          ok = false;
        } else if (rc !== 0) {
          inst.fail('return', `nmwasm_process returned ${rc}`);
          ok = false;
        } else {
          let bad = 0;
          for (let j = 0, s = first; j < m; j++, s = s + 1 === numSlots ? 0 : s + 1) {
            const w = this.slotsW + s * 4;
            const v = u8[this.verdicts + s]!;
            const len = u16[(w + 1) * 2]!;
            if (u32[w] !== saved[live[j]! * 4] || len < MIN_LEN || len > this.bufSize || !(v <= 2 || (v >= 0x80 && (v & 0x7f) < numOutputs))) bad++;
          }
          if (bad > 0) {
            ctx.counters[Counter.violations]! += bad;
            b[ModuleCounter.violationSlots]! += bad;
            inst.fail('violation', `batch of ${m} slots broke the ABI (${bad} slots with a changed buf_idx, a bad len or an invalid verdict)`);
            ok = false;
          }
        }
      }
      // Counted once the call returned: a call the watchdog kills ends this worker, and its
      // batch gets the fault verdict as a whole (counted by the ring, not by the modules).
      counts[c + ModuleCounter.seen]! += m;
      if (!ok) {
        // The fault verdict for every packet that reached the module.
        counts[c + ModuleCounter.fault]! += m;
        if (faultVerdict !== PASS) {
          for (let j = 0; j < m; j++) fin[live[j]!] = faultVerdict;
          ctx.state[RingState.chainFaultDrop]! += m;
          m = 0;
        } else if (k === last) {
          for (let j = 0; j < m; j++) fin[live[j]!] = PASS;
          ctx.state[RingState.chainFaultPass]! += m;
        } // else PASS: on to the next module, unchanged
        continue;
      }
      let alive = 0;
      let pass = 0;
      let drop = 0;
      let host = 0;
      let forward = 0;
      for (let j = 0, s = first; j < m; j++, s = s + 1 === numSlots ? 0 : s + 1) {
        const i = live[j]!;
        const v = u8[this.verdicts + s]!;
        saved[i * 4 + 1] = (saved[i * 4 + 1]! & 0xffff0000) | u16[(this.slotsW + s * 4 + 1) * 2]!; // its (new) len
        if (v === PASS) {
          pass++;
          if (k === last) fin[i] = PASS;
          else live[alive++] = i;
        } else {
          fin[i] = v;
          if (v === 0) drop++;
          else if (v === 2) host++;
          else forward++;
        }
      }
      counts[c + ModuleCounter.pass] = pass;
      counts[c + ModuleCounter.drop] = drop;
      counts[c + ModuleCounter.host] = host;
      counts[c + ModuleCounter.forward] = forward;
      m = k === last ? 0 : alive;
    }
    for (let k = 0; k <= last; k++) {
      const b = this.chain[k]!.block!;
      const c = k * COUNTS;
      b[ModuleCounter.seen]! += counts[c + ModuleCounter.seen]!;
      b[ModuleCounter.pass]! += counts[c + ModuleCounter.pass]!;
      b[ModuleCounter.drop]! += counts[c + ModuleCounter.drop]!;
      b[ModuleCounter.host]! += counts[c + ModuleCounter.host]!;
      b[ModuleCounter.forward]! += counts[c + ModuleCounter.forward]!;
      b[ModuleCounter.fault]! += counts[c + ModuleCounter.fault]!;
    }
    // Every slot back in place with its final verdict (the sync checks and applies them).
    for (let i = 0, s = first; i < n; i++, s = s + 1 === numSlots ? 0 : s + 1) {
      const w = this.slotsW + s * 4;
      u32[w] = saved[i * 4]!;
      u32[w + 1] = saved[i * 4 + 1]!;
      u32[w + 2] = saved[i * 4 + 2]!;
      u32[w + 3] = saved[i * 4 + 3]!;
      const v = fin[i]!;
      u8[this.verdicts + s] = v === UNSET ? PASS : v;
    }
    u32[this.ringW + 5] = first;
    u32[this.ringW + 6] = first;
    u32[this.ringW + 7] = (first + n) % numSlots;
    return called ? guestMs / 1000 : -1;
  }
}
