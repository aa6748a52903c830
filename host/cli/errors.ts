// Error types and one-line formatting for everything the CLI reports.
// A UsageError is a bad input (exit status 2); a native error is an Error from the
// addon carrying {code, port, syscall, errno} (see host/ports/native.ts NativeErrorFields).
import type { NativeErrorFields } from '../ports/native.ts';
import { safeLine } from './text.ts';

/** Exit status of a usage error (bad file, bad argument, module refused, config rejected). */
export const USAGE_EXIT = 2;
/** Exit status of a run that failed after it started (native I/O error, internal error). */
export const RUNTIME_EXIT = 1;

/** A bad input. Its message is one line: the file or argument, what was expected, what was received. */
export class UsageError extends Error {
  readonly exitCode = USAGE_EXIT;
  constructor(message: string) {
    super(safeLine(oneLine(message))); // never a control character on the terminal, whatever got in
    this.name = 'UsageError';
  }
}

/** Builds a UsageError "SUBJECT: expected EXPECTED, got RECEIVED". */
export function usageError(subject: string, expected: string, received: string): UsageError {
  return new UsageError(`${subject}: expected ${expected}, got ${received}`);
}

/** Quotes a user-supplied value for an error message, cut to `max` characters. */
export function quote(value: string, max = 80): string {
  const cut = value.length > max ? `${value.slice(0, max)}...` : value;
  return JSON.stringify(cut);
}

/** Collapses whitespace runs containing newlines into one space so a message stays on one line. */
export function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** True when `err` is an Error thrown by the native addon (it has a string `code`). */
export function isNativeError(err: unknown): err is Error & NativeErrorFields {
  return err instanceof Error && typeof (err as Partial<NativeErrorFields>).code === 'string' && !(err instanceof UsageError);
}

/** Formats a native error as one line: "PORT: MESSAGE (CODE, SYSCALL errno N)". */
export function formatNativeError(err: Error & NativeErrorFields): string {
  const details = [err.code];
  if (err.syscall) details.push(err.errno !== undefined ? `${err.syscall} errno ${err.errno}` : err.syscall);
  else if (err.errno !== undefined) details.push(`errno ${err.errno}`);
  const message = oneLine(err.message || 'native error');
  const prefix = err.port && !message.includes(err.port) ? `${err.port}: ` : '';
  return `${prefix}${message} (${details.join(', ')})`;
}

/** Native error codes from opening a port that mean the user's input is bad (exit 2). */
const USAGE_CODES = /^(EPCAP_|ENETMAP_|ELINKTYPE$|ENOENT$|EACCES$|EISDIR$|ENOTDIR$|EPERM$|EINVAL$|ENODEV$|EEXIST$|EROFS$|EBUSY$|ENOTSUP$|ERANGE$|ENOSPC$|ENXIO$|ESAMEFILE$)/;

/** True when a native error thrown while opening a port is the user's fault (bad file, bad link type, ...). */
export function isUsageNativeError(err: Error & NativeErrorFields): boolean {
  return USAGE_CODES.test(err.code);
}

/** One printable line for any thrown value, for the CLI's stderr. */
export function describeError(err: unknown): string {
  if (err instanceof UsageError) return err.message;
  if (isNativeError(err)) return safeLine(formatNativeError(err));
  if (err instanceof Error) return safeLine(oneLine(`${err.name === 'Error' ? 'error' : err.name}: ${err.message}`));
  return safeLine(oneLine(`error: ${String(err)}`));
}

/** Exit status for any thrown value. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof UsageError) return USAGE_EXIT;
  if (isNativeError(err) && isUsageNativeError(err)) return USAGE_EXIT;
  return RUNTIME_EXIT;
}
