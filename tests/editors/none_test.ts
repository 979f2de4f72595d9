import assert from "node:assert/strict";
import { join } from "node:path";
import { openUneditedModel } from "../../src/editors/none.ts";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { runTestEdit } from "../../tasks/test_edit.ts";
import { collect, makeWorkspace, withTempDir } from "../train/_workspace.ts";
import { loadDataset } from "../../src/data/datasets.ts";

Deno.test("the none editor: the backbone's own predictions, before and after any edit", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 3 });
    const { samples } = await loadDataset("EVQA", "eval", { dataRoot: ws.dataRoot });
    const model = await openUneditedModel({
      modelDir: ws.modelDir,
      modelName: "tiny",
      devices: ["cpu"],
      checkpoint: null,
      checkpointModel: "none/tiny",
    });
    try {
      assert.equal(model.editorName, "none");
      const examples = [samples[0].request, samples[0].locality.text_loc, samples[1].request];
      const before = await model.predict(examples);
      // independently: the forward pass's argmax at the positions that predict the target
      const vllm = model.runner.vllm;
      const tokenizer = await vllm.tokenizer();
      for (const [i, e] of examples.entries()) {
        const batch = await vllm.prepare([e]);
        const { logits } = await model.runner.forward(batch);
        const [, T, V] = logits.shape;
        const target = tokenizer.encode(e.prompt + " " + e.target).slice(
          tokenizer.encode(e.prompt).length,
        );
        const x = logits.data as Float32Array;
        const predicted = target.map((_, k) => {
          const row = x.subarray((T - target.length - 1 + k) * V, (T - target.length + k) * V);
          return row.indexOf(Math.max(...row));
        });
        assert.deepEqual(before[i], { predicted, target }, `example ${i}`);
      }
      await model.edit(samples[0].request);
      assert.deepEqual(await model.predict(examples), before, "an edit changes nothing");
      const generated = await model.generate(samples[0].request, 3);
      const direct = await model.runner.generate(
        { text: samples[0].request.prompt, image: samples[0].request.image },
        { maxNewTokens: 3 },
      );
      assert.deepEqual(generated, [...direct.ids]);
      const state = join(dir, "state.safetensors");
      await model.saveState(state);
      const file = await SafetensorsFile.open(state);
      try {
        assert.equal(file.metadata.editor, "none");
        assert.equal(JSON.parse(file.metadata.requests).length, 1);
      } finally {
        file.close();
      }
      await model.restore();
    } finally {
      await model.close();
    }
  });
});

Deno.test("test-edit -en none (and its alias unedited): results in the usual layout; -ckpt is ignored with a note", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 4 });
    for (const name of ["none", "unedited"]) {
      const out = collect();
      const code = await runTestEdit(
        ["-en", name, "-mn", "tiny", "-sen", "2", "-dn", "EVQA", "-ckpt", "no/such/run"],
        { cwd: dir, tty: false, print: out.print, printError: out.printError },
      );
      assert.equal(code, 0, out.errors.join("\n"));
      assert.ok(
        out.lines.includes(
          `note: editor ${name} has no trained weights: -ckpt no/such/run is ignored`,
        ),
        out.lines.join("\n"),
      );
      const res = join(dir, "eval_results", name, "tiny", "EVQA", "sequential_edit_2");
      const mean = JSON.parse(await Deno.readTextFile(join(res, "mean_results.json")));
      assert.equal(mean.total_mean.total_edit_n, 4);
      assert.equal(
        mean.total_mean.locality.text_loc.acc,
        1,
        "the unedited model keeps its answers",
      );
      assert.equal(mean.total_mean.locality.image_loc.acc, 1);
      const config = JSON.parse(await Deno.readTextFile(join(res, "config.json")));
      assert.equal(config.editor_ckpt_path, null);
    }
  });
});
