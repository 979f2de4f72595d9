/**
 * `deno task make-tiny --arch blip2-opt|llava|minigpt4 --out DIR [--layout v4|v5] [--seed N]
 * [--layers N] [--hidden N] [--force]`: writes a tiny random-weight model directory in the
 * Hugging Face layout of `transformers` 4 or 5 (see `src/models/tiny/configs.ts` for the sizes,
 * `src/models/tiny/layout.ts` for the layouts) and prints a JSON summary line. Exit 0 on
 * success, 1 when writing fails, 2 for bad usage.
 *
 * @module
 */
import { HELP_FLAG, parseCommand } from "../src/cli/flags.ts";
import { TINY_ARCHS, type TinyArch, tinyDims } from "../src/models/tiny/configs.ts";
import { HF_LAYOUTS, type HfLayout } from "../src/models/tiny/layout.ts";
import { writeTinyModel } from "../src/models/tiny/write.ts";

const SPEC = {
  name: "make-tiny",
  usage: `deno task make-tiny --arch ${TINY_ARCHS.join("|")} --out DIR [options]`,
  description:
    "Writes a tiny random-weight model in the Hugging Face layout into DIR: config.json,\n" +
    "model.safetensors (f32), tokenizer.json, tokenizer_config.json, and special_tokens_map.json\n" +
    "and preprocessor_config.json (transformers 4) or processor_config.json (transformers 5); a\n" +
    "few hundred kB to ~1 MB. The same seed gives the same bytes.",
  flags: {
    arch: {
      names: ["--arch"],
      type: "string",
      required: true,
      choices: TINY_ARCHS,
      metavar: "A",
      help: "architecture",
    },
    out: {
      names: ["--out"],
      type: "string",
      required: true,
      metavar: "DIR",
      help: "target directory; created, or must be empty",
    },
    layout: {
      names: ["--layout"],
      type: "string",
      default: "v4",
      choices: HF_LAYOUTS,
      metavar: "L",
      help: "the files as transformers 4 or 5 saves them",
    },
    seed: {
      names: ["--seed"],
      type: "int",
      default: 0,
      min: 0,
      metavar: "N",
      help: "seed of the random weights",
    },
    layers: {
      names: ["--layers"],
      type: "int",
      min: 1,
      metavar: "N",
      help: "decoder layers (default 4)",
    },
    hidden: {
      names: ["--hidden"],
      type: "int",
      min: 8,
      metavar: "N",
      help: "decoder width, a multiple of 8 (default 64)",
    },
    force: { names: ["--force"], type: "boolean", help: "replace DIR even when it is not empty" },
    ...HELP_FLAG,
  },
} as const;

async function main(): Promise<number> {
  const flags = parseCommand(SPEC, Deno.args, console.log, console.error);
  if (typeof flags === "number") return flags;
  const arch = flags.arch as TinyArch;
  const sizes = { layers: flags.layers, hidden: flags.hidden };
  try {
    if (flags.out === "") throw new Error("--out must name a directory");
    tinyDims(arch, sizes);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}\nusage: ${SPEC.usage}`);
    return 2;
  }
  const summary = await writeTinyModel(flags.out, {
    arch,
    seed: flags.seed,
    ...sizes,
    force: flags.force ?? false,
    layout: flags.layout as HfLayout,
  });
  console.log(JSON.stringify({
    arch: summary.dims.arch,
    layout: flags.layout,
    dir: summary.dir,
    tensors: summary.tensors,
    parameters: summary.parameters,
    bytes: summary.bytes,
  }));
  return 0;
}

try {
  Deno.exit(await main());
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  Deno.exit(1);
}
