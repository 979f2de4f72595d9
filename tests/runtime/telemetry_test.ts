import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** Deno's cache directory, so the child process finds the cached modules. */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"], cwd: ROOT })
    .output();
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

/** Every entry under `dir`, relative, sorted. */
async function entries(dir: string, prefix = ""): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(prefix + e.name);
    if (e.isDirectory) out.push(...await entries(join(dir, e.name), `${prefix}${e.name}/`));
  }
  return out.sort();
}

Deno.test("running a session leaves nothing in $TMPDIR and no telemetry cache", async () => {
  const work = await Deno.makeTempDir({ prefix: "liveedit-telemetry-" });
  try {
    const tmp = join(work, "tmp"), cache = join(work, "cache");
    await Deno.mkdir(tmp);
    await Deno.mkdir(cache);
    const script = join(work, "child.ts");
    const session = new URL("../../src/runtime/session.ts", import.meta.url).href;
    const models = new URL("./_models.ts", import.meta.url).href;
    const tensor = new URL("../../src/tensor/create.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { LocalSession } from "${session}";
import { matmulModel } from "${models}";
import { fromArray } from "${tensor}";
const s = await LocalSession.create(matmulModel(2, 2).bytes, { name: "mm" });
const { y } = await s.run({ a: fromArray([[1, 2]]), b: fromArray([[1, 0], [0, 1]]) });
await s.release();
console.log(JSON.stringify([...y.data]));
`,
    );
    // A clean environment: ORT_DISABLE_TELEMETRY is not inherited, TMPDIR and the cache are ours.
    const env: Record<string, string> = {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? work,
      DENO_DIR: await denoDir(),
      TMPDIR: tmp,
      XDG_CACHE_HOME: cache,
      NO_COLOR: "1",
    };
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", join(ROOT, "deno.json"), script],
      cwd: ROOT,
      clearEnv: true,
      env,
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    assert.equal(new TextDecoder().decode(out.stdout).trim(), "[1,2]");
    assert.deepEqual(await entries(tmp), [], "files left in $TMPDIR");
    assert.deepEqual(await entries(cache), [], "files left in $XDG_CACHE_HOME");
  } finally {
    await Deno.remove(work, { recursive: true });
  }
});
