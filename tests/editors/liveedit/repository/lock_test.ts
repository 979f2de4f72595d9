import assert from "node:assert/strict";
import { join } from "node:path";
import {
  acquireLock,
  LOCK_FILE,
  RepositoryLockedError,
} from "../../../../src/editors/liveedit/repository/lock.ts";
import { hostName, ownerTag } from "../../../../src/io/leftovers.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-lock-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
  await child.status;
  return child.pid;
}

Deno.test("the lock is complete JSON the moment it exists, and no temporary file stays", async () => {
  await withDir(async (dir) => {
    const lock = await acquireLock(dir, () => {});
    const owner = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
    assert.equal(owner.pid, Deno.pid);
    assert.equal(owner.token, lock.owner.token);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [LOCK_FILE]);
    await assert.rejects(acquireLock(dir, () => {}), RepositoryLockedError);
    await lock.release();
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});

Deno.test("an empty or unreadable lock (an older version killed while taking it) is stale", async () => {
  for (const contents of ["", '{"pid": 12', "not json at all"]) {
    await withDir(async (dir) => {
      await Deno.writeTextFile(join(dir, LOCK_FILE), contents);
      const warnings: string[] = [];
      const lock = await acquireLock(dir, (w) => warnings.push(w));
      assert.equal(warnings.length, 1, JSON.stringify(contents));
      assert.match(warnings[0], /lock: removed an empty or unreadable lock/);
      assert.equal(JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE))).pid, Deno.pid);
      await lock.release();
    });
  }
});

Deno.test("temporary lock files of killed processes are removed; a live one's are kept", async () => {
  await withDir(async (dir) => {
    const host = ownerTag().split("-")[0];
    const dead = `.lock.${host}-${await deadPid()}.0a1b2c3d.tmp`;
    const live = `.lock.${ownerTag()}.99999999.tmp`;
    await Deno.writeTextFile(join(dir, dead), "");
    await Deno.writeTextFile(join(dir, live), "");
    const lock = await acquireLock(dir, () => {});
    const names = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(names, [live, LOCK_FILE].sort());
    await lock.release();
  });
});

Deno.test("a stale lock moved aside by a process killed before removing it is removed by the next taker", async () => {
  await withDir(async (dir) => {
    const dead = await deadPid();
    const stale = { pid: dead, host: hostName(), since: "2020-01-01T00:00:00Z", token: "t" };
    await Deno.writeTextFile(join(dir, LOCK_FILE), JSON.stringify(stale));
    // the kill: the stale lock, once moved aside, is never removed
    const remove = Deno.remove;
    const isStale = (path: string | URL) => {
      try {
        return !String(path).endsWith(LOCK_FILE) && Deno.readTextFileSync(path).includes('"t"');
      } catch {
        return false;
      }
    };
    Deno.remove = (path, options) => isStale(path) ? Promise.resolve() : remove(path, options);
    let lock;
    try {
      lock = await acquireLock(dir, () => {});
    } finally {
      Deno.remove = remove;
    }
    await lock.release();
    const [aside, ...more] = [...Deno.readDirSync(dir)].map((e) => e.name);
    assert.deepEqual(more, []);
    assert.match(aside, new RegExp(`^\\.lock\\.${ownerTag()}\\.[0-9a-z]+\\.tmp$`));
    assert.equal(JSON.parse(await Deno.readTextFile(join(dir, aside))).pid, dead);
    // as left by the dead process, and by an older version (lock.stale-<uuid>)
    await Deno.rename(
      join(dir, aside),
      join(dir, aside.replace(ownerTag(), `${ownerTag().split("-")[0]}-${dead}`)),
    );
    await Deno.writeTextFile(join(dir, `${LOCK_FILE}.stale-${crypto.randomUUID()}`), "{}");
    const again = await acquireLock(dir, () => {});
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [LOCK_FILE]);
    await again.release();
  });
});
