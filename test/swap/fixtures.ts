// Test helper (not a test): WAT filter modules for the hot-swap tests, compiled with binaryen.
// `stamp(marker)`: writes a running sequence number (u32 LE) at byte 42 of every packet and
// `marker` at byte 46, passes it, and carries the sequence across swaps through
// nmwasm_state_save/nmwasm_state_load. Variants break one canary step each.
import binaryen from 'binaryen';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface StampOptions {
  marker: number;
  init?: string; // body of nmwasm_init (must leave an i32): default (i32.const 0)
  extraProcess?: string; // instructions run at the start of nmwasm_process
  state?: boolean; // export nmwasm_state_save/load (default true)
  pages?: number; // initial memory pages (default 1025)
  abiMarker?: boolean; // export nmwasm_abi_v1 (default true)
  spin?: number; // busy-loop iterations per packet (paces a generator that runs at full speed)
}

export function stampWat(o: StampOptions): string {
  const state = o.state !== false;
  return `(module
  (memory (export "memory") ${o.pages ?? 1025})
  (func (export "nmwasm_abi_v1"))
  (func (export "nmwasm_init") (param i32 i32) (result i32) ${o.init ?? '(i32.const 0)'})
  (func (export "nmwasm_process") (param $ring i32) (param $verdicts i32) (param $first i32) (param $count i32) (result i32)
    (local $i i32) (local $slot i32) (local $sp i32) (local $buf i32) (local $n i32) (local $k i32)
    ${o.extraProcess ?? ''}
    (local.set $n (i32.load offset=8 (local.get $ring)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $k (i32.const ${o.spin ?? 0}))
        (block $spun (loop $spin (br_if $spun (i32.eqz (local.get $k))) (local.set $k (i32.sub (local.get $k) (i32.const 1))) (br $spin)))
        (local.set $slot (i32.rem_u (i32.add (local.get $first) (local.get $i)) (local.get $n)))
        (local.set $sp (i32.add (i32.add (local.get $ring) (i32.const 256)) (i32.mul (local.get $slot) (i32.const 16))))
        (local.set $buf (i32.add (i32.add (local.get $ring) (i32.load (local.get $ring)))
                                 (i32.mul (i32.load (local.get $sp)) (i32.load offset=12 (local.get $ring)))))
        (i32.store offset=42 align=1 (local.get $buf) (i32.load (i32.const 0x4000000)))
        (i32.store8 offset=46 (local.get $buf) (i32.const ${o.marker}))
        (i32.store (i32.const 0x4000000) (i32.add (i32.load (i32.const 0x4000000)) (i32.const 1)))
        (i32.store8 (i32.add (local.get $verdicts) (local.get $slot)) (i32.const 1))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))
  ${state ? `(func (export "nmwasm_state_save") (result i32)
    (i32.store (i32.const 0x4000010) (i32.const 4))
    (i32.store (i32.const 0x4000014) (i32.load (i32.const 0x4000000)))
    (i32.const 0x4000010))
  (func (export "nmwasm_state_load") (param $p i32) (param $len i32) (result i32)
    (if (i32.ne (local.get $len) (i32.const 4)) (then (return (i32.const 1))))
    (i32.store (i32.const 0x4000000) (i32.load (local.get $p)))
    (i32.const 0))` : ''}
)`.replace(o.abiMarker === false ? '(func (export "nmwasm_abi_v1"))' : '\u0000', '');
}

/** Compiles WAT to a .wasm file in a fresh temp directory; returns its path. */
export function writeWat(name: string, wat: string, dir = mkdtempSync(join(tmpdir(), 'nmwasm-swap-'))): string {
  const mod = binaryen.parseText(wat);
  const bytes = mod.emitBinary();
  mod.dispose();
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}
