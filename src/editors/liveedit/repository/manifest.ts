/**
 * The directory of an expert repository: `manifest.json` (what the repository stores experts
 * for: `format` `"liveedit-expert-repository"`, `version` 1, `editor`, `backbone`, `dims`
 * `{e, m, r, d}` and `created`), written atomically when it is created next to an empty
 * `records.log`, read back and checked against what the caller asks for; and the temporaries
 * a crashed atomic write left.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../../../io/atomic.ts";
import { checkDims, type ExpertDims } from "./types.ts";

/** The manifest's file name in a repository directory. */
export const MANIFEST_FILE = "manifest.json";
/** The record file's name in a repository directory (see `log.ts`). */
export const RECORDS_FILE = "records.log";

/** The `format` of a repository manifest. */
export const REPOSITORY_FORMAT = "liveedit-expert-repository";

/** What a repository stores experts for; fixed at creation. */
export interface RepositoryInit {
  /** Backbone the experts are built with (e.g. `"llava-v1.5-7b"`). */
  readonly backbone: string;
  /** Expert dims. */
  readonly dims: ExpertDims;
  /** Editor name (default `"liveedit"`). */
  readonly editor?: string;
}

/** The contents of `manifest.json`. */
export interface RepositoryManifest {
  /** Always {@linkcode REPOSITORY_FORMAT}. */
  readonly format: typeof REPOSITORY_FORMAT;
  /** Format version, 1. */
  readonly version: 1;
  /** Editor name. */
  readonly editor: string;
  /** Backbone name. */
  readonly backbone: string;
  /** Expert dims. */
  readonly dims: ExpertDims;
  /** When the repository was created, ISO 8601. */
  readonly created: string;
}

/** The manifest for `init`, validated; `where` names the source in errors. */
export function makeManifest(init: RepositoryInit, where: string): RepositoryManifest {
  if (typeof init?.backbone !== "string" || init.backbone === "") {
    throw new Error(`${where}: init.backbone must be a non-empty string`);
  }
  return {
    format: REPOSITORY_FORMAT,
    version: 1,
    editor: init.editor ?? "liveedit",
    backbone: init.backbone,
    dims: checkDims(init.dims, `${where}: init`),
    created: new Date().toISOString(),
  };
}

/** Reads and checks `dir/manifest.json`, or creates the repository from `init`. */
export async function openManifest(
  dir: string,
  init: RepositoryInit | undefined,
): Promise<RepositoryManifest> {
  const path = join(dir, MANIFEST_FILE), records = join(dir, RECORDS_FILE);
  let text: string | undefined;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new Error(`${path}: ${(error as Error).message}`, { cause: error });
    }
  }
  if (text === undefined) {
    if (init === undefined) {
      throw new Error(
        `${path}: not found: ${dir} is not an expert repository (pass init to create one)`,
      );
    }
    const manifest = makeManifest(init, path);
    const f = await Deno.open(records, { write: true, create: true });
    try {
      if ((await f.stat()).size > 0) {
        throw new Error(
          `${records}: holds records but ${path} is missing; refusing to create over it`,
        );
      }
      await f.sync();
    } finally {
      f.close();
    }
    await writeJsonAtomic(path, manifest);
    return manifest;
  }
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not JSON: ${(error as Error).message}`, { cause: error });
  }
  if (m?.format !== REPOSITORY_FORMAT) {
    throw new Error(
      `${path}: format is ${JSON.stringify(m?.format)}, expected "${REPOSITORY_FORMAT}"`,
    );
  }
  if (m.version !== 1) {
    throw new Error(
      `${path}: version ${
        JSON.stringify(m.version)
      } is not supported (this library reads version 1)`,
    );
  }
  const manifest: RepositoryManifest = {
    format: REPOSITORY_FORMAT,
    version: 1,
    editor: String(m.editor),
    backbone: String(m.backbone),
    dims: checkDims(m.dims, path),
    created: String(m.created),
  };
  if (init !== undefined) {
    const want = makeManifest(init, path);
    for (const field of ["editor", "backbone"] as const) {
      if (want[field] !== manifest[field]) {
        throw new Error(
          `${path}: ${field} is "${manifest[field]}", but "${want[field]}" was asked for`,
        );
      }
    }
    for (const k of ["e", "m", "r", "d"] as const) {
      if (want.dims[k] !== manifest.dims[k]) {
        throw new Error(
          `${path}: dims.${k} is ${manifest.dims[k]}, but ${want.dims[k]} was asked for`,
        );
      }
    }
  }
  return manifest;
}

/** Removes temporary files a crashed atomic write (compaction, manifest) left in `dir`. */
export async function removeTemporaries(dir: string): Promise<void> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile && /^\.(records\.log|manifest\.json)\..*\.tmp$/.test(e.name)) {
      await Deno.remove(join(dir, e.name));
    }
  }
}
