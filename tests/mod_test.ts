/**
 * The package as JSR serves it: `mod.ts` and the exported tasks imported over HTTP from a
 * local server of this repository (so nothing may read files next to a module or call
 * `fileURLToPath(import.meta.url)` at load), in a subprocess with the repository's import map.
 */
import assert from "node:assert/strict";
import { extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { loadConfig, SHIPPED_CONFIGS } from "../src/editors/liveedit/config.ts";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const TYPES: Readonly<Record<string, string>> = {
  ".ts": "application/typescript",
  ".json": "application/json",
};

/**
 * Serves the repository's files read-only on 127.0.0.1 (a free port) while `fn` runs, and a
 * fresh Deno cache directory whose `npm` folder is the real npm cache (so the served modules
 * are cached apart and no npm package is downloaded again).
 */
async function withServer(fn: (base: string, env: Record<string, string>) => Promise<void>) {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      const path = normalize(decodeURIComponent(new URL(request.url).pathname));
      const file = resolve(ROOT, `.${path}`);
      if (request.method !== "GET" || !file.startsWith(ROOT) || file.includes(`${sep}.`)) {
        return new Response("not served", { status: 404 });
      }
      try {
        const type = TYPES[extname(file)] ?? "application/octet-stream";
        return new Response(await Deno.readFile(file), { headers: { "content-type": type } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    },
  );
  const denoDir = await Deno.makeTempDir({ prefix: "liveedit-http-import-" });
  try {
    const info = await new Deno.Command(Deno.execPath(), { args: ["info", "--json"] }).output();
    const npmCache = JSON.parse(new TextDecoder().decode(info.stdout)).npmCache as string;
    await Deno.symlink(npmCache, join(denoDir, "npm"));
    await Deno.copyFile(join(ROOT, "deno.lock"), join(denoDir, "deno.lock"));
    await fn(`http://127.0.0.1:${server.addr.port}/`, { DENO_DIR: denoDir, NO_COLOR: "1" });
  } finally {
    await server.shutdown();
    await Deno.remove(denoDir, { recursive: true });
  }
}

/** Runs `deno <args>` in a temporary working directory with the repository's config. */
async function deno(args: string[], env: Record<string, string>) {
  const cwd = await Deno.makeTempDir({ prefix: "liveedit-http-cwd-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        args[0],
        `--config=${join(ROOT, "deno.json")}`,
        `--lock=${join(env.DENO_DIR, "deno.lock")}`,
        ...args.slice(1),
      ],
      cwd,
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
}

Deno.test("mod.ts imports over HTTP and loads every shipped config", async () => {
  await withServer(async (base, env) => {
    const port = new URL(base).port;
    const code = `
      const { liveedit } = await import(${JSON.stringify(`${base}mod.ts`)});
      const out = {};
      for (const name of Object.keys(liveedit.SHIPPED_CONFIGS)) {
        const c = await liveedit.loadConfig(name);
        out[name] = [c.editModelName, c.dims.llmMidDim, c.editLayerI, c.dims.visionTokN];
      }
      console.log(JSON.stringify(out));`;
    const r = await deno(["eval", `--allow-import=127.0.0.1:${port}`, code], env);
    assert.equal(r.code, 0, r.stderr);
    const want: Record<string, unknown> = {};
    for (const name of Object.keys(SHIPPED_CONFIGS)) {
      const c = await loadConfig(name);
      want[name] = [c.editModelName, c.dims.llmMidDim, c.editLayerI, c.dims.visionTokN];
    }
    assert.deepEqual(Object.keys(want), ["blip2", "llava", "minigpt4", "tiny"]);
    assert.deepEqual(JSON.parse(r.stdout.trim().split("\n").at(-1)!), want);
  });
});

Deno.test("every exported task runs as the main module from an HTTP URL", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const tasks = Object.entries(config.exports as Record<string, string>)
    .filter(([name]) => name !== ".");
  assert.ok(tasks.length >= 3, JSON.stringify(config.exports));
  await withServer(async (base, env) => {
    for (const [name, path] of tasks) {
      const url = new URL(path, base).href;
      const r = await deno(["run", "-A", url, "--help"], env);
      assert.equal(r.code, 0, `${name}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`deno task ${name.slice(2)}\\b`), name);
    }
  });
});

Deno.test("deno publish --dry-run is clean and leaves tests, data and generated folders out", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /Success Dry run complete/);
  const files = [...text.matchAll(/^\s+(file:\/\/\S+)/gm)].map((m) => fileURLToPath(m[1]));
  const rel = files.map((f) => f.slice(ROOT.length));
  for (const want of ["mod.ts", "deno.json", "tasks/train.ts", "src/editors/liveedit/config.ts"]) {
    assert.ok(rel.includes(want), want);
  }
  const left =
    /^(tests|bench|data|records|models|demo|eval_results|\.ci)\/|^liveedit\.config\.json$/;
  assert.deepEqual(rel.filter((f) => left.test(f)), []);
});
