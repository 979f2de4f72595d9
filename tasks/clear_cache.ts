/**
 * `deno task clear-cache [--cache-dir DIR]`: deletes the compiled graphs of a cache root
 * (default: `LIVEEDIT_CACHE`, else `$XDG_CACHE_HOME/liveedit/graphs`, else
 * `~/.cache/liveedit/graphs`). Weight files are never touched.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { clearCache, graphCacheRoot } from "../src/graph/compile.ts";

const { values } = parseArgs({ args: Deno.args, options: { "cache-dir": { type: "string" } } });
const root = graphCacheRoot(values["cache-dir"]);
const removed = await clearCache(values["cache-dir"]);
console.log(`removed ${removed} compiled graph(s) from ${root}`);
