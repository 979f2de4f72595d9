import assert from "node:assert/strict";
import { join } from "node:path";
import { LiveEditModel, openLiveEditModel } from "../../../src/editors/liveedit/mod.ts";
import { loadEditorState } from "../../../src/editors/liveedit/repository/state.ts";
import { writeSafetensors } from "../../../src/io/safetensors.ts";
import { relErr } from "../../../src/tensor/compare.ts";
import type { Example } from "../../../src/data/sample.ts";
import { evaluateSequential } from "../../../src/eval/evaluate.ts";
import { VLLM_INPUTS } from "../../../src/models/vllm/processor.ts";
import { f32 } from "../../../src/runtime/outputs.ts";
import { realPositions } from "./_metrics.ts";
import {
  strongParams,
  syntheticSamples,
  type TinyBackbone,
  withTinyBackbone,
} from "./_tiny_backbone.ts";

async function withModel(fn: (m: LiveEditModel, b: TinyBackbone) => Promise<void>) {
  await withTinyBackbone(async (b) => {
    const model = await LiveEditModel.create({
      runner: b.runner,
      config: b.config,
      params: strongParams(b.config),
      modelName: "tiny-blip2-opt",
    });
    try {
      await fn(model, b);
    } finally {
      await model.close();
    }
  });
}

/** The unedited backbone's logits of `examples` (one full forward pass). */
async function uneditedLogits(b: TinyBackbone, examples: readonly Example[]) {
  const batch = await b.vllm.prepare(examples);
  return { logits: (await b.runner.forward(batch)).logits, mask: batch.attentionMask };
}

Deno.test("an empty pool, and inputs without an image, give the unedited backbone (<= 1e-6)", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 3);
    const images = samples.map((s) => s.request);
    const texts = samples.map((s) => s.locality.text_loc);
    for (const xs of [images, texts]) {
      const want = await uneditedLogits(b, xs);
      const got = await model.editedLogits(xs);
      assert.ok(relErr(got.logits, want.logits) <= 1e-6);
    }
    for (const s of samples) await model.edit(s.request);
    assert.equal(model.size, 3);
    const want = await uneditedLogits(b, texts);
    const got = await model.editedLogits(texts);
    assert.ok(relErr(got.logits, want.logits) <= 1e-6, "text-only inputs pass through");
    // ... while routed inputs with an image do change
    const edited = await model.editedLogits(images);
    assert.ok(edited.retrievalMap.data.some((x) => x !== 0));
    const plain = await uneditedLogits(b, images);
    assert.ok(relErr(edited.logits, plain.logits) > 1e-3);
    await model.restore();
    assert.equal(model.size, 0);
    assert.ok(relErr((await model.editedLogits(images)).logits, plain.logits) <= 1e-6);
  });
});

Deno.test("batched predict equals per-sample predict (mixed image / text-only examples)", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 4);
    for (const s of samples.slice(0, 3)) await model.edit(s.request);
    const examples = samples.flatMap((s) => [
      s.request,
      s.locality.text_loc,
      s.generality.image_rephrase,
      s.locality.image_loc,
    ]);
    const batched = await model.predict(examples);
    const single = [];
    for (const x of examples) single.push(...await model.predict([x]));
    assert.deepEqual(batched, single);
    // the logits too, at the real positions of each row
    const imageRows = examples.filter((x) => x.image !== null);
    const all = await model.editedLogits(imageRows);
    for (const [r, x] of imageRows.entries()) {
      const one = await model.editedLogits([x]);
      const T = all.logits.shape[1], V = all.logits.shape[2], n = one.logits.shape[1];
      const row = (all.logits.data as Float32Array).subarray(r * T * V, (r * T + n) * V);
      assert.ok(relErr(row, realPositions(one.logits, one.batch.attentionMask)) <= 1e-5);
    }
  });
});

Deno.test("generate: greedy decoding with the edit's residual; unedited path for text-only", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 3);
    for (const s of samples) await model.edit(s.request);
    const routed = await model.editedLogits(samples.map((s) => s.request));
    const n = routed.retrievalMap.shape[1];
    const r = samples.findIndex((_, i) =>
      routed.retrievalMap.data.subarray(i * n, (i + 1) * n).some((x) => x !== 0)
    );
    assert.ok(r >= 0, "some request is routed");
    const request = samples[r].request;
    const ids = await model.generate(request, 3);
    // the first token is the teacher-forced prediction of the first target token
    const [p] = await model.predict([request]);
    assert.equal(ids[0], p.predicted[0]);
    assert.ok(ids.length >= 1 && ids.length <= 3);
    assert.deepEqual(await model.generate(request, 3), ids, "deterministic");
    const plain = samples[0].locality.text_loc;
    const want = await b.runner.generate({ text: plain.prompt, image: null }, { maxNewTokens: 3 });
    assert.deepEqual(await model.generate(plain, 3), [...want.ids]);
  });
});

/**
 * The generation with experts as the old uncached path computed it: for each token, the whole
 * prompt + tokens so far teacher-forced through layers `0..l_e`, the routed residual, the rest
 * (O(steps²) tokens, three session runs per step).
 */
async function uncachedGeneration(model: LiveEditModel, x: Example, steps: number) {
  const vllm = model.runner.vllm, layer = model.editLayer;
  const tokenizer = await vllm.tokenizer();
  const prompt = await vllm.inputs([{ text: x.prompt, image: x.image }]);
  const layout = prompt.layouts[0];
  const route = [{ vision: prompt.vtRange[0], queryEnd: prompt.lengths[0] }];
  const ids: number[] = [];
  while (ids.length < steps) {
    const inputs = vllm.inputsFromLayouts(
      [{ ids: [...layout.ids, ...ids], vision: layout.vision }],
      vllm.padId(tokenizer),
      f32(prompt.feeds, VLLM_INPUTS.pixelValues),
    );
    const hidden = await model.runner.hiddenAt(inputs, layer);
    const routed = await model.editor.route(hidden, route);
    assert.ok(routed.retrievalMap.data.some((r) => r !== 0), "the experts stay routed");
    const logits = await model.runner.logitsFrom(layer, routed.output, inputs.attentionMask);
    const [, T, V] = logits.shape;
    const last = [...logits.data.subarray((T - 1) * V, T * V)];
    const next = last.indexOf(Math.max(...last)); // an independent argmax
    if (next === tokenizer.eos?.id) break;
    ids.push(next);
  }
  return ids;
}

Deno.test("generate with experts runs through the KV cache: the uncached result, O(steps) session runs", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 3);
    for (const s of samples) await model.edit(s.request);
    const steps = 8;
    let checked = 0;
    for (const s of samples) {
      const x = s.request;
      const prompt = await b.vllm.inputs([{ text: x.prompt, image: x.image }]);
      const hidden = await b.runner.hiddenAt(prompt, model.editLayer);
      const hook = await model.editor.residualHook(model.editLayer, hidden, {
        vision: prompt.vtRange[0],
        queryEnd: prompt.lengths[0],
      });
      if (hook === null) continue; // no expert: no hook
      checked++;
      const want = await uncachedGeneration(model, x, steps);
      const runs = () => b.runner.stats.runs + model.editor.stats.runs;
      const before = runs();
      const got = await model.generate(x, steps);
      const used = runs() - before;
      assert.deepEqual(got, want, `request "${x.prompt}"`);
      assert.ok(want.length >= 2, "several tokens go through the cache");
      // prompt: layers 0..l_e and routing (3: the input's features, the pool), embeddings and
      // the first decode step (2); then one decode step per further token (and one more when
      // EOS ends it)
      assert.ok(
        used <= got.length + 5,
        `${used} session runs for ${got.length} tokens (want <= steps + 5)`,
      );
      const plain = await model.runner.generate({ text: x.prompt, image: x.image }, {
        maxNewTokens: steps,
      });
      assert.notDeepEqual(got, [...plain.ids], "the experts change the generation");
    }
    assert.ok(checked >= 1, "some request routes to an expert");
  });
});

Deno.test("saveState writes weights, experts and requests; openLiveEditModel reads weights from it", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 2);
    for (const s of samples) await model.edit(s.request);
    const path = join(b.dir, "state.safetensors");
    await model.saveState(path);
    const state = await loadEditorState(path, { backbone: "tiny-blip2-opt" });
    assert.deepEqual(
      state.pool.experts.map((e) => e.request),
      samples.map((s) => ({
        prompt: s.request.prompt,
        target: s.request.target,
        image: s.request.image,
      })),
    );
    assert.deepEqual(state.pool.C.data, model.editor.pool.tailViews().moeCs.data);
    const reopened = await openLiveEditModel({
      model: b.vllm,
      config: b.config,
      weights: path,
      cacheDir: join(b.dir, "graphs"),
    });
    try {
      for (const s of samples) await reopened.edit(s.request);
      const xs = samples.map((s) => s.generality.image_rephrase);
      assert.deepEqual(await reopened.predict(xs), await model.predict(xs));
    } finally {
      await reopened.close();
    }
    const bad = join(b.dir, "bad.safetensors");
    await writeSafetensors(bad, { "moegen_c.phi": state.weights["moegen_c.phi"] });
    await assert.rejects(
      () => openLiveEditModel({ model: b.vllm, config: b.config, weights: bad }),
      /bad.safetensors: parameter '.*' is missing/,
    );
    await assert.rejects(() => model.edit(samples[0].locality.text_loc), /has no image/);
  });
});

Deno.test("sequential evaluation decodes each image of a sample once (the VLLM's image cache)", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 3);
    const tokenizer = await b.vllm.tokenizer();
    const before = { hits: b.vllm.images.hits, misses: b.vllm.images.misses };
    await evaluateSequential({
      model,
      samples,
      editN: 1,
      greedy: true, // generation reads the images too
      decode: (ids) => tokenizer.decode([...ids]),
    });
    const paths = new Set(
      samples.flatMap((s) =>
        [s.request, s.generality.image_rephrase, s.locality.image_loc].map((x) => x.image!)
      ),
    );
    const decodes = b.vllm.images.misses - before.misses;
    const asked = decodes + b.vllm.images.hits - before.hits;
    assert.equal(decodes, paths.size, "one decode per distinct image");
    // without the cache every request for a path would decode it: 33 for these 9 images
    assert.ok(asked >= 3 * paths.size, `${asked} requests for ${paths.size} images`);
  });
});

Deno.test("warmUp compiles the sessions of edit and predict: afterwards they build no graph", async () => {
  await withModel(async (model, b) => {
    const samples = await syntheticSamples(b.dir, 2);
    const vllm = b.vllm as unknown as Record<string, (...a: unknown[]) => unknown>;
    const original = vllm.stageGraph;
    let built = 0;
    vllm.stageGraph = (...a: unknown[]) => (built++, original.apply(b.vllm, a));
    try {
      await model.warmUp();
      assert.ok(built >= 3, `${built} graphs built by warmUp`);
      built = 0;
      await model.edit(samples[0].request);
      const s = samples[1];
      await model.predict([s.request, s.locality.text_loc, s.generality.image_rephrase]);
      assert.equal(built, 0, "no graph was built after warmUp");
    } finally {
      vllm.stageGraph = original;
    }
  });
});
