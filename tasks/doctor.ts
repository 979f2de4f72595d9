/**
 * `deno task doctor [--device D]`: checks every op of the graph builder on a device, forward
 * against the host reference and gradients against finite differences, printing one line per
 * case and a closing JSON line. Exits non-zero on any mismatch.
 *
 * @module
 */
import { DEVICE_FLAG } from "../src/cli/common_flags.ts";
import { HELP_FLAG, parseCommand } from "../src/cli/flags.ts";
import { CASES } from "../src/graph/check/cases.ts";
import { formatResult, summarize } from "../src/graph/check/report.ts";
import { checkCase, type CheckResult } from "../src/graph/check/run.ts";
import { DeviceWorker } from "../src/runtime/device_worker.ts";

const SPEC = {
  name: "doctor",
  usage: "deno task doctor [--device cpu|cpu:N|cuda:N|webgpu]",
  description:
    "Checks each op's forward against a host reference and each gradient against central finite\n" +
    "differences (float64; float32 where the device has no float64 kernel), then prints\n" +
    '{"device", "ops", "maxForwardRelErr", "maxGradRelErr", ...} as the last line.',
  flags: { ...DEVICE_FLAG, ...HELP_FLAG },
} as const;

async function main(): Promise<number> {
  const flags = parseCommand(SPEC, Deno.args, console.log, console.error);
  if (typeof flags === "number") return flags;
  const device = await DeviceWorker.open(flags.device);
  const results: CheckResult[] = [];
  try {
    for (const c of CASES) {
      const r = await checkCase(c, device).catch((e) => {
        console.log(`FAIL ${c.name}: ${e instanceof Error ? e.message : e}`);
        return {
          name: c.name,
          ops: c.ops,
          dtype: c.dtype,
          forwardRelErr: NaN,
          gradRelErr: NaN,
          pass: false,
        };
      });
      if (Number.isFinite(r.forwardRelErr)) console.log(formatResult(r));
      results.push(r);
    }
  } finally {
    device.close();
  }
  const summary = summarize(flags.device, results);
  console.log(JSON.stringify(summary));
  return summary.pass ? 0 : 1;
}

try {
  Deno.exit(await main());
} catch (e) {
  console.error(`doctor: ${e instanceof Error ? e.message : e}`);
  Deno.exit(2);
}
