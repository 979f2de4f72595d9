/**
 * Helpers of the tiny-model tests: temporary directories and reading a model directory.
 *
 * @module
 */
import { join } from "node:path";
import { TINY_FILES } from "../../../src/models/tiny/layout.ts";

/** The read-only model fixtures. */
export const FIXTURES = new URL("../../fixtures/models/", import.meta.url).pathname;

/** Runs `fn` with a fresh temporary directory, removed afterwards. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-tiny-model-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A JSON file as an object. */
export async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** The bytes of every file of a tiny model directory, by file name. */
export async function readFiles(dir: string): Promise<Map<string, Uint8Array>> {
  const out = new Map<string, Uint8Array>();
  for (const f of TINY_FILES.v4) out.set(f, await Deno.readFile(join(dir, f)));
  return out;
}

/** The names in directory `dir`, sorted. */
export async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}
