/**
 * `deno task fixtures --editor DIR`: recomputes a fixture directory with this project's code
 * and prints one JSON line per compared tensor (`{"case", "tensor", "maxRelErr", …}`) and a
 * closing summary `{"case", "cases", "maxRelErr", "pass"}`. Exits 1 when a tensor is above
 * the bound, 2 on an error. Each fixture family is one entry of `CHECKS`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { checkEditorFixture, FIXTURE_BOUND } from "../src/editors/liveedit/fixtures.ts";

/** One compared tensor, as printed. */
interface Row {
  readonly case: string;
  readonly tensor: string;
  readonly maxRelErr: number;
}

/** A fixture family: checks a directory and returns its rows and whether they pass. */
type Check = (dir: string, device: string) => Promise<{ case: string; rows: Row[]; pass: boolean }>;

const CHECKS: Record<string, Check> = {
  editor: (dir, device) => checkEditorFixture(dir, { device }),
  models: () => Promise.reject(new Error("--models: not yet available")),
};

const USAGE = `usage: deno task fixtures (--editor DIR | --models DIR) [--device cpu|cuda:N]

Recomputes every tensor of a fixture directory and compares it with the stored reference
(bound ${FIXTURE_BOUND} relative per tensor); prints one JSON line per tensor, then a summary.`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      ...Object.fromEntries(Object.keys(CHECKS).map((k) => [k, { type: "string" as const }])),
      device: { type: "string", default: "cpu" },
      help: { type: "boolean", short: "h" },
    },
  });
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
    const report = await CHECKS[kind](dir, values.device as string);
    for (const r of report.rows) console.log(JSON.stringify(r));
    const maxRelErr = report.rows.reduce((m, r) => Math.max(m, r.maxRelErr), 0);
    console.log(JSON.stringify({
      case: report.case,
      cases: report.rows.length,
      maxRelErr,
      pass: report.pass,
    }));
    pass &&= report.pass;
  }
  return pass ? 0 : 1;
}

try {
  Deno.exit(await main());
} catch (e) {
  console.error(`fixtures: ${e instanceof Error ? e.message : e}`);
  Deno.exit(2);
}
