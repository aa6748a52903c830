// The package's install step after `node-gyp rebuild` (the native addon): in a development
// checkout (host/ sources present) it also type-checks and bundles the host into dist/ and
// builds the filters; an installed package ships dist/ and the SDK ready made, so there it does
// nothing more. Why the addon is built on install and not shipped prebuilt: docs/PACKAGES.md.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (existsSync(join(root, 'host', 'cli', 'cli.ts'))) {
  for (const script of ['build:js', 'build:filters']) {
    const res = spawnSync('npm', ['run', script, '--silent'], { cwd: root, stdio: 'inherit' });
    if (res.status !== 0) process.exit(res.status ?? 1);
  }
} else if (!existsSync(join(root, 'dist', 'nmwasm.mjs'))) {
  process.stderr.write('nmwasm: dist/nmwasm.mjs is missing from this package (it is built by npm pack: prepack); reinstall it from a tarball made by npm pack\n');
  process.exit(1);
}
