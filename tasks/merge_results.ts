/**
 * `deno task merge-results SHARD_DIR... --out DIR`: puts the shards of a sharded evaluation
 * (`test-edit --shard I/N` or `--shards N`, see `src/eval/shards.ts`; a `SHARD_DIR` may also be
 * the `<result dir>.shards` directory that holds them) together into one result
 * directory in the layout of a single run — `results.json` (the chunks in their original
 * order), `mean_results.json`, `config.json`, `metrics.svg`, and `edited_states/` when the
 * shards saved states — written all at once. Refuses, writing nothing, an incomplete set of
 * shards, shards of different evaluations or shard counts, a shard given twice, and an existing
 * `--out` unless `--force`. Exit status 0 on success, 1 on failure, 2 for bad usage.
 *
 * @example
 * ```sh
 * deno task merge-results eval_results/liveedit/llava/EVQA/sequential_edit_1.shards/shard-*-of-8 \
 *   --out eval_results/liveedit/llava/EVQA/sequential_edit_1
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { HELP_FLAG, UsageError } from "../src/cli/flags.ts";
import { runTask, type TaskContext } from "../src/cli/task.ts";
import { beginResultDir } from "../src/eval/output.ts";
import { mergeShards, readShard, SHARD_FILE, writeMerged } from "../src/eval/shards.ts";
import { summaryTable } from "../src/eval/table.ts";
import { removeDirLeftovers } from "../src/io/atomic_dir.ts";

/** The flags of `deno task merge-results` (the shard directories come first, unflagged). */
const MERGE_FLAGS = {
  out: {
    names: ["-o", "--out"],
    type: "string",
    required: true,
    metavar: "DIR",
    help: "the result directory to write (standard layout of test-edit)",
  },
  force: { names: ["--force"], type: "boolean", help: "replace an existing --out directory" },
  ...HELP_FLAG,
} as const;

const SPEC = {
  name: "merge-results",
  usage: "deno task merge-results SHARD_DIR... --out DIR [--force]  (SHARD_DIR: a shard or " +
    "a <result dir>.shards directory)",
  description:
    "Merges the shard directories of a sharded test-edit (--shard I/N, --shards N) into one\n" +
    "result directory: results.json in the original chunk order, mean_results.json,\n" +
    "config.json, metrics.svg (and edited_states/). Refuses incomplete or mismatched shards.",
  flags: MERGE_FLAGS,
};

/**
 * The shard directories `path` names: itself, or, when it holds no `shard.json` but shard
 * directories (`<result dir>.shards/`, where `test-edit --shard` writes them by default), those
 * (`shard-<I>-of-<N>`, in name order).
 */
async function shardDirsOf(path: string): Promise<string[]> {
  if (existsSync(join(path, SHARD_FILE)) || !existsSync(path)) return [path];
  const names: string[] = [];
  for await (const e of Deno.readDir(path)) {
    if (e.isDirectory && /^shard-\d+-of-\d+$/.test(e.name)) names.push(e.name);
  }
  if (names.length === 0) throw new Error(`${path} holds neither a shard nor shard directories`);
  return names.sort().map((n) => join(path, n));
}

/** Runs `deno task merge-results` with `argv`; resolves with the exit status. */
export function runMergeResults(
  argv: readonly string[],
  context: TaskContext = {},
): Promise<number> {
  const first = argv.findIndex((a) => a.startsWith("-"));
  const dirs = first < 0 ? [...argv] : argv.slice(0, first);
  const rest = first < 0 ? [] : argv.slice(first);
  return runTask(SPEC, rest, context, async (flags, ctx) => {
    if (dirs.length === 0) {
      throw new UsageError("no shard directory given (they come before the flags)");
    }
    const out = resolve(ctx.cwd, flags.out);
    const paths = (await Promise.all(dirs.map((d) => shardDirsOf(resolve(ctx.cwd, d))))).flat();
    const shards = await Promise.all(paths.map(readShard));
    const merged = mergeShards(shards);
    for (const line of await removeDirLeftovers(out)) ctx.print(`note: ${line}`);
    const pending = await beginResultDir(
      out,
      flags.force ?? false,
      (line) => ctx.print(`note: ${line}`),
    );
    try {
      const means = await writeMerged(pending.tmp, merged, {
        shard_dirs: merged.shards.map((s) => s.dir),
        argv: [...argv],
      });
      await pending.commit();
      ctx.print(`merged ${shards.length} shards (${merged.chunks.length} chunks): ${out}`);
      ctx.print(summaryTable(means.total_mean));
    } catch (error) {
      await pending.abort();
      throw error;
    }
  });
}

if (import.meta.main) Deno.exit(await runMergeResults(Deno.args));
