import assert from "node:assert/strict";
import { join } from "node:path";
import { writeSafetensors } from "../../../src/io/safetensors.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
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

Deno.test("a fixture input of the wrong dtype is an error naming the file and the tensor", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-fixture-dtype-" });
  try {
    for (const e of Deno.readDirSync(FIXTURE_DIR)) {
      await Deno.copyFile(join(FIXTURE_DIR, e.name), join(dir, e.name));
    }
    const data = await fixtureTensors("data.safetensors");
    const reps = data["in/edit0/reps"];
    data["in/edit0/reps"] = new Tensor("f64", reps.shape, Float64Array.from(toNumbers(reps)));
    await writeSafetensors(join(dir, "data.safetensors"), data);
    await assert.rejects(
      checkEditorFixture(dir),
      /^Error: editor fixture data\.safetensors: output 'in\/edit0\/reps' is f64\[[\d, ]+\], expected f32$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
