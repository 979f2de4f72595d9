import assert from "node:assert/strict";
import { join } from "node:path";
import { TINY_FILES } from "../../src/models/tiny/layout.ts";

const root = new URL("../../", import.meta.url);

async function makeTiny(...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/make_tiny.ts", ...args],
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

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-make-tiny-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) out.push(e.name);
  return out.sort();
}

Deno.test("make-tiny --arch llava --out DIR writes the model directory and a JSON summary", async () => {
  await withTempDir(async (parent) => {
    const dir = join(parent, "tiny-llava");
    const { code, stdout, stderr } = await makeTiny("--arch", "llava", "--out", dir, "--seed", "5");
    assert.equal(code, 0, stderr);
    assert.deepEqual(await names(dir), [...TINY_FILES.v4]);
    const summary = JSON.parse(stdout.trim());
    assert.equal(summary.arch, "llava");
    assert.equal(summary.dir, dir);
    assert.ok(summary.bytes > 0 && summary.bytes < 3_000_000, stdout);
    const config = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assert.equal(config.model_type, "llava");
    assert.equal(config.text_config.num_hidden_layers, 4);

    const again = await makeTiny("--arch", "llava", "--out", dir);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not empty \(pass --force to replace it\)/);
    const forced = await makeTiny("--arch", "blip2-opt", "--out", dir, "--force", "--layers", "3");
    assert.equal(forced.code, 0, forced.stderr);
    const replaced = JSON.parse(await Deno.readTextFile(join(dir, "config.json")));
    assert.equal(replaced.model_type, "blip-2");
    assert.equal(replaced.text_config.num_hidden_layers, 3);
    assert.deepEqual(await names(parent), ["tiny-llava"]);
  });
});

Deno.test("make-tiny --layout v5 writes the transformers 5 files", async () => {
  await withTempDir(async (parent) => {
    const dir = join(parent, "tiny-blip2");
    const args = ["--arch", "blip2-opt", "--out", dir, "--layout", "v5"];
    const { code, stdout, stderr } = await makeTiny(...args);
    assert.equal(code, 0, stderr);
    assert.deepEqual(await names(dir), [...TINY_FILES.v5]);
    assert.equal(JSON.parse(stdout.trim()).layout, "v5");
  });
});

Deno.test("make-tiny --help prints the usage and exits 0", async () => {
  const { code, stdout } = await makeTiny("--help");
  assert.equal(code, 0);
  assert.match(stdout, /usage: deno task make-tiny --arch blip2-opt\|llava\|minigpt4 --out DIR/);
  for (const flag of ["--out", "--layout", "--seed", "--layers", "--hidden", "--force"]) {
    assert.ok(stdout.includes(flag), flag);
  }
});

Deno.test("make-tiny: bad flags exit 2 with the reason and the usage, writing nothing", async () => {
  await withTempDir(async (parent) => {
    const out = join(parent, "m");
    const cases: [string[], RegExp][] = [
      [["--out", out], /--arch is required/],
      [["--arch", "llava"], /--out is required/],
      [
        ["--arch", "gpt5", "--out", out],
        /--arch must be one of blip2-opt, llava, minigpt4, got "gpt5"/,
      ],
      [["--arch", "llava", "--out", out, "--seed=-3"], /--seed must be an integer >= 0, got -3/],
      [["--arch", "llava", "--out", out, "--seed", "-3"], /--seed/],
      [["--arch", "llava", "--out", out, "--seed", "1.5"], /--seed must be an integer, got "1.5"/],
      [["--arch", "llava", "--out", out, "--layers", "0"], /--layers must be an integer >= 1/],
      [["--arch", "llava", "--out", out, "--hidden", "36"], /hidden must be a multiple of 8/],
      [
        ["--arch", "llava", "--out", out, "--layout", "v6"],
        /--layout must be one of v4, v5, got "v6"/,
      ],
      [["--arch", "llava", "--out", out, "--colour"], /colour/],
      [["--arch", "llava", "--out", out, "extra"], /extra/],
    ];
    for (const [args, message] of cases) {
      const { code, stderr } = await makeTiny(...args);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, message, args.join(" "));
      assert.match(stderr, /usage: deno task make-tiny/, args.join(" "));
    }
    assert.deepEqual(await names(parent), []);
  });
});
