/**
 * Helpers of the vision model tests: fixture directories, opening a fixture for one test and
 * editing a fixture's config.json in memory.
 *
 * @module
 */
import { join } from "node:path";
import { type Fixture, openFixture } from "../../src/models/fixtures/vision.ts";
import { ConfigFields } from "../../src/models/hf_config.ts";

/** `tests/fixtures/models/<family>`. */
export function fixtureDir(family: string): string {
  return join(import.meta.dirname!, "../fixtures/models", family);
}

/** Runs `fn` on the opened fixture `dir`, closing it afterwards. */
export async function withFixture<T>(dir: string, fn: (f: Fixture) => T | Promise<T>): Promise<T> {
  const fixture = await openFixture(dir);
  try {
    return await fn(fixture);
  } finally {
    fixture.close();
  }
}

/**
 * The `config.json` of `dir` with fields replaced, labelled with its real path. `edits` maps a
 * dotted field path (`"vision_config.hidden_size"`) to its new value; `undefined` deletes it.
 */
export async function editedConfig(
  dir: string,
  edits: Record<string, unknown>,
): Promise<ConfigFields> {
  const file = join(dir, "config.json");
  const json = JSON.parse(await Deno.readTextFile(file));
  for (const [field, value] of Object.entries(edits)) {
    const keys = field.split(".");
    const last = keys.pop()!;
    const parent = keys.reduce((o, k) => o[k] as Record<string, unknown>, json);
    if (value === undefined) delete parent[last];
    else parent[last] = value;
  }
  return new ConfigFields(json, file);
}
