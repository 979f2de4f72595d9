/**
 * `deno task fixtures --editor DIR | --models DIR`: recomputes a fixture directory with this
 * project's code and prints one JSON line per compared tensor (`{"case", "tensor",
 * "maxRelErr", …}` for the editor, `{"fixture", "tensor", "maxRelErr"}` for models) and a
 * closing summary per fixture (`{"case" | "fixture", "cases", "maxRelErr", "pass"}`). `--models`
 * takes one fixture directory or a directory of them. Exits 1 when a tensor is above the bound,
 * 2 on an error. Each fixture family is one entry of `CHECKS`.
 *
 * @module
 */
import { DEVICE_FLAG } from "../src/cli/common_flags.ts";
import { HELP_FLAG, parseCommand } from "../src/cli/flags.ts";
import { checkEditorFixture, FIXTURE_BOUND } from "../src/editors/liveedit/fixtures.ts";
import { checkModelFixtures } from "../src/models/fixtures/mod.ts";

/** One compared tensor, as printed. */
type Row = { readonly tensor: string; readonly maxRelErr: number };

/** The outcome of one fixture: its name fields, its rows and whether they pass. */
interface Report {
  readonly label: Readonly<Record<string, string>>;
  readonly rows: readonly Row[];
  readonly pass: boolean;
}

/** A fixture family: checks a directory and returns a report per fixture it holds. */
type Check = (dir: string, device: string) => Promise<Report[]>;

const CHECKS: Record<"editor" | "models", Check> = {
  editor: async (dir, device) => {
    const r = await checkEditorFixture(dir, { device });
    return [{ label: { case: r.case }, rows: r.rows, pass: r.pass }];
  },
  models: async (dir, device) =>
    (await checkModelFixtures(dir, { device })).map((r) => ({
      label: { fixture: r.fixture },
      rows: r.rows,
      pass: r.pass,
    })),
};

const SPEC = {
  name: "fixtures",
  usage: "deno task fixtures (--editor DIR | --models DIR) [--device cpu|cuda:N]",
  description: "Recomputes every tensor of a fixture directory and compares it with the stored " +
    `reference\n(bound ${FIXTURE_BOUND} relative per tensor); prints one JSON line per tensor, ` +
    "then a summary.",
  flags: {
    editor: {
      names: ["--editor"],
      type: "string",
      metavar: "DIR",
      help: "an editor fixture directory (e.g. tests/fixtures/editor)",
    },
    models: {
      names: ["--models"],
      type: "string",
      metavar: "DIR",
      help: "a model fixture directory, or a directory of them (e.g. tests/fixtures/models)",
    },
    ...DEVICE_FLAG,
    ...HELP_FLAG,
  },
} as const;

async function main(): Promise<number> {
  const flags = parseCommand(SPEC, Deno.args, console.log, console.error);
  if (typeof flags === "number") return flags;
  const chosen = (["editor", "models"] as const).filter((k) => flags[k] !== undefined);
  if (chosen.length === 0) {
    console.error(`error: pass --editor DIR or --models DIR\nusage: ${SPEC.usage}`);
    return 2;
  }
  let pass = true;
  for (const kind of chosen) {
    for (const report of await CHECKS[kind](flags[kind]!, flags.device)) {
      for (const r of report.rows) console.log(JSON.stringify(r));
      const maxRelErr = report.rows.reduce((m, r) => Math.max(m, r.maxRelErr), 0);
      console.log(JSON.stringify({
        ...report.label,
        cases: report.rows.length,
        maxRelErr,
        pass: report.pass,
      }));
      pass &&= report.pass;
    }
  }
  return pass ? 0 : 1;
}

try {
  Deno.exit(await main());
} catch (e) {
  console.error(`fixtures: ${e instanceof Error ? e.message : e}`);
  Deno.exit(2);
}
