// The --config file: read once in the main thread, checked against the config area of
// the ABI (NMWASM_CONFIG_MAX bytes at NMWASM_CONFIG_BASE), and handed to every ring
// worker as bytes. Its content is the filter's business (nmwasm_init parses it).
import { readFileSync, statSync } from 'node:fs';
import { UsageError } from '../cli/errors.ts';
import { NMWASM_CONFIG_MAX } from './module.ts';
import { printable } from '../cli/text.ts';

/** Reads the --config file (undefined -> 0 bytes). Throws a one-line UsageError naming the
 * file when it is missing, not a regular file, unreadable, or larger than 960 KiB. */
export function readConfig(path: string | undefined): Uint8Array {
  if (path === undefined) return new Uint8Array(0);
  const name = printable(path, 200); // the file name as shown in errors: one printable line
  if (path.length === 0) throw new UsageError('--config: expected a file name, got an empty string');
  let size: number;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw new UsageError(`--config ${name}: expected a regular file, got a ${st.isDirectory() ? 'directory' : 'special file'}`);
    size = st.size;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`--config ${name}: cannot read the file (${describeFsError(err)})`);
  }
  if (size > NMWASM_CONFIG_MAX) {
    throw new UsageError(`--config ${name}: file too large (expected at most ${NMWASM_CONFIG_MAX} bytes = 960 KiB, got ${size})`);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new UsageError(`--config ${name}: cannot read the file (${describeFsError(err)})`);
  }
  // The file may have grown between stat and read.
  if (bytes.length > NMWASM_CONFIG_MAX) {
    throw new UsageError(`--config ${name}: file too large (expected at most ${NMWASM_CONFIG_MAX} bytes = 960 KiB, got ${bytes.length})`);
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length);
}

function describeFsError(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  return code ?? (err as Error).message;
}
