import assert from "node:assert/strict";
import { type Expert, ExpertPool } from "../../../src/editors/liveedit/pool.ts";

const DIMS = { eqeN: 2, moduleDim: 3, loraRank: 2, llmMidDim: 4 };

function expert(k: number): Expert {
  const fill = (n: number, base: number) => Float32Array.from({ length: n }, (_, i) => base + i);
  return {
    eqr: fill(6, 100 * k),
    evr: fill(6, 100 * k + 10),
    moeC: fill(8, 100 * k + 20),
    moeR: fill(8, 100 * k + 40),
  };
}

Deno.test("pool growth by doubling keeps every expert's contents", () => {
  const pool = new ExpertPool(DIMS, 1);
  const capacities: number[] = [];
  for (let k = 0; k < 9; k++) {
    assert.equal(pool.add(expert(k)), k);
    capacities.push(pool.capacity);
  }
  assert.deepEqual(capacities, [1, 2, 4, 4, 8, 8, 8, 8, 16]);
  for (let k = 0; k < 9; k++) assert.deepEqual(pool.get(k), expert(k));
  const v = pool.views();
  assert.deepEqual(v.eqr.shape, [9, 2, 3]);
  assert.deepEqual(v.moeRs.shape, [9, 2, 4]);
  assert.deepEqual([...v.evr.data.subarray(6 * 5, 6 * 6)], [...expert(5).evr]);
});

Deno.test("pool remove keeps the order of the others; unknown ids and bad sizes", () => {
  const pool = new ExpertPool(DIMS, 4);
  for (let k = 0; k < 4; k++) pool.add(expert(k));
  assert.equal(pool.remove(1), true);
  assert.equal(pool.remove(1), false);
  assert.deepEqual(pool.ids, [0, 2, 3]);
  const v = pool.views();
  assert.deepEqual([...v.moeCs.data.subarray(8, 16)], [...expert(2).moeC]);
  assert.equal(pool.add(expert(7)), 4, "ids are never reused");
  assert.throws(() => pool.get(1), /no expert with id 1/);
  assert.throws(
    () => pool.add({ ...expert(0), evr: new Float32Array(5) }),
    /evr has 5 floats, expected 6/,
  );
  pool.clear();
  assert.equal(pool.size, 0);
  assert.deepEqual(pool.views().eqr.shape, [0, 2, 3]);
});
