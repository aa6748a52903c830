// Test helper (not a test): WAT filter modules for the chain tests whose verdicts the test can
// predict from `gen:...,seq` frames (the last 8 bytes of a frame hold its big-endian u64
// sequence number; these modules read its low 32 bits), and the chain model they follow.
// `seqModule({ mod, rem, verdict })` gives `verdict` to every frame whose seq % mod == rem and
// PASS to the others; `trapMod`/`trapRem` make it trap on those frames instead.
import { writeWat } from '../swap/fixtures.ts';

export interface SeqRule {
  mod: number;
  rem: number;
  verdict: number; // 0 DROP, 1 PASS, 2 HOST, 0x80|n FORWARD n
  trapMod?: number; // trap (unreachable) on a frame whose seq % trapMod == trapRem
  trapRem?: number;
}

/** WAT of a module following `rule` over every slot of its batch. */
export function seqWat(rule: SeqRule): string {
  const trap = rule.trapMod !== undefined ? `(if (i32.eq (i32.rem_u (local.get $seq) (i32.const ${rule.trapMod})) (i32.const ${rule.trapRem ?? 0})) (then unreachable))` : '';
  return `(module
  (memory (export "memory") 1025)
  (func (export "nmwasm_abi_v1"))
  (func $bswap (param $x i32) (result i32)
    (i32.or (i32.or (i32.shl (i32.and (local.get $x) (i32.const 0xff)) (i32.const 24))
                    (i32.shl (i32.and (local.get $x) (i32.const 0xff00)) (i32.const 8)))
            (i32.or (i32.and (i32.shr_u (local.get $x) (i32.const 8)) (i32.const 0xff00))
                    (i32.shr_u (local.get $x) (i32.const 24)))))
  (func (export "nmwasm_process") (param $ring i32) (param $verdicts i32) (param $first i32) (param $count i32) (result i32)
    (local $i i32) (local $slot i32) (local $sp i32) (local $buf i32) (local $n i32) (local $seq i32) (local $v i32)
    (local.set $n (i32.load offset=8 (local.get $ring)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $count)))
        (local.set $slot (i32.rem_u (i32.add (local.get $first) (local.get $i)) (local.get $n)))
        (local.set $sp (i32.add (i32.add (local.get $ring) (i32.const 256)) (i32.mul (local.get $slot) (i32.const 16))))
        (local.set $buf (i32.add (i32.add (local.get $ring) (i32.load (local.get $ring)))
                                 (i32.mul (i32.load (local.get $sp)) (i32.load offset=12 (local.get $ring)))))
        (local.set $seq (call $bswap (i32.load align=1 (i32.sub (i32.add (local.get $buf) (i32.load16_u offset=4 (local.get $sp))) (i32.const 4)))))
        ${trap}
        (local.set $v (i32.const 1))
        (if (i32.eq (i32.rem_u (local.get $seq) (i32.const ${rule.mod})) (i32.const ${rule.rem})) (then (local.set $v (i32.const ${rule.verdict}))))
        (i32.store8 (i32.add (local.get $verdicts) (local.get $slot)) (local.get $v))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))
)`;
}

/** Writes the module of `rule` as NAME.wasm in `dir`. */
export function seqModule(name: string, rule: SeqRule, dir: string): string {
  return writeWat(`${name}.wasm`, seqWat(rule), dir);
}

export interface ModuleCounts {
  packets: number;
  verdicts: { pass: number; drop: number; host: number; forward: number; fault: number };
}

/** What a chain of `rules` does to frames seq = 0 .. count-1 (libxdp dispatcher semantics: PASS
 * goes on, anything else ends the frame; the last PASS is the ring's): per module and in all. */
export function modelChain(rules: SeqRule[], seqs: Iterable<number>): { modules: ModuleCounts[]; total: ModuleCounts } {
  const zero = (): ModuleCounts => ({ packets: 0, verdicts: { pass: 0, drop: 0, host: 0, forward: 0, fault: 0 } });
  const modules = rules.map(zero);
  const total = zero();
  const name = (v: number): keyof ModuleCounts['verdicts'] => (v === 0 ? 'drop' : v === 1 ? 'pass' : v === 2 ? 'host' : 'forward');
  for (const seq of seqs) {
    total.packets++;
    let final = 1;
    for (const [k, r] of rules.entries()) {
      modules[k]!.packets++;
      const v = seq % r.mod === r.rem ? r.verdict : 1;
      modules[k]!.verdicts[name(v)]++;
      if (v !== 1) {
        final = v;
        break;
      }
    }
    total.verdicts[name(final)]++;
  }
  return { modules, total };
}

/** 0 .. n-1 */
export function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
