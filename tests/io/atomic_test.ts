import assert from "node:assert/strict";
import { writeFileAtomic, writeJsonAtomic } from "../../src/io/atomic.ts";
import { listDir, withTempDir } from "./_helpers.ts";

Deno.test("writeFileAtomic writes bytes, strings and streamed chunks", async () => {
  await withTempDir(async (dir) => {
    await writeFileAtomic(`${dir}/a.bin`, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...await Deno.readFile(`${dir}/a.bin`)], [1, 2, 3]);

    await writeFileAtomic(`${dir}/b.txt`, "héllo");
    assert.equal(await Deno.readTextFile(`${dir}/b.txt`), "héllo");

    const big = new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff);
    await writeFileAtomic(`${dir}/c.bin`, async (write) => {
      await write(big.subarray(0, 1000));
      await write(new Uint8Array(0));
      await write(big.subarray(1000));
    });
    assert.deepEqual(await Deno.readFile(`${dir}/c.bin`), big);
    assert.deepEqual(await listDir(dir), ["a.bin", "b.txt", "c.bin"]);
  });
});

Deno.test("writeFileAtomic replaces an existing file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/f.txt`;
    await Deno.writeTextFile(path, "old contents that are longer");
    await writeFileAtomic(path, "new");
    assert.equal(await Deno.readTextFile(path), "new");
    assert.deepEqual(await listDir(dir), ["f.txt"]);
  });
});

Deno.test("writeFileAtomic keeps the old file and removes the temp file when the writer throws", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/keep.bin`;
    await Deno.writeFile(path, new Uint8Array([9, 9, 9]));
    let sawTemp = false;
    await assert.rejects(
      writeFileAtomic(path, async (write) => {
        await write(new Uint8Array(1 << 16).fill(1));
        // The partial data went to a temporary file beside the target, not the target.
        sawTemp = (await listDir(dir)).some((n) => n !== "keep.bin" && n.includes("keep.bin"));
        throw new Error("disk on fire");
      }),
      (e: Error) => {
        assert.match(e.message, /keep\.bin/);
        assert.match(e.message, /disk on fire/);
        assert.equal((e.cause as Error).message, "disk on fire");
        return true;
      },
    );
    assert.ok(sawTemp, "the writer ran while a temp file existed");
    assert.deepEqual([...await Deno.readFile(path)], [9, 9, 9]);
    assert.deepEqual(await listDir(dir), ["keep.bin"]);
  });
});

Deno.test("writeFileAtomic names the target when its directory is missing", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/no/such/dir/x.bin`;
    await assert.rejects(writeFileAtomic(path, "x"), (e: Error) => e.message.includes(path));
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("writeFileAtomic rejects writes after the writer finished", async () => {
  await withTempDir(async (dir) => {
    let late: ((c: Uint8Array) => Promise<void>) | undefined;
    await writeFileAtomic(`${dir}/x.bin`, (write) => {
      late = write;
    });
    assert.ok(late);
    await assert.rejects(late(new Uint8Array([1])), /after the writer finished/);
    assert.equal((await Deno.readFile(`${dir}/x.bin`)).length, 0);
  });
});

Deno.test("writeJsonAtomic writes pretty JSON and refuses unserializable values", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/c.json`;
    await writeJsonAtomic(path, { a: [1, 2], b: "x" });
    const text = await Deno.readTextFile(path);
    assert.equal(text, '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}\n');

    await assert.rejects(writeJsonAtomic(path, { n: 1n }), (e: Error) => e.message.includes(path));
    await assert.rejects(writeJsonAtomic(path, undefined), /not JSON-serializable/);
    assert.equal(await Deno.readTextFile(path), text);
    assert.deepEqual(await listDir(dir), ["c.json"]);
  });
});
