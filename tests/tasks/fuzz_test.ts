import assert from "node:assert/strict";
import { formatReport, FUZZ_FORMATS, fuzzFormat } from "../../tasks/fuzz.ts";
import { referenceVerdict } from "../../tasks/fuzz/safetensors.ts";
import { rawSafetensors } from "../io/_helpers.ts";

/** The seed of the suite's run; `deno task fuzz` runs 10 000 cases per format. */
const SEED = 20251207;
const CASES = 500;

for (const [name, format] of Object.entries(FUZZ_FORMATS)) {
  Deno.test(`fuzz ${name}: ${CASES} seeded cases, no damaged input accepted, no foreign error, no hang`, async () => {
    const report = await fuzzFormat(format, { seed: SEED, cases: CASES });
    const bad = report.bad.map((b) => `case ${b.index} ${b.kind}: ${b.what}: ${b.detail}`);
    assert.deepEqual(bad, [], formatReport(report));
    assert.equal(report.counts["accepted-invalid"], 0);
    assert.equal(report.counts.escaped, 0);
    assert.equal(report.counts.hang, 0);
    // the generator exercises both sides
    assert.ok(report.counts.accepted >= 25, formatReport(report));
    assert.ok(report.counts.rejected >= 250, formatReport(report));
    assert.equal(report.counts.accepted + report.counts.rejected, CASES);
  });
}

Deno.test("fuzz cases are a function of the seed and the index", async () => {
  const format = FUZZ_FORMATS.safetensors;
  const a = await fuzzFormat(format, { seed: 3, cases: 40 });
  const b = await fuzzFormat(format, { seed: 3, cases: 40 });
  const one = await fuzzFormat(format, { seed: 3, cases: 1, first: 17 });
  assert.deepEqual(a.outcomes, b.outcomes);
  assert.deepEqual(one.outcomes, [a.outcomes[17]]);
  const other = await fuzzFormat(format, { seed: 4, cases: 40 });
  assert.notDeepEqual(a.outcomes, other.outcomes);
});

Deno.test("the reference safetensors validator of the fuzzer follows the format's rules", () => {
  const f32 = (b: number) => ({ dtype: "F32", shape: [2], data_offsets: [b, b + 8] });
  const data = (n: number) => new Uint8Array(n);
  const valid = (bytes: Uint8Array) => referenceVerdict(bytes).valid;
  assert.ok(valid(rawSafetensors({ a: f32(0), b: f32(8) }, data(16))));
  assert.ok(valid(rawSafetensors({})));
  assert.ok(
    valid(
      rawSafetensors({ a: f32(0), z: { dtype: "U8", shape: [0], data_offsets: [8, 8] } }, data(8)),
    ),
  );
  assert.ok(!valid(rawSafetensors({ a: f32(0) }, data(12))), "trailing bytes");
  assert.ok(!valid(rawSafetensors({ a: f32(4) }, data(12))), "a hole");
  assert.ok(!valid(rawSafetensors({ a: f32(0), b: f32(4) }, data(12))), "an overlap");
  assert.ok(!valid(rawSafetensors({ __metadata__: {} }, data(8))), "data without tensors");
  assert.ok(!valid(rawSafetensors({ a: f32(0) }, data(4))), "past the end");
  assert.ok(!valid(rawSafetensors({ a: { ...f32(0), x: 1 } }, data(8))), "unknown field");
  assert.ok(!valid(rawSafetensors({ a: { ...f32(0), dtype: "I8" } }, data(8))), "dtype");
  assert.ok(
    !valid(
      rawSafetensors({ a: f32(0), z: { dtype: "U8", shape: [0], data_offsets: [4, 4] } }, data(8)),
    ),
    "an empty tensor inside another",
  );
  const bool = rawSafetensors(
    { m: { dtype: "BOOL", shape: [2], data_offsets: [0, 2] } },
    new Uint8Array([1, 2]),
  );
  assert.ok(!valid(bool), "BOOL byte 2");
});
