/**
 * Crash safety of the expert repository against a real SIGKILL: a child appends edits and
 * prints each acknowledged id; the parent kills it mid-stream and reopens.
 *
 * What is guaranteed: the child prints id k only after `append` resolved, i.e. after record k
 * was written and fsynced, and starts append k+1 only after printing k. So when the parent has
 * read ids 1..P, the file holds records 1..P intact, and possibly record P+1 (complete, if the
 * kill came after its write but before its id reached stdout; or torn, if the kill came during
 * its write). Nothing after P+1 can exist. Hence, after reopening: the ids are exactly 1..P or
 * 1..P+1, each with exactly the content written; a dropped torn tail implies 1..P; and the only
 * other warning is the child's stale lock.
 *
 * @module
 */
import assert from "node:assert/strict";
import { ExpertRepository } from "../../../../src/editors/liveedit/repository/repository.ts";
import { assertIsEdit, makeEdit, withTempDir } from "./_helpers.ts";

/** The paper's expert dims, so each record is ~160 KB and a kill can land inside a write. */
const PAPER = { e: 4, m: 1024, r: 4, d: 4096 };
const CHILD = new URL("./_crash_child.ts", import.meta.url).pathname;

/** Runs the child on `dir` until it has acknowledged `killAfter` edits, then SIGKILLs it. */
async function runAndKill(dir: string, killAfter: number, delayMs: number): Promise<number[]> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CHILD, dir, JSON.stringify(PAPER)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(child.stderr).text();
  const acked: number[] = [];
  let text = "", killed = false;
  for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
    text += chunk;
    const lines = text.split("\n");
    text = lines.pop()!;
    for (const line of lines) acked.push(Number(line));
    if (!killed && acked.length >= killAfter) {
      killed = true;
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      child.kill("SIGKILL");
    }
  }
  const status = await child.status;
  assert.ok(killed, `child exited before ${killAfter} edits: ${await stderr}`);
  assert.equal(status.signal, "SIGKILL");
  await stderr;
  return acked;
}

Deno.test("SIGKILL mid-stream: reopening finds exactly the acknowledged edits (+ at most one)", async () => {
  const plans = [[3, 0], [8, 1], [15, 0], [5, 2], [25, 0]];
  for (const [killAfter, delayMs] of plans) {
    await withTempDir(async (dir) => {
      const acked = await runAndKill(dir, killAfter, delayMs);
      const p = acked.length;
      assert.deepEqual(acked, Array.from({ length: p }, (_, i) => i + 1), "ids printed in order");
      const warnings: string[] = [];
      const repo = await ExpertRepository.open(dir, { onWarning: (w) => warnings.push(w) });
      const ids = repo.list().map((x) => x.id);
      const k = ids.length;
      assert.ok(k === p || k === p + 1, `found ${k} edits after ${p} acknowledged`);
      assert.deepEqual(ids, Array.from({ length: k }, (_, i) => i + 1));
      for await (const x of repo) assertIsEdit(x, PAPER, x.id);
      const torn = warnings.filter((w) => w.includes("dropped a torn or corrupt tail"));
      const stale = warnings.filter((w) => w.includes("removed a stale lock"));
      assert.equal(stale.length, 1, "the killed child's lock was stale");
      assert.equal(torn.length + stale.length, warnings.length, warnings.join("\n"));
      if (torn.length === 1) assert.equal(k, p, "a torn record is never an acknowledged one");
      assert.equal(await repo.append(makeEdit(PAPER, k + 1)), k + 1);
      await repo.close();
      const again = await ExpertRepository.open(dir, { onWarning: (w) => warnings.push(w) });
      assert.equal(again.size, k + 1);
      assertIsEdit(await again.get(k + 1), PAPER, k + 1);
      await again.close();
    });
  }
});
