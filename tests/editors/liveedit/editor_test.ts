import assert from "node:assert/strict";
import { LiveEditor, type RouteInput } from "../../../src/editors/liveedit/editor.ts";
import type { EditorParams } from "../../../src/editors/liveedit/params.ts";
import { DeviceWorker } from "../../../src/runtime/device_worker.ts";
import { relErr } from "../../../src/tensor/compare.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { fixtureDims, fixtureTensors } from "./_fixture.ts";

/** The fixture's editor with its three edits in the pool, and its retrieval inputs. */
async function setup() {
  const dims = await fixtureDims();
  const params = await fixtureTensors("params.safetensors") as EditorParams;
  const data = await fixtureTensors("data.safetensors");
  const editor = await LiveEditor.create(dims, params, { capacity: 1 });
  const retr: { reps: Tensor<"f32">; input: RouteInput }[] = [];
  for (let t = 0; data[`in/retr${t}/reps`]; t++) {
    const r = toNumbers(data[`in/retr${t}/ranges`]);
    retr.push({
      reps: data[`in/retr${t}/reps`] as Tensor<"f32">,
      input: { vision: [r[2], r[3]], queryEnd: r[5] },
    });
  }
  return { dims, data, editor, retr };
}

/** `[1, L, d]` tensors stacked and zero-padded into `[B, max L, d]`. */
function stack(xs: Tensor<"f32">[], d: number): Tensor<"f32"> {
  const L = Math.max(...xs.map((x) => x.shape[1]));
  const out = new Float32Array(xs.length * L * d);
  xs.forEach((x, b) => out.set(x.data, b * L * d));
  return new Tensor("f32", [xs.length, L, d], out);
}

/** Row `b`, first `L` positions, of `[B, L', d]`. */
function rowOf(t: Tensor<"f32">, b: number, L: number): Float32Array {
  const d = t.shape[2], Lp = t.shape[1];
  return t.data.slice(b * Lp * d, b * Lp * d + L * d);
}

Deno.test("batched routing equals per-sample routing (<= 1e-6), text-only rows unchanged", async () => {
  const { dims, data, editor, retr } = await setup();
  try {
    for (let i = 0; i < 3; i++) {
      await editor.edit(data[`in/edit${i}/reps`] as Tensor<"f32">, data[`in/edit${i}/ranges`]);
    }
    assert.equal(editor.pool.size, 3);
    // A text-only input in the middle of the batch, and the image inputs in a mixed order.
    const order = [2, 0, -1, 3, 1];
    const reps = order.map((t) => retr[t < 0 ? 0 : t].reps);
    const inputs = order.map((t) => (t < 0 ? { vision: null } : retr[t].input));
    const batched = await editor.route(stack(reps, dims.llmMidDim), inputs);
    let routedRows = 0;
    for (const [b, t] of order.entries()) {
      const L = reps[b].shape[1];
      const got = rowOf(batched.output, b, L);
      if (t < 0) {
        assert.deepEqual(got, reps[b].data, "an input without an image passes through unchanged");
        continue;
      }
      const single = await editor.route(retr[t].reps, [retr[t].input]);
      const err = relErr(got, single.output.data);
      assert.ok(err <= 1e-6, `retr${t}: batched vs single relErr ${err}`);
      const map = [...batched.retrievalMap.data.subarray(3 * b, 3 * b + 3)];
      assert.deepEqual(map, [...single.retrievalMap.data]);
      if (map.some(Boolean)) routedRows++;
      // the per-sample result is the fixture's hooked output
      const ref = data[`out/retr${t}/hooked_output`];
      assert.ok(relErr(single.output.data, toNumbers(ref)) <= 1e-5, `retr${t} vs fixture`);
    }
    assert.ok(routedRows >= 2, "the check covers inputs that use experts");
  } finally {
    await editor.release();
  }
});

Deno.test("an editor in a device worker (a sealed segment of 2 experts there) edits and routes as in-thread; runs and fed bytes counted", async () => {
  const { dims, data, editor, retr } = await setup();
  const params = await fixtureTensors("params.safetensors") as EditorParams;
  const cpu1 = await DeviceWorker.open("cpu:1");
  const remote = await LiveEditor.create(dims, params, { worker: cpu1, segmentSize: 2 });
  try {
    for (const e of [editor, remote]) {
      for (let i = 0; i < 3; i++) {
        await e.edit(data[`in/edit${i}/reps`] as Tensor<"f32">, data[`in/edit${i}/ranges`]);
      }
    }
    // the same graphs, on one thread instead of all cores: equal up to summation order
    assert.equal(remote.pool.segments.length, 1, "the first two are sealed in the worker's pool");
    for (const id of editor.pool.ids) {
      const [a, b] = [await remote.pool.get(id), await editor.pool.get(id)];
      assert.ok(relErr(a.moeC, b.moeC) <= 1e-6 && relErr(a.evr, b.evr) <= 1e-6, `expert ${id}`);
    }
    const { reps, input } = retr[0];
    const here = await editor.route(reps, [input]), there = await remote.route(reps, [input]);
    assert.ok(relErr(there.output.data, here.output.data) <= 1e-6);
    assert.deepEqual(there.retrievalMap.data, here.retrievalMap.data);
    // 3 edits, then a route: the input's features, then the pool
    assert.equal(remote.stats.runs, 3 + 2);
    assert.ok(remote.stats.lastFedBytes >= reps.data.byteLength, "the hidden states were fed");
    // the worker's pool session is fed one expert (its tail), the in-thread one all three
    const expertBytes = 4 * (2 * dims.eqeN * dims.moduleDim + 2 * dims.loraRank * dims.llmMidDim);
    assert.equal(editor.stats.fedBytes - remote.stats.fedBytes, 2 * expertBytes);
  } finally {
    await remote.release();
    await editor.release();
    cpu1.close();
  }
});

Deno.test("an empty pool or a batch without images leaves the hidden states unchanged", async () => {
  const { dims, data, editor, retr } = await setup();
  try {
    const hidden = retr[0].reps;
    const empty = await editor.route(hidden, [retr[0].input]);
    assert.equal(empty.output, hidden);
    assert.deepEqual(empty.fuseCoe.shape, [1, 0]);
    const id = await editor.edit(data["in/edit0/reps"] as Tensor<"f32">, data["in/edit0/ranges"]);
    const textOnly = await editor.route(hidden, [{ vision: null }]);
    assert.equal(textOnly.output, hidden);
    const routed = await editor.route(hidden, [retr[0].input]);
    assert.ok(relErr(routed.output.data, hidden.data) > 0, "with an expert and an image it edits");
    assert.equal(editor.undo(id), true);
    assert.equal((await editor.route(hidden, [retr[0].input])).output, hidden, "undo empties it");
    assert.equal(dims.llmMidDim, hidden.shape[2]);
  } finally {
    await editor.release();
  }
});

Deno.test("editor input errors name what is wrong", async () => {
  const { data, editor, retr } = await setup();
  try {
    const reps = data["in/edit0/reps"] as Tensor<"f32">;
    await assert.rejects(
      editor.newEdit(reps, [[0, 0], [0, 0], [0, 5], [5, 15]]),
      /the vision is empty/,
    );
    await assert.rejects(
      editor.newEdit(reps, [[0, 0], [0, 8], [9, 13], [13, 15]]),
      /range 2 \[9, 13\) must start at 8/,
    );
    await editor.edit(reps, data["in/edit0/ranges"]);
    await assert.rejects(
      editor.route(retr[0].reps, [{ vision: [0, 8], queryEnd: 99 }]),
      /input 0 needs 0 <= vision start < vision end < queryEnd <= 16/,
    );
  } finally {
    await editor.release();
  }
});
