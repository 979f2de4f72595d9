/**
 * The LiveEdit editor at the paper's dims (d = 4096, m = 1024, e = 4, r = 4, 8 heads, 32
 * vision tokens; the MiniGPT-4 config), parameters from the seeded init, no backbone: inputs
 * are random layer-`l_e` representations of L = 64 tokens (1 before the image, 32 vision
 * tokens, then the query; an edit's last 8 tokens are its target). One expert is 160 KiB.
 *
 * - `edit`: one {@linkcode EditSession.edit} (expert generation + repository append + pool
 *   append) on an empty session (each run is undone, untimed, so every measured edit is the
 *   pool's first) vs one already holding 10 000 experts (and growing by one per run), with a memory
 *   repository and with an on-disk one (write + fsync per edit). The 10 000 experts are
 *   synthetic (16 generated experts repeated): two sealed segments of 4 096 and a tail.
 * - `pool append`: 1 000 {@linkcode ExpertPool.add} calls (the in-memory pool a segmented pool's
 *   tail is) into a fresh pool (capacity 1: its 10 doublings and first touches of fresh memory
 *   included) vs into a pool holding 10 000 (capacity 16 384, memory already touched): an
 *   append does not grow with the pool size.
 * - `reopen`: {@linkcode EditSession.open} on an on-disk repository of 10 000 edits (replay,
 *   then every expert read back, checksummed and copied into the pool).
 *
 * Routes and expert generation at BLIP-2 dims on the authors' workload are `bench/editor.ts`
 * (`deno task bench:editor`).
 *
 * Run with `deno bench -A bench/session_bench.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { loadConfig } from "../src/editors/liveedit/config.ts";
import { type Expert, ExpertPool } from "../src/editors/liveedit/pool.ts";
import { LiveEditor } from "../src/editors/liveedit/editor.ts";
import { initParams } from "../src/editors/liveedit/params.ts";
import { encodeRecord } from "../src/editors/liveedit/repository/format.ts";
import { ExpertRepository } from "../src/editors/liveedit/repository/repository.ts";
import { EditSession, expertDimsOf } from "../src/editors/liveedit/session.ts";
import type { Range } from "../src/editors/liveedit/tokens.ts";
import { randn } from "../src/tensor/create.ts";
import { Rng } from "../src/tensor/rng.ts";
import { Tensor } from "../src/tensor/tensor.ts";

const { dims } = await loadConfig("minigpt4");
const rng = new Rng(0);
const params = initParams(dims, rng);
const d = dims.llmMidDim, V = dims.visionTokN, L = 64;
const EDIT_RANGES: Range[] = [[0, 1], [1, 1 + V], [1 + V, L - 8], [L - 8, L]];
const INIT = { backbone: "bench", dims: expertDimsOf(dims) };
const FULL = 10_000, FULL_CAPACITY = 16_384;

const root = await Deno.makeTempDir({ prefix: "liveedit-editor-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const reps = () => randn([1, L, d], rng);
const request = (k: number) => ({ prompt: `What is in the picture? ${k}`, target: `a cat ${k}` });

// 16 real experts from the generator, repeated to fill synthetic pools
const generator = await LiveEditor.create(dims, params);
const seeds: Expert[] = [];
for (let k = 0; k < 16; k++) seeds.push(await generator.newEdit(reps(), EDIT_RANGES));
await generator.release();

function fill(pool: ExpertPool, n: number): void {
  for (let k = pool.size; k < n; k++) pool.add(seeds[k % seeds.length]);
}

let big: ExpertPool | undefined;

/** Frees the pool-append bench's pool (1.6 GiB) before later benches. */
function freeEarlier(): void {
  big = undefined;
}

// ---- pool append

Deno.bench({
  name: "pool.add x1000 into a fresh pool (10 doublings, fresh memory)",
  group: "pool append",
  baseline: true,
  n: 5,
  warmup: 1,
}, (b) => {
  const pool = new ExpertPool(dims, 1);
  b.start();
  fill(pool, 1000);
  b.end();
});

Deno.bench(
  {
    name: "pool.add x1000 into a pool holding 10 000 (capacity 16 384)",
    group: "pool append",
    n: 5,
    warmup: 1,
  },
  (b) => {
    big ??= new ExpertPool(dims, FULL_CAPACITY);
    fill(big, FULL);
    b.start();
    for (let k = 0; k < 1000; k++) big.add(seeds[k % seeds.length]);
    b.end();
    for (const id of big.ids.slice(FULL)) big.swapRemove(id); // back to 10 000 (last rows)
  },
);

// ---- sessions: an empty one vs one holding 10 000 experts, memory and on disk

/** An on-disk repository directory of `n` synthetic edits (ids 1..n), written in one stream. */
async function prebuilt(dir: string, n: number): Promise<string> {
  await (await ExpertRepository.open(dir, { init: INIT })).close();
  using file = await Deno.open(join(dir, "records.log"), { write: true, append: true });
  const time = new Date().toISOString();
  for (let id = 1; id <= n; id++) {
    const x = seeds[id % seeds.length];
    const record = encodeRecord({ type: "edit", id, time, request: request(id) }, [
      x.eqr,
      x.evr,
      x.moeC,
      x.moeR,
    ]);
    let done = 0;
    while (done < record.length) done += await file.write(record.subarray(done));
  }
  await file.sync();
  return dir;
}

let fullDir: Promise<string> | undefined;
/** The on-disk repository of 10 000 edits (written once). */
const diskFull = () => fullDir ??= prebuilt(join(root, `disk${FULL}`), FULL);

/** An editor for a session over `repo`; a full pool has room for 16 384, as if grown by doubling. */
const editorFor = (n: number) =>
  LiveEditor.create(dims, params, { capacity: n === 0 ? 16 : FULL_CAPACITY });

const sessions = new Map<string, EditSession>();

/** The session of `kind` starting with `n` experts (built on first use). */
async function session(kind: "memory" | "disk", n: number): Promise<EditSession> {
  const key = `${kind}${n}`;
  const known = sessions.get(key);
  if (known !== undefined) return known;
  freeEarlier();
  let repo: ExpertRepository;
  if (kind === "memory") {
    repo = ExpertRepository.memory(INIT);
    const { e, m, r } = expertDimsOf(dims);
    for (let k = 1; k <= n; k++) {
      const x = seeds[k % seeds.length];
      await repo.append({
        request: request(k),
        eqr: new Tensor("f32", [e, m], x.eqr),
        evr: new Tensor("f32", [e, m], x.evr),
        C: new Tensor("f32", [r, d], x.moeC),
        R: new Tensor("f32", [r, d], x.moeR),
      });
    }
  } else {
    const dir = n === 0 ? join(root, "disk0") : await diskFull();
    repo = await ExpertRepository.open(dir, { init: INIT });
  }
  const s = await EditSession.open(await editorFor(n), repo);
  sessions.set(key, s);
  return s;
}

// reopen first, while memory is free; its session then serves the on-disk 10 000 edit bench
Deno.bench({
  name: "reopen + refill the pool, 10 000 experts on disk",
  group: "reopen",
  n: 1,
  warmup: 0,
}, async (b) => {
  freeEarlier();
  const dir = await diskFull();
  await sessions.get(`disk${FULL}`)?.close();
  const editor = await editorFor(FULL);
  b.start();
  const s = await EditSession.open(editor, await ExpertRepository.open(dir));
  b.end();
  if (s.size !== FULL) throw new Error(`refilled ${s.size} of ${FULL}`);
  sessions.set(`disk${FULL}`, s);
});

const editReps = reps();
for (const kind of ["memory", "disk"] as const) {
  for (const n of [0, FULL]) {
    Deno.bench({
      name: `edit #${n === 0 ? "1" : "10 001"}.. (${kind} repository${
        kind === "disk" ? ", fsync" : ""
      })`,
      group: `edit (${kind})`,
      baseline: n === 0,
      n: 20,
      warmup: 5,
    }, async (b) => {
      const s = await session(kind, n);
      b.start();
      const id = await s.edit(request(s.repository.nextId), editReps, EDIT_RANGES);
      b.end();
      if (n === 0) await s.undo(id); // untimed: the next edit is again the pool's first
    });
  }
}
