import assert from "node:assert/strict";
import { LiveEditModel, LiveEditTrainer } from "../../../src/editors/liveedit/mod.ts";
import type { EditSample } from "../../../src/data/sample.ts";
import type { TinyBackbone } from "./_tiny_backbone.ts";
import { syntheticSamples, withTinyBackbone } from "./_tiny_backbone.ts";
import { agreement, tokenAccuracy } from "./_metrics.ts";

const EDITS = 8;
const STEPS = 200;

/**
 * Sequential editing of every training request into a fresh pool of an editor with the
 * trainer's weights: reliability on the requests, image locality = argmax agreement with the
 * unedited model on the image-locality examples.
 */
async function score(b: TinyBackbone, trainer: LiveEditTrainer, samples: EditSample[]) {
  const model = await LiveEditModel.create({
    runner: b.runner,
    config: b.config,
    params: trainer.parameters(),
    modelName: "tiny-blip2-opt",
  });
  try {
    const locExamples = samples.map((s) => s.locality.image_loc);
    const unedited = await model.predict(locExamples);
    for (const s of samples) await model.edit(s.request);
    return {
      rel: tokenAccuracy(await model.predict(samples.map((s) => s.request))),
      loc: agreement(await model.predict(locExamples), unedited),
    };
  } finally {
    await model.close();
  }
}

Deno.test(
  `LiveEdit on a tiny BLIP-2 OPT: ${STEPS} steps on ${EDITS} synthetic edits reach reliability >= 0.9 with image locality >= 0.9`,
  async () => {
    await withTinyBackbone(async (b) => {
      const samples = await syntheticSamples(b.dir, EDITS);
      const trainer = LiveEditTrainer.create({ runner: b.runner, config: b.config, seed: 0 });
      const before = await score(b, trainer, samples);
      assert.ok(before.rel < 0.5, `reliability before training is ${before.rel}`);
      // The whole edit set is one batch; prepare is a pure function of the batch, so once.
      const batch = await trainer.prepare(samples);
      const lr = b.config.train.lr;
      const first = await trainer.step(batch, lr);
      let last = first;
      for (let i = 1; i < STEPS; i++) last = await trainer.step(batch, lr);
      assert.ok(
        last.parts.rel < first.parts.rel / 2,
        `rel loss ${first.parts.rel} → ${last.parts.rel}`,
      );
      const after = await score(b, trainer, samples);
      console.log(
        `before ${JSON.stringify(before)}, after ${STEPS} steps ${JSON.stringify(after)}`,
      );
      assert.ok(after.rel >= 0.9, `reliability after training is ${after.rel}`);
      assert.ok(after.loc >= 0.9, `image locality after training is ${after.loc}`);
    });
  },
);
