/**
 * `deno task bench:editor`: the LiveEdit editor at BLIP-2 dims (d 2560, m 1024, 8 heads, e 4,
 * r 4, 32 vision tokens), float32, on the workload of the authors' editor benchmark: one query
 * of L = 52 positions (32 vision + 16 query + 4 answer tokens).
 *
 * - `get_new_edit`: the expert of one request (`LiveEditor.newEdit`).
 * - `route`: routing + residual of the query (`LiveEditor.route`) against pools of `n` experts
 *   where expert `k` passes hard routing iff `k % 10 == 0` (n = 1: its one expert passes). The
 *   pools are built as the authors' benchmark builds them: each expert's `evr` is a multiple of
 *   the query's `ivr`, chosen so that its similarity is the prototype's plus or minus one,
 *   which makes the split exact (checked on every case); `eqr`, C and R repeat 16 experts
 *   generated from random representations. The pool seals a segment file every 4 096 experts,
 *   in a temporary directory removed after the case.
 *
 * Each case runs in its own process (so each reports its own peak memory) and prints one JSON
 * line: `{"case", "n", "selected", "threads", "median_ms", "min_ms", "fed_bytes", "rss_gb"}`
 * (`n` and `selected` for routes only); `fed_bytes` is what the editor's sessions were fed
 * during one call, `rss_gb` the process's peak resident memory (VmHWM) in GB (10^9 bytes).
 *
 * ```sh
 * deno task bench:editor --threads 2 --sizes 1,100,1000,10000,100000 --device cpu
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadConfig } from "../src/editors/liveedit/config.ts";
import { LiveEditor, type RouteInput } from "../src/editors/liveedit/editor.ts";
import { initParams, paramInputs } from "../src/editors/liveedit/params.ts";
import type { Expert } from "../src/editors/liveedit/pool.ts";
import { routingQueries } from "../src/editors/liveedit/routing.ts";
import {
  flattenTokens,
  type Range,
  selectInput,
  selectionFeeds,
} from "../src/editors/liveedit/tokens.ts";
import { Graph } from "../src/graph/ir.ts";
import { runOnce } from "../src/graph/runner.ts";
import { f32 } from "../src/runtime/outputs.ts";
import { randn } from "../src/tensor/create.ts";
import { Rng } from "../src/tensor/rng.ts";

const V = 32, Q = 16, A = 4, L = V + Q + A;
const EDIT_RANGES: Range[] = [[0, 0], [0, V], [V, V + Q], [V + Q, L]];
const ROUTE_INPUT: RouteInput[] = [{ vision: [0, V], queryEnd: V + Q }];

const USAGE = `usage: deno task bench:editor [--threads T] [--sizes N,N,...] [--device D]

  --threads T   intra-op threads of the editor's sessions (default 2)
  --sizes LIST  pool sizes of the route cases (default 1,100,1000,10000,100000)
  --device D    device of the editor's sessions (default cpu)
  --cases LIST  get_new_edit and/or route (default both)`;

interface Flags {
  readonly threads: number;
  readonly sizes: number[];
  readonly device: string;
  readonly cases: string[];
}

/** The flags of a case's own process. */
type ChildFlags = Flags & { child?: string; n?: number; segmentDir?: string };

function parseFlags(args: string[]): ChildFlags {
  const { values } = parseArgs({
    args,
    options: {
      threads: { type: "string", default: "2" },
      sizes: { type: "string", default: "1,100,1000,10000,100000" },
      device: { type: "string", default: "cpu" },
      cases: { type: "string", default: "get_new_edit,route" },
      child: { type: "string" },
      n: { type: "string" },
      "segment-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const int = (s: string, what: string) => {
    const v = Number(s);
    if (!Number.isSafeInteger(v) || v < 1) throw new Error(`${what} must be integers >= 1: ${s}`);
    return v;
  };
  return {
    threads: int(values.threads, "--threads"),
    sizes: values.sizes.split(",").map((s) => int(s, "--sizes")),
    device: values.device,
    cases: values.cases.split(","),
    child: values.child,
    n: values.n === undefined ? undefined : int(values.n, "--n"),
    segmentDir: values["segment-dir"],
  };
}

/** Peak resident memory of this process in GB (VmHWM), or the current RSS where unknown. */
function peakRssGb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return Number(m[1]) * 1024 / 1e9;
  } catch {
    // not Linux
  }
  return Deno.memoryUsage().rss / 1e9;
}

/** Median and minimum of `times`. */
function summary(times: number[]): { median_ms: number; min_ms: number } {
  const s = [...times].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return { median_ms: round(median), min_ms: round(s[0]) };
}

/** Times `call` `reps` times after `warmup` untimed calls; ms per call. */
async function time(call: () => Promise<unknown>, reps: number, warmup: number) {
  for (let i = 0; i < warmup; i++) await call();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await call();
    times.push(performance.now() - t0);
  }
  return summary(times);
}

/** `ivr` `[e·m]` and `sim_prot` of the bench query, computed apart from the editor. */
async function queryFeatures(
  dims: Awaited<ReturnType<typeof loadConfig>>["dims"],
  params: ReturnType<typeof initParams>,
  hidden: ReturnType<typeof randn>,
  device: string,
) {
  const g = new Graph();
  const p = paramInputs(g, dims);
  const flat = flattenTokens(g.input("hidden", "f32", ["batch", "seq", dims.llmMidDim]));
  const q = routingQueries(
    p,
    dims,
    selectInput(flat, "query", "batch"),
    selectInput(flat, "vision", "batch"),
  );
  const out = await runOnce(g, { ivr: q.ivr, sim_prot: q.visSimProt }, {
    ...params,
    hidden,
    ...selectionFeeds("vision", [{ seq: 0, ranges: [[0, V]] }], L),
    ...selectionFeeds("query", [{ seq: 0, ranges: [[V, V + Q]] }], L),
  }, { device });
  return { ivr: f32(out, "ivr").data, simProt: f32(out, "sim_prot").data[0] };
}

async function child(flags: ChildFlags): Promise<void> {
  const { dims } = await loadConfig("blip2");
  const rng = new Rng(0);
  const params = initParams(dims, rng);
  const placement = {
    device: flags.device,
    deviceOptions: { intraOpThreads: flags.threads },
  };
  const editor = await LiveEditor.create(dims, params, {
    ...placement,
    capacity: flags.n ?? 1,
    segmentDir: flags.segmentDir,
  });
  const hidden = randn([1, L, dims.llmMidDim], rng);
  const fed = async (call: () => Promise<unknown>) => {
    const before = editor.stats.fedBytes;
    await call();
    return editor.stats.fedBytes - before;
  };
  if (flags.child === "get_new_edit") {
    const call = () => editor.newEdit(hidden, EDIT_RANGES);
    const fedBytes = await fed(call);
    const t = await time(call, 20, 3);
    console.log(JSON.stringify({
      case: "get_new_edit",
      threads: flags.threads,
      ...t,
      fed_bytes: fedBytes,
      rss_gb: round3(peakRssGb()),
    }));
    await editor.release();
    return;
  }
  const n = flags.n!;
  // 16 random experts (eqr, C, R), evr set per expert below
  const seeds: Expert[] = [];
  for (let k = 0; k < 16; k++) {
    seeds.push(await editor.newEdit(randn([1, L, dims.llmMidDim], rng), EDIT_RANGES));
  }
  const { ivr, simProt } = await queryFeatures(dims, params, hidden, flags.device);
  let norm2 = 0;
  for (const v of ivr) norm2 += v * v;
  const perUnit = norm2 / (dims.eqeN * Math.sqrt(dims.moduleDim)); // sim of evr = 1·ivr
  const evrOf = (k: number) => {
    const s = (simProt + (k % 10 === 0 ? 1 : -1)) / perUnit;
    return ivr.map((v) => v * s);
  };
  const passing = evrOf(0), failing = evrOf(1);
  for (let k = 0; k < n; k++) {
    const x = seeds[k % seeds.length];
    await editor.pool.add({ ...x, evr: k % 10 === 0 ? passing : failing });
  }
  const call = () => editor.route(hidden, ROUTE_INPUT);
  const routed = await call();
  const selected = routed.retrievalMap.data.reduce((a, b) => a + b, 0);
  const want = Math.ceil(n / 10);
  if (selected !== want) throw new Error(`route: ${selected} experts selected, expected ${want}`);
  const fedBytes = await fed(call);
  const reps = n >= 100_000 ? 5 : n >= 10_000 ? 10 : 20;
  const t = await time(call, reps, 2);
  console.log(JSON.stringify({
    case: "route",
    n,
    selected,
    threads: flags.threads,
    ...t,
    fed_bytes: fedBytes,
    rss_gb: round3(peakRssGb()),
  }));
  await editor.release();
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Runs each case in its own process and passes its JSON line on. */
async function parent(flags: Flags): Promise<void> {
  const cases: { child: string; n?: number }[] = [];
  if (flags.cases.includes("get_new_edit")) cases.push({ child: "get_new_edit" });
  if (flags.cases.includes("route")) {
    for (const n of flags.sizes) cases.push({ child: "route", n });
  }
  const self = new URL(import.meta.url).pathname;
  for (const c of cases) {
    // the pool's segment files (11.5 GB at 100 000 experts) go here and are gone after the case
    const segments = await Deno.makeTempDir({ prefix: "liveedit-bench-editor-" });
    const args = [
      "run",
      "-A",
      self,
      `--child=${c.child}`,
      `--threads=${flags.threads}`,
      `--device=${flags.device}`,
      `--segment-dir=${segments}`,
      ...(c.n === undefined ? [] : [`--n=${c.n}`]),
    ];
    const out = await new Deno.Command(Deno.execPath(), {
      args,
      stdout: "piped",
      stderr: "inherit",
    }).output().finally(() => Deno.remove(segments, { recursive: true }));
    const text = new TextDecoder().decode(out.stdout).trim();
    if (!out.success) {
      console.error(`bench:editor: case ${c.child}${c.n ? ` n=${c.n}` : ""} failed (${out.code})`);
      if (text) console.error(text);
      continue;
    }
    console.log(text);
  }
}

if (import.meta.main) {
  const flags = parseFlags(Deno.args);
  if (flags.child) await child(flags);
  else await parent(flags);
}
