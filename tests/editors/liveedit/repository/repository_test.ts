import assert from "node:assert/strict";
import { join } from "node:path";
import { ExpertRepository } from "../../../../src/editors/liveedit/repository/repository.ts";
import { RepositoryLockedError } from "../../../../src/editors/liveedit/repository/lock.ts";
import { sha256Hex } from "../../../../src/editors/liveedit/repository/types.ts";
import { Tensor } from "../../../../src/tensor/tensor.ts";
import { assertIsEdit, DIMS, INIT, makeEdit, withTempDir } from "./_helpers.ts";

/** Opens `dir`, collecting warnings instead of printing them. */
async function open(dir: string, init = false) {
  const warnings: string[] = [];
  const repo = await ExpertRepository.open(dir, {
    init: init ? INIT : undefined,
    onWarning: (w) => warnings.push(w),
  });
  return { repo, warnings };
}

async function fill(repo: ExpertRepository, seeds: number[]): Promise<number[]> {
  const ids: number[] = [];
  for (const s of seeds) ids.push(await repo.append(makeEdit(DIMS, s)));
  return ids;
}

const records = (dir: string) => join(dir, "records.log");

Deno.test("append assigns increasing ids; get, list, iteration and size survive reopen", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    assert.deepEqual(await fill(repo, [10, 11, 12]), [1, 2, 3]);
    assert.equal(repo.size, 3);
    await repo.close();
    const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
    assert.equal(manifest.format, "liveedit-expert-repository");
    assert.deepEqual(manifest.dims, DIMS);
    const { repo: again, warnings } = await open(dir);
    assert.deepEqual(warnings, []);
    assert.equal(again.size, 3);
    assert.deepEqual(again.list().map((x) => x.id), [1, 2, 3]);
    assert.ok(!Number.isNaN(Date.parse(again.list()[0].time)));
    assertIsEdit(await again.get(2), DIMS, 11);
    const seen: number[] = [];
    for await (const x of again) {
      assertIsEdit(x, DIMS, 9 + x.id);
      seen.push(x.id);
    }
    assert.deepEqual(seen, [1, 2, 3]);
    assert.equal(await again.append(makeEdit(DIMS, 13)), 4);
    const stacked = await again.stacked();
    assert.deepEqual(stacked.C.shape, [4, DIMS.r, DIMS.d]);
    assert.deepEqual([...stacked.C.data.subarray(DIMS.r * DIMS.d, 2 * DIMS.r * DIMS.d)], [
      ...makeEdit(DIMS, 11).C.data,
    ]);
    await again.close();
  });
});

Deno.test("undoAll undoes every live edit in one durable write; ids are not reused", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    await fill(repo, [1, 2, 3]);
    await repo.undo(2);
    const before = (await Deno.stat(records(dir))).size;
    assert.deepEqual(await repo.undoAll(), [1, 3]);
    assert.equal(repo.size, 0);
    const tombstones = (await Deno.stat(records(dir))).size - before;
    assert.deepEqual(await repo.undoAll(), [], "nothing left: nothing written");
    assert.equal((await Deno.stat(records(dir))).size - before, tombstones);
    await repo.close();
    const { repo: again, warnings } = await open(dir);
    assert.deepEqual(warnings, []);
    assert.equal(again.size, 0);
    assert.equal(await again.append(makeEdit(DIMS, 4)), 4);
    await again.close();
    const memory = ExpertRepository.memory(INIT);
    await fill(memory, [5, 6]);
    assert.deepEqual(await memory.undoAll(), [1, 2]);
    assert.equal(memory.size, 0);
    await memory.close();
  });
});

Deno.test("append rejects wrong shapes and requests, naming the tensor or field", async () => {
  const repo = ExpertRepository.memory(INIT);
  const edit = makeEdit(DIMS, 1);
  await assert.rejects(
    async () => await repo.append({ ...edit, C: new Tensor("f32", [3, 5], new Float32Array(15)) }),
    /edit: tensor C has shape \[3, 5\], expected \[2, 5\]/,
  );
  await assert.rejects(
    async () => await repo.append({ ...edit, request: { prompt: "p" } as never }),
    /request\.target must be a string/,
  );
  assert.equal(repo.size, 0);
  assert.equal(await repo.append(edit), 1);
});

Deno.test("sha256Hex hashes image bytes as node:crypto does", async () => {
  const bytes = new TextEncoder().encode("abc");
  assert.equal(
    await sha256Hex(bytes),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
});

Deno.test("undo removes exactly one expert, durably; unknown ids are clear errors", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    await fill(repo, [1, 2, 3]);
    await repo.undo(2);
    assert.deepEqual(repo.list().map((x) => x.id), [1, 3]);
    await assert.rejects(() => repo.get(2), /edit 2 was undone/);
    await assert.rejects(() => repo.undo(2), /records\.log: edit 2 was undone/);
    await assert.rejects(() => repo.undo(7), /no edit 7 \(ids so far: 1\.\.3\)/);
    await repo.close();
    const { repo: again } = await open(dir);
    assert.deepEqual(again.list().map((x) => x.id), [1, 3]);
    assertIsEdit(await again.get(3), DIMS, 3);
    assert.equal(await again.append(makeEdit(DIMS, 4)), 4, "ids are not reused");
    await again.close();
  });
});

Deno.test("compact keeps live experts and ids, drops tombstones, and never reuses ids", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    await fill(repo, [1, 2, 3, 4]);
    await repo.undo(2);
    await repo.undo(4);
    const before = (await Deno.stat(records(dir))).size;
    await repo.compact();
    assert.ok((await Deno.stat(records(dir))).size < before);
    assert.deepEqual(repo.list().map((x) => x.id), [1, 3]);
    assertIsEdit(await repo.get(3), DIMS, 3);
    assert.equal(await repo.append(makeEdit(DIMS, 5)), 5);
    await repo.close();
    const { repo: again, warnings } = await open(dir);
    assert.deepEqual(warnings, []);
    assert.deepEqual(again.list().map((x) => x.id), [1, 3, 5]);
    assertIsEdit(await again.get(5), DIMS, 5);
    await again.undo(5);
    await again.compact();
    await again.close();
    const { repo: third } = await open(dir);
    assert.equal(third.nextId, 6, "the next-id record keeps 5 from coming back");
    const leftovers = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
    assert.deepEqual(leftovers, ["lock", "manifest.json", "records.log"]);
    await third.close();
  });
});

Deno.test("export/import round trip: ids kept into a fresh repository, new ids otherwise", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(join(dir, "a"), true);
    await fill(repo, [1, 2, 3]);
    await repo.undo(1);
    await repo.export(join(dir, "experts.safetensors"));
    await repo.close();

    const fresh = ExpertRepository.memory(INIT);
    assert.deepEqual(await fresh.import(join(dir, "experts.safetensors")), [2, 3]);
    assertIsEdit(await fresh.get(3), DIMS, 3);
    assert.equal(await fresh.append(makeEdit(DIMS, 9)), 4);

    const { repo: used } = await open(join(dir, "b"), true);
    await fill(used, [7]);
    assert.deepEqual(await used.import(join(dir, "experts.safetensors")), [2, 3]);
    await used.close();
    const { repo: reopened } = await open(join(dir, "b"));
    assert.deepEqual(reopened.list().map((x) => [x.id, x.request.target]), [
      [1, "target 7"],
      [2, "target 2"],
      [3, "target 3"],
    ]);
    assertIsEdit(await reopened.get(3), DIMS, 3);
    await reopened.close();

    const other = ExpertRepository.memory({ backbone: "other", dims: DIMS });
    await assert.rejects(
      () => other.import(join(dir, "experts.safetensors")),
      /experts\.safetensors: experts were built with backbone "tiny-test", expected "other"/,
    );
  });
});

Deno.test("memory mode has the same interface and hands out copies", async () => {
  const repo = ExpertRepository.memory(INIT);
  assert.equal(repo.dir, undefined);
  await fill(repo, [1, 2]);
  const a = await repo.get(1);
  a.C.data[0] = 12345;
  assertIsEdit(await repo.get(1), DIMS, 1);
  await repo.undo(1);
  await repo.compact();
  assert.deepEqual(repo.list().map((x) => x.id), [2]);
  const stacked = await repo.stacked();
  assert.deepEqual(stacked.experts.map((x) => x.id), [2]);
  assert.deepEqual([...stacked.R.data], [...makeEdit(DIMS, 2).R.data]);
  await repo.close();
  await assert.rejects(
    async () => await repo.append(makeEdit(DIMS, 3)),
    /memory repository: repository is closed/,
  );
});

Deno.test("a second open of a locked repository fails; close releases the lock", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    const err = await open(dir).then(() => undefined, (e) => e);
    assert.ok(err instanceof RepositoryLockedError);
    assert.match(
      err.message,
      /lock: repository is locked by pid \d+ .*already open in this process/,
    );
    const child = await new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        `import { ExpertRepository } from ${
          JSON.stringify(
            new URL("../../../../src/editors/liveedit/repository/repository.ts", import.meta.url)
              .href,
          )
        };
         try { await ExpertRepository.open(${JSON.stringify(dir)}); console.log("opened"); }
         catch (e) { console.log(e.name + ": " + e.message); }`,
      ],
      stdout: "piped",
    }).output();
    assert.match(
      new TextDecoder().decode(child.stdout),
      /RepositoryLockedError: .*that process is running/,
    );
    await repo.close();
    const { repo: again } = await open(dir);
    await again.close();
  });
});

Deno.test("a stale lock of a dead process is broken with a warning", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    await repo.close();
    const dead = new Deno.Command(Deno.execPath(), { args: ["eval", ""] }).spawn();
    await dead.status;
    await Deno.writeTextFile(
      join(dir, "lock"),
      JSON.stringify({ pid: dead.pid, host: Deno.hostname(), since: "x", token: "t" }),
    );
    const { repo: again, warnings } = await open(dir);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], new RegExp(`removed a stale lock of pid ${dead.pid}`));
    await again.close();
    await Deno.writeTextFile(
      join(dir, "lock"),
      JSON.stringify({ pid: 1, host: "some-other-host", since: "x", token: "t" }),
    );
    await assert.rejects(() => open(dir), /cannot tell whether that process is running/);
  });
});

Deno.test("a torn or corrupt last record is dropped with a warning and truncated", async () => {
  for (const damage of ["flip", "truncate", "garbage"] as const) {
    await withTempDir(async (dir) => {
      const { repo } = await open(dir, true);
      await fill(repo, [1, 2, 3]);
      await repo.close();
      const bytes = await Deno.readFile(records(dir));
      const recordLength = bytes.length / 3;
      if (damage === "flip") bytes[bytes.length - 7] ^= 0x40;
      const damaged = damage === "truncate"
        ? bytes.subarray(0, bytes.length - 100)
        : damage === "garbage"
        ? new Uint8Array([...bytes, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17])
        : bytes;
      await Deno.writeFile(records(dir), damaged);
      const { repo: again, warnings } = await open(dir);
      const kept = damage === "garbage" ? 3 : 2;
      assert.equal(warnings.length, 1, damage);
      assert.match(
        warnings[0],
        new RegExp(
          `records\\.log: dropped a torn or corrupt tail of \\d+ bytes at byte offset ${
            kept * recordLength
          }`,
        ),
      );
      assert.deepEqual(again.warnings, warnings);
      assert.equal(again.size, kept);
      assert.equal((await Deno.stat(records(dir))).size, kept * recordLength, "truncated");
      const saved = warnings[0].match(/kept in (\S+)$/)![1];
      assert.deepEqual(await Deno.readFile(saved), damaged.subarray(kept * recordLength));
      assertIsEdit(await again.get(2), DIMS, 2);
      assert.equal(await again.append(makeEdit(DIMS, 40)), kept + 1);
      await again.close();
      const { repo: third, warnings: none } = await open(dir);
      assert.deepEqual(none, []);
      assert.equal(third.size, kept + 1);
      assertIsEdit(await third.get(kept + 1), DIMS, 40);
      await third.close();
    });
  }
});

Deno.test("corruption in the middle is an error naming the file and offset; nothing is dropped", async () => {
  await withTempDir(async (dir) => {
    const { repo } = await open(dir, true);
    await fill(repo, [1, 2, 3]);
    await repo.close();
    const bytes = await Deno.readFile(records(dir));
    const recordLength = bytes.length / 3;
    for (const at of [recordLength + 40, recordLength + 5]) {
      const damaged = bytes.slice();
      damaged[at] ^= 0x01;
      await Deno.writeFile(records(dir), damaged);
      await assert.rejects(
        () => open(dir),
        new RegExp(
          `records\\.log: corrupt record at byte offset ${recordLength} .* followed by a valid record at byte offset ${
            2 * recordLength
          }`,
        ),
      );
      assert.equal((await Deno.stat(records(dir))).size, bytes.length, "not truncated");
    }
    await Deno.writeFile(records(dir), bytes);
    const { repo: again } = await open(dir);
    assert.equal(again.size, 3, "the lock was released after the failed opens");
    await again.close();
  });
});

Deno.test("opening checks the manifest against init and refuses a missing repository", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(() => open(join(dir, "none")), /none: no such repository directory/);
    await Deno.mkdir(join(dir, "empty"));
    await assert.rejects(
      () => open(join(dir, "empty")),
      /manifest\.json: not found: .* is not an expert repository/,
    );
    const { repo } = await open(dir, true);
    await repo.close();
    await assert.rejects(
      () => ExpertRepository.open(dir, { init: { ...INIT, dims: { ...DIMS, d: 6 } } }),
      /manifest\.json: dims\.d is 5, but 6 was asked for/,
    );
    await Deno.remove(join(dir, "records.log"));
    await assert.rejects(() => open(dir), /records\.log: cannot open the record file/);
  });
});
