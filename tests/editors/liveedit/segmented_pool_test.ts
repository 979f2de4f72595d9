import assert from "node:assert/strict";
import type { EditorDims } from "../../../src/editors/liveedit/config.ts";
import { LiveEditor, type RouteInput } from "../../../src/editors/liveedit/editor.ts";
import { type EditorParams, initParams } from "../../../src/editors/liveedit/params.ts";
import type { Expert } from "../../../src/editors/liveedit/pool.ts";
import { ExpertRepository } from "../../../src/editors/liveedit/repository/repository.ts";
import { buildRouteGraph, routeFeeds } from "../../../src/editors/liveedit/routing.ts";
import { EditSession, expertDimsOf } from "../../../src/editors/liveedit/session.ts";
import { SegmentedPool } from "../../../src/editors/liveedit/segmented_pool.ts";
import { runOnce } from "../../../src/graph/runner.ts";
import { f32, output } from "../../../src/runtime/outputs.ts";
import { relErr } from "../../../src/tensor/compare.ts";
import { randn } from "../../../src/tensor/create.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";

/**
 * Bound: a segmented route and the one-pass route over the same experts agree to <= 1e-6
 * relative error (`relErr`, max |a - b| over max |b|); they differ in f32 summation order only.
 */
const SAME = 1e-6;

const DIMS: EditorDims = {
  llmMidDim: 16,
  moduleDim: 8,
  crossAttHeadN: 2,
  eqeN: 2,
  loraRank: 2,
  loraScale: 5,
  visionTokN: 4,
};
const V = DIMS.visionTokN, L = 2 + V + 5;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-segments-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** A batch of three queries: two with an image, one without. */
function probe(rng: Rng): { hidden: Tensor<"f32">; inputs: RouteInput[] } {
  return {
    hidden: randn([3, L, DIMS.llmMidDim], rng),
    inputs: [{ vision: [2, 2 + V], queryEnd: L }, { vision: null }, {
      vision: [1, 1 + V],
      queryEnd: L - 1,
    }],
  };
}

/** The one-pass route (`buildRouteGraph` over the whole pool as inputs) of `experts`. */
async function onePass(
  params: EditorParams,
  hidden: Tensor<"f32">,
  inputs: RouteInput[],
  experts: Expert[],
) {
  const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = DIMS;
  const n = experts.length;
  const stack = (k: keyof Expert, a: number, b: number) => {
    const out = new Float32Array(n * a * b);
    experts.forEach((x, i) => out.set(x[k], i * a * b));
    return new Tensor("f32", [n, a, b], out);
  };
  const pool = {
    eqr: stack("eqr", e, m),
    evr: stack("evr", e, m),
    moeCs: stack("moeC", r, d),
    moeRs: stack("moeR", r, d),
  };
  const { graph, outputs } = buildRouteGraph(DIMS);
  const out = await runOnce(graph, outputs, { ...params, ...routeFeeds(hidden, inputs, pool) });
  return {
    output: f32(out, "hooked_output"),
    retrievalMap: output(out, "retrieval_map", "bool"),
    fuseCoe: f32(out, "fuse_coe"),
    ivr: f32(out, "ivr"),
    simProt: f32(out, "vis_sim_prot"),
  };
}

/**
 * `count` experts: random `eqr`, C and R; `evr` a multiple of input 0's `ivr` chosen so that
 * expert `k` passes input 0's hard routing iff `k % 3 != 1`.
 */
async function experts(params: EditorParams, rng: Rng, count: number, p = probe(new Rng(7))) {
  const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = DIMS;
  const rand = (n: number) => randn([n], rng).data;
  const seed = { eqr: rand(e * m), evr: rand(e * m), moeC: rand(r * d), moeR: rand(r * d) };
  const ref = await onePass(params, p.hidden, p.inputs, [seed]);
  const ivr = ref.ivr.data.subarray(0, e * m), simProt = ref.simProt.data[0];
  let norm2 = 0;
  for (const v of ivr) norm2 += v * v;
  const perUnit = norm2 / (e * Math.sqrt(m));
  return Array.from({ length: count }, (_, k): Expert => ({
    eqr: rand(e * m),
    evr: ivr.map((v) => v * (simProt + (k % 3 !== 1 ? 0.5 : -0.5)) / perUnit),
    moeC: rand(r * d),
    moeR: rand(r * d),
  }));
}

/** Asserts that the editor's segmented route equals the one-pass route over its live experts. */
async function assertSameAsOnePass(editor: LiveEditor, params: EditorParams, what: string) {
  const p = probe(new Rng(7));
  const got = await editor.route(p.hidden, p.inputs);
  const live: Expert[] = [];
  for (const id of editor.pool.ids) live.push(await editor.pool.get(id));
  const want = await onePass(params, p.hidden, p.inputs, live);
  assert.deepEqual([...got.retrievalMap.data], [...want.retrievalMap.data], `${what}: map`);
  assert.ok(relErr(got.fuseCoe.data, want.fuseCoe.data) <= SAME, `${what}: weights`);
  assert.ok(relErr(got.output.data, want.output.data) <= SAME, `${what}: output`);
  return got;
}

Deno.test("segmented routing equals one-pass routing across segment boundaries, with undone experts in sealed segments", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(3);
    const params = initParams(DIMS, rng);
    const editor = await LiveEditor.create(DIMS, params, { segmentSize: 3, segmentDir: dir });
    try {
      const xs = await experts(params, rng, 14);
      for (const x of xs.slice(0, 11)) await editor.pool.add(x); // ids 0..10
      assert.equal(editor.pool.segments.length, 3, "segments [0..2] [3..5] [6..8], tail 9, 10");
      assert.equal(editor.pool.tail.size, 2);
      const first = await assertSameAsOnePass(editor, params, "11 experts");
      const kept = [...first.retrievalMap.data.subarray(0, 11)];
      assert.deepEqual(kept, xs.slice(0, 11).map((_, k) => (k % 3 !== 1 ? 1 : 0)));
      assert.ok(first.retrievalMap.data.subarray(11, 22).every((v) => v === 0), "no image");

      // undo in sealed segments (masked) and in the tail (swapped)
      for (const id of [1, 3, 9]) assert.equal(editor.pool.remove(id), true);
      assert.deepEqual(editor.pool.ids, [0, 2, 4, 5, 6, 7, 8, 10]);
      await assertSameAsOnePass(editor, params, "after undoing 1, 3 and 9");

      // a segment emptied by undo goes; appends seal a new one
      for (const id of [6, 7, 8]) editor.pool.remove(id);
      assert.equal(editor.pool.segments.length, 2);
      for (const x of xs.slice(11)) await editor.pool.add(x); // ids 11..13: 10, 11, 12 sealed
      assert.equal(editor.pool.segments.length, 3);
      assert.deepEqual(editor.pool.ids, [0, 2, 4, 5, 10, 11, 12, 13]);
      const routed = await assertSameAsOnePass(
        editor,
        params,
        "after a segment emptied and a new seal",
      );
      assert.deepEqual(await editor.pool.get(4), xs[4], "a sealed expert reads back exactly");

      // the decode hook of input 0 carries exactly its retrieved experts and their weights
      const p = probe(new Rng(7)), n = editor.pool.size, ids = editor.pool.ids;
      const row0 = new Tensor("f32", [1, L, DIMS.llmMidDim], p.hidden.data.slice(0, L * 16));
      const hook = await editor.residualHook(2, row0, p.inputs[0]);
      assert.ok(hook !== null);
      const used = ids.filter((_, c) => routed.retrievalMap.data[c] === 1);
      const weights = [...routed.fuseCoe.data.subarray(0, n)].filter((_, c) =>
        routed.retrievalMap.data[c] === 1
      );
      assert.ok(relErr(hook.feeds.fuse_coe.data as Float32Array, weights) <= SAME);
      const rd = DIMS.loraRank * DIMS.llmMidDim;
      for (const [j, id] of used.entries()) {
        const x = await editor.pool.get(id);
        assert.deepEqual(hook.feeds["pool/moe_cs"].data.slice(j * rd, (j + 1) * rd), x.moeC);
        assert.deepEqual(hook.feeds["pool/moe_rs"].data.slice(j * rd, (j + 1) * rd), x.moeR);
      }
    } finally {
      await editor.release();
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "release deletes the segment directory");
  });
});

Deno.test("a route is fed the same bytes for 10 and for 10 000 experts", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(4);
    const params = initParams(DIMS, rng);
    const xs = await experts(params, rng, 30);
    const p = probe(new Rng(7));
    const fedPerRoute = async (n: number) => {
      // 10 000 = 10 sealed segments of 999 + a tail of 10, like the pool of 10
      const editor = await LiveEditor.create(DIMS, params, { segmentSize: 999, segmentDir: dir });
      try {
        for (let k = 0; k < n; k++) await editor.pool.add(xs[k % xs.length]);
        assert.equal(editor.pool.tail.size, 10);
        await editor.route(p.hidden, p.inputs); // builds the pool session
        const before = { runs: editor.stats.runs, bytes: editor.stats.fedBytes };
        const routed = await editor.route(p.hidden, p.inputs);
        assert.equal(routed.retrievalMap.shape[1], n);
        assert.equal(
          editor.stats.runs - before.runs,
          2,
          "two runs: the input's features, the pool",
        );
        return editor.stats.fedBytes - before.bytes;
      } finally {
        await editor.release();
      }
    };
    const small = await fedPerRoute(10), large = await fedPerRoute(10_000);
    assert.equal(large, small);
    const { eqeN: e, moduleDim: m, loraRank: r, llmMidDim: d } = DIMS;
    assert.ok(large < (10_000 * 4 * (2 * e * m + 2 * r * d)) / 50, "far less than the pool");
  });
});

Deno.test("a segment file changed on disk is an error naming it; nothing is written", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(5);
    const params = initParams(DIMS, rng);
    const editor = await LiveEditor.create(DIMS, params, { segmentSize: 3, segmentDir: dir });
    try {
      for (const x of await experts(params, rng, 4)) await editor.pool.add(x);
      const p = probe(new Rng(7));
      await editor.route(p.hidden, p.inputs);
      const [segment] = editor.pool.segments;
      const bytes = await Deno.readFile(segment.file);
      bytes[segment.parts.moe_rs.offset + 5] ^= 0xff; // one expert's R changes
      await Deno.writeFile(segment.file, bytes);
      const files = [...Deno.readDirSync(editor.pool.directory!)].map((e) => e.name).sort();
      editor.pool.remove(0); // the next route rebuilds the pool session
      const name = segment.file.replaceAll(".", "\\.");
      await assert.rejects(
        editor.route(p.hidden, p.inputs),
        new RegExp(`segment file ${name} changed on disk: its checksum is [0-9a-f]{64}`),
      );
      await assert.rejects(editor.pool.check(), /changed on disk/);
      const after = [...Deno.readDirSync(editor.pool.directory!)].map((e) => e.name).sort();
      assert.deepEqual(after, files, "no file was added or replaced");
    } finally {
      await editor.release();
    }
  });
});

Deno.test("a pool for other dims and undo of an unknown id are errors naming them; nothing changes", async () => {
  await withTempDir(async (dir) => {
    const rng = new Rng(6);
    const params = initParams(DIMS, rng);
    const dims = expertDimsOf(DIMS);
    const pool = new SegmentedPool(dims, { segmentSize: 2, dir });
    const [x] = await experts(params, rng, 1);
    await assert.rejects(
      pool.add({ ...x, moeC: x.moeC.subarray(1) }),
      /moeC has 31 floats, expected 32/,
    );
    await pool.add(x, 5);
    await assert.rejects(pool.add(x, 5), /id 5 is already in the pool/);
    assert.equal(pool.size, 1);
    await pool.release();

    const repoDir = `${dir}/repo`;
    const other = await ExpertRepository.open(repoDir, {
      init: { backbone: "t", dims: { ...dims, r: 3 } },
    });
    const editor = await LiveEditor.create(DIMS, params, { segmentSize: 2, segmentDir: dir });
    await assert.rejects(
      EditSession.open(editor, other),
      new RegExp(`${repoDir} holds experts of dims .*"r":3.*, the editor makes .*"r":2`),
    );
    await other.close();

    const s = await EditSession.open(editor, ExpertRepository.memory({ backbone: "t", dims }));
    try {
      const reps = randn([1, L, DIMS.llmMidDim], rng);
      const ranges: [number, number][] = [[0, 2], [2, 2 + V], [2 + V, L - 2], [L - 2, L]];
      for (let k = 0; k < 5; k++) await s.edit({ prompt: `p${k}`, target: "t" }, reps, ranges);
      assert.equal(editor.pool.segments.length, 2);
      const version = editor.pool.version, ids = s.ids;
      await assert.rejects(s.undo(99), /no edit 99/);
      assert.equal(editor.pool.version, version);
      assert.deepEqual(s.ids, ids);
      await s.undo(ids[1]); // in a sealed segment
      assert.deepEqual(s.ids, ids.filter((id) => id !== ids[1]));
    } finally {
      await s.close();
    }
  });
});
