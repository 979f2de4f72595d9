/**
 * `deno task make-tiny --arch blip2-opt|llava|minigpt4 --out DIR [--layout v4|v5] [--seed N]
 * [--layers N] [--hidden N] [--force]`: writes a tiny random-weight model directory in the
 * Hugging Face layout of `transformers` 4 or 5 (see `src/models/tiny/configs.ts` for the sizes,
 * `src/models/tiny/layout.ts` for the layouts) and prints a JSON summary line. Exit 0 on
 * success, 1 when writing fails, 2 for bad usage.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { TINY_ARCHS, type TinyArch, tinyDims } from "../src/models/tiny/configs.ts";
import { HF_LAYOUTS, type HfLayout } from "../src/models/tiny/layout.ts";
import { writeTinyModel } from "../src/models/tiny/write.ts";

const USAGE = `usage: deno task make-tiny --arch ${TINY_ARCHS.join("|")} --out DIR [options]

Writes a tiny random-weight model in the Hugging Face layout into DIR: config.json,
model.safetensors (f32), tokenizer.json, tokenizer_config.json, and special_tokens_map.json and
preprocessor_config.json (transformers 4) or processor_config.json (transformers 5); a few
hundred kB to ~1 MB. The same seed gives the same bytes.

options:
  --arch A      architecture: ${TINY_ARCHS.join(", ")} (required)
  --out DIR     target directory; created, or must be empty (required)
  --layout L    ${HF_LAYOUTS.join(" or ")}: the files as transformers 4 or 5 saves them (default v4)
  --seed N      seed of the random weights, integer >= 0 (default 0)
  --layers N    decoder layers (default 4)
  --hidden N    decoder width, a multiple of 8 (default 64)
  --force       replace DIR even when it is not empty
  -h, --help    print this help`;

/** A command-line mistake: printed with the usage, exit code 2. */
class UsageError extends Error {}

function integer(name: string, value: string | undefined, min: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`--${name} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return n;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      strict: true,
      allowPositionals: false,
      options: {
        arch: { type: "string" },
        out: { type: "string" },
        layout: { type: "string", default: "v4" },
        seed: { type: "string" },
        layers: { type: "string" },
        hidden: { type: "string" },
        force: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.arch === undefined) throw new UsageError("--arch is required");
  if (!(TINY_ARCHS as readonly string[]).includes(values.arch)) {
    throw new UsageError(
      `--arch must be one of ${TINY_ARCHS.join(", ")}, got ${JSON.stringify(values.arch)}`,
    );
  }
  if (values.out === undefined || values.out === "") throw new UsageError("--out is required");
  if (!(HF_LAYOUTS as readonly string[]).includes(values.layout)) {
    throw new UsageError(
      `--layout must be one of ${HF_LAYOUTS.join(", ")}, got ${JSON.stringify(values.layout)}`,
    );
  }
  const arch = values.arch as TinyArch;
  const sizes = {
    layers: integer("layers", values.layers, 1),
    hidden: integer("hidden", values.hidden, 8),
  };
  try {
    tinyDims(arch, sizes);
  } catch (e) {
    throw new UsageError(e instanceof Error ? e.message : String(e));
  }
  const summary = await writeTinyModel(values.out, {
    arch,
    seed: integer("seed", values.seed, 0),
    ...sizes,
    force: values.force ?? false,
    layout: values.layout as HfLayout,
  });
  console.log(JSON.stringify({
    arch: summary.dims.arch,
    layout: values.layout,
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
  if (e instanceof UsageError) {
    console.error(`make-tiny: ${e.message}\n\n${USAGE}`);
    Deno.exit(2);
  }
  console.error(e instanceof Error ? e.message : String(e));
  Deno.exit(1);
}
