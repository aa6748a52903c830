// Shared by the bench scripts: builds (the benchmarks' addon, C programs), statistics, the
// machine description, and the common result line.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);
export const BENCH_ADDON = join(BENCH_DIR, 'native/build/Release/nmwasm_bench.node');
const NODE_GYP = '/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js';

/** Exits with one line on stderr. */
export function die(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(1);
}

/** Median of a non-empty array of numbers. */
export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** {cpu, cores, kernel, node, loadavg, date}: what a result was measured on. */
export function machine() {
  const cpuinfo = existsSync('/proc/cpuinfo') ? readFileSync('/proc/cpuinfo', 'utf8') : '';
  const model = (cpuinfo.match(/^model name\s*:\s*(.+)$/m) ?? [])[1] ?? cpus()[0]?.model ?? 'unknown CPU';
  return { cpu: model.trim(), cores: cpus().length, kernel: release(), node: process.version, loadavg: loadavg().map((l) => Number(l.toFixed(2))), date: new Date().toISOString() };
}

/** node-gyp for the benchmarks' addon: the one npm gives its scripts (npm_config_node_gyp),
 * else npm's bundled copy at its Debian path, else the one on PATH. */
function nodeGyp(args) {
  const script = [process.env.npm_config_node_gyp, NODE_GYP].find((p) => p && existsSync(p));
  const [cmd, pre] = script ? [process.execPath, [script]] : ['node-gyp', []];
  const nodedir = existsSync('/usr/include/node/node.h') ? ['--nodedir=/usr'] : [];
  const res = spawnSync(cmd, [...pre, ...args, ...nodedir], { cwd: join(BENCH_DIR, 'native'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.status !== 0) die(`node-gyp ${args[0]} in bench/native failed (exit ${res.status}): ${(res.stderr || res.error?.message || '').trim().split('\n').slice(-3).join(' | ')}`);
}

/** Builds bench/native (the benchmarks' addon) unless it is there and newer than every
 * source of the product addon and the bench; returns its path. Takes ~1 min the first time. */
export function ensureBenchAddon() {
  const sources = [join(ROOT, 'binding.gyp'), join(BENCH_DIR, 'native/binding.gyp')];
  for (const dir of [join(ROOT, 'native'), join(BENCH_DIR, 'native'), join(BENCH_DIR, 'c')]) {
    for (const f of readdirSync(dir, { recursive: true })) if (/\.(cc|h|c)$/.test(String(f)) && !String(f).startsWith('build')) sources.push(join(dir, String(f)));
  }
  const newest = Math.max(...sources.map((f) => statSync(f).mtimeMs));
  if (existsSync(BENCH_ADDON) && statSync(BENCH_ADDON).mtimeMs >= newest) return BENCH_ADDON;
  process.stderr.write('bench: building the benchmarks\' addon (bench/native, node-gyp; about a minute)\n');
  if (!existsSync(join(BENCH_DIR, 'native/build/Makefile'))) nodeGyp(['configure']);
  nodeGyp(['build', '-j', String(Math.max(1, cpus().length))]);
  return BENCH_ADDON;
}

/** Compiles bench/c/NAME.c with `flags` into `dir` (once per flags); returns the binary's path. */
export function compileC(name, flags, dir) {
  mkdirSync(dir, { recursive: true });
  const out = join(dir, `${name}${flags.join('').replace(/[^A-Za-z0-9]+/g, '_')}`);
  const res = spawnSync('cc', [...flags, '-std=c11', '-D_GNU_SOURCE', '-Wall', '-o', out, join(BENCH_DIR, 'c', `${name}.c`)], { encoding: 'utf8' });
  if (res.error) die(`cc: ${res.error.message} (install a C compiler: apt-get install gcc)`);
  if (res.status !== 0) die(`cc ${flags.join(' ')} bench/c/${name}.c failed: ${res.stderr.trim().split('\n').slice(0, 3).join(' | ')}`);
  return out;
}

/** One measure of the common result format (bench/README.md, "Result format"). */
export function measure(name, unit, nmwasm, baseline, ratio, target, how) {
  const r = (x) => (x === null ? null : Number(x.toPrecision(4)));
  return { name, unit, nmwasm: r(nmwasm), baseline: r(baseline), ratio: r(ratio), target, how };
}
