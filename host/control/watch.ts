// `nmwasm load ... --watch`: swaps the clause's module when its module file or --config file
// changes (host/engine/engine.ts Engine.swap: validated like a load, canaried, switched at a batch
// boundary). A file that does not validate, or a failed canary, leaves the old module
// running and prints one line of reason.
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import { describeError } from '../cli/errors.ts';
import { printable } from '../cli/text.ts';
import { prepareSwap } from '../engine/swap.ts';
import { join, resolve } from 'node:path';
import { resolveFilter } from '../module/package.ts';
import type { Engine } from '../engine/engine.ts';
import type { ModuleLimits } from '../module/module.ts';

/** How often the files are looked at (stat; works for editors that replace the file too). */
const POLL_MS = 200;
/** A change is acted on once the file stopped changing for this long (one edit = one swap). */
const SETTLE_MS = 300;

export interface WatchTarget {
  engine: Engine;
  /** The module of the clause's chain it swaps (0-based; default 0). */
  index?: number;
  modulePath: string;
  configPath: string | undefined;
  limits: ModuleLimits;
  /** Receives one line per swap attempt. */
  say: (line: string) => void;
}

/** Starts watching; returns the function that stops it. */
export function watchModule(t: WatchTarget): () => void {
  const files = [watchedModuleFile(t.modulePath), ...(t.configPath !== undefined ? [t.configPath] : [])];
  let timer: NodeJS.Timeout | null = null;
  let busy = false;
  let again = false;
  const swapNow = async (): Promise<void> => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    const name = printable(t.modulePath, 120);
    try {
      const { loaded, config } = prepareSwap(t.modulePath, t.configPath, t.limits);
      const r = await t.engine.swap(loaded, config, t.index ?? 0);
      t.say(r.ok ? `--watch: ${name} changed: swapped (canary on ${r.canary?.packets ?? 0} packets, ring stall ${r.stallUs ?? 0} µs${r.stateCarried ? ', state carried' : ''})` : `--watch: ${name} changed: not swapped: ${r.reason!}`);
    } catch (err) {
      t.say(`--watch: ${name} changed: not swapped, the old module keeps running: ${describeError(err)}`);
    }
    busy = false;
    if (again) {
      again = false;
      void swapNow();
    }
  };
  const changed = (cur: Stats, prev: Stats): void => {
    if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size && cur.ino === prev.ino) return;
    if (timer !== null) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      void swapNow();
    }, SETTLE_MS);
  };
  for (const f of files) watchFile(f, { interval: POLL_MS, persistent: false }, changed);
  return () => {
    if (timer !== null) clearTimeout(timer);
    for (const f of files) unwatchFile(f, changed);
  };
}

/** The file whose changes mean a new module: a .wasm or .tgz as given, a package's module
 * file inside its directory (a directory or a name in node_modules). */
function watchedModuleFile(spec: string): string {
  const found = resolveFilter(spec);
  if (found.pkg === undefined || /\.(tgz|tar\.gz)$/i.test(spec)) return resolve(spec);
  return join(found.pkg.where, found.pkg.block.module);
}
