import assert from "node:assert/strict";
import { batches, batchesPerEpoch, epochOrder } from "../../src/data/batches.ts";
import { Rng } from "../../src/tensor/rng.ts";

const items = Array.from({ length: 23 }, (_, i) => `s${i}`);

Deno.test("an epoch visits every sample once, in batches of the size asked", () => {
  const got = [...batches(items, 5, new Rng(1))];
  assert.deepEqual(got.map((b) => b.indices.length), [5, 5, 5, 5, 3]);
  assert.deepEqual(got.map((b) => b.step), [0, 1, 2, 3, 4]);
  const seen = got.flatMap((b) => b.indices).sort((a, b) => a - b);
  assert.deepEqual(seen, items.map((_, i) => i));
  for (const b of got) assert.deepEqual(b.samples, b.indices.map((i) => items[i]));
  assert.notDeepEqual(got.flatMap((b) => b.indices), items.map((_, i) => i), "shuffled");
  const dropped = [...batches(items, 5, new Rng(1), { dropLast: true })];
  assert.equal(dropped.length, 4);
  assert.deepEqual(dropped, got.slice(0, 4));
});

Deno.test("the order is a function of the Rng state and the epoch; the Rng is not advanced", () => {
  const rng = new Rng(42);
  const before = rng.state();
  const e0 = [...batches(items, 4, rng, { epoch: 0 })];
  const e1 = [...batches(items, 4, rng, { epoch: 1 })];
  assert.deepEqual(rng.state(), before);
  assert.deepEqual([...batches(items, 4, new Rng(42), { epoch: 1 })], e1);
  assert.deepEqual([...batches(items, 4, Rng.fromState(before), { epoch: 0 })], e0);
  assert.notDeepEqual(e0.map((b) => b.indices), e1.map((b) => b.indices), "epochs differ");
  assert.notDeepEqual(epochOrder(23, new Rng(43), 0), epochOrder(23, rng, 0), "seeds differ");
  assert.ok(e1.every((b) => b.epoch === 1));
  // the same shuffle as done by hand: epoch e uses the (e+1)-th fork of a copy
  const copy = new Rng(42);
  copy.fork();
  const order = copy.fork().shuffle(items.map((_, i) => i));
  assert.deepEqual(e1.flatMap((b) => b.indices), order);
});

Deno.test("resuming at (epoch, step) reproduces the rest of the epoch", () => {
  const rng = new Rng(7);
  for (const epoch of [0, 3]) {
    const full = [...batches(items, 6, rng, { epoch })];
    for (let step = 0; step <= full.length; step++) {
      assert.deepEqual([...batches(items, 6, new Rng(7), { epoch, step })], full.slice(step));
    }
  }
  assert.throws(
    () => [...batches(items, 6, rng, { step: 5 })],
    /step 5 is past the end of the epoch \(4 batches per epoch\)/,
  );
});

Deno.test("batch size larger than the data set is clamped, as the original", () => {
  const few = ["a", "b", "c"];
  const got = [...batches(few, 8, new Rng(0), { dropLast: true })];
  assert.equal(got.length, 1);
  assert.deepEqual([...got[0].samples].sort(), few);
  assert.equal(batchesPerEpoch(3, 8, true), 1);
  assert.equal(batchesPerEpoch(23, 5), 5);
  assert.equal(batchesPerEpoch(23, 5, true), 4);
});

Deno.test("bad batch arguments are rejected", () => {
  const rng = new Rng(0);
  assert.throws(() => [...batches([], 2, rng)], /cannot batch 0 samples: the data set is empty/);
  assert.throws(() => [...batches(items, 0, rng)], /batch size must be an integer >= 1, got 0/);
  assert.throws(() => [...batches(items, 2.5, rng)], /batch size must be an integer >= 1/);
  assert.throws(() => [...batches(items, 2, rng, { epoch: -1 })], /epoch must be an integer >= 0/);
  assert.throws(() => [...batches(items, 2, rng, { step: 1.5 })], /step must be an integer >= 0/);
});
