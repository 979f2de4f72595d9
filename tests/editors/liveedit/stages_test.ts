/**
 * LiveEdit through the stages of a VLLM placed on `cpu:N` Workers equals LiveEdit on one
 * device (<= 1e-6 relative), for the BLIP-2, LLaVA and MiniGPT-4 layouts: the training step's
 * logits, losses and editor gradients (the editor's graph continuing to the end of its stage,
 * later stages forward and backward stage by stage), the prepared batches, and the edited
 * model's logits and generations.
 *
 * The tiny models have 5 decoder layers and the tiny editor config edits layer 2, so
 * `--split-layers 4` leaves layer 3 in the editor's graph and layer 4 to the last stage, and
 * `--split-layers 3,4` leaves the editor's graph no layer after `l_e`, a middle stage [3, 4)
 * and a last stage [4, 5).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  createLiveEditTrainer,
  LiveEditTrainer,
  loadConfig,
  LOSS_PARTS,
  openLiveEditModel,
} from "../../../src/editors/liveedit/mod.ts";
import { paramSpecs } from "../../../src/editors/liveedit/params.ts";
import type { TinyArch } from "../../../src/models/tiny/configs.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { loadVllm, VllmRunner } from "../../../src/models/vllm/mod.ts";
import { assertClose } from "../../../src/tensor/compare.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";
import { strongParams, syntheticSamples } from "./_tiny_backbone.ts";

const SPLITS = [
  { devices: ["cpu:0", "cpu:1"], splitLayers: [4] },
  { devices: ["cpu:0", "cpu:1", "cpu:2"], splitLayers: [3, 4] },
] as const;

const GROUPS = ["rel", "gen_text", "gen_image", "loc"];

for (const arch of ["blip2-opt", "llava", "minigpt4"] as const satisfies readonly TinyArch[]) {
  Deno.test(`${arch}: 2- and 3-stage splits give one device's logits, losses and editor gradients`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "liveedit-stages-" });
    try {
      const model = await writeTinyModel(join(dir, "model"), { arch, seed: 2, layers: 5 });
      const vllm = await loadVllm(model.dir);
      const cacheDir = join(dir, "graphs");
      const config = await loadConfig("tiny");
      const params = strongParams(config, 1);
      const samples = await syntheticSamples(dir, 2);
      const runner = new VllmRunner(vllm, { cacheDir });
      try {
        const one = LiveEditTrainer.create({ runner, config, seed: 4, params });
        const batch = await one.prepare(samples);
        const want = await one.evaluate(batch, { logits: true });
        const wantModel = await editedOutputs(
          await openLiveEditModel({ model: vllm, config, weights: params, cacheDir }),
          samples,
        );
        for (const { devices, splitLayers } of SPLITS) {
          const where = `${arch} on ${devices.join(",")} split at ${splitLayers}`;
          const staged = await createLiveEditTrainer({
            model: vllm,
            config,
            seed: 4,
            weights: params,
            devices,
            placement: { splitLayers },
            cacheDir,
          });
          try {
            assert.deepEqual(staged.runner.stages.map((s) => s.device), devices, where);
            const prepared = await staged.prepare(samples);
            for (const name of ["rel/hidden", "gen_image/hidden", "loc/original_logits"]) {
              assertClose(prepared.tensors[name], batch.tensors[name], 1e-6, `${where}: ${name}`);
            }
            const runs = staged.runner.stats.runs;
            const got = await staged.evaluate(batch, { logits: true });
            // the editor's graph forward and backward, each later stage forward and backward
            // (the last one at once): 3 session runs for 2 stages, 5 for 3
            assert.equal(staged.runner.stats.runs - runs, 2 * devices.length - 1, where);
            for (const g of GROUPS) {
              assertClose(got[`logits/${g}`], want[`logits/${g}`], 1e-6, `${where}: logits/${g}`);
            }
            const losses = ["total_loss", ...LOSS_PARTS.map((p) => partOutput(p))];
            for (const name of losses) {
              assertClose(got[name], want[name], 1e-6, `${where}: ${name}`);
            }
            for (const { name } of paramSpecs(config.dims)) {
              assertClose(
                got[`grad/${name}`],
                want[`grad/${name}`],
                1e-6,
                `${where}: grad ${name}`,
              );
            }
            // one Adam step from equal gradients: equal weights
            const fresh = LiveEditTrainer.create({ runner, config, seed: 4, params });
            for (const t of [fresh, staged]) await t.step(batch, 1e-3);
            for (const [name, w] of Object.entries(fresh.parameters())) {
              assertClose(staged.parameters()[name], w, 1e-6, `${where}: stepped ${name}`);
            }
          } finally {
            await staged.close();
          }
          const placed = await openLiveEditModel({
            model: vllm,
            config,
            weights: params,
            devices,
            placement: { splitLayers },
            cacheDir,
          });
          const got = await editedOutputs(placed, samples);
          assertClose(got.logits, wantModel.logits, 1e-6, `${where}: edited logits`);
          assert.deepEqual(got.generated, wantModel.generated, `${where}: generation`);
        }
      } finally {
        await runner.close();
        vllm.close();
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("--editor-device cpu:2: the editor on a device of its own, the stages on cpu:0,cpu:1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-stages-" });
  try {
    const model = await writeTinyModel(join(dir, "model"), {
      arch: "blip2-opt",
      seed: 2,
      layers: 5,
    });
    const vllm = await loadVllm(model.dir);
    const cacheDir = join(dir, "graphs");
    const config = await loadConfig("tiny");
    const params = strongParams(config, 1);
    const samples = await syntheticSamples(dir, 2);
    const runner = new VllmRunner(vllm, { cacheDir });
    const placement = { splitLayers: [3], editorDevice: "cpu:2" };
    try {
      const one = LiveEditTrainer.create({ runner, config, seed: 4, params });
      const batch = await one.prepare(samples);
      const want = await one.evaluate(batch);
      const staged = await createLiveEditTrainer({
        model: vllm,
        config,
        seed: 4,
        weights: params,
        devices: ["cpu:0", "cpu:1"],
        placement,
        cacheDir,
      });
      try {
        assert.ok(
          staged.notes.some((l) => /^ {2}cpu:2: editor [\d.]+ KiB$/.test(l)),
          staged.notes.join("\n"),
        );
        const got = await staged.evaluate(batch);
        assertClose(got.total_loss, want.total_loss, 1e-6, "total_loss");
        for (const { name } of paramSpecs(config.dims)) {
          assertClose(got[`grad/${name}`], want[`grad/${name}`], 1e-6, `grad ${name}`);
        }
      } finally {
        await staged.close();
      }
      const wantModel = await editedOutputs(
        await openLiveEditModel({ model: vllm, config, weights: params, cacheDir }),
        samples,
      );
      const placed = await openLiveEditModel({
        model: vllm,
        config,
        weights: params,
        devices: ["cpu:0", "cpu:1"],
        placement,
        cacheDir,
      });
      assert.equal(placed.notes.at(-1)?.startsWith("  cpu:2: editor"), true);
      const got = await editedOutputs(placed, samples);
      assertClose(got.logits, wantModel.logits, 1e-6, "edited logits");
      assert.deepEqual(got.generated, wantModel.generated);
    } finally {
      await runner.close();
      vllm.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** The step graph's output of a loss part (as `LiveEditTrainer` names them). */
function partOutput(part: string): string {
  return part.startsWith("hard_") || part === "soft" ? `${part}/loss` : `loss/${part}`;
}

/**
 * Edits `model` with both samples' requests, then the edited logits of their image rephrases
 * and the greedy generation of the first request; closes the model.
 */
async function editedOutputs(
  model: Awaited<ReturnType<typeof openLiveEditModel>>,
  samples: Awaited<ReturnType<typeof syntheticSamples>>,
): Promise<{ logits: Tensor; generated: number[] }> {
  try {
    for (const s of samples) await model.edit(s.request);
    const { logits } = await model.editedLogits(samples.map((s) => s.generality.image_rephrase));
    const generated = await model.generate(samples[0].request, 4);
    return { logits, generated };
  } finally {
    await model.close();
  }
}
