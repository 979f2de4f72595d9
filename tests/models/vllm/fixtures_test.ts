import assert from "node:assert/strict";
import { join } from "node:path";
import {
  checkModelFixture,
  checkModelFixtures,
  MODEL_FIXTURE_BOUND,
} from "../../../src/models/fixtures/mod.ts";
import { checkVllmFixture } from "../../../src/models/fixtures/vllm.ts";
import { SafetensorsFile, writeSafetensors } from "../../../src/io/safetensors.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { FIXTURES, withTempDir } from "./_tiny.ts";

const LM_TENSORS = {
  blip2_opt: [
    "lm.inputs_embeds",
    "lm.layer_out.0",
    "lm.layer_out.1",
    "lm.logits",
    "hooked.logits",
    "vt_range",
    "lm.attention_mask",
    "language_projection",
  ],
  llava: [
    "input_ids",
    "attention_mask",
    "lm.inputs_embeds",
    "lm.layer_out.0",
    "lm.layer_out.1",
    "logits",
    "hooked.logits",
    "vt_range",
    "image_features",
  ],
};

for (const [family, tensors] of Object.entries(LM_TENSORS)) {
  Deno.test(`vllm fixture ${family}: every whole-model tensor within 1e-4 of HF`, async () => {
    const rows = await checkModelFixture(join(FIXTURES, family));
    const names = rows.map((r) => r.tensor);
    for (const t of tensors) assert.ok(names.includes(t), `${family}: ${t} not compared`);
    for (const r of rows) {
      assert.equal(r.fixture, family);
      assert.ok(r.maxRelErr <= MODEL_FIXTURE_BOUND, `${r.tensor}: ${r.maxRelErr}`);
    }
  });
}

Deno.test("checkModelFixtures takes a directory of fixtures and rejects one without any", async () => {
  await withTempDir(async (dir) => {
    await Deno.symlink(join(FIXTURES, "clip_vision"), join(dir, "clip_vision"));
    await Deno.mkdir(join(dir, "not_a_fixture"));
    const reports = await checkModelFixtures(dir);
    assert.deepEqual(reports.map((r) => [r.fixture, r.family, r.pass]), [
      ["clip_vision", "clip_vision", true],
    ]);
    assert.ok(reports[0].rows.length > 0);
    await assert.rejects(
      checkModelFixtures(join(dir, "not_a_fixture")),
      /not_a_fixture: neither a fixture directory nor a directory of fixtures/,
    );
  });
});

Deno.test("checkModelFixture names the manifest for an unknown family", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "manifest.json"), JSON.stringify({ family: "gptj" }));
    await assert.rejects(
      checkModelFixture(dir),
      /manifest\.json: field 'family' must be one of "opt", "llama", "clip_vision", "blip2_opt", "llava", got "gptj"/,
    );
  });
});

Deno.test("a vllm fixture's attention_mask of the wrong dtype is an error naming the file and the tensor", async () => {
  await withTempDir(async (dir) => {
    const from = join(FIXTURES, "blip2_opt");
    for (const e of Deno.readDirSync(from)) {
      await Deno.copyFile(join(from, e.name), join(dir, e.name));
    }
    const refs = await SafetensorsFile.open(join(from, "refs.safetensors"));
    const all = await refs.readAll();
    refs.close();
    const mask = all.attention_mask;
    all.attention_mask = new Tensor("f32", mask.shape, Float32Array.from(toNumbers(mask)));
    await writeSafetensors(join(dir, "refs.safetensors"), all);
    await assert.rejects(
      checkVllmFixture(dir),
      new RegExp(
        `^Error: ${join(dir, "refs.safetensors")}: output 'attention_mask' is f32\\[[\\d, ]+\\], ` +
          "expected i64$",
      ),
    );
  });
});
