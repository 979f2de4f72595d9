/**
 * `deno task clear-cache [--cache-dir DIR]`: deletes the compiled graphs of a cache root
 * (default: `LIVEEDIT_CACHE`, else `$XDG_CACHE_HOME/liveedit/graphs`, else
 * `~/.cache/liveedit/graphs`). Weight files are never touched. Exit status 0 on success, 1 on
 * failure, 2 for bad usage.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { clearCache, graphCacheRoot } from "../src/graph/compile.ts";

const USAGE = `usage: deno task clear-cache [--cache-dir DIR]

Deletes the compiled ONNX graphs of the graph cache (they are rebuilt on the next run). Weight
files are never touched.

options:
  --cache-dir DIR   the cache root (default: LIVEEDIT_CACHE, else $XDG_CACHE_HOME/liveedit/graphs,
                    else ~/.cache/liveedit/graphs; now ${graphCacheRoot()})
  -h, --help        print this help`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: { "cache-dir": { type: "string" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (e) {
    console.error(`clear-cache: ${e instanceof Error ? e.message : e}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const root = graphCacheRoot(values["cache-dir"]);
  const removed = await clearCache(values["cache-dir"]);
  console.log(`removed ${removed} compiled graph(s) from ${root}`);
  return 0;
}

try {
  Deno.exit(await main());
} catch (e) {
  console.error(`clear-cache: ${e instanceof Error ? e.message : e}`);
  Deno.exit(1);
}
