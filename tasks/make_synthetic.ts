/**
 * `deno task make-synthetic --out DIR [--n-train N] [--n-eval M] [--seed S] [--image-size P]
 * [--force]`: writes the synthetic benchmark (shapes drawn from SVG, questions about them, an
 * edit with a counterfactual answer, rephrasings and locality questions per record) as a data
 * root in the E-VQA layout, which the other tasks read with `-dna EVQA --data-root DIR`. Exit
 * status 0 on success, 1 on failure, 2 for bad usage.
 *
 * @example
 * ```sh
 * deno task make-synthetic --out data-synthetic --n-train 2000 --n-eval 200 --seed 1
 * deno task test-edit -en none -mn demo/demo-blip2 -sen 1 -dn EVQA --data-root data-synthetic
 * ```
 *
 * @module
 */
import { resolve } from "node:path";
import { HELP_FLAG } from "../src/cli/flags.ts";
import { runTask, type TaskContext } from "../src/cli/task.ts";
import { writeSynthetic } from "../src/data/synthetic/write.ts";

const SPEC = {
  name: "make-synthetic",
  usage: "deno task make-synthetic --out DIR [options]",
  description:
    "Writes the synthetic benchmark as a data root in the E-VQA layout: easy-edit-mm/vqa/\n" +
    "vqa_train.json and vqa_eval.json, PNG images under easy-edit-mm/images/synthetic/, and\n" +
    "synthetic.json with the settings. The same settings give the same files.",
  flags: {
    out: { names: ["--out"], type: "string", required: true, metavar: "DIR", help: "data root" },
    nTrain: {
      names: ["--n-train"],
      type: "int",
      default: 1000,
      min: 1,
      metavar: "N",
      help: "training records",
    },
    nEval: {
      names: ["--n-eval"],
      type: "int",
      default: 100,
      min: 1,
      metavar: "M",
      help: "evaluation records",
    },
    seed: { names: ["--seed"], type: "int", default: 0, min: 0, metavar: "S", help: "seed" },
    imageSize: {
      names: ["--image-size"],
      type: "int",
      default: 32,
      min: 8,
      metavar: "P",
      help: "side of the images in pixels",
    },
    force: { names: ["--force"], type: "boolean", help: "replace a non-empty DIR" },
    ...HELP_FLAG,
  },
} as const;

/** Runs `deno task make-synthetic` with `argv`; resolves with the exit status. */
export function runMakeSynthetic(
  argv: readonly string[],
  context: TaskContext = {},
): Promise<number> {
  return runTask(SPEC, argv, context, async (flags, ctx) => {
    const summary = await writeSynthetic(resolve(ctx.cwd, flags.out), {
      nTrain: flags.nTrain,
      nEval: flags.nEval,
      seed: flags.seed,
      imageSize: flags.imageSize,
      force: flags.force ?? false,
    });
    ctx.print(JSON.stringify(summary));
  });
}

if (import.meta.main) Deno.exit(await runMakeSynthetic(Deno.args));
