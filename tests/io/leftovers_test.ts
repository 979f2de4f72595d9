import assert from "node:assert/strict";
import { basename, join } from "node:path";
import { beginDir, removeDirLeftovers } from "../../src/io/atomic_dir.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";
import {
  ownerGone,
  ownerTag,
  processState,
  removeLeftovers,
  tempDirPrefix,
  tempFilePath,
} from "../../src/io/leftovers.ts";
import { listDir, withTempDir } from "./_helpers.ts";

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
  await child.status;
  return child.pid;
}

const HOST = () => ownerTag().split("-")[0];

Deno.test("processState: this process runs, an exited one is gone, another host's is unknown", async () => {
  assert.equal(processState(Deno.pid, HOST()), "running");
  assert.equal(processState(Deno.pid, Deno.hostname()), "running");
  if (Deno.build.os === "linux") assert.equal(processState(await deadPid(), HOST()), "gone");
  assert.equal(processState(1, "0000000z-other"), "unknown");
});

Deno.test("temporary names carry the owner; ownerGone reads it back", async () => {
  const file = basename(tempFilePath("/x/model.safetensors"));
  assert.match(file, new RegExp(`^\\.model\\.safetensors\\.${ownerTag()}\\.[0-9a-f]{8}\\.tmp$`));
  assert.equal(ownerGone(file), false);
  assert.equal(ownerGone(`${tempDirPrefix("sequential_edit_4")}abc123`), false);
  assert.equal(ownerGone(`${tempDirPrefix("sequential_edit_4")}abc123.old`), false);
  if (Deno.build.os === "linux") {
    const dead = `${HOST()}-${await deadPid()}`;
    assert.equal(ownerGone(`.model.safetensors.${dead}.0a1b2c3d.tmp`), true);
    assert.equal(ownerGone(`.sequential_edit_4.tmp-${dead}-abc123.old`), true);
  }
  // Names of older versions have no owner: their writer is taken to be gone.
  assert.equal(ownerGone(".model.safetensors.6f1c0e2a-1b2c-4d5e-8f90-a1b2c3d4e5f6.tmp"), true);
  assert.equal(ownerGone(".sequential_edit_4.tmp-AbC123"), true);
  // Another host's temporaries are kept.
  assert.equal(ownerGone(".model.safetensors.0badf00d-1.0a1b2c3d.tmp"), HOST() === "0badf00d");
});

Deno.test("removeLeftovers removes a dead writer's temporary file and keeps a live one's", async () => {
  await withTempDir(async (dir) => {
    const dead = `.a.json.${HOST()}-${await deadPid()}.0a1b2c3d.tmp`;
    const live = basename(tempFilePath(join(dir, "b.json")));
    for (const name of [dead, live, "c.json"]) await Deno.writeTextFile(join(dir, name), "x");
    const removed = await removeLeftovers(dir, (e) => e.name.endsWith(".tmp"));
    if (Deno.build.os === "linux") assert.deepEqual(removed, [join(dir, dead)]);
    assert.ok((await listDir(dir)).includes(live));
    assert.ok((await listDir(dir)).includes("c.json"));
    assert.deepEqual(await removeLeftovers(join(dir, "missing"), () => true), []);
    // An atomic write leaves no temporary behind.
    await writeFileAtomic(join(dir, "d.json"), "{}");
    assert.equal((await listDir(dir)).filter((n) => n.startsWith(".d.json")).length, 0);
  });
});

Deno.test("a directory killed mid-write or mid-replace is cleaned up by the next writer", async () => {
  if (Deno.build.os !== "linux") return;
  await withTempDir(async (root) => {
    const target = join(root, "sequential_edit_2");
    const dead = `${HOST()}-${await deadPid()}`;
    // Killed while writing: a half-written temporary directory.
    await Deno.mkdir(join(root, `.sequential_edit_2.tmp-${dead}-aaaaaa`, "edited_states"), {
      recursive: true,
    });
    // Killed between the two renames of a replacement: the old directory is only in .old.
    const old = join(root, `.sequential_edit_2.tmp-${dead}-bbbbbb.old`);
    await Deno.mkdir(old);
    await Deno.writeTextFile(join(old, "results.json"), "[1]");
    // Another directory's temporaries are not ours.
    await Deno.mkdir(join(root, `.sequential_edit_20.tmp-${dead}-cccccc`));
    const notes = await removeDirLeftovers(target);
    assert.equal(notes.length, 2, notes.join("\n"));
    assert.match(notes[0], /restored .*sequential_edit_2 from \.sequential_edit_2\.tmp-.*\.old/);
    assert.match(notes[1], /removed .*\.sequential_edit_2\.tmp-.*-aaaaaa, left by a killed run/);
    assert.equal(await Deno.readTextFile(join(target, "results.json")), "[1]");
    assert.deepEqual(await listDir(root), [
      `.sequential_edit_20.tmp-${dead}-cccccc`,
      "sequential_edit_2",
    ]);
    // The next write replaces the restored directory when asked to, and leaves nothing else.
    const pending = await beginDir(target, { replace: true });
    await Deno.writeTextFile(join(pending.tmp, "results.json"), "[2]");
    await pending.commit();
    assert.equal(await Deno.readTextFile(join(target, "results.json")), "[2]");
    const again = await beginDir(target);
    await assert.rejects(again.commit(), /sequential_edit_2 exists: it is not replaced/);
    await again.abort();
    assert.equal((await listDir(root)).length, 2);
  });
});
