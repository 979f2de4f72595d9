/**
 * Sharded evaluation: the chunks of a sequential evaluation are independent (the model is
 * restored between them), so shard `I` of `N` evaluates the chunks whose index is `I` modulo
 * `N` (`test-edit --shard I/N`, or `--shards N` on a Kubernetes Indexed Job) into a shard
 * directory, and {@linkcode mergeShards} puts complete sets of shards back together in the
 * original chunk order.
 *
 * A shard directory (`<result dir>.shards/shard-<I>-of-<N>/` by default) holds
 * - `shard.json`: `{ format, version, shard, shards, chunks, evaluation, run }`: the chunk
 *   indices it holds, the evaluation it belongs to (every setting that must be the same for all
 *   shards: the test-edit `config.json` without the devices, times and command line) and how it
 *   ran (devices, start and end, command line);
 * - `results.json`: `[{ chunk, results }]`, the per-sample results of its chunks at full
 *   precision (the merge rounds once, as a single run does);
 * - `edited_states/` with `-saveckpt`: `chunk_<c>.safetensors` named as a single run names them.
 *
 * It is written as a whole (`src/io/atomic_dir.ts`): it exists complete or not at all, so a
 * shard that fails leaves nothing, and a repeated shard finds its complete directory and has
 * nothing to do.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beginDir, type PendingDir } from "../io/atomic_dir.ts";
import { writeJsonAtomic } from "../io/atomic.ts";
import { isPlainObject } from "../io/json.ts";
import { type ResultConfig, writeResultFiles } from "./output.ts";
import type { MeanResultsFile, SampleResult } from "./results.ts";

/** Shard `index` of `count` (0 <= index < count). */
export interface ShardSpec {
  /** This shard's index. */
  readonly index: number;
  /** Shards in all. */
  readonly count: number;
}

/** `shard.json`'s `format`. */
export const SHARD_FORMAT = "liveedit-eval-shard";
/** `shard.json`'s `version`. */
export const SHARD_VERSION = 1;
/** The description of a shard in its directory. */
export const SHARD_FILE = "shard.json";
/** The results of a shard's chunks. */
export const SHARD_RESULTS_FILE = "results.json";
/** The edited states (`-saveckpt`) of a shard's chunks, and of a merged evaluation. */
export const STATES_DIR = "edited_states";

/** Whether chunk `chunk` belongs to `shard` (its index is `shard.index` modulo `shard.count`). */
export function inShard(chunk: number, shard: ShardSpec): boolean {
  return chunk % shard.count === shard.index;
}

/** The chunks of `shard` among `total` chunks, in order. */
export function shardChunks(shard: ShardSpec, total: number): number[] {
  const out: number[] = [];
  for (let c = shard.index; c < total; c += shard.count) out.push(c);
  return out;
}

/** `shard-<I>-of-<N>`. */
export function shardDirName(shard: ShardSpec): string {
  return `shard-${shard.index}-of-${shard.count}`;
}

/** Where shard `shard` of the evaluation written to `resultDir` goes by default. */
export function defaultShardDir(resultDir: string, shard: ShardSpec): string {
  return join(`${resultDir}.shards`, shardDirName(shard));
}

/** The name of chunk `chunk`'s edited state among `total` chunks (`chunk_<c>.safetensors`). */
export function stateFileName(chunk: number, total: number): string {
  const width = String(Math.max(total - 1, 0)).length;
  return `chunk_${String(chunk).padStart(width, "0")}.safetensors`;
}

/** How a shard ran (kept in `shard.json`; not compared between shards). */
export interface ShardRun {
  /** The devices (`-dvc`). */
  readonly device: string;
  /** ISO start time. */
  readonly started: string;
  /** ISO end time. */
  readonly finished: string;
  /** The command line. */
  readonly argv: readonly string[];
}

/** One evaluated chunk. */
export interface ChunkResults {
  /** The chunk's index among all chunks of the evaluation. */
  readonly chunk: number;
  /** Its per-sample results. */
  readonly results: readonly SampleResult[];
}

/** A shard as read from its directory. */
export interface Shard extends ShardSpec {
  /** The directory. */
  readonly dir: string;
  /** The evaluation it belongs to (see the module documentation). */
  readonly evaluation: Readonly<Record<string, unknown>>;
  /** How it ran. */
  readonly run: ShardRun;
  /** Its chunks, in order. */
  readonly chunks: readonly ChunkResults[];
}

/**
 * Starts writing the shard directory `dir` (see the module documentation): files go into
 * `pending.tmp` (the edited states into `pending.tmp/edited_states/`); {@linkcode finishShard}
 * writes the rest and moves it into place. `replace` replaces an existing directory.
 */
export function beginShard(dir: string, replace: boolean): Promise<PendingDir> {
  return beginDir(dir, { replace });
}

/** Writes `shard.json` and `results.json` into `pending` and commits it. */
export async function finishShard(
  pending: PendingDir,
  shard: ShardSpec,
  evaluation: Readonly<Record<string, unknown>>,
  run: ShardRun,
  chunks: readonly ChunkResults[],
): Promise<void> {
  await writeJsonAtomic(join(pending.tmp, SHARD_RESULTS_FILE), chunks);
  await writeJsonAtomic(join(pending.tmp, SHARD_FILE), {
    format: SHARD_FORMAT,
    version: SHARD_VERSION,
    shard: shard.index,
    shards: shard.count,
    chunks: chunks.map((c) => c.chunk),
    evaluation,
    run,
  });
  await pending.commit();
}

/** Reads a JSON file, naming it in errors. */
async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      throw new Error(`${path} is missing: not a complete shard directory`);
    }
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not JSON: ${(error as Error).message}`);
  }
}

/** A non-negative integer, or an error naming `what`. */
function index(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new Error(`${what} must be an integer >= 0, got ${JSON.stringify(value)}`);
  }
  return value as number;
}

/**
 * Reads and checks the shard directory `dir`: its format, its index, its chunks (each with
 * `sequential_edit_n` results) and that `results.json` holds exactly the chunks `shard.json`
 * lists. Errors name the file and the field.
 */
export async function readShard(dir: string): Promise<Shard> {
  const metaPath = join(dir, SHARD_FILE), resultsPath = join(dir, SHARD_RESULTS_FILE);
  const meta = await readJson(metaPath);
  if (!isPlainObject(meta) || meta.format !== SHARD_FORMAT) {
    throw new Error(`${metaPath}: not a ${SHARD_FORMAT} file`);
  }
  if (meta.version !== SHARD_VERSION) {
    throw new Error(`${metaPath}: version ${meta.version}, this reads ${SHARD_VERSION}`);
  }
  const count = index(meta.shards, `${metaPath}: shards`);
  const shard = index(meta.shard, `${metaPath}: shard`);
  if (shard >= count) throw new Error(`${metaPath}: shard ${shard} of ${count}`);
  if (!isPlainObject(meta.evaluation) || !isPlainObject(meta.run)) {
    throw new Error(`${metaPath}: evaluation and run must be objects`);
  }
  const listed = Array.isArray(meta.chunks)
    ? meta.chunks.map((c, i) => index(c, `${metaPath}: chunks[${i}]`))
    : [];
  const n = meta.evaluation.sequential_edit_n;
  const results = await readJson(resultsPath);
  if (!Array.isArray(results)) throw new Error(`${resultsPath}: must be a list of chunks`);
  const chunks = results.map((entry, i): ChunkResults => {
    const what = `${resultsPath}: entry ${i}`;
    if (!isPlainObject(entry) || !Array.isArray(entry.results)) {
      throw new Error(`${what} must be { chunk, results: [...] }`);
    }
    const chunk = index(entry.chunk, `${what}: chunk`);
    if (entry.results.length !== n) {
      throw new Error(`${what}: chunk ${chunk} has ${entry.results.length} results, not ${n}`);
    }
    return { chunk, results: entry.results as SampleResult[] };
  });
  const got = chunks.map((c) => c.chunk);
  if (got.join() !== listed.join()) {
    throw new Error(
      `${resultsPath} holds chunks [${got.join(", ")}], ${metaPath} lists [${listed.join(", ")}]`,
    );
  }
  return {
    dir,
    index: shard,
    count,
    evaluation: meta.evaluation,
    run: meta.run as unknown as ShardRun,
    chunks,
  };
}

/** The first key whose values differ between `a` and `b` (compared as JSON), if any. */
function firstDifference(
  a: Readonly<Record<string, unknown>>,
  b: Readonly<Record<string, unknown>>,
): string | undefined {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.find((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

/** A complete set of shards, merged. */
export interface MergedShards {
  /** The evaluation they belong to. */
  readonly evaluation: Readonly<Record<string, unknown>>;
  /** Every chunk, in the original order. */
  readonly chunks: readonly (readonly SampleResult[])[];
  /** The shards, by index. */
  readonly shards: readonly Shard[];
}

/**
 * Merges `shards` (see the module documentation). Refuses, naming the directories: no shard,
 * shards of different counts or evaluations (the first differing setting and both values), a
 * shard given twice, missing shards, and a shard that does not hold exactly its chunks.
 */
export function mergeShards(shards: readonly Shard[]): MergedShards {
  if (shards.length === 0) throw new Error("merge: no shard directory given");
  const first = shards[0];
  for (const s of shards) {
    if (s.count !== first.count) {
      throw new Error(
        `merge: ${s.dir} is shard ${s.index} of ${s.count}, ${first.dir} of ${first.count}`,
      );
    }
    const key = firstDifference(first.evaluation, s.evaluation);
    if (key !== undefined) {
      throw new Error(
        `merge: ${s.dir} and ${first.dir} are shards of different evaluations: ${key} is ` +
          `${JSON.stringify(s.evaluation[key])} and ${JSON.stringify(first.evaluation[key])}`,
      );
    }
  }
  const byIndex: Shard[] = [];
  for (const s of shards) {
    const other = byIndex[s.index];
    if (other !== undefined) {
      throw new Error(
        `merge: shard ${s.index} of ${s.count} is given twice: ${other.dir}, ${s.dir}`,
      );
    }
    byIndex[s.index] = s;
  }
  const missing = [...Array(first.count).keys()].filter((i) => byIndex[i] === undefined);
  if (missing.length > 0) {
    throw new Error(
      `merge: incomplete set of ${first.count} shards: shard${missing.length > 1 ? "s" : ""} ` +
        `${missing.join(", ")} missing (given: ${shards.map((s) => s.dir).join(", ")})`,
    );
  }
  const total = index(first.evaluation.chunks, `${first.dir}: evaluation.chunks`);
  const chunks: (readonly SampleResult[])[] = new Array(total);
  for (const s of byIndex) {
    const want = shardChunks(s, total), got = s.chunks.map((c) => c.chunk);
    if (want.join() !== got.join()) {
      throw new Error(
        `merge: ${s.dir} (shard ${s.index} of ${s.count}) holds chunks [${got.join(", ")}], ` +
          `expected [${want.join(", ")}] of ${total}`,
      );
    }
    for (const c of s.chunks) chunks[c.chunk] = c.results;
  }
  return { evaluation: first.evaluation, chunks, shards: byIndex };
}

/**
 * Writes merged shards into the directory `dir` in the layout of one run (`results.json`,
 * `mean_results.json`, `metrics.svg`, `config.json`; see `writeResultFiles`), the edited states
 * of every shard into `dir/edited_states/` (hard links where possible, else copies).
 * `config.json` is the evaluation's settings, the devices of the shards, the earliest start
 * and latest end, each shard's run, and `extra`. Returns the means.
 */
export async function writeMerged(
  dir: string,
  merged: MergedShards,
  extra: Readonly<Record<string, unknown>> = {},
): Promise<MeanResultsFile> {
  const runs = merged.shards.map((s) => s.run);
  for (const s of merged.shards) {
    const states = join(s.dir, STATES_DIR);
    if (!existsSync(states)) continue;
    await Deno.mkdir(join(dir, STATES_DIR), { recursive: true });
    for await (const e of Deno.readDir(states)) {
      const from = join(states, e.name), to = join(dir, STATES_DIR, e.name);
      await Deno.link(from, to).catch(() => Deno.copyFile(from, to));
    }
  }
  const config = {
    ...merged.evaluation,
    device: [...new Set(runs.map((r) => r.device))].join(" "),
    started: runs.map((r) => r.started).sort()[0],
    finished: runs.map((r) => r.finished).sort().at(-1),
    shards: merged.shards.map((s) => ({ shard: s.index, of: s.count, ...s.run })),
    ...extra,
  } as unknown as ResultConfig;
  return await writeResultFiles(dir, merged.chunks, config);
}
