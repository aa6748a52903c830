// Ports shared by the engines of one host. A kernel interface queue can carry only one
// AF_XDP socket, so when one `load` uses the same AF_XDP interface as an input and as an
// output (`--bidir`: A -> B and B -> A), both roles must be ONE port that receives and
// sends. A netmap port used both ways is likewise registered once with its RX and TX rings
// (netmap's bridge: one fd per port; a second register of the same adapter could not get an
// allocator of its own). The CLI plans that before opening anything (planSharedPorts); the pool then opens
// each planned port once and closes it when its last engine lets go.
import type { NativeAddon, PlainPortSpec, PortInfo, PortOptions } from '../ports/native.ts';

/** Identity of a port that may serve as input and output at once; undefined = never shared. */
function shareKey(spec: PlainPortSpec): string | undefined {
  if (spec.kind === 'xdp') return `xdp:${spec.ifname}:${spec.queue}`;
  if (spec.kind === 'netmap') return `netmap:${spec.nrName}:${spec.nrMode}:${spec.nrRingid}:${spec.nrFlags}`;
  return undefined;
}

/** Rewrites the specs of `uses` (inputs and outputs of every engine, in place order) so that an
 * AF_XDP interface queue or a netmap port used both ways is opened once with both sides: returns the specs to
 * open instead, index for index. The input's settings win (its ring count, its XDP program mode). */
export function planSharedPorts(uses: readonly PlainPortSpec[]): PlainPortSpec[] {
  const merged = new Map<string, PlainPortSpec>();
  for (const spec of uses) {
    const key = shareKey(spec);
    if (key === undefined) continue;
    const seen = merged.get(key);
    if (spec.kind === 'netmap') {
      merged.set(key, seen === undefined || seen.kind !== 'netmap' ? spec : { ...(spec.rx ? spec : seen), rx: seen.rx || spec.rx, tx: seen.tx || spec.tx });
      continue;
    }
    if (spec.kind !== 'xdp') continue;
    if (seen === undefined || seen.kind !== 'xdp') {
      merged.set(key, spec);
      continue;
    }
    const input = spec.rx ? spec : seen;
    merged.set(key, { ...input, rx: seen.rx || spec.rx, tx: seen.tx || spec.tx, rings: Math.max(seen.rings, spec.rings), txSlots: Math.max(seen.txSlots, spec.txSlots) });
  }
  return uses.map((spec) => {
    const key = shareKey(spec);
    return key === undefined ? spec : merged.get(key)!;
  });
}

/** Opens ports for engines; a spec object opened twice (planSharedPorts made it shared) gives
 * the same port, closed or aborted when its last user does so. */
export class PortPool {
  private readonly byKey = new Map<string, { info: PortInfo; users: number }>();
  private readonly keyOf = new Map<number, string>();
  private readonly linkSeen = new Map<string, number>();
  constructor(private readonly native: NativeAddon) {}

  /** Records link state `state` of the port named `name`; true when it differs from the last
   * one recorded (up at first), so that a port watched by two engines is reported once. */
  linkChanged(name: string, state: number): boolean {
    if ((this.linkSeen.get(name) ?? 0) === state) return false;
    this.linkSeen.set(name, state);
    return true;
  }

  /** Opens `spec` (or returns the shared port already open for it). Throws the native error. */
  open(spec: PlainPortSpec, opts: PortOptions): PortInfo {
    const key = spec.kind === 'xdp' && spec.rx && spec.tx ? shareKey(spec) : undefined;
    const shared = key === undefined ? undefined : this.byKey.get(key);
    if (shared) {
      shared.users++;
      return shared.info;
    }
    const info = this.native.openPort(spec, opts);
    if (key !== undefined) {
      this.byKey.set(key, { info, users: 1 });
      this.keyOf.set(info.id, key);
    }
    return info;
  }

  /** Flushes and closes the port once no other engine uses it. */
  close(id: number): void {
    if (this.release(id)) this.native.closePort(id);
  }

  /** Closes without committing once no other engine uses it. */
  abort(id: number): void {
    if (this.release(id)) this.native.abortPort(id);
  }

  private release(id: number): boolean {
    const key = this.keyOf.get(id);
    if (key === undefined) return true;
    const entry = this.byKey.get(key)!;
    if (--entry.users > 0) return false;
    this.byKey.delete(key);
    this.keyOf.delete(id);
    return true;
  }
}
