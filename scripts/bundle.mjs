// Bundles the TypeScript host for distribution: host/cli/cli.ts -> dist/nmwasm.mjs (the `nmwasm`
// bin, with a node shebang) and host/engine/worker.ts -> dist/worker.mjs (the ring worker, found by
// the engine next to the bundle) and host/module/testapi.ts -> dist/test.mjs (`nmwasm/test`). The native addon stays outside the bundle: host/ports/native.ts
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
  external: ['*.node', 'assemblyscript', 'assemblyscript/*', 'binaryen'], // asc is loaded by nmwasm build only
  logLevel: 'warning',
  absWorkingDir: root,
};

await build({
  ...common,
  entryPoints: ['host/cli/cli.ts'],
  outfile: 'dist/nmwasm.mjs',
  // prom-client is CommonJS and requires node built-ins: give the ESM bundle a require().
  banner: { js: "#!/usr/bin/env node\nimport { createRequire as __nmwasmCreateRequire } from 'node:module';\nconst require = __nmwasmCreateRequire(import.meta.url);" },
});
await build({ ...common, entryPoints: ['host/engine/worker.ts'], outfile: 'dist/worker.mjs' });
// The test API for filter authors: `import { runFilter } from 'nmwasm/test'` (package.json "exports").
await build({ ...common, entryPoints: ['host/module/testapi.ts'], outfile: 'dist/test.mjs' });
await build({ ...common, entryPoints: ['host/engine/canary.ts'], outfile: 'dist/canary.mjs' });
chmodSync(join(root, 'dist', 'nmwasm.mjs'), 0o755);
