import assert from "node:assert/strict";
import { join } from "node:path";
import type { EditorDims } from "../../../src/editors/liveedit/config.ts";
import { LiveEditor, type RouteInput } from "../../../src/editors/liveedit/editor.ts";
import { type EditorParams, initParams } from "../../../src/editors/liveedit/params.ts";
import { ExpertRepository } from "../../../src/editors/liveedit/repository/repository.ts";
import { EditSession, expertDimsOf } from "../../../src/editors/liveedit/session.ts";
import type { Range } from "../../../src/editors/liveedit/tokens.ts";
import { relErr } from "../../../src/tensor/compare.ts";
import { randn } from "../../../src/tensor/create.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { fixtureDims } from "./_fixture.ts";

/**
 * Bounds: outputs of two pools holding the same experts agree to <= 1e-6 relative error
 * (`relErr`: max |a - b| over max |b|); they differ only in f32 summation order.
 */
const SAME = 1e-6;
/** An expert's effect is visible: outputs with and without it differ by more than this. */
const DIFFERENT = 1e-4;

interface Probe {
  readonly hidden: Tensor<"f32">;
  readonly inputs: RouteInput[];
}

/** The fixture's dims (d=64, m=32, e=4, r=4), seeded editor parameters, edits and probes. */
async function world(seed = 1) {
  const dims = await fixtureDims();
  const rng = new Rng(seed);
  const params = initParams(dims, rng);
  const V = dims.visionTokN, d = dims.llmMidDim;
  // edits: 2 pre-vision tokens, the image, a 6-token query, a 4-token target
  const L = 2 + V + 6 + 4;
  const ranges: Range[] = [[0, 2], [2, 2 + V], [2 + V, 8 + V], [8 + V, L]];
  const edits = Array.from({ length: 4 }, (_, k) => ({
    request: { prompt: `question ${k}?`, target: `answer ${k}`, image: `img/${k}.jpg` },
    reps: randn([1, L, d], rng),
  }));
  // probes: a batch of inputs at inference (image + query, no target); row 3 has no image
  const P = 8, Lp = 2 + V + 6;
  const probe: Probe = {
    hidden: randn([P, Lp, d], rng),
    inputs: Array.from(
      { length: P },
      (_, b) => (b === 3 ? { vision: null } : { vision: [2, 2 + V] }),
    ),
  };
  return { dims, params, ranges, edits, probe };
}

type World = Awaited<ReturnType<typeof world>>;

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-session-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const init = (dims: EditorDims) => ({ backbone: "tiny-test", dims: expertDimsOf(dims) });

async function session(w: World, repo: ExpertRepository): Promise<EditSession> {
  return EditSession.open(await LiveEditor.create(w.dims, w.params, { capacity: 1 }), repo);
}

/** Edits `which` (indices into `w.edits`) through `s`; returns their repository ids. */
async function editAll(s: EditSession, w: World, which: number[]): Promise<number[]> {
  const ids: number[] = [];
  for (const k of which) ids.push(await s.edit(w.edits[k].request, w.edits[k].reps, w.ranges));
  return ids;
}

/**
 * The reference: a plain editor (no repository, no session) whose pool is built from the
 * edits `which` only, routed on the probe. Returns the output and each expert's weights by
 * position in `which`.
 */
async function reference(w: World, params: EditorParams, which: number[]) {
  const editor = await LiveEditor.create(w.dims, params);
  try {
    for (const k of which) await editor.edit(w.edits[k].reps, w.ranges);
    return await editor.route(w.probe.hidden, w.probe.inputs);
  } finally {
    await editor.release();
  }
}

/** Column of expert `id` of a `[B, n]` routing tensor whose columns are `ids`. */
function column(t: Tensor, ids: readonly number[], id: number): number[] {
  const n = ids.length, k = ids.indexOf(id);
  assert.ok(k >= 0, `expert ${id} is in the pool`);
  return Array.from({ length: t.shape[0] }, (_, b) => Number(t.data[b * n + k]));
}

/** Asserts that a session's routing equals a reference pool's, expert by expert. */
function assertSameRouting(
  got: { output: Tensor<"f32">; fuseCoe: Tensor<"f32">; expertIds: readonly number[] },
  ref: { output: Tensor<"f32">; fuseCoe: Tensor<"f32"> },
  refIds: readonly number[],
  what: string,
) {
  const err = relErr(got.output.data, ref.output.data);
  assert.ok(err <= SAME, `${what}: output relErr ${err} > ${SAME}`);
  assert.deepEqual([...got.expertIds].sort((a, b) => a - b), [...refIds].sort((a, b) => a - b));
  for (const id of refIds) {
    const a = column(got.fuseCoe, got.expertIds, id), b = column(ref.fuseCoe, refIds, id);
    const e = Math.max(...a.map((x, i) => Math.abs(x - b[i])));
    assert.ok(e <= SAME, `${what}: weight of expert ${id} differs by ${e}`);
  }
}

/** Undo of B among A, B, C removes exactly B's effect, in a repository made by `open`. */
async function checkUndo(w: World, repo: ExpertRepository): Promise<EditSession> {
  const s = await session(w, repo);
  const [a, b, c] = await editAll(s, w, [0, 1, 2]);
  assert.deepEqual(s.ids, [a, b, c]);
  const before = await s.route(w.probe.hidden, w.probe.inputs);
  assert.ok(column(before.fuseCoe, before.expertIds, b).some((x) => x > 0), "B is used by a probe");
  assertSameRouting(before, await reference(w, w.params, [0, 1, 2]), [a, b, c], "before undo");

  await s.undo(b);
  assert.equal(repo.has(b), false);
  assert.deepEqual(s.list().map((x) => x.id), [a, c]);
  assert.deepEqual(s.ids, [a, c]);
  const after = await s.route(w.probe.hidden, w.probe.inputs);
  assertSameRouting(after, await reference(w, w.params, [0, 2]), [a, c], "after undo(B)");
  const moved = relErr(after.output.data, before.output.data);
  assert.ok(moved > DIFFERENT, `undo(B) changed the output by only ${moved}`);
  return s;
}

Deno.test("undo(B) removes exactly B's effect (on-disk repository), and reopening keeps it", async () => {
  const w = await world();
  await withTempDir(async (dir) => {
    const s = await checkUndo(w, await ExpertRepository.open(dir, { init: init(w.dims) }));
    const after = await s.route(w.probe.hidden, w.probe.inputs);
    await s.close();

    const again = await session(w, await ExpertRepository.open(dir));
    try {
      assert.deepEqual(again.ids, [1, 3]);
      const reopened = await again.route(w.probe.hidden, w.probe.inputs);
      assertSameRouting(reopened, await reference(w, w.params, [0, 2]), [1, 3], "reopened");
      assert.ok(relErr(reopened.output.data, after.output.data) <= SAME, "reopen = before close");
    } finally {
      await again.close();
    }
  });
});

Deno.test("memory-only repository: undo(B) behaves the same", async () => {
  const w = await world();
  const repo = ExpertRepository.memory(init(w.dims));
  const s = await checkUndo(w, repo);
  assert.equal(repo.dir, undefined);
  await s.close();
});

Deno.test("undo of a middle expert moves the last one into its row; reopen restores id order", async () => {
  const w = await world();
  await withTempDir(async (dir) => {
    const s = await session(w, await ExpertRepository.open(dir, { init: init(w.dims) }));
    const [a, b, c, d] = await editAll(s, w, [0, 1, 2, 3]);
    await s.undo(a);
    assert.deepEqual(s.ids, [d, b, c], "D took A's row: the pool stays contiguous");
    assert.equal(s.editor.pool.size, 3);
    const ref = await reference(w, w.params, [1, 2, 3]);
    assertSameRouting(await s.route(w.probe.hidden, w.probe.inputs), ref, [b, c, d], "swapped");
    for (const id of [b, c, d]) {
      const stored = await s.repository.get(id), pooled = await s.editor.pool.get(id);
      assert.deepEqual(pooled.moeR, stored.R.data, `pool row of ${id} is its stored expert`);
      assert.deepEqual(pooled.evr, stored.evr.data);
    }
    await s.close();
    const again = await session(w, await ExpertRepository.open(dir));
    assert.deepEqual(again.ids, [b, c, d]);
    assertSameRouting(
      await again.route(w.probe.hidden, w.probe.inputs),
      ref,
      [b, c, d],
      "reopened",
    );
    await again.close();
  });
});

Deno.test("batched routing equals per-sample routing with a repository-backed pool (<= 1e-6)", async () => {
  const w = await world();
  await withTempDir(async (dir) => {
    const s = await session(w, await ExpertRepository.open(dir, { init: init(w.dims) }));
    try {
      const [a] = await editAll(s, w, [0, 1, 2, 3]);
      await s.undo(a); // a swapped pool
      const { hidden, inputs } = w.probe;
      const batched = await s.route(hidden, inputs);
      const [B, L, d] = hidden.shape, n = s.size;
      let used = 0;
      for (let b = 0; b < B; b++) {
        const row = hidden.data.slice(b * L * d, (b + 1) * L * d);
        const got = batched.output.data.subarray(b * L * d, (b + 1) * L * d);
        if (inputs[b].vision == null) {
          assert.deepEqual(got, row, "an input without an image passes through unchanged");
          continue;
        }
        const single = await s.route(new Tensor("f32", [1, L, d], row), [inputs[b]]);
        const err = relErr(got, single.output.data);
        assert.ok(err <= SAME, `probe ${b}: batched vs single relErr ${err}`);
        const map = [...batched.retrievalMap.data.subarray(b * n, (b + 1) * n)];
        assert.deepEqual(map, [...single.retrievalMap.data]);
        if (map.some(Boolean)) used++;
      }
      assert.ok(used >= 2, `the check covers probes that use experts (${used})`);
    } finally {
      await s.close();
    }
  });
});

Deno.test("saveState/loadState round trip: same ids, requests and routing outputs", async () => {
  const w = await world();
  await withTempDir(async (dir) => {
    const s = await session(
      w,
      await ExpertRepository.open(join(dir, "repo"), { init: init(w.dims) }),
    );
    const [, b] = await editAll(s, w, [0, 1, 2]);
    await s.undo(b);
    const before = await s.route(w.probe.hidden, w.probe.inputs);
    const list = s.list();
    const path = join(dir, "state.safetensors");
    await s.saveState(path);
    await s.close();

    const memory = await EditSession.loadState(path, w.dims);
    try {
      assert.equal(memory.repository.dir, undefined, "default: a memory repository");
      assert.equal(memory.repository.manifest.backbone, "tiny-test");
      assert.deepEqual(memory.list(), list, "ids, times and requests kept");
      const loaded = await memory.route(w.probe.hidden, w.probe.inputs);
      assert.deepEqual(loaded.expertIds, before.expertIds);
      assert.deepEqual(loaded.output.data, before.output.data, "identical outputs");
      assert.deepEqual(loaded.fuseCoe.data, before.fuseCoe.data);
      assert.equal(memory.editor.params["moegen_c.phi"].data[0], w.params["moegen_c.phi"].data[0]);
    } finally {
      await memory.close();
    }

    const repo = await ExpertRepository.open(join(dir, "copy"), { init: init(w.dims) });
    const disk = await EditSession.loadState(path, w.dims, { repository: repo });
    assert.deepEqual(disk.list(), list);
    await disk.close();
    const reopened = await session(w, await ExpertRepository.open(join(dir, "copy")));
    const out = await reopened.route(w.probe.hidden, w.probe.inputs);
    assert.deepEqual(
      out.output.data,
      before.output.data,
      "loaded into a disk repository, reopened",
    );
    await reopened.close();
  });
});

Deno.test("session errors name what is wrong and change nothing", async () => {
  const w = await world();
  const repo = ExpertRepository.memory(init(w.dims));
  const s = await session(w, repo);
  try {
    const [a] = await editAll(s, w, [0]);
    await assert.rejects(s.undo(a + 7), /no edit 8/);
    await assert.rejects(
      s.edit(w.edits[1].request, w.edits[1].reps, [[0, 0], [0, 0], [0, 5], [5, 20]]),
      /the vision is empty/,
    );
    await assert.rejects(
      s.edit({ prompt: "p", target: 3 as unknown as string }, w.edits[1].reps, w.ranges),
      /request\.target must be a string/,
    );
    assert.deepEqual(s.ids, [a]);
    assert.equal(repo.size, 1);
    assert.equal(repo.nextId, 2, "no id was spent on a failed edit");
    await s.undo(a);
    await assert.rejects(s.undo(a), /edit 1 was undone/);
    assert.equal(s.size, 0);
    const empty = await s.route(w.probe.hidden, w.probe.inputs);
    assert.equal(empty.output, w.probe.hidden, "no experts: unchanged");
  } finally {
    await s.close();
  }
  await assert.rejects(s.route(w.probe.hidden, w.probe.inputs), /session is closed/);

  const other = ExpertRepository.memory({ backbone: "x", dims: { e: 4, m: 32, r: 2, d: 64 } });
  const editor = await LiveEditor.create(w.dims, w.params);
  await assert.rejects(EditSession.open(editor, other), /holds experts of dims .*"r":2/);
  await editor.edit(w.edits[0].reps, w.ranges);
  await assert.rejects(
    EditSession.open(editor, ExpertRepository.memory(init(w.dims))),
    /pool already holds 1 experts/,
  );
  await editor.release();
  await other.close();
});

Deno.test("clear() undoes every edit: the pool is empty, routing passes through, reopening agrees", async () => {
  const w = await world();
  await withTempDir(async (dir) => {
    const s = await session(w, await ExpertRepository.open(dir, { init: init(w.dims) }));
    await editAll(s, w, [0, 1, 2]);
    await s.clear();
    assert.equal(s.size, 0);
    assert.deepEqual(s.list(), []);
    const routed = await s.route(w.probe.hidden, w.probe.inputs);
    assert.equal(routed.output, w.probe.hidden, "nothing routed: the input itself");
    // the next edits continue the ids and route as a fresh pool of those edits
    const [d] = await editAll(s, w, [3]);
    assert.equal(d, 4);
    assertSameRouting(
      await s.route(w.probe.hidden, w.probe.inputs),
      await reference(w, w.params, [3]),
      [d],
      "after clear, edit D",
    );
    await s.close();
    const again = await session(w, await ExpertRepository.open(dir));
    assert.deepEqual(again.ids, [d]);
    await again.close();
  });
});
