// Bundles the TypeScript host for distribution: host/cli.ts -> dist/nmwasm.mjs (the `nmwasm`
// bin, with a node shebang) and host/worker.ts -> dist/worker.mjs (the ring worker, found by
// the engine next to the bundle). The native addon stays outside the bundle: host/native.ts
// loads build/Release/nmwasm.node relative to the package root at run time.
import { build } from 'esbuild';
import { chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['*.node'],
  logLevel: 'warning',
  absWorkingDir: root,
};

await build({
  ...common,
  entryPoints: ['host/cli.ts'],
  outfile: 'dist/nmwasm.mjs',
  banner: { js: '#!/usr/bin/env node' },
});
await build({ ...common, entryPoints: ['host/worker.ts'], outfile: 'dist/worker.mjs' });
await build({ ...common, entryPoints: ['host/canary.ts'], outfile: 'dist/canary.mjs' });
chmodSync(join(root, 'dist', 'nmwasm.mjs'), 0o755);
