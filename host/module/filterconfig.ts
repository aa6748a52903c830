// The --config file against what the filter declares (docs/PACKAGES.md): a module whose
// manifest says configFormat "json" gets its config parsed and validated against the
// manifest's JSON Schema with ajv; "text" refuses a JSON document (a config meant for another
// filter); "none" refuses any config. Runs once, in the main thread, before any port opens;
// the filter still gets the file's bytes unchanged.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { UsageError, oneLine } from '../cli/errors.ts';
import type { Manifest } from './module.ts';
import { printable } from '../cli/text.ts';

/** Compiles a JSON Schema (from a module manifest or a package.json) with ajv in strict mode;
 * a schema ajv refuses is a one-line UsageError naming `spec`.
 * NB: a schema comes from the filter's author; ajv generates its validator as code with its
 * own safe code generator, and `pattern` runs as a RegExp: a hostile pattern can be slow. */
export function compileSchema(spec: string, schema: unknown): ValidateFunction {
  const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true });
  try {
    return ajv.compile(schema as object);
  } catch (err) {
    throw new UsageError(`${spec}: invalid configSchema in its manifest (${printable(oneLine((err as Error).message), 200)}); fix the schema and rebuild with nmwasm build`);
  }
}

/** One line for the first ajv error: the field (JSON pointer path) and what it must be. */
export function describeSchemaError(e: ErrorObject): string {
  let path = e.instancePath === '' ? '(the top level)' : e.instancePath;
  let what = e.message ?? 'is invalid';
  if (e.keyword === 'required') {
    const missing = (e.params as { missingProperty: string }).missingProperty;
    path = `${e.instancePath}/${missing}`;
    what = 'is required but missing';
  } else if (e.keyword === 'additionalProperties') {
    const extra = (e.params as { additionalProperty: string }).additionalProperty;
    path = `${e.instancePath}/${extra}`;
    what = 'is not a known field (additionalProperties: false)';
  } else if (e.keyword === 'enum') {
    what = `must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}`;
  }
  return `field ${printable(path, 120)} ${printable(what, 200)}`;
}

/** Checks the --config bytes against the module's manifest (configFormat, configSchema).
 * `configName` is the --config argument (undefined: no config given). Throws a one-line
 * UsageError naming the file, the field and its path, and what to do. */
export function checkFilterConfig(spec: string, manifest: Manifest | null, configName: string | undefined, config: Uint8Array): void {
  const format = manifest?.configFormat;
  if (format === undefined || configName === undefined) return;
  const file = `--config ${printable(configName, 200)}`;
  if (format === 'none') throw new UsageError(`${file}: filter ${printable(spec, 120)} takes no config (its manifest says configFormat "none"); leave out --config`);
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(config);
  } catch {
    text = undefined;
  }
  if (format === 'text') {
    if (text !== undefined && looksLikeJson(configName, text)) {
      throw new UsageError(`${file}: filter ${printable(spec, 120)} takes a text config (configFormat "text"), got a JSON document; give it its own format (see its README or nmwasm inspect)`);
    }
    return;
  }
  if (text === undefined) throw new UsageError(`${file}: expected a JSON config (UTF-8), got invalid bytes`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file}: expected a JSON config (filter ${printable(spec, 120)} has configFormat "json"), got ${printable(oneLine((err as Error).message), 160)}`);
  }
  const validate = compileSchema(spec, manifest!.configSchema);
  if (!validate(value)) {
    const first = validate.errors?.[0];
    throw new UsageError(`${file}: ${first ? describeSchemaError(first) : 'does not match the schema'} (the config schema of ${printable(spec, 120)}; nmwasm inspect shows it)`);
  }
}

function looksLikeJson(name: string, text: string): boolean {
  if (/\.json$/i.test(name)) return true;
  const t = text.trim();
  if (!t.startsWith('{') && !t.startsWith('[')) return false;
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}
