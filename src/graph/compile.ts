/**
 * Compiling graphs to `.onnx` files on disk, cached by content hash.
 *
 * ## Where compiled graphs go
 *
 * {@linkcode compileModel} writes `<cacheRoot>/<hash>/model.onnx`, where `cacheRoot` is, in
 * order of precedence: the `cacheDir` option, the `LIVEEDIT_CACHE` environment variable,
 * `$XDG_CACHE_HOME/liveedit/graphs`, or `~/.cache/liveedit/graphs` (see
 * {@linkcode graphCacheRoot}). `<hash>` is the SHA-256 of the serialized model plus the identity
 * (path, resolved path, size, modification time) of every weight file it references, so
 * compiling the same graph again finds the cached file (`cached: true`, nothing rewritten), and
 * a changed weight file gets a fresh entry instead of stale data.
 *
 * ## Weights stay where they are
 *
 * External initializers ({@linkcode Graph.external}, e.g. tensors of a `.safetensors` file) are
 * not copied into the model. ONNX Runtime only loads external data from files inside the
 * model's directory (relative locations, no `..`, no symlinks leading out), so the cache entry
 * holds a hard link to each referenced weight file, named `w-<hash of its path><ext>` — a hard
 * link costs no disk space while the original exists. Symbolic links (as in the Hugging Face hub
 * cache) are resolved first and the link points to the real file.
 *
 * When a hard link is impossible (the cache is on another filesystem, or the filesystem has no
 * hard links), the model is written next to the weights instead, as
 * `<weightsDir>/liveedit-<hash>.onnx`; this needs all weight files in one directory and that
 * directory writable. Otherwise compiling fails with an error naming both remedies: put the
 * cache on the weights' filesystem (`LIVEEDIT_CACHE` or `cacheDir`), or keep the weights in one
 * writable directory.
 *
 * ## Clearing the cache
 *
 * ## Weights that live only in memory
 *
 * A graph can only reference weights that are in a file. Weights that exist only in memory (a
 * freshly initialised editor) are written once into {@linkcode cachedWeightsDir}
 * (`<cacheRoot>/weights/`), named by their content hash, and referenced from there.
 *
 * {@linkcode clearCache} deletes the `<hash>` entries of a cache root (the weights themselves
 * survive: only links are removed) and those cached copies of in-memory weights (written again
 * when needed). Deleting the directory by hand is equally safe. Models written next to weights
 * (`liveedit-<hash>.onnx`) are not tracked; delete them by hand.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { type Dirent, realpathSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { writeFileAtomic } from "../io/atomic.ts";
import type { Graph } from "./ir.ts";
import { type OnnxOptions, type Outputs, toModelProto } from "./onnx.ts";

/** Options of {@linkcode compileModel}: lowering options plus the cache location. */
export interface CompileOptions extends Omit<OnnxOptions, "externalLocation"> {
  /** Cache root; defaults to {@linkcode graphCacheRoot}(). */
  cacheDir?: string;
}

/** A compiled model on disk. */
export interface CompiledModel {
  /** Path of the `.onnx` file, ready for `ort.InferenceSession.create(path)`. */
  path: string;
  /** Hex SHA-256 identifying the model and its weight files. */
  hash: string;
  /** True when the file already existed and nothing was written. */
  cached: boolean;
}

const MODEL_FILE = "model.onnx";
const WEIGHTS_DIR = "weights";
const ENTRY_NAME = /^[0-9a-f]{64}$/;
const NO_HARD_LINK = new Set(["EXDEV", "EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "ENOSYS"]);

/**
 * The cache root used when no directory is given: `LIVEEDIT_CACHE` if set, else
 * `$XDG_CACHE_HOME/liveedit/graphs`, else `~/.cache/liveedit/graphs`. `cacheDir`, when given,
 * wins over all of them.
 *
 * @example
 * ```ts
 * import { graphCacheRoot } from "./compile.ts";
 * if (graphCacheRoot("/tmp/x") !== "/tmp/x") throw new Error("cacheDir wins");
 * ```
 */
export function graphCacheRoot(cacheDir?: string): string {
  if (cacheDir !== undefined && cacheDir !== "") return path.resolve(cacheDir);
  const env = process.env;
  if (env.LIVEEDIT_CACHE) return path.resolve(env.LIVEEDIT_CACHE);
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache");
  return path.resolve(base, "liveedit", "graphs");
}

/**
 * Where copies of weights that exist only in memory are written (see the module docs):
 * `<graphCacheRoot(cacheDir)>/weights`.
 */
export function cachedWeightsDir(cacheDir?: string): string {
  return path.join(graphCacheRoot(cacheDir), WEIGHTS_DIR);
}

/** One referenced weight file. */
interface WeightFile {
  /** The path as given, resolved against the working directory. */
  file: string;
  /** The file after resolving symbolic links. */
  real: string;
  /** Name of its hard link inside a cache entry. */
  link: string;
}

/**
 * Lowers the part of `graph` that `outputs` need to ONNX and stores it in the graph cache (see
 * the module docs for the layout and the fallback next to the weights). Resolves to the model's
 * path, its hash and whether it was already cached.
 *
 * @example
 * ```ts ignore
 * import * as ort from "onnxruntime-node";
 * const { path } = await compileModel(graph, { logits });
 * const session = await ort.InferenceSession.create(path);
 * ```
 */
export async function compileModel(
  graph: Graph,
  outputs: Outputs,
  options: CompileOptions = {},
): Promise<CompiledModel> {
  return await store(graph, outputs, options, lowerForCache(graph, outputs, options));
}

/** A model ready for `LocalSession.create`: its bytes, or the path of its `.onnx` file. */
export interface LoadableModel {
  /** The model's bytes (no weight files referenced) or its path in the graph cache. */
  readonly model: string | Uint8Array;
  /** Hex SHA-256 identifying the model and its weight files (as {@linkcode compileModel}'s). */
  readonly hash: string;
}

/**
 * Lowers the part of `graph` that `outputs` need to ONNX: a model that references weight files
 * ({@linkcode Graph.external}) is stored in the graph cache as by {@linkcode compileModel} (ONNX
 * Runtime reads external data only next to a model file), any other stays in memory and nothing
 * is written. Either way the hash is the one {@linkcode compileModel} gives.
 *
 * @example
 * ```ts ignore
 * const { model, hash } = await compileGraph(graph, { logits });
 * const session = await LocalSession.create(model);
 * ```
 */
export async function compileGraph(
  graph: Graph,
  outputs: Outputs,
  options: CompileOptions = {},
): Promise<LoadableModel> {
  const lowered = lowerForCache(graph, outputs, options);
  if (lowered.files.length === 0) {
    return { model: lowered.bytes, hash: createHash("sha256").update(lowered.bytes).digest("hex") };
  }
  const { path, hash } = await store(graph, outputs, options, lowered);
  return { model: path, hash };
}

/** A model lowered for the cache: its bytes and the weight files it references, sorted. */
interface Lowered {
  readonly bytes: Uint8Array;
  readonly files: WeightFile[];
}

/** Lowers `graph` with each weight file located at its link name inside a cache entry. */
function lowerForCache(graph: Graph, outputs: Outputs, options: CompileOptions): Lowered {
  const { cacheDir: _, ...lowering } = options;
  const weights = new Map<string, WeightFile>();
  const bytes = toModelProto(graph, outputs, {
    ...lowering,
    externalLocation: (file) => {
      const abs = path.resolve(file);
      let entry = weights.get(abs);
      if (entry === undefined) {
        const ext = path.extname(abs) || ".bin";
        entry = { file: abs, real: abs, link: `w-${sha256(abs).slice(0, 16)}${ext}` };
        weights.set(abs, entry);
      }
      return entry.link;
    },
  });
  return { bytes, files: [...weights.values()].sort((a, b) => (a.file < b.file ? -1 : 1)) };
}

/** Stores a lowered model in the graph cache (see the module docs). */
async function store(
  graph: Graph,
  outputs: Outputs,
  options: CompileOptions,
  { bytes, files }: Lowered,
): Promise<CompiledModel> {
  const { cacheDir, ...lowering } = options;
  const identity: string[] = [];
  for (const w of files) {
    try {
      w.real = await fs.realpath(w.file);
      const st = await fs.stat(w.real);
      identity.push(JSON.stringify([w.file, w.real, st.size, st.mtimeMs]));
    } catch (error) {
      throw new Error(`compileModel: weight file ${w.file} cannot be read: ${message(error)}`, {
        cause: error,
      });
    }
  }
  const hash = createHash("sha256").update(bytes).update(identity.join("\n")).digest("hex");

  const entry = path.join(graphCacheRoot(cacheDir), hash);
  const modelPath = path.join(entry, MODEL_FILE);
  if (await allExist([modelPath, ...files.map((w) => path.join(entry, w.link))])) {
    return { path: modelPath, hash, cached: true };
  }
  await fs.mkdir(entry, { recursive: true });
  for (const w of files) {
    const reason = await hardLink(w.real, path.join(entry, w.link));
    if (reason !== undefined) {
      await fs.rm(entry, { recursive: true, force: true });
      return await besideWeights(graph, outputs, lowering, files, hash, entry, reason);
    }
  }
  await writeFileAtomic(modelPath, bytes);
  return { path: modelPath, hash, cached: false };
}

/**
 * Hard-links `target` as `link` (replacing a stale `link`). Resolves to undefined on success,
 * or to the error code when the filesystem cannot hard-link there; other errors are thrown.
 */
async function hardLink(target: string, link: string): Promise<string | undefined> {
  try {
    await fs.link(target, link);
    return undefined;
  } catch (error) {
    const code = errorCode(error);
    if (code === "EEXIST") {
      const [a, b] = await Promise.all([fs.stat(target), fs.stat(link)]);
      if (a.dev === b.dev && a.ino === b.ino) return undefined;
      await fs.rm(link, { force: true });
      return await hardLink(target, link);
    }
    if (code !== undefined && NO_HARD_LINK.has(code)) return code;
    throw new Error(
      `compileModel: cannot hard-link weight file ${target} as ${link}: ${message(error)}`,
      { cause: error },
    );
  }
}

/** The fallback: writes the model into the one directory that holds all weight files. */
async function besideWeights(
  graph: Graph,
  outputs: Outputs,
  lowering: Omit<CompileOptions, "cacheDir">,
  files: WeightFile[],
  hash: string,
  entry: string,
  reason: string,
): Promise<CompiledModel> {
  const dirs = [...new Set(files.map((w) => path.dirname(w.real)))];
  const remedy = `Put the graph cache on the same filesystem as the weights (set LIVEEDIT_CACHE ` +
    `or the cacheDir option), or keep all weight files in one writable directory.`;
  if (dirs.length !== 1) {
    throw new Error(
      `compileModel: cannot hard-link the weight files into the graph cache ${entry} (${reason}), ` +
        `and they are spread over ${dirs.length} directories (${dirs.join(", ")}), so the model ` +
        `cannot be written next to them either; ONNX Runtime only loads external data from the ` +
        `model's directory. ${remedy}`,
    );
  }
  const modelPath = path.join(dirs[0], `liveedit-${hash}.onnx`);
  if (await allExist([modelPath])) return { path: modelPath, hash, cached: true };
  const real = new Map(files.map((w) => [w.file, w.real]));
  const beside = relativeTo(dirs[0]);
  const bytes = toModelProto(graph, outputs, {
    ...lowering,
    externalLocation: (file) => beside(real.get(path.resolve(file))!),
  });
  try {
    await writeFileAtomic(modelPath, bytes);
  } catch (error) {
    throw new Error(
      `compileModel: cannot hard-link the weight files into the graph cache ${entry} (${reason}), ` +
        `and writing the model next to them as ${modelPath} failed: ${message(error)}. ${remedy}`,
      { cause: error },
    );
  }
  return { path: modelPath, hash, cached: false };
}

/**
 * The `externalLocation` of a model that will be written into directory `base`: each weight
 * file's path relative to `base`, with `/` separators. Throws when a file is not below `base`,
 * lexically or after resolving symbolic links, since ONNX Runtime refuses to load such
 * external data.
 *
 * @example
 * ```ts ignore
 * const bytes = toModelProto(graph, { y }, { externalLocation: relativeTo(dir) });
 * await Deno.writeFile(`${dir}/model.onnx`, bytes);
 * ```
 */
export function relativeTo(base: string): (file: string) => string {
  return (file) => {
    const what = `weight file ${file}`;
    const rel = path.relative(path.resolve(base), path.resolve(file));
    const outside = (r: string) =>
      r === "" || r === ".." || r.startsWith(`..${path.sep}`) || path.isAbsolute(r);
    if (outside(rel)) {
      throw new Error(
        `${what} is not inside ${base}, the directory of the model; ONNX Runtime only loads ` +
          `external data from the model's directory or below (no absolute paths, no ".."). ` +
          `Write the model next to the weights, or use compileModel, which hard-links them.`,
      );
    }
    let real: string | undefined;
    try {
      real = path.relative(realpathSync(base), realpathSync(file));
    } catch {
      real = undefined; // not on disk yet: only the lexical check applies
    }
    if (real !== undefined && outside(real)) {
      throw new Error(
        `${what} resolves through a symbolic link to a file outside ${base}; ONNX Runtime ` +
          `refuses external data reached through links leading out of the model's directory. ` +
          `Use a hard link or a copy instead.`,
      );
    }
    return rel.split(path.sep).join("/");
  };
}

/**
 * Deletes every compiled graph (`<hash>` entry) and every cached copy of in-memory weights
 * ({@linkcode cachedWeightsDir}) under the cache root ({@linkcode graphCacheRoot}`(cacheDir)`)
 * and resolves to how many were deleted. Other files in that directory are left alone, and so
 * are the weight files the entries linked to and models written next to weights.
 *
 * @example
 * ```ts ignore
 * const removed = await clearCache(); // the default cache root
 * ```
 */
export async function clearCache(cacheDir?: string): Promise<number> {
  const root = graphCacheRoot(cacheDir);
  let entries: Dirent[];
  try {
    entries = await fs.readdir(root, { withFileTypes: true });
  } catch (error) {
    if (errorCode(error) === "ENOENT") return 0;
    throw new Error(`clearCache: cannot list ${root}: ${message(error)}`, { cause: error });
  }
  let removed = 0;
  for (const e of entries) {
    if (e.isDirectory() && ENTRY_NAME.test(e.name)) {
      await fs.rm(path.join(root, e.name), { recursive: true, force: true });
      removed++;
    }
  }
  const copies = path.join(root, WEIGHTS_DIR);
  for (const name of await fs.readdir(copies).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{64}\.safetensors$/.test(name)) continue;
    await fs.rm(path.join(copies, name), { force: true });
    removed++;
  }
  return removed;
}

async function allExist(paths: string[]): Promise<boolean> {
  for (const p of paths) {
    try {
      await fs.stat(p);
    } catch {
      return false;
    }
  }
  return true;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

function errorCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
