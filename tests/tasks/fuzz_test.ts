import assert from "node:assert/strict";
import { formatReport, FUZZ_FORMATS, fuzzFormat } from "../../tasks/fuzz.ts";

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
