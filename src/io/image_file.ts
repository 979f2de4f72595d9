/**
 * Reading image files safely: the type is detected from the content (never the extension),
 * only the allowed types are handed to the decoder, the pixel count is capped before decoding,
 * and files under a registered image root are opened without following symbolic links out of
 * that root, at read time.
 *
 * - Types: PNG, JPEG and WebP by default; SVG only when asked (`types`), since an SVG of a few
 *   bytes can ask to be rendered at any size. Anything else (GIF, TIFF, HEIF, text, ...) is an
 *   error naming the file and what its first bytes look like.
 * - Pixels: at most `maxPixels` (default 50 megapixels; the models look at 224–448 px images),
 *   read from the header before anything is decoded, and passed to the decoder as its limit too.
 * - Size: a file larger than 8 bytes per allowed pixel plus 16 MiB is refused unread.
 * - Roots ({@linkcode confineImagesTo}): a path lexically under a registered root must, when it
 *   is read, resolve (symbolic links followed) to a file inside the root's real path, and the
 *   file opened must be that file (same device and inode), so a link swapped in between the
 *   check and the open is caught too.
 *
 * What cannot be detected: a hard link inside the root to a file outside it is that file, as
 * far as the filesystem says; so is a file reached through a bind mount. Keep image roots
 * writable only by those who may read every file the links could reach.
 *
 * The limits ({@linkcode setImageLimits}) and the roots are the process's image policy, like
 * sharp's own limits: the tasks set them from their flags (`--max-image-pixels`,
 * `--allow-svg`), the data set loaders register their image roots.
 *
 * @module
 */
import sharp from "sharp";
import { isAbsolute, relative, resolve, sep } from "node:path";

/** The image file types the reader knows. */
export const IMAGE_TYPES = ["png", "jpeg", "webp", "svg"] as const;
/** One of {@linkcode IMAGE_TYPES}. */
export type ImageType = typeof IMAGE_TYPES[number];

/** What may be decoded. */
export interface ImageLimits {
  /** The most pixels (width × height) an image may have. */
  readonly maxPixels: number;
  /** The types that may be decoded. */
  readonly types: readonly ImageType[];
}

/** The default limits: 50 megapixels; PNG, JPEG and WebP. */
export const DEFAULT_IMAGE_LIMITS: ImageLimits = Object.freeze({
  maxPixels: 50_000_000,
  types: Object.freeze(["png", "jpeg", "webp"] as const),
});

/** An image file that cannot be used; the message names the file. */
export class ImageError extends Error {
  /** The file (or the name of the in-memory image). */
  readonly file: string;
  /** The problem alone, without the file. */
  readonly problem: string;

  /** Builds the message `image <file>: <problem>`. */
  constructor(file: string, problem: string, options?: ErrorOptions) {
    super(`image ${file}: ${problem}`, options);
    this.name = "ImageError";
    this.file = file;
    this.problem = problem;
  }
}

let limits: ImageLimits = DEFAULT_IMAGE_LIMITS;
const roots = new Set<string>();

/** The process's image limits. */
export function imageLimits(): ImageLimits {
  return limits;
}

/**
 * Sets the process's image limits (unset fields keep their default) and returns them. Throws
 * for a pixel limit that is not an integer >= 1 or an unknown type.
 */
export function setImageLimits(options: Partial<ImageLimits>): ImageLimits {
  const maxPixels = options.maxPixels ?? DEFAULT_IMAGE_LIMITS.maxPixels;
  const types = options.types ?? DEFAULT_IMAGE_LIMITS.types;
  if (!Number.isSafeInteger(maxPixels) || maxPixels < 1) {
    throw new Error(`image pixel limit must be an integer >= 1, got ${maxPixels}`);
  }
  for (const t of types) {
    if (!(IMAGE_TYPES as readonly string[]).includes(t)) {
      throw new Error(`unknown image type ${JSON.stringify(t)} (known: ${IMAGE_TYPES.join(", ")})`);
    }
  }
  limits = Object.freeze({ maxPixels, types: Object.freeze([...types]) });
  return limits;
}

/**
 * Registers `root` as an image root: from now on every file read through this module whose
 * path lies (lexically) under `root` must resolve inside it when it is read.
 */
export function confineImagesTo(root: string): void {
  roots.add(resolve(root));
}

/** What the header of an image says. */
export interface ImageHeader {
  /** The type, from the content. */
  readonly type: ImageType;
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
}

/**
 * The type of an image from its first bytes, or undefined when it is none of
 * {@linkcode IMAGE_TYPES}.
 *
 * @example
 * ```ts
 * import { detectImageType } from "./image_file.ts";
 * const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
 * if (detectImageType(png) !== "png") throw new Error("png");
 * if (detectImageType(new TextEncoder().encode("<svg width='9'/>")) !== "svg") throw new Error();
 * ```
 */
export function detectImageType(head: Uint8Array): ImageType | undefined {
  const starts = (bytes: number[], at = 0) => bytes.every((b, i) => head[at + i] === b);
  if (starts([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "png";
  if (starts([0xff, 0xd8, 0xff])) return "jpeg";
  if (starts([0x52, 0x49, 0x46, 0x46]) && starts([0x57, 0x45, 0x42, 0x50], 8)) return "webp";
  const text = new TextDecoder().decode(head.subarray(0, 1024)).replace(/^\uFEFF/, "");
  if (/^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]/i.test(text)) {
    return "svg";
  }
  return undefined;
}

/** What {@linkcode readImageFile} returns: the bytes and their header. */
export interface ImageFile extends ImageHeader {
  /** The whole file. */
  readonly bytes: Uint8Array;
}

/** Bytes read for a header check before reading on. */
const HEAD_BYTES = 256 * 1024;

/**
 * Checks the header of image file `path` (type, dimensions, pixel limit), reading only its
 * first bytes where that suffices. Throws an {@linkcode ImageError} naming the file.
 */
export async function probeImage(
  path: string,
  options: ImageLimits = imageLimits(),
): Promise<ImageHeader> {
  return await withImageFile(path, options, async (read, size) => {
    const head = await read(Math.min(size, HEAD_BYTES));
    try {
      return await checkHeader(path, head, options);
    } catch (error) {
      // a header beyond the first bytes (a JPEG with a large EXIF block): read on
      if (size <= head.length || !(error instanceof ImageError)) throw error;
      return await checkHeader(path, await read(size), options);
    }
  });
}

/**
 * Reads image file `path` whole after checking its header (see {@linkcode probeImage}). Throws
 * an {@linkcode ImageError} naming the file.
 */
export async function readImageFile(
  path: string,
  options: ImageLimits = imageLimits(),
): Promise<ImageFile> {
  return await withImageFile(path, options, async (read, size) => {
    const bytes = await read(size);
    return { ...await checkHeader(path, bytes, options), bytes };
  });
}

/**
 * Checks the header of an encoded image held in memory (`bytes`, called `name` in errors):
 * type from the content, allowed type, dimensions and pixel limit.
 */
export async function checkHeader(
  name: string,
  bytes: Uint8Array,
  options: ImageLimits = imageLimits(),
): Promise<ImageHeader> {
  const type = detectImageType(bytes);
  if (type === undefined || !options.types.includes(type)) {
    const what = type === undefined
      ? `not a ${IMAGE_TYPES.join(", ")} image`
      : `an image of type ${type}`;
    throw new ImageError(
      name,
      `is ${what} (from its content; first bytes ${describeHead(bytes)}); allowed: ` +
        `${options.types.join(", ")}${type === "svg" ? " (SVG only when asked for)" : ""}`,
    );
  }
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>>;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (error) {
    throw new ImageError(name, `cannot read its ${type} header: ${messageOf(error)}`, {
      cause: error,
    });
  }
  const { width, height } = meta;
  if (meta.format !== type) {
    throw new ImageError(name, `looks like ${type} but decodes as ${meta.format}`);
  }
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
    throw new ImageError(name, `has no valid size in its header (${width}x${height})`);
  }
  if (width * height > options.maxPixels) {
    throw new ImageError(
      name,
      `is ${width}x${height} = ${width * height} pixels, over the limit of ${options.maxPixels} ` +
        "(raise it with --max-image-pixels)",
    );
  }
  return { type, width, height };
}

/** The largest file read for `options`: 8 bytes per allowed pixel plus 16 MiB. */
function maxFileBytes(options: ImageLimits): number {
  return options.maxPixels * 8 + 16 * 2 ** 20;
}

/**
 * Opens `path` (confined to its image root, if any), checks it is a regular file of an
 * acceptable size, and runs `use` with a reader of its first `n` bytes.
 */
async function withImageFile<T>(
  path: string,
  options: ImageLimits,
  use: (read: (n: number) => Promise<Uint8Array>, size: number) => Promise<T>,
): Promise<T> {
  let file: Deno.FsFile;
  try {
    // Not opened unless it is a regular file: opening a FIFO would wait for a writer.
    if (!(await Deno.stat(path)).isFile) throw new ImageError(path, "is not a regular file");
    file = await Deno.open(path, { read: true });
  } catch (error) {
    if (error instanceof ImageError) throw error;
    if (error instanceof Deno.errors.NotFound) {
      throw new ImageError(path, "does not exist", { cause: error });
    }
    throw new ImageError(path, `cannot open it: ${messageOf(error)}`, { cause: error });
  }
  try {
    const info = await file.stat();
    if (!info.isFile) throw new ImageError(path, "is not a regular file");
    await checkConfined(path, info);
    if (info.size > maxFileBytes(options)) {
      throw new ImageError(
        path,
        `is ${info.size} bytes, more than an image of ${options.maxPixels} pixels needs`,
      );
    }
    return await use(async (n) => {
      const out = new Uint8Array(n);
      await file.seek(0, Deno.SeekMode.Start);
      let done = 0;
      while (done < n) {
        const got = await file.read(out.subarray(done));
        if (got === null) break;
        done += got;
      }
      return out.subarray(0, done);
    }, info.size);
  } finally {
    file.close();
  }
}

/**
 * When `path` lies under a registered image root: checks that it resolves inside the root's
 * real path and that the file opened (`opened`) is the one it resolves to.
 */
async function checkConfined(path: string, opened: Deno.FileInfo): Promise<void> {
  const abs = resolve(path);
  const root = [...roots].find((r) => isInside(r, abs));
  if (root === undefined) return;
  const fail = (problem: string) =>
    new ImageError(path, `${problem} (image files must stay inside the image root ${root})`);
  let realRoot: string, real: string;
  try {
    realRoot = await Deno.realPath(root);
    real = await Deno.realPath(abs);
  } catch (error) {
    throw fail(`cannot be resolved: ${messageOf(error)}`);
  }
  if (!isInside(realRoot, real)) {
    throw fail(`leads outside the image root (to ${real}) through a symbolic link`);
  }
  const target = await Deno.stat(real);
  if (opened.ino !== null && (target.ino !== opened.ino || target.dev !== opened.dev)) {
    throw fail("was replaced while being opened (a symbolic link swapped in?)");
  }
}

/** True when `path` is `root` or below it (both absolute). */
function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== "" && rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

/** The first bytes of `bytes` in hex, for errors. */
function describeHead(bytes: Uint8Array): string {
  if (bytes.length === 0) return "none (empty file)";
  return [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
