import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { TINY_ARCHS } from "../../src/models/tiny/configs.ts";
import { writeTinyModel } from "../../src/models/tiny/write.ts";
import { ContextBudget, ContextError, contextLength } from "../../src/models/context.ts";
import { loadVllm, VllmRunner } from "../../src/models/vllm/mod.ts";
import { withTempDir } from "./vllm/_tiny.ts";

async function tiny(parent: string, arch: typeof TINY_ARCHS[number]) {
  const dir = join(parent, arch);
  await writeTinyModel(dir, { arch, seed: 4 });
  const vllm = await loadVllm(dir);
  return { vllm, budget: new ContextBudget(vllm, await vllm.tokenizer(), arch) };
}

async function image(parent: string): Promise<string> {
  const path = join(parent, "image.png");
  await sharp({ create: { width: 40, height: 30, channels: 3, background: "#3a7" } }).png()
    .toFile(path);
  return path;
}

for (const arch of TINY_ARCHS) {
  Deno.test(`tiny ${arch}: measured lengths are the sequence lengths prepare builds`, async () => {
    await withTempDir(async (parent) => {
      const { vllm, budget } = await tiny(parent, arch);
      try {
        assert.equal(budget.context, 256);
        assert.equal(contextLength(vllm), 256);
        const img = await image(parent);
        const examples = [
          { image: img, prompt: "What is shown here? The answer is:", target: "a cat" },
          { image: null, prompt: "nq question: who wrote it?", target: "somebody famous" },
          { image: img, prompt: "a photo of", target: " two dogs" },
        ];
        for (const e of examples) {
          const batch = await vllm.prepare([e]);
          const length = budget.measure(e);
          assert.equal(length.total, batch.lengths[0], e.prompt);
          assert.equal(length.image, e.image === null ? 0 : vllm.numImageTokens);
          assert.equal(length.prompt + length.image, batch.promptEnds[0], e.prompt);
          assert.equal(length.prompt + length.target + length.image, length.total);
          const gen = budget.measure(e, 7);
          assert.equal(
            gen.total,
            (await vllm.inputs([{ text: e.prompt, image: e.image }]))
              .lengths[0] + 7,
          );
        }
      } finally {
        vllm.close();
      }
    });
  });
}

Deno.test("the context is exact: a sequence of 256 tokens runs, 257 is refused before ONNX Runtime would fail", async () => {
  await withTempDir(async (parent) => {
    const { vllm, budget } = await tiny(parent, "blip2-opt");
    const runner = new VllmRunner(vllm, { cacheDir: join(parent, "cache") });
    try {
      const img = await image(parent);
      // Grow the prompt one character at a time to a sequence of exactly 256 and 257 tokens.
      let prompt = "q";
      const at = (n: number) => {
        while (budget.measure({ image: img, prompt, target: "x" }).total < n) prompt += "a b ";
        while (budget.measure({ image: img, prompt, target: "x" }).total > n) {
          prompt = prompt.slice(0, -1);
        }
        assert.equal(budget.measure({ image: img, prompt, target: "x" }).total, n);
        return { image: img, prompt, target: "x" };
      };
      const fits = at(256);
      assert.equal(budget.fit(fits).cut, 0);
      const out = await runner.forward(await vllm.prepare([fits]));
      assert.equal(out.logits.shape[1], 256);
      const over = at(257);
      assert.throws(() => budget.fit(over), (e: unknown) => {
        assert.ok(e instanceof ContextError);
        assert.match(
          e.message,
          /^prompt \d+ \+ target \d+ \+ image 8 = 257 tokens, more than the 256-token context of blip2-opt$/,
        );
        return true;
      });
      // ... which is what ONNX Runtime would otherwise fail on, later and less clearly.
      await assert.rejects(runner.forward(await vllm.prepare([over])), /Gather|indices|out of/i);
      // Cutting from the left keeps the end of the prompt and fits.
      const cut = budget.fit(over, { truncate: true });
      assert.ok(cut.cut > 0);
      assert.equal(cut.example.prompt, over.prompt.slice(cut.cut));
      assert.ok(budget.measure(cut.example).total <= 256);
      // Nothing fits when the target alone is too long, or the new tokens are too many.
      const huge = { image: img, prompt: "q", target: "a b ".repeat(300) };
      assert.throws(() => budget.fit(huge, { truncate: true }), ContextError);
      assert.throws(
        () => budget.fit({ image: img, prompt: "q", target: "" }, { maxNewTokens: 250 }),
        /new tokens 250 \+ image 8 = \d+ tokens/,
      );
    } finally {
      await runner.close();
      vllm.close();
    }
  });
});
