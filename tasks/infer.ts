/**
 * `deno task infer`: greedy generation with an edited model, from the edits of a previous run
 * (an expert repository directory or a saved state file, `--edits`) and a trained editor
 * checkpoint (`-ckpt`). Prints the generated text. The image (type, pixel limit) and the length
 * of the prompt plus `--max-new-tokens` (against the backbone's context; `--truncate-prompt`
 * cuts the prompt from the left) are checked before the model is opened. Exit status 0 on
 * success, 1 on failure, 2 for bad usage.
 *
 * @example
 * ```sh
 * deno task infer -mn blip2 -ckpt records/liveedit/blip2-opt-2.7b/EVQA/checkpoints \
 *   --edits edits/ --image cat.jpg --prompt "What animal is this? The answer is:"
 * ```
 *
 * @module
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { CKPT_FLAG, TARGET_FLAGS, TRUNCATE_FLAG } from "../src/cli/common_flags.ts";
import { HELP_FLAG, UsageError } from "../src/cli/flags.ts";
import { fitPrompt } from "../src/cli/input_checks.ts";
import { openEditingModel } from "../src/cli/open_model.ts";
import { resolveTarget, runTask, type TaskContext } from "../src/cli/task.ts";
import { probeImage } from "../src/io/image_file.ts";

/** The flags of `deno task infer`. */
export const INFER_FLAGS = {
  ...TARGET_FLAGS,
  editorName: { ...TARGET_FLAGS.editorName, required: false, default: "liveedit" },
  ...CKPT_FLAG,
  edits: {
    names: ["--edits"],
    type: "string",
    metavar: "PATH",
    help: "the edits: an expert repository directory or a saved state file",
  },
  image: {
    names: ["--image"],
    type: "string",
    metavar: "IMG",
    help: "image file (omit: text only)",
  },
  prompt: { names: ["--prompt"], type: "string", required: true, metavar: "TEXT", help: "prompt" },
  maxNewTokens: {
    names: ["--max-new-tokens"],
    type: "int",
    default: 32,
    min: 1,
    metavar: "N",
    help: "most tokens generated",
  },
  ...TRUNCATE_FLAG,
  ...HELP_FLAG,
} as const;

const SPEC = {
  name: "infer",
  usage: "deno task infer -mn MODEL -ckpt PATH --edits PATH [--image IMG] --prompt TEXT [options]",
  description: "Greedy generation with an edited model; prints the generated text.",
  flags: INFER_FLAGS,
};

/** Runs `deno task infer` with `argv`; resolves with the exit status. */
export function runInfer(argv: readonly string[], context: TaskContext = {}): Promise<number> {
  return runTask(SPEC, argv, context, async (flags, ctx) => {
    const target = await resolveTarget(ctx, flags);
    const { devices, editorName, entry, model } = target;
    const image = flags.image === undefined ? null : resolve(ctx.cwd, flags.image);
    if (image !== null && !existsSync(image)) {
      throw new UsageError(`--image ${image} does not exist`);
    }
    const edits = flags.edits === undefined ? null : resolve(ctx.cwd, flags.edits);
    if (edits !== null && !existsSync(edits)) {
      throw new UsageError(`--edits ${edits} does not exist`);
    }
    if (flags.ckpt === undefined && edits === null && entry.createTrainer !== undefined) {
      throw new UsageError(
        `editor ${editorName} needs trained weights: pass -ckpt PATH or --edits with a state file`,
      );
    }
    if (image !== null) await probeImage(image);
    const example = await fitPrompt(
      model,
      { image, prompt: flags.prompt, target: "" },
      flags.maxNewTokens,
      flags.truncatePrompt ?? false,
      ctx.print,
    );
    const { editing, tokenizer } = await openEditingModel(target, {
      devices,
      placement: target.placement,
      ckpt: flags.ckpt,
      cwd: ctx.cwd,
      editorConfig: flags.editorConfig,
      note: (line) => ctx.print(`note: ${line}`),
      edits,
    });
    for (const line of editing.notes ?? []) ctx.print(`note: ${line}`);
    try {
      const ids = await editing.generate(example, flags.maxNewTokens);
      ctx.print(tokenizer.decode(ids, { skipSpecialTokens: true }));
    } finally {
      await editing.close();
    }
  });
}

if (import.meta.main) Deno.exit(await runInfer(Deno.args));
