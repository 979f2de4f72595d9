/**
 * `deno task clear-cache [--cache-dir DIR]`: deletes the compiled graphs of a cache root
 * (default: `LIVEEDIT_CACHE`, else `$XDG_CACHE_HOME/liveedit/graphs`, else
 * `~/.cache/liveedit/graphs`) and its copies of in-memory editor weights. Weight files of models
 * and checkpoints are never touched. Exit status 0 on success, 1 on failure, 2 for bad usage.
 *
 * @module
 */
import { HELP_FLAG, parseCommand } from "../src/cli/flags.ts";
import { clearCache, graphCacheRoot } from "../src/graph/compile.ts";

const SPEC = {
  name: "clear-cache",
  usage: "deno task clear-cache [--cache-dir DIR]",
  description: "Deletes the compiled ONNX graphs of the graph cache and its copies of " +
    "in-memory editor weights\n(they are rebuilt on the next run). Weight files of models and " +
    "checkpoints are never touched.",
  flags: {
    cacheDir: {
      names: ["--cache-dir"],
      type: "string",
      metavar: "DIR",
      help: "the cache root (default: LIVEEDIT_CACHE, else $XDG_CACHE_HOME/liveedit/graphs, " +
        `else ~/.cache/liveedit/graphs; now ${graphCacheRoot()})`,
    },
    ...HELP_FLAG,
  },
} as const;

async function main(): Promise<number> {
  const flags = parseCommand(SPEC, Deno.args, console.log, console.error);
  if (typeof flags === "number") return flags;
  const root = graphCacheRoot(flags.cacheDir);
  const removed = await clearCache(flags.cacheDir);
  console.log(`removed ${removed} compiled graph(s) and cached weight copies from ${root}`);
  return 0;
}

try {
  Deno.exit(await main());
} catch (e) {
  console.error(`clear-cache: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
