import assert from "node:assert/strict";
import { Producer } from "../../src/train/producer.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("Producer yields results in source order whatever order the mappings finish in", async () => {
  const delays = [30, 1, 20, 0, 10, 5, 0, 25];
  const p = new Producer(delays.keys(), async (i) => {
    await sleep(delays[i]);
    return i * 10;
  }, { buffer: 4, concurrency: 4 });
  const out: number[] = [];
  for await (const v of p) out.push(v);
  assert.deepEqual(out, [0, 10, 20, 30, 40, 50, 60, 70]);
});

Deno.test("Producer keeps at most `buffer` items pulled and not consumed, and at most `concurrency` running", async () => {
  let pulled = 0, consumed = 0, running = 0, maxAhead = 0, maxRunning = 0;
  function* source() {
    for (let i = 0; i < 20; i++) {
      pulled++;
      maxAhead = Math.max(maxAhead, pulled - consumed);
      yield i;
    }
  }
  const p = new Producer(source(), async (i) => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    await sleep(1);
    running--;
    return i;
  }, { buffer: 3, concurrency: 2 });
  for await (const v of p) {
    assert.ok(p.pending <= 3, `pending ${p.pending}`);
    await sleep(3); // a slow consumer: the producer fills its buffer and waits
    consumed++;
    assert.equal(v, consumed - 1);
  }
  assert.equal(consumed, 20);
  // pulled-not-consumed: the consumed item plus the buffer refill happen in one next()
  assert.ok(maxAhead <= 3 + 1, `maxAhead ${maxAhead}`);
  assert.ok(maxAhead >= 3, `the buffer was used (${maxAhead})`);
  assert.equal(maxRunning, 2);
});

Deno.test("Producer with buffer 1 prepares exactly one item ahead of the consumer", async () => {
  const log: string[] = [];
  function* source() {
    for (let i = 0; i < 3; i++) {
      log.push(`pull ${i}`);
      yield i;
    }
  }
  const p = new Producer(source(), (i) => Promise.resolve(i), { buffer: 1 });
  for await (const v of p) {
    await sleep(2);
    log.push(`got ${v}`);
  }
  // item k+1 is pulled when item k is handed out, while the consumer works on item k
  assert.deepEqual(log, ["pull 0", "pull 1", "got 0", "pull 2", "got 1", "got 2"]);
});

Deno.test("Producer throws a mapping error at its item, after the items before it", async () => {
  const p = new Producer([0, 1, 2, 3, 4], async (i) => {
    await sleep(i === 2 ? 5 : 0);
    if (i === 2) throw new Error("prepare failed on item 2");
    return i;
  }, { buffer: 3, concurrency: 3 });
  const out: number[] = [];
  await assert.rejects(async () => {
    for await (const v of p) out.push(v);
  }, /prepare failed on item 2/);
  assert.deepEqual(out, [0, 1]);
  assert.deepEqual(await p.next(), { done: true, value: undefined }, "stopped after the error");
});

Deno.test("Producer throws a source error at its position", async () => {
  function* source() {
    yield 1;
    yield 2;
    throw new Error("source broke");
  }
  const p = new Producer(source(), (i) => Promise.resolve(i * 2), { buffer: 2 });
  const out: number[] = [];
  await assert.rejects(async () => {
    for await (const v of p) out.push(v);
  }, /source broke/);
  assert.deepEqual(out, [2, 4]);
});

Deno.test("Producer: break closes the source, waits for running mappings and starts no more", async () => {
  let closed = false, started = 0, finished = 0;
  function* source() {
    try {
      for (let i = 0;; i++) yield i;
    } finally {
      closed = true;
    }
  }
  const p = new Producer(source(), async (i) => {
    started++;
    await sleep(5);
    finished++;
    if (i === 3) throw new Error("an error after close is dropped");
    return i;
  }, { buffer: 4, concurrency: 4 });
  for await (const v of p) if (v === 1) break;
  assert.ok(closed, "source closed");
  assert.equal(finished, started, "every started mapping settled before close resolved");
  const before = started;
  await sleep(20);
  assert.equal(started, before, "nothing started after close");
  assert.ok(started <= 2 + 4, `started ${started}`);
  await p.close(); // twice is fine
});

Deno.test("Producer rejects a buffer or concurrency below 1", () => {
  assert.throws(() => new Producer([], (x) => Promise.resolve(x), { buffer: 0 }), /buffer must be/);
  assert.throws(
    () => new Producer([], (x) => Promise.resolve(x), { buffer: 1, concurrency: 1.5 }),
    /concurrency must be/,
  );
});

Deno.test("Producer maps an async source and an empty one", async () => {
  async function* source() {
    for (let i = 0; i < 3; i++) {
      await sleep(1);
      yield i;
    }
  }
  const out: number[] = [];
  for await (const v of new Producer(source(), (i) => Promise.resolve(i + 1), { buffer: 2 })) {
    out.push(v);
  }
  assert.deepEqual(out, [1, 2, 3]);
  const empty = new Producer([], (i: number) => Promise.resolve(i), { buffer: 2 });
  assert.deepEqual(await empty.next(), { done: true, value: undefined });
});
