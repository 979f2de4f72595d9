import assert from "node:assert/strict";
import { formatFlags, parseFlags } from "../../src/cli/flags.ts";

const SPECS = {
  n: { names: ["-n", "--count"], type: "int", help: "n" },
  rate: { names: ["-r", "--rate"], type: "float", help: "rate" },
  name: { names: ["-nm", "--name_of"], type: "string", help: "name" },
  dvc: { names: ["-dvc", "--device"], type: "list", help: "devices" },
  on: { names: ["--on"], type: "boolean", help: "on" },
  off: { names: ["--off"], type: "boolean", help: "off" },
  short: { names: ["-s"], type: "string", help: "short only" },
} as const;

Deno.test("formatFlags writes what parseFlags reads back, values that look like flags included", () => {
  const values = {
    n: -3,
    rate: 0.5,
    name: "-x y",
    dvc: ["cpu:0", "cpu:1"],
    on: true,
    off: false,
    short: "s",
  };
  const argv = formatFlags(SPECS, values);
  assert.deepEqual(argv, [
    "--count=-3",
    "--rate=0.5",
    "--name_of=-x y",
    "--device=cpu:0,cpu:1",
    "--on",
    "-s",
    "s",
  ]);
  const { off: _, ...set } = values;
  assert.deepEqual(parseFlags(SPECS, argv), set);
  assert.deepEqual(formatFlags(SPECS, {}), []);
  assert.throws(
    () => formatFlags(SPECS, { dvc: ["a,b"] }),
    /--device item "a,b" cannot be written/,
  );
  assert.throws(() => formatFlags(SPECS, { short: "-v" }), /-s has no long name to write -v/);
});
