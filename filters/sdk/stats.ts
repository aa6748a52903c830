// Counters for nmwasm_stats: `n` little-endian u64 values in static memory, named by
// the `stats` array of the module's manifest (same order).

/** Adds `v` to counter `index` of the counter block at `base`. */
// @ts-ignore: decorator
@inline export function statAdd(base: usize, index: u32, v: u64): void {
  const p = base + (<usize>index << 3);
  store<u64>(p, load<u64>(p) + v);
}

/** Adds 1 to counter `index` of the counter block at `base`. */
// @ts-ignore: decorator
@inline export function statInc(base: usize, index: u32): void { statAdd(base, index, 1); }

/** Value of counter `index`. */
// @ts-ignore: decorator
@inline export function statGet(base: usize, index: u32): u64 { return load<u64>(base + (<usize>index << 3)); }
