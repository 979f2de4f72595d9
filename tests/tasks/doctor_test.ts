import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);

async function doctor(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/doctor.ts", ...args],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

Deno.test("doctor --device cpu passes and reports f64 gradients within 1e-6", async () => {
  const { code, stdout } = await doctor("--device", "cpu");
  assert.equal(code, 0, stdout);
  const lines = stdout.trim().split("\n");
  const summary = JSON.parse(lines[lines.length - 1]);
  assert.equal(summary.device, "cpu");
  assert.equal(summary.pass, true);
  assert.ok(summary.ops >= 45, `only ${summary.ops} ops checked`);
  assert.ok(summary.maxGradRelErr <= 1e-6, `maxGradRelErr ${summary.maxGradRelErr}`);
  assert.ok(summary.maxForwardRelErr <= 1e-6, `maxForwardRelErr ${summary.maxForwardRelErr}`);
  const f32 = summary.f32.map((e: { name: string }) => e.name);
  for (const name of ["Erf", "Gelu", "Conv patch embedding"]) assert.ok(f32.includes(name), name);
  for (const e of summary.f32) assert.ok(e.gradRelErr <= 1e-3, `${e.name}: ${e.gradRelErr}`);
  assert.equal(lines.length - 1, summary.cases, "one line per case");
});

Deno.test("doctor --device cuda:0 without the CUDA provider fails with the install hint", async () => {
  const { code, stderr } = await doctor("--device", "cuda:0");
  assert.notEqual(code, 0);
  assert.match(stderr, /CUDA execution provider/);
  assert.match(stderr, /deno install --allow-scripts=npm:onnxruntime-node/);
});

Deno.test("doctor rejects an unknown device", async () => {
  const { code, stderr } = await doctor("--device", "tpu:0");
  assert.notEqual(code, 0);
  assert.match(stderr, /unknown device/);
});
