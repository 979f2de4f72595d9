/**
 * Image paths of annotation records: resolving a relative path from the JSON under the image
 * root without letting it escape (no absolute paths, no `..` segments, and, when the files are
 * checked, no symbolic link that leads outside the root, then or when the image is read), and
 * checking every referenced file before any work: it exists, and its header is that of an
 * allowed image type within the pixel limit (`src/io/image_file.ts`).
 *
 * @module
 */
import { isAbsolute, join } from "node:path";
import { confineImagesTo, ImageError, imageLimits, probeImage } from "../io/image_file.ts";
import { DataError } from "./errors.ts";

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
    new DataError(
      file,
      { record: index, field },
      `${problem} (image paths must stay inside the image root ${root})`,
    );
  if (rel === "") throw fail("is an empty image path");
  if (rel.includes("\0")) throw fail(`${JSON.stringify(rel)} contains a NUL character`);
  if (isAbsolute(rel) || /^[A-Za-z]:/.test(rel) || rel.startsWith("\\")) {
    throw fail(`${JSON.stringify(rel)} is an absolute path`);
  }
  if (rel.split(/[\\/]/).includes("..")) throw fail(`${JSON.stringify(rel)} contains '..'`);
  return join(root, rel);
}

/** An image file that failed its check. */
export interface ImageProblem {
  /** The first reference to it. */
  readonly ref: ImageRef;
  /** True when the file does not exist (a dangling link included). */
  readonly missing: boolean;
  /** The error, naming the annotation file, the record and the field. */
  readonly error: DataError;
}

/** What {@linkcode checkImageFiles} found. */
export interface ImageCheck {
  /** The files that failed, first reference each, in reference order. */
  readonly problems: readonly ImageProblem[];
  /** How many distinct files were referenced. */
  readonly checked: number;
}

/** How many image headers are read at once. */
const CONCURRENCY = 8;

/**
 * Checks every image file referenced by `refs` (from annotation file `file`) once: it must exist
 * inside `root` (symbolic links may not lead out of it), be a regular file, and have the header
 * of an allowed type within the pixel limit (only the header is read). Registers `root` with
 * the image reader, so that reading these files later is confined to it too. Throws a
 * {@linkcode DataError} when `root` does not exist.
 */
export async function checkImageFiles(
  refs: readonly ImageRef[],
  root: string,
  file: string,
): Promise<ImageCheck> {
  try {
    if (!(await Deno.stat(root)).isDirectory) {
      throw new DataError(file, {}, `the image root ${root} is not a directory`);
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new DataError(
      file,
      {},
      `the image root ${root} does not exist; the images are not distributed with the ` +
        `annotations: put them there, pass another image root, or skip the image check`,
    );
  }
  confineImagesTo(root);
  const first = new Map<string, ImageRef>();
  for (const ref of refs) if (!first.has(ref.path)) first.set(ref.path, ref);
  const unique = [...first.values()];
  const found: (ImageProblem | undefined)[] = new Array(unique.length);
  const limits = imageLimits();
  let next = 0;
  const worker = async () => {
    while (next < unique.length) {
      const i = next++, ref = unique[i];
      try {
        await probeImage(ref.path, limits);
      } catch (error) {
        if (!(error instanceof ImageError)) throw error;
        found[i] = {
          ref,
          missing: error.cause instanceof Deno.errors.NotFound,
          error: new DataError(
            file,
            { record: ref.index, field: ref.field },
            `(${ref.path}) ${error.problem}`,
            { cause: error },
          ),
        };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, unique.length) }, worker));
  return { problems: found.filter((p) => p !== undefined), checked: unique.length };
}
