/**
 * The sharding flags of `test-edit`: `--shard I/N` (evaluate the chunks whose index is `I`
 * modulo `N`), `--shards N` (the same, with `I` read from `JOB_COMPLETION_INDEX`, which a
 * Kubernetes Indexed Job sets in each pod) and `--shard-dir DIR` (where the shard goes;
 * default `<result dir>.shards/shard-<I>-of-<N>`). See `src/eval/shards.ts`.
 *
 * @example
 * ```ts
 * import { parseShardFlags } from "./sharding.ts";
 * const s = parseShardFlags({ shards: 4 }, { JOB_COMPLETION_INDEX: "2" });
 * if (s?.index !== 2 || s.count !== 4) throw new Error(JSON.stringify(s));
 * ```
 *
 * @module
 */
import type { ShardSpec } from "../eval/shards.ts";
import { UsageError } from "./flags.ts";

/** The environment variable a Kubernetes Indexed Job sets to the pod's index. */
export const JOB_INDEX_ENV = "JOB_COMPLETION_INDEX";

/** `--shard`, `--shards` and `--shard-dir`. */
export const SHARD_FLAGS = {
  shard: {
    names: ["--shard"],
    type: "string",
    metavar: "I/N",
    help: "evaluate only the chunks whose index is I modulo N, into a shard directory " +
      "(deno task merge-results puts the N shards together)",
  },
  shards: {
    names: ["--shards"],
    type: "int",
    min: 1,
    metavar: "N",
    help: `as --shard I/N with I from $${JOB_INDEX_ENV} (a Kubernetes Indexed Job's pod index)`,
  },
  shardDir: {
    names: ["--shard-dir"],
    type: "string",
    metavar: "DIR",
    help: "where the shard is written (default: <result dir>.shards/shard-I-of-N)",
  },
} as const;

/** What {@linkcode parseShardFlags} reads. */
export interface ShardFlagValues {
  /** `--shard I/N`. */
  readonly shard?: string;
  /** `--shards N`. */
  readonly shards?: number;
}

/**
 * The shard `flags` name (undefined without `--shard` or `--shards`); `env` holds
 * `JOB_COMPLETION_INDEX`. Throws a {@linkcode UsageError} for both flags at once, a malformed
 * `I/N`, `I >= N`, and a missing or malformed index.
 */
export function parseShardFlags(
  flags: ShardFlagValues,
  env: Readonly<Record<string, string | undefined>>,
): ShardSpec | undefined {
  if (flags.shard !== undefined && flags.shards !== undefined) {
    throw new UsageError("--shard and --shards: give one of them");
  }
  let index: number, count: number, what: string;
  if (flags.shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(flags.shard.trim());
    if (m === null) {
      throw new UsageError(`--shard must be I/N (e.g. 0/4), got ${JSON.stringify(flags.shard)}`);
    }
    [index, count, what] = [Number(m[1]), Number(m[2]), `--shard ${flags.shard}`];
  } else if (flags.shards !== undefined) {
    const value = env[JOB_INDEX_ENV];
    if (value === undefined || !/^\d+$/.test(value.trim())) {
      throw new UsageError(
        `--shards ${flags.shards} reads the shard index from $${JOB_INDEX_ENV}, which is ` +
          (value === undefined ? "not set" : JSON.stringify(value)),
      );
    }
    [index, count, what] = [Number(value), flags.shards, `$${JOB_INDEX_ENV} ${value}`];
  } else return undefined;
  if (!(count >= 1 && index < count)) {
    throw new UsageError(`${what}: the shard index must be in 0..${count - 1} of ${count} shards`);
  }
  return { index, count };
}
