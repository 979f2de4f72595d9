import assert from "node:assert/strict";
import {
  assertDeviceAvailable,
  CUDA_INSTALL_COMMAND,
  cudaProviderStatus,
  parseDevice,
  replicaGroups,
  sessionOptions,
} from "../../src/runtime/device.ts";
import { LocalSession } from "../../src/runtime/session.ts";
import { DeviceWorker } from "../../src/runtime/device_worker.ts";
import { matmulModel } from "./_models.ts";

Deno.test("parseDevice accepts cpu, cpu:N, cuda:N and webgpu", () => {
  assert.deepEqual(parseDevice("cpu"), { kind: "cpu", index: null, name: "cpu" });
  assert.deepEqual(parseDevice("cpu:0"), { kind: "cpu", index: 0, name: "cpu:0" });
  assert.deepEqual(parseDevice("cpu:12"), { kind: "cpu", index: 12, name: "cpu:12" });
  assert.deepEqual(parseDevice("cuda:3"), { kind: "cuda", index: 3, name: "cuda:3" });
  assert.deepEqual(parseDevice("webgpu"), { kind: "webgpu", index: null, name: "webgpu" });
});

Deno.test("parseDevice rejects anything else with the accepted forms", () => {
  for (const bad of ["gpu:0", "cuda", "cpu:", "cpu:-1", "cpu:01", "CPU", "cuda:1.5", " cpu", ""]) {
    assert.throws(
      () => parseDevice(bad),
      { message: `unknown device '${bad}': expected cpu, cpu:N, cuda:N or webgpu` },
      bad,
    );
  }
  assert.throws(() => parseDevice("webgpu:0"), /webgpu:0.*no device index option, use 'webgpu'/);
});

Deno.test("sessionOptions: thread defaults, optimisation level and execution providers", () => {
  const cpu0 = sessionOptions(parseDevice("cpu:0"));
  assert.equal(cpu0.intraOpNumThreads, 1);
  assert.equal(cpu0.graphOptimizationLevel, "all");
  assert.deepEqual(cpu0.executionProviders, ["cpu"]);
  assert.equal(sessionOptions(parseDevice("cpu")).intraOpNumThreads, navigator.hardwareConcurrency);
  const tuned = sessionOptions(parseDevice("cpu:1"), {
    intraOpThreads: 2,
    graphOptimizationLevel: "basic",
  });
  assert.equal(tuned.intraOpNumThreads, 2);
  assert.equal(tuned.graphOptimizationLevel, "basic");
  // worker threads sleep between ops unless asked to spin
  const spin = (o: { extra?: Record<string, unknown> }) =>
    (o.extra?.session as Record<string, string>)["intra_op.allow_spinning"];
  assert.equal(spin(cpu0), "0");
  assert.equal(spin(sessionOptions(parseDevice("cpu"), { allowSpinning: true })), "1");
  assert.deepEqual(sessionOptions(parseDevice("cuda:2")).executionProviders, [
    { name: "cuda", deviceId: 2 },
  ]);
  assert.deepEqual(sessionOptions(parseDevice("webgpu")).executionProviders, [{ name: "webgpu" }]);
  assert.throws(
    () => sessionOptions(parseDevice("cpu:0"), { intraOpThreads: 0 }),
    /cpu:0: intraOpThreads must be an integer >= 1, got 0/,
  );
});

const cudaMissing = cudaProviderStatus().missing.length > 0;

Deno.test({
  name: "cuda:N without the CUDA execution provider fails with the install command",
  ignore: !cudaMissing,
  fn: async () => {
    const check = (e: unknown) => {
      const message = (e as Error).message;
      assert.match(message, /^cuda:0: /);
      assert.match(message, /CUDA execution provider/);
      assert.ok(message.includes(CUDA_INSTALL_COMMAND), message);
      assert.ok(message.includes("deno install --allow-scripts=npm:onnxruntime-node"), message);
      assert.match(message, /CUDA 12/);
      return true;
    };
    assert.throws(() => assertDeviceAvailable(parseDevice("cuda:0")), check);
    await assert.rejects(LocalSession.create(matmulModel(3, 2).bytes, { device: "cuda:0" }), check);
    await assert.rejects(DeviceWorker.open("cuda:0"), check);
  },
});

Deno.test("webgpu: a session either works or fails with a clear error (no GPU needed)", async () => {
  const { bytes } = matmulModel(3, 2);
  let session: LocalSession | null = null;
  try {
    session = await LocalSession.create(bytes, { device: "webgpu", name: "mm" });
  } catch (e) {
    const message = (e as Error).message;
    assert.match(message, /^session 'mm' on webgpu: could not create the session: /);
    assert.match(message, /WebGPU execution provider found no usable GPU adapter/);
  }
  if (session !== null) {
    assert.equal(session.device.kind, "webgpu");
    await session.release();
  }
});

Deno.test("replicaGroups: -dvc cut in order into equal groups; bad counts and repeats are named", () => {
  assert.deepEqual(replicaGroups(["cpu:0", "cpu:1"], 2), [["cpu:0"], ["cpu:1"]]);
  assert.deepEqual(replicaGroups(["cuda:0", "cuda:1", "cuda:2", "cuda:3"], 2), [
    ["cuda:0", "cuda:1"],
    ["cuda:2", "cuda:3"],
  ]);
  assert.deepEqual(replicaGroups(["cpu"], 1), [["cpu"]]);
  assert.throws(
    () => replicaGroups(["cpu:0", "cpu:1", "cpu:2"], 2),
    /--replicas 2 needs a multiple of 2 devices in -dvc \(equal groups\), got 3: cpu:0,cpu:1,cpu:2/,
  );
  assert.throws(() => replicaGroups(["cpu:0", "cpu:0"], 2), /device cpu:0 is named twice in -dvc/);
  assert.throws(() => replicaGroups(["cpu:0"], 0), /--replicas must be an integer >= 1, got 0/);
});
