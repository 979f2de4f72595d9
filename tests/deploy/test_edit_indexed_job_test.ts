/**
 * `deploy/k8s/test-edit-indexed-job.yaml` run locally: the Indexed Job's `command` as one
 * process per completion index (`JOB_COMPLETION_INDEX` set as Kubernetes sets it, the
 * manifest's `$(VAR)`s filled with a make-tiny model, cpu devices and a temporary results
 * folder), then the merge Job's `command`; the merged `results.json` and `mean_results.json`
 * equal a single run's, timing aside. The manifest is read minimally: its documents, each
 * container's `env` names and its `command`, a block list of double-quoted strings.
 *
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runTestEdit } from "../../tasks/test_edit.ts";
import {
  collect,
  makeWorkspace,
  timeless,
  withTempDir,
  writeEditingCheckpoint,
} from "../train/_workspace.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const MANIFEST = join(ROOT, "deploy/k8s/test-edit-indexed-job.yaml");

/** One Job of the manifest, as far as the test needs it. */
interface JobDoc {
  readonly name: string;
  /** `liveedit-step` (what the README's `kubectl apply -l` selects). */
  readonly step?: string;
  readonly indexed: boolean;
  readonly completions?: number;
  readonly parallelism?: number;
  /** The container's env, by name. */
  readonly env: Record<string, string>;
  readonly command: string[];
}

/** The Jobs of the manifest (see the module documentation). */
function readManifest(text: string): JobDoc[] {
  return text.split(/^---$/m).map((doc) => {
    const scalar = (key: string) => new RegExp(`^\\s*${key}:\\s*(.+)$`, "m").exec(doc)?.[1];
    // `command:` then one `- "string"` (JSON) per line
    const block = /^( *)command:\n((?:\1 *- ".*"\n)+)/m.exec(doc);
    assert.ok(block, `a command list in:\n${doc}`);
    const command = block[2].trimEnd().split("\n").map((l) => JSON.parse(l.trim().slice(2)));
    const env: Record<string, string> = {};
    for (const m of doc.matchAll(/- name: (\w+)\s*\n\s*value: "([^"]*)"/g)) env[m[1]] = m[2];
    return {
      name: scalar("name")!.trim(),
      step: scalar("liveedit-step")?.trim(),
      indexed: scalar("completionMode")?.trim() === "Indexed",
      completions: Number(scalar("completions")) || undefined,
      parallelism: Number(scalar("parallelism")) || undefined,
      env,
      command,
    };
  });
}

/** `command` with Kubernetes' `$(VAR)` expansion from `env` (an unknown name is an error). */
function expand(command: readonly string[], env: Record<string, string>): string[] {
  return command.map((arg) =>
    arg.replace(/\$\((\w+)\)/g, (_, name) => {
      assert.ok(name in env, `$(${name}) has no value`);
      return env[name];
    })
  );
}

/** Runs `command` (`deno …`) in the repository as a pod would; resolves with its output. */
async function runPod(command: readonly string[], env: Record<string, string>) {
  assert.equal(command[0], "deno");
  const out = await new Deno.Command(Deno.execPath(), {
    args: command.slice(1),
    cwd: ROOT,
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("the Indexed Job's command lines, run as one process per index, then the merge Job's, give a single run's results", async () => {
  const [shardJob, mergeJob] = readManifest(await Deno.readTextFile(MANIFEST));
  assert.ok(shardJob.indexed, "completionMode: Indexed");
  assert.deepEqual([shardJob.step, mergeJob.step], ["shards", "merge"]);
  const shards = Number(shardJob.env.SHARDS);
  assert.ok(shards >= 2);
  assert.equal(shardJob.completions, shards, "completions = SHARDS");
  assert.equal(shardJob.parallelism, shards, "parallelism = SHARDS");
  assert.ok(shardJob.command.includes("--shards"));
  assert.equal(mergeJob.command[2], "merge-results");
  await withTempDir(async (dir) => {
    const ws = await makeWorkspace(dir, { records: 10 });
    // -mn tiny --model-dir …/tiny-model: the model is named tiny-model
    const ckpt = await writeEditingCheckpoint(dir, "liveedit/tiny-model");
    // the manifest's settings, for this machine
    const local: Record<string, string> = {
      MODEL_NAME: "tiny",
      MODEL_DIR: ws.modelDir,
      CKPT: ckpt,
      DATA_NAME: "EVQA",
      DATA_ROOT: ws.dataRoot,
      EDIT_N: "2",
      EVAL_RESULTS: join(dir, "eval_results"),
      DEVICE: "cpu:0",
      LIVEEDIT_CACHE: Deno.env.get("LIVEEDIT_CACHE")!,
    };
    assert.deepEqual(
      Object.keys(local).sort(),
      Object.keys(shardJob.env).filter((k) => k !== "SHARDS").sort(),
    );
    const env = { ...shardJob.env, ...local };
    const pods = await Promise.all(
      Array.from(
        { length: shards },
        (_, i) =>
          runPod(expand(shardJob.command, env), { ...env, JOB_COMPLETION_INDEX: String(i) }),
      ),
    );
    pods.forEach((p, i) => assert.equal(p.code, 0, `pod ${i}: ${p.stdout}${p.stderr}`));
    const resultDir = join(dir, "eval_results/liveedit/tiny-model/EVQA/sequential_edit_2");
    const mergeEnv = { ...mergeJob.env, RESULT_DIR: resultDir };
    const merged = await runPod(expand(mergeJob.command, mergeEnv), mergeEnv);
    assert.equal(merged.code, 0, merged.stdout + merged.stderr);
    assert.match(merged.stdout, new RegExp(`merged ${shards} shards \\(5 chunks\\)`));

    const out = collect();
    const code = await runTestEdit(
      [
        ...["-en", "liveedit", "-mn", "tiny", "--model-dir", ws.modelDir, "-dn", "EVQA"],
        ...["--editor-config", "tiny", "-ckpt", ckpt, "-sen", "2", "--eval-results", "single"],
        ...["-dvc", "cpu:0"],
      ],
      { cwd: dir, tty: false, ...out },
    );
    assert.equal(code, 0, out.errors.join("\n"));
    const single = join(dir, "single/liveedit/tiny-model/EVQA/sequential_edit_2");
    for (const f of ["results.json", "mean_results.json"]) {
      assert.deepEqual(await timeless(join(resultDir, f)), await timeless(join(single, f)), f);
    }
    const means = JSON.parse(await Deno.readTextFile(join(single, "mean_results.json")));
    assert.ok(means.total_mean.locality.image_loc.acc < 1, "the edits change answers");
  });
});
