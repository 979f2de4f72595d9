/** Tests of the pool additions the editing session uses: caller ids, swapRemove, reserve. */
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

/** The pool's rows, read from its views, as the `k` of {@linkcode expert} they hold. */
function rows(pool: ExpertPool): number[] {
  const eqr = pool.views().eqr.data;
  return Array.from({ length: pool.size }, (_, r) => eqr[6 * r] / 100);
}

Deno.test("pool ids given by the caller; duplicates and bad ids are refused", () => {
  const pool = new ExpertPool(DIMS, 1);
  assert.equal(pool.add(expert(1), 5), 5);
  assert.equal(pool.add(expert(2)), 6, "the default id is one above every id so far");
  assert.equal(pool.add(expert(3), 2), 2);
  assert.deepEqual(pool.ids, [5, 6, 2]);
  assert.equal(pool.has(2), true);
  assert.deepEqual(pool.get(2), expert(3));
  assert.throws(() => pool.add(expert(4), 5), /id 5 is already in the pool/);
  assert.throws(() => pool.add(expert(4), -1), /id -1 is not an integer >= 0/);
  assert.throws(() => pool.add(expert(4), 1.5), /id 1.5 is not an integer >= 0/);
  assert.equal(pool.size, 3);
});

Deno.test("swapRemove moves the last expert into the freed row; get and remove still find every id", () => {
  const pool = new ExpertPool(DIMS, 8);
  for (let k = 0; k < 5; k++) pool.add(expert(k));
  assert.equal(pool.swapRemove(1), true);
  assert.deepEqual(pool.ids, [0, 4, 2, 3]);
  assert.deepEqual(rows(pool), [0, 4, 2, 3], "row 1 now holds expert 4's data");
  assert.deepEqual(pool.views().moeRs.data.subarray(8, 16), expert(4).moeR);
  assert.equal(pool.swapRemove(1), false);
  assert.equal(pool.swapRemove(3), true, "removing the last row moves nothing");
  assert.deepEqual(rows(pool), [0, 4, 2]);
  assert.equal(pool.remove(4), true, "ordered remove after a swap");
  assert.deepEqual(pool.ids, [0, 2]);
  assert.deepEqual(rows(pool), [0, 2]);
  for (const k of [0, 2]) assert.deepEqual(pool.get(k), expert(k));
  assert.throws(() => pool.get(4), /no expert with id 4/);
  assert.equal(pool.add(expert(9)), 5, "ids are never reused");
  assert.deepEqual(pool.get(5), expert(9));
});

Deno.test("reserve grows once to the asked capacity and keeps the contents", () => {
  const pool = new ExpertPool(DIMS, 1);
  pool.add(expert(7));
  pool.reserve(10);
  assert.equal(pool.capacity, 10);
  pool.reserve(3);
  assert.equal(pool.capacity, 10, "never shrinks");
  assert.deepEqual(pool.get(0), expert(7));
});
