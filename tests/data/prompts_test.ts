import assert from "node:assert/strict";
import { ANSWER_SUFFIX, PROMPT_RULES, withLeadingSpace } from "../../src/data/prompts.ts";

Deno.test("leading-space rule: added only when neither side has the space or newline", () => {
  assert.equal(withLeadingSpace("Q? The answer is:", "2"), " 2");
  assert.equal(withLeadingSpace("a photo of", "a dog"), " a dog");
  assert.equal(withLeadingSpace("a photo of ", "a dog"), "a dog");
  assert.equal(withLeadingSpace("Question:\n", "yes"), "yes");
  assert.equal(withLeadingSpace("a photo of", " a dog"), " a dog");
  assert.equal(withLeadingSpace("a photo of", "\na dog"), "\na dog");
  assert.equal(withLeadingSpace("", "x"), " x");
  // applying it twice does not add a second space
  const once = withLeadingSpace("p", "t");
  assert.equal(withLeadingSpace("p", once), once);
});

Deno.test("prompt rules per data set (spec §5)", () => {
  assert.equal(ANSWER_SUFFIX, " The answer is:");
  assert.equal(PROMPT_RULES.EVQA.edit("Why?"), "Why? The answer is:");
  assert.equal(PROMPT_RULES.EIC.edit("a photo of"), "a photo of");
  assert.equal(PROMPT_RULES.VLKEB.edit("Which city?"), "Which city?");
  for (const rules of Object.values(PROMPT_RULES)) {
    assert.equal(rules.loc("nq question: who"), "nq question: who?");
    assert.equal(rules.imageLoc("What sport?"), "What sport? The answer is:");
  }
});
