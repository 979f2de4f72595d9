import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTokenizer } from "../../src/io/tokenizer.ts";
import { runInfer } from "../../tasks/infer.ts";
import { FakeModel, fakeRegistry, fakeTokens } from "../train/_fake_editor.ts";
import { collect, makeWorkspace, withTempDir } from "../train/_workspace.ts";

Deno.test("infer generates greedily with the edits of a saved state and prints the text", async () => {
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 1 });
    const edited = new FakeModel("tiny");
    await edited.edit({ image: null, prompt: "Who wrote it?", target: "Ada" });
    await edited.saveState(join(dir, "state.json"));
    const run = async (prompt: string) => {
      const out = collect();
      const code = await runInfer(
        [
          "-en",
          "fake",
          "-mn",
          "tiny",
          "--edits",
          "state.json",
          "--image",
          "data/easy-edit-mm/images/val2014/img0.png",
          "--prompt",
          prompt,
          "--max-new-tokens",
          "3",
        ],
        { editors: fakeRegistry(), cwd: dir, tty: false, ...out },
      );
      assert.equal(code, 0, out.errors.join("\n"));
      return out.lines;
    };
    const tokenizer = await loadTokenizer(ws.modelDir);
    assert.deepEqual(await run("Who wrote it?"), [
      tokenizer.decode(fakeTokens("Ada"), { skipSpecialTokens: true }),
    ]);
    const unedited = await run("Something else?");
    assert.notDeepEqual(unedited, await run("Who wrote it?"));
  });
});

Deno.test("infer: a missing image, edits path or prompt is a usage error", async () => {
  await withTempDir(async (dir) => {
    await makeWorkspace(dir, { records: 1 });
    const cases: [string[], RegExp][] = [
      [
        ["--prompt", "p", "--image", "nope.png", "--edits", "."],
        /--image .*nope\.png does not exist/,
      ],
      [["--prompt", "p", "--edits", "missing.json"], /--edits .*missing\.json does not exist/],
      [["--edits", "."], /--prompt is required/],
      [["--prompt", "p"], /fake needs trained weights: pass -ckpt PATH or --edits/],
    ];
    for (const [argv, re] of cases) {
      const out = collect();
      const code = await runInfer(["-en", "fake", "-mn", "tiny", ...argv], {
        editors: fakeRegistry(),
        cwd: dir,
        ...out,
      });
      assert.equal(code, 2, argv.join(" "));
      assert.match(out.errors[0], re);
    }
  });
});
