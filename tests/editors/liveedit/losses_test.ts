import assert from "node:assert/strict";
import * as op from "../../../src/graph/ops.ts";
import { type BackboneLoss, buildTrainingGraph } from "../../../src/editors/liveedit/losses.ts";
import {
  type ExampleGroup,
  packTrainBatch,
  sampleExpertMasks,
  samplePairs,
  type TrainSequence,
} from "../../../src/editors/liveedit/train_batch.ts";
import { initParams } from "../../../src/editors/liveedit/params.ts";
import { compileRunner } from "../../../src/graph/runner.ts";
import { randn } from "../../../src/tensor/create.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { Rng } from "../../../src/tensor/rng.ts";

const DIMS = {
  llmMidDim: 16,
  moduleDim: 8,
  crossAttHeadN: 2,
  eqeN: 2,
  loraRank: 2,
  loraScale: 5,
  visionTokN: 3,
};
const GROUPS: ExampleGroup[] = [
  { name: "rel", kind: "rel" },
  { name: "text_rephrase", kind: "gen" },
  { name: "image_rephrase", kind: "gen" },
  { name: "image_loc", kind: "loc" },
];

function sequence(
  rng: Rng,
  pre: number,
  vision: number,
  query: number,
  answer: number,
): TrainSequence {
  const L = pre + vision + query + answer;
  const a = pre, b = a + vision, c = b + query;
  return { reps: randn([1, L, DIMS.llmMidDim], rng), ranges: [[0, a], [a, b], [b, c], [c, L]] };
}

Deno.test("one training graph serves batches of different sizes; total is the weighted sum", async () => {
  const weights = {
    relLambda: 1,
    genLambda: 0.5,
    locLambda: 2,
    softRoutingLambda: 1,
    hardRoutingLambda: 3,
  };
  // backbone stand-in: mean over the group of <residual, H>
  const loss: BackboneLoss = (residual, group) =>
    op.reduceMean(op.reduceSum(op.mul(residual, group.hidden), [1, 2]));
  const tg = buildTrainingGraph(DIMS, weights, GROUPS, loss);
  const grads = Object.fromEntries(Object.entries(tg.grads).map(([k, v]) => [`grad/${k}`, v]));
  const runner = await compileRunner(tg.graph, { ...tg.outputs, ...grads });
  const rng = new Rng(1);
  const params = initParams(DIMS, rng);
  try {
    for (const per of [[1, 2], [2, 1, 1]]) {
      const b = per.length, n = per.reduce((x, y) => x + y, 0);
      const seq = () => sequence(rng, rng.int(3), 3, 1 + rng.int(4), 1 + rng.int(3));
      const batch = {
        edits: Array.from({ length: n }, seq),
        groups: Object.fromEntries(GROUPS.map((g) => [g.name, Array.from({ length: b }, seq)])),
        masks: sampleExpertMasks(rng, per, per.map(() => 0)),
        ...samplePairs(rng, b, GROUPS),
      };
      const out = await runner.run({ ...params, ...packTrainBatch(DIMS, GROUPS, batch) });
      const v = (k: string) => toNumbers(out[k])[0];
      const expected = v("loss/rel") + 0.5 * (v("loss/text_rephrase") + v("loss/image_rephrase")) +
        2 * v("loss/image_loc") + v("soft/loss") + 3 * (v("hard_neib/loss") + v("hard_prot/loss"));
      assert.ok(Math.abs(v("total_loss") - expected) <= 1e-6 * Math.abs(expected), `b=${b}`);
      assert.deepEqual(out["hard_prot/sim"].shape, [b, b + 1]);
      assert.deepEqual(out["rel/fuse_coe"].shape, [b, n]);
      for (const [k, t] of Object.entries(out)) {
        if (k.startsWith("grad/")) assert.ok(toNumbers(t).every(Number.isFinite), k);
      }
      const g = toNumbers(out["grad/moegen_r.phi"]);
      assert.ok(g.some((x) => x !== 0), "the residual path reaches the generators");
    }
  } finally {
    await runner.release();
  }
});
