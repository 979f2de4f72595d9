/**
 * Reading the small JSON files of a model directory (`config.json`, `tokenizer_config.json`,
 * `preprocessor_config.json`, ...) with errors that name the file: missing, unreadable,
 * malformed JSON, or not a JSON object; {@linkcode isPlainObject} tells a JSON object apart.
 *
 * @module
 */

/** True for a JSON object (not null, not an array). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Reads `path` and parses it as a JSON object. Throws `PATH does not exist` when it is missing,
 * `PATH: malformed JSON: ...` when it does not parse and `PATH: must be a JSON object` when it
 * parses to something else.
 *
 * @example
 * ```ts
 * import { readJsonObject } from "./json.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/c.json`, '{"a": 1}');
 * if ((await readJsonObject(`${dir}/c.json`)).a !== 1) throw new Error("a");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readJsonObject(path: string): Promise<Record<string, unknown>> {
  const json = await readOptionalJsonObject(path);
  if (json === undefined) throw new Error(`${path} does not exist`);
  return json;
}

/** {@linkcode readJsonObject}, but `undefined` when `path` does not exist. */
export async function readOptionalJsonObject(
  path: string,
): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw new Error(`${path}: cannot read it: ${reasonOf(error)}`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: malformed JSON: ${reasonOf(error)}`, { cause: error });
  }
  if (!isPlainObject(json)) throw new Error(`${path}: must be a JSON object`);
  return json;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
