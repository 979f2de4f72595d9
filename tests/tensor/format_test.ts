import assert from "node:assert/strict";
import { arange, fromArray, full } from "../../src/tensor/create.ts";
import { formatTensor } from "../../src/tensor/format.ts";
import { reshape } from "../../src/tensor/ops.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

Deno.test("formatTensor: nested values, shortest float32 decimals, scalars, empties", () => {
  const t = new Tensor("f32", [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
  assert.equal(formatTensor(t), "Tensor f32[2, 3] [[1, 2, 3], [4, 5, 6]]");
  assert.equal(
    formatTensor(fromArray([0.1, -0, 1e-7, NaN, -Infinity])),
    "Tensor f32[5] [0.1, -0, 1e-7, NaN, -Infinity]",
  );
  assert.equal(formatTensor(fromArray([0.1], "f64")), "Tensor f64[1] [0.1]");
  assert.equal(formatTensor(full([], 3, "i32")), "Tensor i32[] 3");
  assert.equal(formatTensor(fromArray([]), {}), "Tensor f32[0] []");
  assert.equal(
    formatTensor(fromArray([2n ** 40n].map(Number), "i64")),
    "Tensor i64[1] [1099511627776]",
  );
  assert.equal(formatTensor(fromArray([true, false], "bool")), "Tensor bool[2] [true, false]");
  assert.equal(formatTensor(fromArray([0.1, 1 / 3], "f16")), "Tensor f16[2] [0.1, 0.3333]");
  assert.equal(formatTensor(fromArray([1 / 3], "bf16")), "Tensor bf16[1] [0.334]");
});

Deno.test("formatTensor: previews big tensors with an ellipsis per dim", () => {
  const big = reshape(arange(200), [20, 10]);
  const s = formatTensor(big, { maxItems: 50, edgeItems: 2 });
  assert.equal(
    s,
    "Tensor f32[20, 10] [[0, 1, ..., 8, 9], [10, 11, ..., 18, 19], ..., " +
      "[180, 181, ..., 188, 189], [190, 191, ..., 198, 199]]",
  );
  assert.ok(!formatTensor(arange(10)).includes("..."), "small tensors print in full");
});

Deno.test("Tensor prints via toString, template strings and Deno.inspect", () => {
  const t = fromArray([[1.5, 2]]);
  assert.equal(String(t), "Tensor f32[1, 2] [[1.5, 2]]");
  assert.equal(`${t}`, "Tensor f32[1, 2] [[1.5, 2]]");
  assert.equal(Deno.inspect(t), "Tensor f32[1, 2] [[1.5, 2]]");
  assert.equal(Deno.inspect({ w: t }), "{ w: Tensor f32[1, 2] [[1.5, 2]] }");
});
