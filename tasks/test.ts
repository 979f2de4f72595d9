/**
 * The test runner behind `deno task test` (after fmt, lint and check): the doc tests in one
 * `deno test` process, then every test file in a process of its own, with one summary line at
 * the end in Deno's format (`ok | N passed (S steps) | M failed | K ignored (T)`; tests are
 * ignored when what they need is absent, e.g. the complete annotation files in `data/`).
 *
 * A process per file keeps one file's native state (ONNX Runtime sessions, libvips threads)
 * from reaching the next, and names the file when a native library crashes. A file whose
 * process is killed by a signal (a segmentation fault in a native addon's teardown, seen
 * rarely with Deno's N-API finalizers) is run once more, with a warning; a second crash fails.
 *
 * @module
 */
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** One `deno test` invocation and what it reported. */
interface Outcome {
  readonly passed: number;
  readonly failed: number;
  readonly steps: number;
  readonly ignored: number;
  readonly code: number;
  readonly signal: boolean;
}

/** Every `*_test.ts` under `tests/`, sorted. */
function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const path = join(dir, e.name);
    if (e.isDirectory) out.push(...testFiles(path));
    else if (e.name.endsWith("_test.ts")) out.push(path);
  }
  return out.sort();
}

/** Runs `deno test` on `args`, echoing its output, and reads its summary line. */
async function denoTest(args: string[]): Promise<Outcome> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...args],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  for await (const chunk of child.stdout) {
    await Deno.stdout.write(chunk);
    text += decoder.decode(chunk, { stream: true });
  }
  const status = await child.status;
  const summary = [
    ...text.matchAll(
      /^(?:ok|FAILED) \| (\d+) passed(?: \((\d+) steps?\))? \| (\d+) failed(?: \| (\d+) ignored)?/gm,
    ),
  ]
    .at(-1);
  return {
    passed: summary ? Number(summary[1]) : 0,
    steps: summary?.[2] ? Number(summary[2]) : 0,
    failed: summary ? Number(summary[3]) : 0,
    ignored: summary?.[4] ? Number(summary[4]) : 0,
    code: status.code,
    signal: status.signal !== null,
  };
}

/** Runs one group, again once if its process died from a signal. */
async function runGroup(label: string, args: string[]): Promise<Outcome> {
  const first = await denoTest(args);
  if (!first.signal) return first;
  console.log(`warning: the process of ${label} was killed by a signal; running it again`);
  return await denoTest(args);
}

async function main(): Promise<number> {
  const started = performance.now();
  const groups: [string, string[]][] = [
    ["the doc tests", ["--doc", "README.md", "mod.ts", "src/"]],
    // type-checked already by `deno check` in `deno task test`
    ...testFiles(join(ROOT, "tests")).map((f): [string, string[]] => {
      const rel = relative(ROOT, f);
      return [rel, ["--no-check", rel]];
    }),
  ];
  let passed = 0, failed = 0, steps = 0, ignored = 0;
  const broken: string[] = [];
  for (const [label, args] of groups) {
    const r = await runGroup(label, args);
    passed += r.passed;
    steps += r.steps;
    ignored += r.ignored;
    failed += r.failed;
    if (r.code !== 0 && r.failed === 0) {
      failed += 1;
      broken.push(`${label} (exit ${r.code}${r.signal ? ", killed by a signal" : ""})`);
    } else if (r.code !== 0) broken.push(label);
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  if (broken.length) console.log(`\nfailed: ${broken.join(", ")}`);
  const stepText = steps ? ` (${steps} steps)` : "";
  const ignoredText = ignored ? ` | ${ignored} ignored` : "";
  console.log(
    `\n${
      failed === 0 ? "ok" : "FAILED"
    } | ${passed} passed${stepText} | ${failed} failed${ignoredText} (${seconds}s)`,
  );
  return failed === 0 ? 0 : 1;
}

Deno.exit(await main());
