import assert from "node:assert/strict";
import { checkEditorFixture, FIXTURE_BOUND } from "../../../src/editors/liveedit/fixtures.ts";
import { FIXTURE_DIR, fixtureTensors } from "./_fixture.ts";

Deno.test("every tensor of the editor fixture is within 1e-5 (f32)", async () => {
  const report = await checkEditorFixture(FIXTURE_DIR);
  const data = await fixtureTensors("data.safetensors");
  const expected = Object.keys(data).filter((k) => /^(out|grad|adam1)\//.test(k));
  const compared = new Set(report.rows.map((r) => r.tensor));
  for (const name of expected) assert.ok(compared.has(name), `${name} was not compared`);
  for (const r of report.rows) {
    assert.ok(r.maxRelErr <= FIXTURE_BOUND, `${r.tensor}: ${r.maxRelErr} (${r.reference})`);
  }
  const zero = report.rows.filter((r) => r.reference === "zero");
  assert.equal(zero.length, 8, "the eight k_mlp.bias gradients are compared with 0");
  for (const r of zero) assert.ok(r.maxAbsErr <= 1e-7, `${r.tensor}: |grad| ${r.maxAbsErr}`);
  const maps = report.rows.filter((r) => r.reference === "exact");
  assert.ok(maps.length >= 8 && maps.every((r) => r.maxAbsErr === 0), "retrieval maps match");
  assert.ok(report.pass);
});
