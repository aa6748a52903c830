// Prints the product addon's sources (../../binding.gyp, target nmwasm) for bench/native/binding.gyp,
// relative to this directory, leaving out addon.cc (its module registration is the product's;
// bench_addon.cc registers this addon). Usage: node sources.mjs base|xdp
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const gyp = readFileSync(fileURLToPath(new URL('../../binding.gyp', import.meta.url)), 'utf8');
// gyp files are Python literals; this one is JSON once the comments are gone.
const json = gyp.split('\n').map((line) => line.replace(/^\s*#.*$/, '').replace(/\s+#[^"]*$/, '')).join('\n');
const target = JSON.parse(json).targets.find((t) => t.target_name === 'nmwasm');
const which = process.argv[2] === 'xdp' ? (target.conditions ?? []).find((c) => c[0] === 'have_xdp==1')?.[1].sources ?? [] : target.sources;
const out = which
  .filter((s) => !s.endsWith('/addon.cc'))
  .map((s) => `../../${s.replace('<(pcap_file_dir)', 'native/formats')}`);
process.stdout.write(`${out.join(' ')}\n`);
