/**
 * The small tasks' command lines (`doctor`, `clear-cache`, `fixtures`, `fuzz`, `make-tiny`,
 * `merge-results`): `--help` lists every option and exits 0, an unknown flag exits 2 with the
 * usage; and `deno task` describes every task.
 */
import assert from "node:assert/strict";
import { join } from "node:path";

const root = new URL("../../", import.meta.url);

async function task(file: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `tasks/${file}`, ...args],
    cwd: root,
    env: { NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

const TASKS = [
  { name: "doctor", file: "doctor.ts", options: ["--device", "--help"] },
  { name: "clear-cache", file: "clear_cache.ts", options: ["--cache-dir", "--help"] },
  {
    name: "fixtures",
    file: "fixtures.ts",
    options: ["--editor", "--models", "--device", "--help"],
  },
  { name: "fuzz", file: "fuzz.ts", options: ["--cases", "--seed", "--format", "--case", "--help"] },
  {
    name: "make-tiny",
    file: "make_tiny.ts",
    options: ["--arch", "--out", "--layout", "--seed", "--layers", "--hidden", "--force", "--help"],
  },
  { name: "merge-results", file: "merge_results.ts", options: ["--out", "--force", "--help"] },
];

for (const { name, file, options } of TASKS) {
  Deno.test(`${name} --help lists its options; an unknown flag exits 2 with the usage`, async () => {
    const help = await task(file, ["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.ok(help.stdout.startsWith(`usage: deno task ${name}`), help.stdout);
    const listed = help.stdout.slice(help.stdout.indexOf("\noptions:\n"));
    for (const option of options) {
      assert.match(listed, new RegExp(`\\n  (-\\w+, )?${option}\\b`), option);
    }
    const bad = await task(file, ["--no-such-flag"]);
    assert.equal(bad.code, 2, bad.stdout + bad.stderr);
    assert.match(bad.stderr, /no-such-flag/);
    assert.match(bad.stderr, new RegExp(`usage: deno task ${name}`));
  });
}

Deno.test("clear-cache --cache-dir removes the compiled graphs and nothing else", async () => {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-clear-cache-" });
  try {
    const entries = await task("clear_cache.ts", ["--help"], { LIVEEDIT_CACHE: dir });
    assert.ok(entries.stdout.includes(`now ${dir})`), entries.stdout);
    await Deno.writeTextFile(join(dir, "weights.safetensors"), "keep");
    for (const c of "ab") {
      await Deno.mkdir(join(dir, c.repeat(64)));
      await Deno.writeTextFile(join(dir, c.repeat(64), "model.onnx"), "graph");
    }
    const out = await task("clear_cache.ts", ["--cache-dir", dir]);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(
      out.stdout.trim(),
      `removed 2 compiled graph(s) and cached weight copies from ${dir}`,
    );
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["weights.safetensors"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task describes every task", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("deno.json", root)));
  for (const [name, t] of Object.entries(config.tasks as Record<string, unknown>)) {
    const spec = t as { description?: unknown; command?: unknown };
    assert.equal(typeof spec.description, "string", name);
    assert.ok((spec.description as string).length >= 20, name);
    assert.match(String(spec.command), /^deno /, name);
  }
  const listed = await new Deno.Command(Deno.execPath(), {
    args: ["task"],
    cwd: root,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(listed.stdout) + new TextDecoder().decode(listed.stderr);
  for (const [name, t] of Object.entries(config.tasks as Record<string, { description: string }>)) {
    assert.ok(text.includes(`- ${name}\n    // ${t.description}`), `${name}: ${text}`);
  }
});
