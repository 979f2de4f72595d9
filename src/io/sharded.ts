/**
 * Checkpoints that may be split into shards: a directory with `model.safetensors.index.json`
 * (`{"metadata": {...}, "weight_map": {name: shard file}}`) or a single `model.safetensors`.
 * {@linkcode openCheckpoint} returns one {@linkcode Checkpoint} that resolves each tensor name
 * to its shard and opens shards lazily.
 *
 * @module
 */
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Tensor } from "../tensor/tensor.ts";
import { SafetensorsFile, type SafetensorsTensorInfo } from "./safetensors.ts";
import { isPlainObject } from "./json.ts";
import { didYouMean } from "./safetensors/suggest.ts";

/** Name of the shard index file of a sharded checkpoint. */
export const INDEX_FILE = "model.safetensors.index.json";
/** Name of the single file of an unsharded checkpoint. */
export const SINGLE_FILE = "model.safetensors";

/** Where one tensor of a checkpoint lives: its shard and the offsets within it. */
export interface CheckpointTensorInfo extends SafetensorsTensorInfo {
  /** Path of the shard file holding the tensor (the directory joined with the shard name). */
  readonly file: string;
}

/** A checkpoint (sharded or single-file) that reads tensors by name. */
export interface Checkpoint {
  /** The directory (or file) the checkpoint was opened from. */
  readonly path: string;
  /** Path of the index file, or `undefined` for a single-file checkpoint. */
  readonly indexPath: string | undefined;
  /**
   * The index's `metadata` (e.g. `total_size`), or the single file's `__metadata__`; empty
   * when absent.
   */
  readonly metadata: Readonly<Record<string, unknown>>;
  /** Paths of all shard files, in order of first appearance. */
  readonly shards: readonly string[];
  /** All tensor names (index order for a sharded checkpoint, file order for a single file). */
  listTensors(): string[];
  /** True when the checkpoint has a tensor called `name`. */
  has(name: string): boolean;
  /** Path of the shard holding `name`; throws naming the checkpoint and `name` if absent. */
  shardOf(name: string): string;
  /**
   * Where `name` lives, opening its shard if needed. Throws naming the checkpoint and `name`
   * when it is unknown, and the index, shard and `name` when the shard lacks it.
   */
  info(name: string): Promise<CheckpointTensorInfo>;
  /** {@linkcode Checkpoint.info} for every tensor, in {@linkcode Checkpoint.listTensors} order. */
  tensors(): Promise<CheckpointTensorInfo[]>;
  /** Reads tensor `name` from its shard (see {@linkcode SafetensorsFile.read}). */
  read(name: string): Promise<Tensor>;
  /** Reads tensor `name` as float32 (see {@linkcode SafetensorsFile.readAs}). */
  readAs(name: string, dtype: "f32"): Promise<Tensor<"f32">>;
  /** Closes every open shard (and shards still opening); later reads fail. */
  close(): void;
}

/**
 * Opens the checkpoint at `path`: a directory holding `model.safetensors.index.json` (preferred)
 * or `model.safetensors`, or the path of an index `.json` or a `.safetensors` file itself. The
 * index is validated (a `weight_map` of tensor name to shard file name inside the directory, an
 * optional `metadata` object) and every shard must exist; shard headers are read only when a
 * tensor in them is first needed.
 *
 * @example
 * ```ts
 * import { openCheckpoint } from "./sharded.ts";
 * import { writeSafetensors } from "./safetensors.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/model.safetensors`, {
 *   b: new Tensor("f32", [1], new Float32Array([3])),
 * });
 * const ckpt = await openCheckpoint(dir);
 * if ((await ckpt.read("b")).data[0] !== 3) throw new Error("read");
 * ckpt.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function openCheckpoint(path: string): Promise<Checkpoint> {
  const stat = await statOrUndefined(path);
  if (stat === undefined) throw new Error(`checkpoint ${path} does not exist`);
  if (stat.isFile) {
    return path.endsWith(".json") ? await openIndex(path, path) : await openSingle(path, path);
  }
  const index = join(path, INDEX_FILE);
  if ((await statOrUndefined(index))?.isFile) return await openIndex(path, index);
  const single = join(path, SINGLE_FILE);
  if ((await statOrUndefined(single))?.isFile) return await openSingle(path, single);
  throw new Error(`checkpoint directory ${path} has neither ${INDEX_FILE} nor ${SINGLE_FILE}`);
}

async function openSingle(path: string, file: string): Promise<Checkpoint> {
  const st = await SafetensorsFile.open(file);
  const names = st.tensors().map((t) => t.name);
  return new ShardedCheckpoint(
    path,
    undefined,
    st.metadata,
    new Map(names.map((n) => [n, file])),
    st,
  );
}

async function openIndex(path: string, indexPath: string): Promise<Checkpoint> {
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(indexPath));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`checkpoint index ${indexPath}: cannot read it as JSON: ${reason}`, {
      cause: error,
    });
  }
  const fail = (problem: string) => new Error(`checkpoint index ${indexPath}: ${problem}`);
  if (!isPlainObject(json)) throw fail("must be a JSON object");
  const metadata = json.metadata ?? {};
  if (!isPlainObject(metadata)) throw fail(`"metadata" must be an object`);
  const weightMap = json.weight_map;
  if (!isPlainObject(weightMap)) throw fail(`"weight_map" must be an object`);
  const dir = resolve(dirname(indexPath));
  const shardOf = new Map<string, string>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== "string" || shard === "") {
      throw fail(`weight_map[${JSON.stringify(name)}] must be a shard file name`);
    }
    const inside = relative(dir, resolve(dir, shard));
    if (isAbsolute(shard) || inside === "" || inside === ".." || inside.startsWith(".." + sep)) {
      throw fail(
        `weight_map[${JSON.stringify(name)}] = ${
          JSON.stringify(shard)
        } must name a file inside ${dir}`,
      );
    }
    shardOf.set(name, join(dirname(indexPath), shard));
  }
  const shards = [...new Set(shardOf.values())];
  const missing: string[] = [];
  for (const shard of shards) {
    if (!(await statOrUndefined(shard))?.isFile) missing.push(basename(shard));
  }
  if (missing.length > 0) {
    throw fail(
      `${missing.length} of ${shards.length} shard(s) missing from ${dirname(indexPath)}: ${
        missing.slice(0, 5).join(", ")
      }${missing.length > 5 ? ", ..." : ""}`,
    );
  }
  return new ShardedCheckpoint(path, indexPath, metadata, shardOf, undefined);
}

class ShardedCheckpoint implements Checkpoint {
  readonly path: string;
  readonly indexPath: string | undefined;
  readonly metadata: Readonly<Record<string, unknown>>;
  readonly shards: readonly string[];
  readonly #shardOf: ReadonlyMap<string, string>;
  readonly #open = new Map<string, Promise<SafetensorsFile>>();
  readonly #opened: SafetensorsFile[] = [];
  #closed = false;

  constructor(
    path: string,
    indexPath: string | undefined,
    metadata: Readonly<Record<string, unknown>>,
    shardOf: ReadonlyMap<string, string>,
    single: SafetensorsFile | undefined,
  ) {
    this.path = path;
    this.indexPath = indexPath;
    this.metadata = Object.freeze({ ...metadata });
    this.#shardOf = shardOf;
    this.shards = Object.freeze([...new Set(shardOf.values())]);
    if (single !== undefined) {
      this.#opened.push(single);
      this.#open.set(single.path, Promise.resolve(single));
    }
  }

  listTensors(): string[] {
    return [...this.#shardOf.keys()];
  }

  has(name: string): boolean {
    return this.#shardOf.has(name);
  }

  shardOf(name: string): string {
    const shard = this.#shardOf.get(name);
    if (shard === undefined) {
      throw new Error(
        `checkpoint ${this.path}: no tensor ${JSON.stringify(name)} among ${this.#shardOf.size}${
          didYouMean(name, this.#shardOf.keys())
        }`,
      );
    }
    return shard;
  }

  async info(name: string): Promise<CheckpointTensorInfo> {
    const file = await this.#fileOf(name);
    return { ...file.info(name), file: file.path };
  }

  async tensors(): Promise<CheckpointTensorInfo[]> {
    const out: CheckpointTensorInfo[] = [];
    for (const name of this.#shardOf.keys()) out.push(await this.info(name));
    return out;
  }

  async read(name: string): Promise<Tensor> {
    return await (await this.#fileOf(name)).read(name);
  }

  async readAs(name: string, dtype: "f32"): Promise<Tensor<"f32">> {
    return await (await this.#fileOf(name)).readAs(name, dtype);
  }

  close(): void {
    this.#closed = true;
    for (const file of this.#opened) file.close();
  }

  /** The open shard holding `name`, checked to contain it. */
  async #fileOf(name: string): Promise<SafetensorsFile> {
    const shard = this.shardOf(name);
    if (this.#closed) throw new Error(`checkpoint ${this.path}: read after close()`);
    let pending = this.#open.get(shard);
    if (pending === undefined) {
      pending = SafetensorsFile.open(shard).then((file) => {
        if (this.#closed) file.close();
        else this.#opened.push(file);
        return file;
      });
      this.#open.set(shard, pending);
      pending.catch(() => this.#open.delete(shard));
    }
    const file = await pending;
    if (!file.has(name)) {
      throw new Error(
        `checkpoint index ${this.indexPath}: maps tensor ${JSON.stringify(name)} to shard ${
          JSON.stringify(basename(shard))
        }, but ${shard} has no such tensor${didYouMean(name, file.tensors().map((t) => t.name))}`,
      );
    }
    return file;
  }
}

async function statOrUndefined(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}
