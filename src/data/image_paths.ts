/**
 * Image paths of annotation records: resolving a relative path from the JSON under the image
 * root without letting it escape (no absolute paths, no `..` segments, and, when the files are
 * checked, no symbolic link that leads outside the root), and finding the missing ones.
 *
 * @module
 */
import { isAbsolute, join, relative, resolve, sep } from "node:path";

/** Where an image path came from: the annotation file, record index and field. */
export interface ImageRef {
  /** The record's index in its annotation file. */
  readonly index: number;
  /** The JSON field the relative path was read from (`image`, `image_rephrase`, `m_loc`). */
  readonly field: string;
  /** The path as written in the JSON. */
  readonly relative: string;
  /** The path joined to the image root. */
  readonly path: string;
}

/**
 * Joins the relative image path `rel` (from record `index`, field `field` of `file`) to
 * `root`. Throws naming file, record and field when `rel` is empty, absolute (POSIX or a
 * Windows drive/UNC path) or has a `..` segment.
 *
 * @example
 * ```ts
 * import { resolveImagePath } from "./image_paths.ts";
 * const ok = resolveImagePath("data/images", "val2014/a.jpg", "v.json", 0, "image");
 * if (ok !== "data/images/val2014/a.jpg") throw new Error(ok);
 * let threw = false;
 * try {
 *   resolveImagePath("data/images", "../x.jpg", "v.json", 0, "image");
 * } catch {
 *   threw = true;
 * }
 * if (!threw) throw new Error("escape");
 * ```
 */
export function resolveImagePath(
  root: string,
  rel: string,
  file: string,
  index: number,
  field: string,
): string {
  const fail = (problem: string) =>
    new Error(
      `${file}: record ${index}: field '${field}' ${problem} (image paths must stay inside ` +
        `the image root ${root})`,
    );
  if (rel === "") throw fail("is an empty image path");
  if (rel.includes("\0")) throw fail(`${JSON.stringify(rel)} contains a NUL character`);
  if (isAbsolute(rel) || /^[A-Za-z]:/.test(rel) || rel.startsWith("\\")) {
    throw fail(`${JSON.stringify(rel)} is an absolute path`);
  }
  if (rel.split(/[\\/]/).includes("..")) throw fail(`${JSON.stringify(rel)} contains '..'`);
  return join(root, rel);
}

/** What {@linkcode findMissingImages} found. */
export interface ImageCheck {
  /** The referenced files that do not exist (dangling links included), first reference each. */
  readonly missing: readonly ImageRef[];
  /** How many distinct files were referenced. */
  readonly checked: number;
}

/**
 * Checks every referenced image file under `root` (each distinct path once): a missing file is
 * collected; a file whose real path (after following symbolic links) lies outside `root`, or
 * that is not a regular file, is an error naming `file`, the record and the field. Throws when
 * `root` itself does not exist.
 */
export async function findMissingImages(
  refs: readonly ImageRef[],
  root: string,
  file: string,
): Promise<ImageCheck> {
  let realRoot: string;
  try {
    realRoot = await Deno.realPath(root);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(
        `image root ${root} (for ${file}) does not exist; the images are not distributed with ` +
          `the annotations: put them there, pass another image root, or skip the image check`,
      );
    }
    throw error;
  }
  const seen = new Set<string>();
  const missing: ImageRef[] = [];
  for (const ref of refs) {
    if (seen.has(ref.path)) continue;
    seen.add(ref.path);
    const where = `${file}: record ${ref.index}: field '${ref.field}' (${ref.path})`;
    let real: string;
    try {
      real = await Deno.realPath(ref.path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        missing.push(ref);
        continue;
      }
      throw new Error(`${where}: cannot resolve it: ${String(error)}`, { cause: error });
    }
    const inside = relative(realRoot, real);
    if (inside === "" || inside === ".." || inside.startsWith(".." + sep) || isAbsolute(inside)) {
      throw new Error(
        `${where}: leads outside the image root ${root} (to ${resolve(real)}) through a ` +
          `symbolic link`,
      );
    }
    if (!(await Deno.stat(real)).isFile) throw new Error(`${where}: is not a file`);
  }
  return { missing, checked: seen.size };
}
