// Text that came from a module (abort messages, nmwasm_log lines, manifests, export names)
// or from a config/user argument is escaped here before it reaches a terminal or a log,
// so a module cannot forge host lines (newlines), retitle or reprogram the terminal (ESC,
// OSC, C1 CSI), ring the bell, hide text (NUL, bidi overrides) or break a UTF-8 log (lone
// surrogates). One helper, used at every such place (docs/SANDBOX.md).

/** Characters never written raw: every control/format/surrogate/private/unassigned code point
 * (C0, DEL, C1, bidi overrides and isolates, zero-width marks, BOM) and the line/paragraph
 * separators. */
const UNSAFE = /[\p{C}\p{Zl}\p{Zp}]/gu;
const UNSAFE_OR_BACKSLASH = /[\p{C}\p{Zl}\p{Zp}\\]/gu;

function escapeChar(ch: string): string {
  if (ch === '\\') return '\\\\';
  const cp = ch.codePointAt(0)!;
  return cp < 0x100 ? `\\x${cp.toString(16).padStart(2, '0')}` : `\\u{${cp.toString(16)}}`;
}

/** `text` as ONE printable line of at most `max` characters (plus a "...(N more)" marker):
 * unsafe characters become \xNN (below U+0100) or \u{N} escapes and a backslash becomes \\,
 * so the escaped form is unambiguous. For text from a module or a config. */
export function printable(text: string, max = 300): string {
  const cut = text.length > max ? text.slice(0, max) : text;
  let out = cut.replace(UNSAFE_OR_BACKSLASH, escapeChar);
  if (text.length > max) out += `...(${text.length - max} more)`;
  return out;
}

/** `text` with unsafe characters escaped but backslashes and length kept: the last line of
 * defence for messages the host composed (which may embed escapes of their own). */
export function safeLine(text: string): string {
  return text.replace(UNSAFE, escapeChar);
}

/** JSON text (from JSON.stringify) with every character a terminal could act on escaped as
 * \uXXXX: still valid JSON with the same value. JSON.stringify itself escapes only C0 (a raw
 * newline is its own formatting and stays). */
export function jsonPrintable(json: string): string {
  return json.replace(UNSAFE, (ch) => {
    if (ch === '\n') return ch; // pretty-printing; a newline inside a string is already \n
    let out = '';
    for (let i = 0; i < ch.length; i++) out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, '0')}`;
    return out;
  });
}
