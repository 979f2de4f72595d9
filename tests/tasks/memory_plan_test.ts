/**
 * The README's memory plan is the output of `deno task memory-plan` (the placement code on the
 * released models' dims), and its numbers are those of an independent count of the parameters.
 */
import assert from "node:assert/strict";
import { memoryPlanMarkdown, RELEASED } from "../../tasks/memory_plan.ts";
import { tinyWeightSpecs } from "../../src/models/tiny/weights.ts";

Deno.test("README.md's memory plan is up to date with deno task memory-plan", async () => {
  const readme = await Deno.readTextFile(new URL("../../README.md", import.meta.url));
  const parts = readme.split("<!-- memory-plan -->\n");
  assert.equal(parts.length, 3, "README.md has the plan between two <!-- memory-plan --> markers");
  // as deno fmt leaves it: table columns padded, prose rewrapped
  const norm = (text: string) => text.replace(/-{3,}/g, "---").replace(/\s+/g, " ").trim();
  assert.equal(norm(parts[1]), norm(await memoryPlanMarkdown()));
});

Deno.test("the released models' parameter counts are the published sizes", () => {
  const count = (i: number) =>
    tinyWeightSpecs(RELEASED[i].dims).reduce((a, s) => a + s.shape.reduce((x, d) => x * d, 1), 0);
  // BLIP-2 OPT-2.7B: 3.74 B (ViT-g 0.99 B, Q-Former query branch 0.10 B, OPT-2.7B 2.65 B)
  assert.ok(Math.abs(count(0) / 1e9 - 3.74) < 0.05, `${count(0)}`);
  // LLaVA-1.5-7B: 7.06 B; MiniGPT-4: Vicuna-7B (6.74 B) + BLIP-2's image side (1.09 B)
  assert.ok(Math.abs(count(1) / 1e9 - 7.06) < 0.05, `${count(1)}`);
  assert.ok(Math.abs(count(2) / 1e9 - 7.83) < 0.05, `${count(2)}`);
});
