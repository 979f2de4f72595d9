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
import { parseArgs } from "node:util";
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

const CHECKS: Record<string, Check> = {
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

const USAGE = `usage: deno task fixtures (--editor DIR | --models DIR) [--device cpu|cuda:N]

Recomputes every tensor of a fixture directory and compares it with the stored reference
(bound ${FIXTURE_BOUND} relative per tensor); prints one JSON line per tensor, then a summary.

options:
  --editor DIR   an editor fixture directory (e.g. tests/fixtures/editor)
  --models DIR   a model fixture directory, or a directory of them (e.g. tests/fixtures/models)
  --device D     the device to compute on: cpu, cpu:N, cuda:N (default cpu)
  -h, --help     print this help`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        ...Object.fromEntries(Object.keys(CHECKS).map((k) => [k, { type: "string" as const }])),
        device: { type: "string", default: "cpu" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    console.error(`fixtures: ${e instanceof Error ? e.message : e}\n\n${USAGE}`);
    return 2;
  }
  const chosen = Object.keys(CHECKS).filter((k) =>
    typeof values[k as keyof typeof values] === "string"
  );
  if (values.help || chosen.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  let pass = true;
  for (const kind of chosen) {
    const dir = values[kind as keyof typeof values] as string;
    for (const report of await CHECKS[kind](dir, values.device as string)) {
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
