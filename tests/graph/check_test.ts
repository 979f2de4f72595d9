import assert from "node:assert/strict";
import { BOUNDS, checkCase } from "../../src/graph/check/run.ts";
import { CASES } from "../../src/graph/check/cases.ts";
import { LocalSession } from "../../src/runtime/session.ts";

const loader = { load: (model: Uint8Array) => LocalSession.create(model, { device: "cpu" }) };

Deno.test("every op: forward vs naive reference, gradient vs finite differences", async (t) => {
  for (const c of CASES) {
    await t.step(`${c.name} (${c.dtype})`, async () => {
      const r = await checkCase(c, loader);
      const bound = BOUNDS[c.dtype];
      assert.ok(
        r.forwardRelErr <= bound.forward,
        `${c.name}: forward rel err ${r.forwardRelErr} > ${bound.forward}`,
      );
      assert.ok(
        r.gradRelErr <= bound.grad,
        `${c.name}: grad rel err ${r.gradRelErr} > ${bound.grad}`,
      );
      assert.ok(r.pass);
    });
  }
});

Deno.test("a wrong gradient rule is caught by the finite-difference check", async () => {
  const { RULES } = await import("../../src/graph/rules.ts");
  const rules = RULES as Record<string, (typeof RULES)[string]>;
  const original = rules.Tanh;
  const op = await import("../../src/graph/ops.ts");
  rules.Tanh = (node, grads, wants) =>
    original(node, grads, wants).map((g) => g && op.mul(g, 1.01));
  try {
    const r = await checkCase(CASES.find((c) => c.name === "Tanh")!, loader);
    assert.ok(r.gradRelErr > 1e-3, `expected a large gradient error, got ${r.gradRelErr}`);
    assert.equal(r.pass, false);
  } finally {
    rules.Tanh = original;
  }
});
