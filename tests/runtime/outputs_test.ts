import assert from "node:assert/strict";
import { f32, labelOutputs, output } from "../../src/runtime/outputs.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { unaryModel } from "./_models.ts";

Deno.test("f32/output read session outputs with their dtype checked, naming session and output", async () => {
  const s = await LocalSession.create(
    unaryModel("Cast", { dtype: "f32", shape: [2] }, "i64", { to: { int: 7 } }),
    { name: "cast" },
  );
  try {
    const out = await s.run({ x: new Tensor("f32", [2], Float32Array.of(1.5, -2)) });
    assert.deepEqual([...output(out, "y", "i64").data], [1n, -2n]);
    assert.throws(
      () => f32(out, "y"),
      /^Error: session 'cast' on cpu: output 'y' is i64\[2\], expected f32$/,
    );
    assert.throws(
      () => f32(out, "logits"),
      /session 'cast' on cpu: output 'logits' is missing; the outputs are y/,
    );
    assert.deepEqual(Object.keys(out), ["y"], "the label is not an output");
  } finally {
    await s.release();
  }
});

Deno.test("f32 on an unlabelled record names the output only", () => {
  const out = { h: new Tensor("bool", [1], Uint8Array.of(1)) };
  assert.throws(() => f32(out, "h"), /^Error: output 'h' is bool\[1\], expected f32$/);
  const labelled = labelOutputs("session 's' on cpu:0", { ...out });
  assert.throws(() => f32(labelled, "h"), /^Error: session 's' on cpu:0: output 'h'/);
});
