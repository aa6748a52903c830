// The package commands of the CLI: `nmwasm new NAME` (host/module/scaffold.ts) and `nmwasm build
// [DIR]` (host/module/build.ts). Arguments are checked here; each prints what it did on stderr
// (one line per step) and returns the exit status.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parseCommandArgs } from './args.ts';
import { buildPackage, nmwasmRoot } from '../module/build.ts';
import { UsageError, quote } from './errors.ts';
import { scaffold } from '../module/scaffold.ts';
import { printable } from './text.ts';

const NEW_HELP = `usage: nmwasm new NAME

Writes a filter package in ./NAME (NAME: an npm package name, @scope/name puts it in ./name):
package.json with its "nmwasm" block, asconfig.json, assembly/index.ts, test/sample.pcap and a
test over it, README.md. Then: cd NAME && npm install && npm run build && npm test
(docs/PACKAGES.md).`;

const BUILD_HELP = `usage: nmwasm build [DIR]

Compiles the filter package in DIR (default: the current directory): its "nmwasm".entry with
asc -O3 --noAssert --runtime stub --memoryBase 67108864 into "nmwasm".module, embeds the
manifest (name, version, description, abi, entry, config format and schema, stats) as the
module's nmwasm.manifest section, checks it against the ABI, and writes its sha256 into
package.json (docs/PACKAGES.md).`;

/** `nmwasm new NAME`. */
export function newCommand(args: string[]): number {
  const { positionals, help } = parseCommandArgs('new', args, {});
  if (help) return print(NEW_HELP);
  if (positionals.length !== 1) throw new UsageError(`nmwasm new: expected one NAME (an npm package name), got ${positionals.length === 0 ? 'nothing' : positionals.map((p) => quote(p, 30)).join(' ')}`);
  const dir = scaffold(positionals[0]!, process.cwd(), `^${ownVersion()}`);
  const rel = relative(process.cwd(), dir) || '.';
  process.stderr.write(`nmwasm new: wrote ${printable(rel, 200)}/ (package.json, asconfig.json, assembly/index.ts, test/, README.md)\n`);
  process.stderr.write(`next: cd ${printable(rel, 200)} && npm install && npm run build && npm test\n`);
  return 0;
}

/** `nmwasm build [DIR]`. */
export async function buildCommand(args: string[]): Promise<number> {
  const { positionals, help } = parseCommandArgs('build', args, {});
  if (help) return print(BUILD_HELP);
  if (positionals.length > 1) throw new UsageError(`nmwasm build: expected at most one DIR, got ${positionals.length} (${positionals.map((p) => quote(p, 30)).join(' ')})`);
  const dir = resolve(positionals[0] ?? '.');
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`nmwasm build: expected DIR to be a package directory, got ${quote(positionals[0] ?? '.', 80)} (${existsSync(dir) ? 'not a directory' : 'no such directory'})`);
  const result = await buildPackage(dir, (text) => process.stderr.write(text));
  process.stderr.write(`nmwasm build: ${printable(result.module, 200)} (${result.bytes} bytes, sha256 ${result.sha256}) recorded in package.json\n`);
  return 0;
}

/** The version of this nmwasm (its package.json). */
export function ownVersion(): string {
  try {
    const v = (JSON.parse(readFileSync(join(nmwasmRoot(), 'package.json'), 'utf8')) as { version?: unknown }).version;
    return typeof v === 'string' ? v : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function print(text: string): number {
  process.stdout.write(`${text}\n`);
  return 0;
}
