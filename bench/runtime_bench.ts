/**
 * Two runs of a MatMul-heavy model: on the `cpu:0` and `cpu:1` workers in parallel vs one after
 * the other on the `cpu:0` worker (each worker session uses one intra-op thread).
 *
 * Run with `deno bench -A bench/runtime_bench.ts`.
 *
 * @module
 */
import { DeviceWorker } from "../src/runtime/device_worker.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { matmulChainModel, randomF32 } from "../tests/runtime/_models.ts";

const SIZE = 768;
const DEPTH = 6; // 2·768³·6 ≈ 5.4 GFLOP per run
const model = matmulChainModel(SIZE, DEPTH);
const w = randomF32([SIZE, SIZE], 2).data.map((v) => v / Math.sqrt(SIZE)); // keeps values bounded
const feeds = { x: randomF32([SIZE, SIZE], 1), w: new Tensor("f32", [SIZE, SIZE], w) };

const cpu0 = await DeviceWorker.open("cpu:0");
const cpu1 = await DeviceWorker.open("cpu:1");
const s0 = await cpu0.load(model, { name: "chain0" });
const s1 = await cpu1.load(model, { name: "chain1" });
await Promise.all([s0.run(feeds), s1.run(feeds)]); // warm up both sessions
globalThis.addEventListener("unload", () => {
  cpu0.close();
  cpu1.close();
});

Deno.bench({ name: "one run on cpu:0", group: "ref", n: 20, warmup: 2 }, async () => {
  await s0.run(feeds);
});

Deno.bench(
  { name: "two runs: cpu:0 ∥ cpu:1", group: "two runs", baseline: true, n: 20, warmup: 2 },
  async () => {
    await Promise.all([s0.run(feeds), s1.run(feeds)]);
  },
);

Deno.bench(
  { name: "two runs: cpu:0 then cpu:0", group: "two runs", n: 20, warmup: 2 },
  async () => {
    await s0.run(feeds);
    await s0.run(feeds);
  },
);
