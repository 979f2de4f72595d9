/**
 * `deno task fuzz`: seeded fuzzing of the inputs a user hands the library: safetensors files
 * (against an independent reference validator), E-VQA annotation files and PNG images (see
 * `tasks/fuzz/`). Every case must end in a correct read or in the project's own error naming
 * the file: no damaged file accepted, no other exception escaping, no hang. Prints one line per
 * format with the counts of each outcome, the bad cases (with how to rerun one), and exits
 * non-zero when there is any.
 *
 * @example
 * ```sh
 * deno task fuzz                                # 10 000 cases per format, seed 1
 * deno task fuzz --cases 500 --seed 7 --format png
 * deno task fuzz --format safetensors --case 1234  # one case again
 * ```
 *
 * @module
 */
import { HELP_FLAG, parseCommand } from "../src/cli/flags.ts";
import { Rng } from "../src/tensor/rng.ts";
import { EVQA_FORMAT } from "./fuzz/evqa.ts";
import { PNG_FORMAT } from "./fuzz/png.ts";
import { SAFETENSORS_FORMAT } from "./fuzz/safetensors.ts";
import type { FuzzFormat, Outcome } from "./fuzz/types.ts";

/** The formats, by name. */
export const FUZZ_FORMATS: Readonly<Record<string, FuzzFormat<unknown>>> = {
  safetensors: SAFETENSORS_FORMAT as FuzzFormat<unknown>,
  evqa: EVQA_FORMAT as FuzzFormat<unknown>,
  png: PNG_FORMAT as FuzzFormat<unknown>,
};

/** A case taking longer than this (milliseconds) counts as a hang. */
export const HANG_MS = 10_000;

/** The result of fuzzing one format. */
export interface FormatReport {
  /** The format. */
  readonly format: string;
  /** Cases run. */
  readonly cases: number;
  /** How many cases had each outcome. */
  readonly counts: Readonly<Record<Outcome["kind"], number>>;
  /** The outcome of each case, in order. */
  readonly outcomes: readonly Outcome["kind"][];
  /** The bad cases: index and outcome. */
  readonly bad: readonly (Outcome & { readonly index: number })[];
  /** The slowest case, in milliseconds. */
  readonly slowestMs: number;
}

/** Options of {@linkcode fuzzFormat}. */
export interface FuzzOptions {
  /** The seed; case `i` of a format always gets the same input for the same seed. */
  readonly seed: number;
  /** The cases to run: indices `first .. first + cases - 1`. */
  readonly cases: number;
  /** The first case (default 0). */
  readonly first?: number;
}

const BAD: readonly Outcome["kind"][] = ["accepted-invalid", "rejected-valid", "escaped", "hang"];

/** Runs `options.cases` seeded cases of `format` in a temporary directory. */
export async function fuzzFormat(
  format: FuzzFormat<unknown>,
  options: FuzzOptions,
): Promise<FormatReport> {
  const dir = await Deno.makeTempDir({ prefix: `liveedit-fuzz-${format.name}-` });
  const counts: Record<Outcome["kind"], number> = {
    accepted: 0,
    rejected: 0,
    "accepted-invalid": 0,
    "rejected-valid": 0,
    escaped: 0,
    hang: 0,
  };
  const bad: (Outcome & { index: number })[] = [];
  const outcomes: Outcome["kind"][] = [];
  let slowestMs = 0;
  try {
    const context = await format.setup(dir);
    const first = options.first ?? 0;
    for (let index = first; index < first + options.cases; index++) {
      const rng = new Rng(caseSeed(options.seed, format.name, index));
      const t0 = performance.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const hang = new Promise<Outcome>((resolve) => {
        timer = setTimeout(() => resolve({ kind: "hang", what: "(no answer)" }), HANG_MS);
      });
      let outcome = await Promise.race([
        format.run(context, rng, index).catch((error): Outcome => ({
          kind: "escaped",
          what: "(the harness)",
          detail: String(error),
        })),
        hang,
      ]);
      clearTimeout(timer);
      const ms = performance.now() - t0;
      slowestMs = Math.max(slowestMs, ms);
      if (ms > HANG_MS) outcome = { ...outcome, kind: "hang", detail: `${ms.toFixed(0)} ms` };
      counts[outcome.kind]++;
      outcomes.push(outcome.kind);
      if (BAD.includes(outcome.kind)) bad.push({ ...outcome, index });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  return { format: format.name, cases: options.cases, counts, outcomes, bad, slowestMs };
}

/** The seed of case `index` of `format`: FNV-1a of the three. */
function caseSeed(seed: number, format: string, index: number): number {
  let h = 0x811c9dc5;
  for (const c of `${seed}/${format}/${index}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h >>> 0;
}

/** One line of `report`. */
export function formatReport(r: FormatReport): string {
  const parts = Object.entries(r.counts).map(([k, v]) => `${k} ${v}`).join(", ");
  return `${r.format}: ${r.cases} cases: ${parts}; slowest ${r.slowestMs.toFixed(0)} ms`;
}

const SPEC = {
  name: "fuzz",
  usage: "deno task fuzz [--cases N] [--seed N] [--format F] [--case I]",
  description: "Seeded fuzzing of the inputs: safetensors files, E-VQA annotation files and PNG\n" +
    "images. Exits non-zero when any case is bad, printing how to rerun it.",
  flags: {
    cases: {
      names: ["--cases"],
      type: "int",
      default: 10_000,
      min: 1,
      metavar: "N",
      help: "cases per format",
    },
    seed: { names: ["--seed"], type: "int", default: 1, min: 0, metavar: "N", help: "the seed" },
    format: {
      names: ["--format"],
      type: "string",
      default: "all",
      choices: ["all", ...Object.keys(FUZZ_FORMATS)],
      metavar: "F",
      help: "the format to fuzz",
    },
    case: { names: ["--case"], type: "int", min: 0, metavar: "I", help: "run case I alone" },
    ...HELP_FLAG,
  },
} as const;

async function main(argv: string[]): Promise<number> {
  const flags = parseCommand(SPEC, argv, console.log, console.error);
  if (typeof flags === "number") return flags;
  const names = flags.format === "all" ? Object.keys(FUZZ_FORMATS) : [flags.format];
  let failed = 0;
  for (const name of names) {
    const report = await fuzzFormat(FUZZ_FORMATS[name], {
      seed: flags.seed,
      cases: flags.case === undefined ? flags.cases : 1,
      first: flags.case ?? 0,
    });
    console.log(formatReport(report));
    for (const b of report.bad) {
      console.log(`  BAD case ${b.index} (${b.kind}): ${b.what}: ${b.detail ?? ""}`);
      console.log(
        `    rerun: deno task fuzz --format ${name} --seed ${flags.seed} --case ${b.index}`,
      );
    }
    failed += report.bad.length;
  }
  return failed === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
