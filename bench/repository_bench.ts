/**
 * The expert repository at the paper's dims (e = 4, m = 1024, r = 4, d = 4096: 160 KiB per
 * expert): the cost of one acknowledged append (write + fsync) to an empty repository vs one
 * that already holds 9 999 edits, and the time to reopen (replay and checksum every record)
 * vs the number of records. The 10 000-record file (1.6 GB) is built directly from framed
 * records, without an fsync each, to keep the setup short.
 *
 * Run with `deno bench -A bench/repository_bench.ts`.
 *
 * @module
 */
import { join } from "node:path";
import { ExpertRepository } from "../src/editors/liveedit/repository/repository.ts";
import { encodeRecord } from "../src/editors/liveedit/repository/format.ts";
import { Tensor } from "../src/tensor/tensor.ts";

const DIMS = { e: 4, m: 1024, r: 4, d: 4096 };
const INIT = { backbone: "bench", dims: DIMS };
const root = await Deno.makeTempDir({ prefix: "liveedit-repo-bench-" });
globalThis.addEventListener("unload", () => Deno.removeSync(root, { recursive: true }));

const tensor = (a: number, b: number, v: number) =>
  new Tensor("f32", [a, b], new Float32Array(a * b).fill(v));
const edit = (k: number) => ({
  request: { prompt: `What is in the picture? ${k}`, target: `a cat ${k}`, image: `img/${k}.jpg` },
  eqr: tensor(DIMS.e, DIMS.m, k),
  evr: tensor(DIMS.e, DIMS.m, -k),
  C: tensor(DIMS.r, DIMS.d, 0.5),
  R: tensor(DIMS.r, DIMS.d, -0.5),
});

/** A repository directory holding `n` edits (ids 1..n), written in one stream. */
async function prebuilt(n: number): Promise<string> {
  const dir = join(root, `n${n}`);
  await (await ExpertRepository.open(dir, { init: INIT })).close();
  using file = await Deno.open(join(dir, "records.log"), { write: true, append: true });
  const e = edit(1), time = new Date().toISOString();
  const data = [e.eqr.data, e.evr.data, e.C.data, e.R.data];
  for (let id = 1; id <= n; id++) {
    const record = encodeRecord({ type: "edit", id, time, request: e.request }, data);
    let done = 0;
    while (done < record.length) done += await file.write(record.subarray(done));
  }
  await file.sync();
  return dir;
}

const sizes = [100, 1000, 10_000];
const dirs = new Map<number, string>();
for (const n of sizes) dirs.set(n, await prebuilt(n));

const empty = await ExpertRepository.open(join(root, "empty"), { init: INIT });
const fresh = await prebuilt(9_999);
const full = await ExpertRepository.open(fresh);
globalThis.addEventListener("unload", () => {
  empty.close();
  full.close();
});

Deno.bench(
  { name: "append edit #1.. (fsync)", group: "append", baseline: true, n: 30, warmup: 2 },
  async () => {
    await empty.append(edit(empty.nextId));
  },
);

Deno.bench(
  { name: "append edit #10 000.. (fsync)", group: "append", n: 30, warmup: 2 },
  async () => {
    await full.append(edit(full.nextId));
  },
);

for (const n of sizes) {
  Deno.bench(
    { name: `reopen ${n} records`, group: "reopen", n: n >= 10_000 ? 3 : 10, warmup: 1 },
    async () => {
      const repo = await ExpertRepository.open(dirs.get(n)!, { onWarning: () => {} });
      if (repo.size !== n) throw new Error(`reopened ${repo.size} of ${n}`);
      await repo.close();
    },
  );
}
