import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type EditorState,
  loadEditorState,
  saveEditorState,
} from "../../../../src/editors/liveedit/repository/state.ts";
import { SafetensorsFile, writeSafetensors } from "../../../../src/io/safetensors.ts";
import { Tensor } from "../../../../src/tensor/tensor.ts";
import { DIMS, makeEdit, withTempDir } from "./_helpers.ts";

/** A state with two experts (seeds 5 and 6) and two weights. */
function state(): EditorState {
  const edits = [makeEdit(DIMS, 5), makeEdit(DIMS, 6)];
  const stack = (name: "eqr" | "evr" | "C" | "R") => {
    const [a, b] = edits[0][name].shape.slice(1);
    const data = new Float32Array(2 * a * b);
    edits.forEach((e, k) => data.set(e[name].data, k * a * b));
    return new Tensor("f32", [2, a, b], data);
  };
  return {
    editor: "liveedit",
    backbone: "tiny-test",
    dims: DIMS,
    weights: {
      "edit_extractor.eqe1": new Tensor(
        "f32",
        [1, DIMS.e, DIMS.m],
        Float32Array.from({ length: 6 }, (_, i) => i / 3),
      ),
      "moegen_c.phi": new Tensor("f32", [1, DIMS.r, DIMS.m], new Float32Array(6).fill(-1.5)),
    },
    pool: {
      experts: edits.map((e, k) => ({
        id: 3 + 4 * k,
        time: "2025-03-01T10:00:00.000Z",
        request: e.request,
      })),
      eqr: stack("eqr"),
      evr: stack("evr"),
      C: stack("C"),
      R: stack("R"),
    },
  };
}

Deno.test("editor state: one safetensors file round-trips weights, pools and requests", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.safetensors");
    const s = state();
    await saveEditorState(path, s);
    const file = await SafetensorsFile.open(path);
    assert.deepEqual(file.tensors().map((t) => t.name).sort(), [
      "edit_extractor.eqe1",
      "moegen_c.phi",
      "pool.C",
      "pool.R",
      "pool.eqr",
      "pool.evr",
    ]);
    assert.equal(file.metadata.format, "liveedit-state");
    assert.equal(JSON.parse(file.metadata.experts)[1].request.target, "target 6");
    file.close();
    const back = await loadEditorState(path, {
      backbone: "tiny-test",
      dims: DIMS,
      weights: s.weights,
    });
    assert.equal(back.backbone, "tiny-test");
    assert.deepEqual(back.dims, DIMS);
    assert.deepEqual(back.pool.experts, s.pool.experts);
    for (const k of ["eqr", "evr", "C", "R"] as const) {
      assert.deepEqual(back.pool[k].shape, s.pool[k].shape);
      assert.deepEqual([...back.pool[k].data], [...s.pool[k].data]);
    }
    for (const [k, t] of Object.entries(s.weights)) {
      assert.deepEqual(back.weights[k].shape, t.shape);
      assert.deepEqual([...back.weights[k].data], [...t.data]);
    }
  });
});

Deno.test("editor state: shape, name and format errors name the file and key", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "state.safetensors");
    const s = state();
    await assert.rejects(
      () =>
        saveEditorState(path, {
          ...s,
          pool: {
            ...s.pool,
            C: new Tensor("f32", [2, 2, 4], new Float32Array(16)),
          },
        }),
      /state\.safetensors: tensor "pool\.C" has shape \[2, 2, 4\], expected \[2, 2, 5\] \(2 experts\)/,
    );
    await assert.rejects(
      () => saveEditorState(path, { ...s, weights: { "pool.x": s.pool.C } }),
      /weight "pool\.x" uses the reserved prefix/,
    );
    await saveEditorState(path, s);
    const wrongWeights = { ...s.weights, "moegen_c.phi": { shape: [1, 4, 3] } };
    await assert.rejects(
      () => loadEditorState(path, { weights: wrongWeights }),
      /state\.safetensors: tensor "moegen_c\.phi" has shape \[1, 2, 3\], expected \[1, 4, 3\]/,
    );
    await assert.rejects(
      () => loadEditorState(path, { weights: { ...s.weights, "moegen_r.phi": { shape: [1] } } }),
      /state\.safetensors: tensor "moegen_r\.phi" is missing/,
    );
    await assert.rejects(
      () => loadEditorState(path, { dims: { ...DIMS, m: 4 } }),
      /state\.safetensors: expert dims .* differ from the expected/,
    );
    // A file whose pool disagrees with its expert list (written by hand).
    const bad = join(dir, "bad.safetensors");
    const file = await SafetensorsFile.open(path);
    const all = await file.readAll();
    const meta = { ...file.metadata, experts: JSON.stringify(s.pool.experts.slice(0, 1)) };
    file.close();
    await writeSafetensors(bad, all, meta);
    await assert.rejects(
      () => loadEditorState(bad),
      /bad\.safetensors: tensor "pool\.eqr" has shape \[2, 2, 3\], expected \[1, 2, 3\]/,
    );
    await writeSafetensors(bad, all, { format: "something-else" });
    await assert.rejects(
      () => loadEditorState(bad),
      /bad\.safetensors: not a LiveEdit editor state/,
    );
  });
});
