/**
 * Child process of `crash_test.ts`: opens (or creates) the repository at `Deno.args[0]` with
 * the dims `Deno.args[1]` (JSON) and appends edits forever, printing each id on its own line
 * as soon as `append` has resolved (the edit is acknowledged). The parent kills it.
 *
 * @module
 */
import { ExpertRepository } from "../../../../src/editors/liveedit/repository/repository.ts";
import { makeEdit } from "./_helpers.ts";

const [dir, dimsJson] = Deno.args;
const dims = JSON.parse(dimsJson);
const repo = await ExpertRepository.open(dir, { init: { backbone: "crash-test", dims } });
const out = Deno.stdout;
for (;;) {
  const id = await repo.append(makeEdit(dims, repo.nextId));
  const line = new TextEncoder().encode(`${id}\n`);
  let done = 0;
  while (done < line.length) done += out.writeSync(line.subarray(done));
}
