import assert from "node:assert/strict";
import { join } from "node:path";
import { type LogRecord, TrainLog } from "../../src/train/log.ts";

const record = (step: number, pad = ""): LogRecord => ({
  step,
  epoch: 1,
  time: new Date(0).toISOString(),
  elapsed_s: step,
  lr: 0.01,
  loss: 1 / step,
  ema_loss: 1,
  parts: { rel: 0.5, pad: pad.length },
  samples_per_s: 1,
  batch_size: 2,
  ...(pad ? { note: pad } : {}),
});

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-log-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a plot that cannot be written is a warning; the log goes on", async () => {
  await withDir(async (dir) => {
    // losses.svg is a non-empty directory: renaming the new plot over it fails.
    await Deno.mkdir(join(dir, "losses.svg"));
    await Deno.writeTextFile(join(dir, "losses.svg", "x"), "x");
    const warnings: string[] = [];
    const log = await TrainLog.open(dir, { plotInterval: 0, warn: (w) => warnings.push(w) });
    for (let step = 1; step <= 3; step++) await log.append(record(step));
    await log.close();
    assert.equal(warnings.length, 3);
    assert.match(
      warnings[0],
      /loss plot was not updated \(training goes on\): writing .*losses\.svg/,
    );
    const lines = (await Deno.readTextFile(join(dir, "train.jsonl"))).trimEnd().split("\n");
    assert.deepEqual(lines.map((l) => JSON.parse(l).step), [1, 2, 3]);
  });
});

Deno.test("a failed append cuts the partial line off and names train.jsonl", async () => {
  if (Deno.build.os !== "linux") return;
  await withDir(async (dir) => {
    // A child with an 8 KiB file size limit (`ulimit -f` counts KiB) (SIGXFSZ ignored, so writes past it fail with EFBIG)
    // appends growing lines until one fails.
    const script = join(dir, "child.ts");
    const log = new URL("../../src/train/log.ts", import.meta.url).href;
    await Deno.writeTextFile(
      script,
      `import { TrainLog } from "${log}";
const log = await TrainLog.open(${JSON.stringify(dir)}, { plotInterval: 1e9, warn: () => {} });
const base = { epoch: 1, time: "t", elapsed_s: 0, lr: 0, loss: 1, ema_loss: 1, parts: {},
  samples_per_s: 0, batch_size: 1 };
try {
  for (let step = 1; step <= 100; step++) {
    await log.append({ ...base, step, note: "x".repeat(150) } as never);
  }
  console.log("no failure");
} catch (error) {
  console.log((error as Error).message);
}
`,
    );
    const out = await new Deno.Command("bash", {
      args: ["-c", `trap '' XFSZ; ulimit -f 8; exec "${Deno.execPath()}" run -A "${script}"`],
      cwd: dir,
    }).output();
    const stdout = new TextDecoder().decode(out.stdout).trim();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.match(
      stdout,
      new RegExp(
        `^${join(dir, "train.jsonl")}: appending a log line failed after \\d+ of \\d+ bytes`,
      ),
    );
    const text = await Deno.readTextFile(join(dir, "train.jsonl"));
    assert.ok(text.endsWith("\n"), "the file ends with a whole line");
    const steps = text.trimEnd().split("\n").map((l) => JSON.parse(l).step);
    assert.deepEqual(steps, Array.from({ length: steps.length }, (_, i) => i + 1));
    assert.ok(text.length <= 8192 && steps.length >= 20, `${text.length} bytes, ${steps.length}`);
  });
});

Deno.test("a torn last line left by an earlier process is cut off on open, with a warning", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "train.jsonl");
    const whole = JSON.stringify(record(1)) + "\n" + JSON.stringify(record(2)) + "\n";
    const torn = JSON.stringify(record(3)).slice(0, 40);
    for (const [before, kept] of [[whole + torn, whole], [torn, ""], [whole, whole], ["", ""]]) {
      await Deno.writeTextFile(path, before);
      const warnings: string[] = [];
      const log = await TrainLog.open(dir, { plotInterval: 1e9, warn: (w) => warnings.push(w) });
      await log.append(record(4));
      await log.close();
      assert.equal(await Deno.readTextFile(path), kept + JSON.stringify(record(4)) + "\n");
      assert.deepEqual(
        warnings,
        before === kept
          ? []
          : [`${path}: cut off a torn last line of 40 bytes (a run stopped while writing it)`],
      );
    }
  });
});

Deno.test("a torn last line longer than a read chunk (64 KiB) is cut off whole", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "train.jsonl");
    const long = JSON.stringify(record(1)) + "\n";
    const torn = "y".repeat(70_000);
    await Deno.writeTextFile(path, long + torn);
    const warnings: string[] = [];
    const log = await TrainLog.open(dir, { plotInterval: 1e9, warn: (w) => warnings.push(w) });
    await log.close();
    assert.equal(await Deno.readTextFile(path), long);
    assert.match(warnings[0], /cut off a torn last line of 70000 bytes/);
  });
});
