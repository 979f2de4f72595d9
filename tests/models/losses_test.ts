import assert from "node:assert/strict";
import { join } from "node:path";
import { grad } from "../../src/graph/grad.ts";
import { Graph } from "../../src/graph/ir.ts";
import { runTraced } from "../../src/models/fixtures/decoder.ts";
import { labelLoss, logitKLLoss } from "../../src/models/losses.ts";
import { randn } from "../../src/tensor/create.ts";
import { relErr } from "../../src/tensor/compare.ts";
import { toNumbers } from "../../src/tensor/elements.ts";
import { Rng } from "../../src/tensor/rng.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { FIXTURES, i64, readAll, withTempDir } from "./_decoder.ts";

/** The loss graph over logits `[batch, seq, vocab]` and labels `[batch, labels]`. */
function lossGraph(vocab: number) {
  const g = new Graph();
  const edited = g.input("edited", "f32", ["batch", "seq", vocab]);
  const original = g.input("original", "f32", ["batch", "seq", vocab]);
  const ids = g.input("label_ids", "i64", ["batch", "labels"]);
  const masks = g.input("label_masks", "i64", ["batch", "labels"]);
  const label = labelLoss(edited, ids, masks);
  const kl = logitKLLoss(edited, original, masks);
  const [dLabel] = grad(label, [edited]);
  return { graph: g, outputs: { label, kl, dLabel } };
}

/** log softmax of one row. */
function logSoftmax(row: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(row));
  const lse = m + Math.log(Array.from(row).reduce((s, x) => s + Math.exp(x - m), 0));
  return Array.from(row, (x) => x - lse);
}

Deno.test("losses: the authors' formulas reproduce the fixtures' losses from their logits", async () => {
  await withTempDir(async (dir) => {
    for (const family of ["opt", "llama"]) {
      const refs = await readAll(join(FIXTURES, family, "refs.safetensors"));
      const out = await runTraced(lossGraph(refs.logits.shape[2]), {
        edited: refs["hooked.logits"],
        original: refs.logits,
        label_ids: refs["loss.label_ids"],
        label_masks: refs["loss.label_masks"],
      }, { cacheDir: dir });
      assert.ok(relErr(toNumbers(out.label), toNumbers(refs["loss.label_loss"])) <= 1e-6, family);
      assert.ok(relErr(toNumbers(out.kl), toNumbers(refs["loss.logit_KL_loss"])) <= 1e-5, family);
    }
  });
});

Deno.test("losses: label CE and KL on the last positions match a naive implementation, with gradient", async () => {
  await withTempDir(async (dir) => {
    const [b, s, v, l] = [3, 7, 11, 4];
    const rng = new Rng(5);
    const edited = randn([b, s, v], rng);
    const original = randn([b, s, v], rng);
    const ids = Array.from({ length: b * l }, (_, i) => (i * 7 + 3) % v);
    const masks = [0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 1, 1];
    const out = await runTraced(lossGraph(v), {
      edited,
      original,
      label_ids: i64([b, l], ids),
      label_masks: i64([b, l], masks),
    }, { cacheDir: dir });

    const row = (t: Tensor, r: number, p: number) =>
      t.data.slice((r * s + p) * v, (r * s + p + 1) * v) as Float32Array;
    let ce = 0, kl = 0, count = 0;
    const dLabel = new Float64Array(b * s * v);
    const total = masks.reduce((a, m) => a + m, 0);
    for (let r = 0; r < b; r++) {
      for (let j = 0; j < l; j++) {
        const m = masks[r * l + j];
        const p = s - l + j;
        const lp1 = logSoftmax(row(edited, r, p));
        const lp2 = logSoftmax(row(original, r, p));
        ce -= m * lp1[ids[r * l + j]];
        kl += m * lp1.reduce((acc, x, k) => acc + Math.exp(x) * (x - lp2[k]), 0);
        count += m;
        lp1.forEach((x, k) => {
          dLabel[(r * s + p) * v + k] = m * (Math.exp(x) - (k === ids[r * l + j] ? 1 : 0)) / total;
        });
      }
    }
    assert.ok(relErr(toNumbers(out.label), [ce / count]) <= 1e-6);
    assert.ok(relErr(toNumbers(out.kl), [kl / count]) <= 1e-5);
    assert.ok(relErr(out.dLabel, dLabel) <= 1e-5, `${relErr(out.dLabel, dLabel)}`);
  });
});
