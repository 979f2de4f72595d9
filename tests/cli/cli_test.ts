/**
 * Tests of `src/cli/` (flags, settings file, device flags, progress), which the train,
 * test-edit and infer tasks share.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadSettings, resolveDataRoot, resolveModel } from "../../src/cli/config.ts";
import { DEVICES_FLAG } from "../../src/cli/common_flags.ts";
import { parseByteSize, parseDeviceFlags, parsePlacementFlags } from "../../src/cli/devices.ts";
import { formatHelp, parseFlags, UsageError } from "../../src/cli/flags.ts";
import { formatDuration, Progress } from "../../src/cli/progress.ts";
import { withTempDir } from "../train/_workspace.ts";

const SPECS = {
  name: { names: ["-en", "--editor-name"], type: "string", required: true, help: "editor" },
  bs: { names: ["-bs", "--batch-size"], type: "int", min: 1, default: 4, help: "batch" },
  ea: { names: ["-ea", "--ema-alpha"], type: "float", default: 0.1, help: "alpha" },
  devices: { names: ["-edvc", "--extra-devices"], type: "list", default: [], help: "devices" },
  ckpt: { names: ["-lkpt"], type: "string", noneable: true, help: "ckpt" },
  split: { names: ["--split"], type: "string", choices: ["eval", "x"], help: "split" },
  force: { names: ["--force"], type: "boolean", help: "force" },
} as const;

Deno.test("parseFlags: multi-letter short names, kebab/snake long names, =, lists, None, defaults", () => {
  const f = parseFlags(SPECS, [
    "-en",
    "liveedit",
    "--batch_size=8",
    "-edvc",
    "0",
    "1",
    "-lkpt",
    "None",
    "--force",
  ]);
  assert.deepEqual(f, {
    name: "liveedit",
    bs: 8,
    ea: 0.1,
    devices: ["0", "1"],
    force: true,
  });
  const g = parseFlags(SPECS, ["--editor-name", "x", "-edvc", "cpu:1,cpu:2", "-ea", "0.5"]);
  assert.deepEqual(g.devices, ["cpu:1", "cpu:2"]);
  assert.equal(g.ea, 0.5);
  assert.equal(g.ckpt, undefined);
});

Deno.test("parseFlags: usage errors name the flag", () => {
  const bad: [string[], RegExp][] = [
    [[], /-en\/--editor-name is required/],
    [["-en", "a", "-bs", "0"], /-bs\/--batch-size must be an integer >= 1, got 0/],
    [["-en", "a", "-bs", "2.5"], /must be an integer, got "2.5"/],
    [["-en", "a", "-ea", "x"], /-ea\/--ema-alpha must be a number/],
    [["-en", "a", "--nope"], /unknown flag --nope/],
    [["-en", "a", "stray"], /unexpected argument "stray"/],
    [["-en", "a", "-en", "b"], /given twice/],
    [["-en"], /needs a value/],
    [["-en", "a", "--split", "y"], /--split must be one of eval, x/],
  ];
  for (const [argv, re] of bad) {
    assert.throws(
      () => parseFlags(SPECS, argv),
      (e: Error) => e instanceof UsageError && re.test(e.message),
      argv.join(" "),
    );
  }
});

Deno.test("formatHelp lists every flag with its names, default and choices", () => {
  const help = formatHelp("cmd", "does things", SPECS);
  for (
    const s of [
      "-en, --editor-name",
      "-bs, --batch-size INT",
      "default 4",
      "one of eval, x",
      "required",
    ]
  ) {
    assert.ok(help.includes(s), s);
  }
});

Deno.test("settings file: model directories by name, relative to the file; -mn resolution and errors", async () => {
  await withTempDir(async (dir) => {
    await Deno.mkdir(join(dir, "models/b2"), { recursive: true });
    await Deno.writeTextFile(join(dir, "models/b2/config.json"), "{}");
    await Deno.mkdir(join(dir, "nocfg"));
    await Deno.writeTextFile(
      join(dir, "liveedit.config.json"),
      JSON.stringify({ models: { blip2: "models/b2", mine: "models/b2" }, dataRoot: "d" }),
    );
    const s = await loadSettings(undefined, dir);
    assert.equal(s.models.blip2, join(dir, "models/b2"));
    assert.equal(resolveDataRoot(undefined, s, dir), join(dir, "d"));
    assert.equal(resolveDataRoot("x", s, dir), join(dir, "x"));
    assert.deepEqual(resolveModel("blip2", undefined, s, dir), {
      name: "blip2-opt-2.7b",
      dir: join(dir, "models/b2"),
    });
    assert.equal(resolveModel("mine", undefined, s, dir).name, "mine");
    assert.equal(resolveModel("models/b2", undefined, s, dir).name, "b2", "a directory");
    assert.equal(resolveModel("llava", "models/b2", s, dir).name, "llava-v1.5-7b", "--model-dir");
    assert.throws(
      () => resolveModel("llava", undefined, s, dir),
      /no model directory for llava: set models.llava in .*liveedit.config.json or pass --model-dir/,
    );
    assert.throws(
      () => resolveModel("gpt9", undefined, s, dir),
      /unknown model name "gpt9" \(valid: blip2, llava, minigpt4, mine, or a model directory\)/,
    );
    assert.throws(() => resolveModel("nocfg", undefined, s, dir), /nocfg .*has no config.json/);
    const none = await loadSettings(undefined, join(dir, "models"));
    assert.deepEqual(none, { file: null, models: {}, dataRoot: null });
    await assert.rejects(loadSettings("missing.json", dir), /missing.json: cannot read it/);
    await Deno.writeTextFile(join(dir, "bad.json"), JSON.stringify({ models: { a: 3 } }));
    await assert.rejects(
      loadSettings("bad.json", dir),
      /field 'models.a' must be a directory path/,
    );
  });
});

Deno.test("device flags: -edvc N means -dvc's kind:N; bad devices are usage errors", () => {
  assert.deepEqual(parseDeviceFlags("cuda:0", ["0", "1", "cuda:1"]), {
    devices: ["cuda:0"],
    extraDevices: ["cuda:0", "cuda:1"],
  });
  assert.deepEqual(parseDeviceFlags("cpu", ["1", "2"]).extraDevices, ["cpu:1", "cpu:2"]);
  assert.throws(() => parseDeviceFlags("gpu:0"), /-dvc: unknown device 'gpu:0'/);
  assert.throws(() => parseDeviceFlags("webgpu", ["1"]), /-edvc: unsupported device 'webgpu:1'/);
});

Deno.test("device flags: -dvc is a list in stage order; a bare N is cuda:N", () => {
  assert.deepEqual(parseDeviceFlags(["0", "1"]).devices, ["cuda:0", "cuda:1"]);
  assert.deepEqual(parseDeviceFlags(["cpu:1", "cpu:0"], ["2"]), {
    devices: ["cpu:1", "cpu:0"],
    extraDevices: ["cpu:2"],
  });
  assert.throws(() => parseDeviceFlags(["cpu:0", "tpu:1"]), /-dvc: unknown device 'tpu:1'/);
  assert.throws(() => parseDeviceFlags([]), /-dvc: no device given/);
  const flags = parseFlags({ ...DEVICES_FLAG }, ["-dvc", "cuda:0,cuda:1"]);
  assert.deepEqual(parseDeviceFlags(flags.device).devices, ["cuda:0", "cuda:1"]);
  assert.deepEqual(parseFlags({ ...DEVICES_FLAG }, []).device, ["cpu"]);
});

Deno.test("placement flags: sizes in binary and decimal units, cuts per device, the editor's device", () => {
  assert.equal(parseByteSize("32GiB"), 32 * 2 ** 30);
  assert.equal(parseByteSize("24g"), 24 * 2 ** 30);
  assert.equal(parseByteSize("500MB"), 500e6);
  assert.equal(parseByteSize("1.5 KiB"), 1536);
  assert.equal(parseByteSize("4096"), 4096);
  for (const bad of ["", "GiB", "-1GiB", "3 parsecs", "0"]) {
    assert.throws(() => parseByteSize(bad), UsageError, bad);
  }
  const devices = ["cuda:0", "cuda:1", "cuda:2"];
  assert.deepEqual(
    parsePlacementFlags(
      { splitLayers: ["10", "20"], maxMemory: ["32GiB"], editorDevice: "3" },
      devices,
    ),
    { splitLayers: [10, 20], maxMemory: [32 * 2 ** 30], editorDevice: "cuda:3" },
  );
  assert.deepEqual(parsePlacementFlags({}, devices), {
    splitLayers: undefined,
    maxMemory: undefined,
    editorDevice: undefined,
  });
  assert.throws(
    () => parsePlacementFlags({ splitLayers: ["10"] }, devices),
    /--split-layers: 1 cuts for 3 devices of -dvc \(give the first layer of every stage but the first: 2\)/,
  );
  assert.throws(
    () => parsePlacementFlags({ splitLayers: ["a", "b"] }, devices),
    /"a" is not a layer index/,
  );
  assert.throws(
    () => parsePlacementFlags({ editorDevice: "tpu" }, devices),
    /--editor-device: unknown device 'tpu'/,
  );
});

Deno.test("Progress: plain lines at most every interval, with rate and ETA; a bar on a TTY", () => {
  let t = 0;
  const lines: string[] = [];
  const p = new Progress({
    total: 10,
    label: "train",
    unit: "step",
    tty: false,
    interval: 5,
    now: () => t,
    write: (s) => lines.push(s),
  });
  for (let i = 1; i <= 10; i++) {
    t = i * 1000; // one step per second
    p.update(i);
  }
  p.done();
  // drawn at t=1s (first), 6s, and at 10/10; done() does not repeat the last line
  assert.equal(lines.length, 3, lines.join(""));
  assert.equal(lines[1], "train  60.0% 6/10 [0:06<0:04, 1.00 step/s]\n");
  assert.match(lines[2], /100\.0% 10\/10/);

  const out: string[] = [];
  const bar = new Progress({
    total: 4,
    label: "x",
    tty: true,
    now: () => 0,
    write: (s) => out.push(s),
    start: 2,
  });
  bar.update(3);
  bar.done();
  assert.ok(out[0].startsWith("\r\x1b[2Kx |"), JSON.stringify(out[0]));
  assert.ok(out.at(-1)!.endsWith("\n"));
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(65), "1:05");
});

Deno.test("Progress: options given as undefined take their defaults (a TTY bar with no writer)", () => {
  const lines: string[] = [];
  const write = Deno.stdout.writeSync;
  // capture what the default writer sends to stdout
  Deno.stdout.writeSync = (p: Uint8Array) => (lines.push(new TextDecoder().decode(p)), p.length);
  try {
    const p = new Progress({ total: 2, label: "x", tty: true, write: undefined, unit: undefined });
    p.update(1);
    p.update(2);
    p.done();
  } finally {
    Deno.stdout.writeSync = write;
  }
  const text = lines.join("");
  assert.ok(text.includes("\r\x1b[2Kx |"), "redrawn in place");
  assert.match(text, /x \|[^|]*\| +50\.0% 1\/2/);
  assert.match(text, /100\.0% 2\/2.*\n$/s);
  assert.match(text, /it\/s|s\/it/);
});
