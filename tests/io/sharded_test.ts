import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { writeJsonAtomic } from "../../src/io/atomic.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.ts";
import { INDEX_FILE, openCheckpoint } from "../../src/io/sharded.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rawSafetensors, withTempDir } from "./_helpers.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

const vec = (...xs: number[]) => new Tensor("f32", [xs.length], new Float32Array(xs));
const SHARD1 = "model-00001-of-00002.safetensors";
const SHARD2 = "model-00002-of-00002.safetensors";

/** A two-shard checkpoint: a, b in shard 1; c (f16) in shard 2. */
async function writeSharded(dir: string, weightMap?: Record<string, string>): Promise<void> {
  await writeSafetensors(`${dir}/${SHARD1}`, { a: vec(1, 2), b: vec(3) });
  await writeSafetensors(`${dir}/${SHARD2}`, {
    c: new Tensor("f16", [2], new Uint16Array([0x3c00, 0x4000])),
  });
  await writeJsonAtomic(`${dir}/${INDEX_FILE}`, {
    metadata: { total_size: 16 },
    weight_map: weightMap ?? { a: SHARD1, b: SHARD1, c: SHARD2 },
  });
}

Deno.test("sharded checkpoint resolves names to shards and reads them", async () => {
  await withTempDir(async (dir) => {
    await writeSharded(dir);
    const ckpt = await openCheckpoint(dir);
    try {
      assert.equal(ckpt.indexPath, `${dir}/${INDEX_FILE}`);
      assert.deepEqual(ckpt.metadata, { total_size: 16 });
      assert.deepEqual(ckpt.listTensors(), ["a", "b", "c"]);
      assert.deepEqual(ckpt.shards, [`${dir}/${SHARD1}`, `${dir}/${SHARD2}`]);
      assert.ok(ckpt.has("c") && !ckpt.has("d"));
      assert.equal(ckpt.shardOf("c"), `${dir}/${SHARD2}`);
      assert.deepEqual([...(await ckpt.read("a")).data], [1, 2]);
      assert.deepEqual([...(await ckpt.readAs("c", "f32")).data], [1, 2]);

      const info = await ckpt.info("b");
      assert.equal(info.file, `${dir}/${SHARD1}`);
      // The absolute offset points at b's bytes in its shard.
      const bytes = await Deno.readFile(info.file);
      assert.equal(new DataView(bytes.buffer).getFloat32(info.fileOffset, true), 3);
      assert.equal(info.byteLength, 4);

      const all = await ckpt.tensors();
      assert.deepEqual(all.map((t) => [t.name, t.file]), [
        ["a", `${dir}/${SHARD1}`],
        ["b", `${dir}/${SHARD1}`],
        ["c", `${dir}/${SHARD2}`],
      ]);
      assert.deepEqual(all[2].shape, [2]);
      assert.equal(all[2].dtype, "f16");
    } finally {
      ckpt.close();
    }
    await assert.rejects(ckpt.read("a"), /read after close\(\)/);
  });
});

Deno.test("shards are opened lazily: a broken shard only fails the tensors in it", async () => {
  await withTempDir(async (dir) => {
    await writeSharded(dir);
    await Deno.writeFile(`${dir}/${SHARD2}`, new Uint8Array([1, 2, 3]));
    const ckpt = await openCheckpoint(dir);
    try {
      assert.deepEqual([...(await ckpt.read("b")).data], [3]);
      await assert.rejects(ckpt.read("c"), (e: Error) => {
        assert.ok(e.message.includes(`${dir}/${SHARD2}`), e.message);
        assert.match(e.message, /truncated/);
        return true;
      });
      // The failure is not cached: once the shard is repaired, it opens.
      await writeSafetensors(`${dir}/${SHARD2}`, { c: vec(7, 8) });
      assert.deepEqual([...(await ckpt.read("c")).data], [7, 8]);
    } finally {
      ckpt.close();
    }
  });
});

Deno.test("single model.safetensors, and paths to an index or a file, open too", async () => {
  await withTempDir(async (dir) => {
    await writeSafetensors(`${dir}/model.safetensors`, { x: vec(5), y: vec(6, 7) }, {
      format: "pt",
    });
    const ckpt = await openCheckpoint(dir);
    assert.equal(ckpt.indexPath, undefined);
    assert.deepEqual(ckpt.metadata, { format: "pt" });
    assert.deepEqual(ckpt.listTensors(), ["x", "y"]);
    assert.deepEqual(ckpt.shards, [`${dir}/model.safetensors`]);
    assert.equal((await ckpt.info("y")).file, `${dir}/model.safetensors`);
    assert.deepEqual([...(await ckpt.read("y")).data], [6, 7]);
    ckpt.close();

    const direct = await openCheckpoint(`${dir}/model.safetensors`);
    assert.deepEqual([...(await direct.read("x")).data], [5]);
    direct.close();

    const sub = `${dir}/sharded`;
    await Deno.mkdir(sub);
    await writeSharded(sub);
    const viaIndex = await openCheckpoint(`${sub}/${INDEX_FILE}`);
    assert.deepEqual([...(await viaIndex.read("a")).data], [1, 2]);
    viaIndex.close();
  });
});

Deno.test("the index is preferred over model.safetensors in the same directory", async () => {
  await withTempDir(async (dir) => {
    await writeSharded(dir);
    await writeSafetensors(`${dir}/model.safetensors`, { other: vec(0) });
    const ckpt = await openCheckpoint(dir);
    assert.deepEqual(ckpt.listTensors(), ["a", "b", "c"]);
    ckpt.close();
  });
});

Deno.test("checkpoint errors name the directory, index, shard and tensor", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(openCheckpoint(`${dir}/none`), /checkpoint .*\/none does not exist/);
    await assert.rejects(
      openCheckpoint(dir),
      new RegExp(`checkpoint directory ${dir} has neither ${INDEX_FILE} nor model.safetensors`),
    );

    // Missing shards are reported at open, all of them, with the directory.
    await writeJsonAtomic(`${dir}/${INDEX_FILE}`, {
      weight_map: { a: "gone-1.safetensors", b: "gone-2.safetensors" },
    });
    await assert.rejects(openCheckpoint(dir), (e: Error) => {
      assert.ok(e.message.includes(`${dir}/${INDEX_FILE}`), e.message);
      assert.match(e.message, /2 of 2 shard\(s\) missing from .*: gone-1\.safetensors, gone-2/);
      return true;
    });

    // Malformed indexes.
    const badIndex = async (index: unknown, pattern: RegExp) => {
      await Deno.writeTextFile(
        `${dir}/${INDEX_FILE}`,
        typeof index === "string" ? index : JSON.stringify(index),
      );
      await assert.rejects(openCheckpoint(dir), (e: Error) => {
        assert.ok(e.message.includes(INDEX_FILE), e.message);
        assert.match(e.message, pattern);
        return true;
      });
    };
    await badIndex("{oops", /cannot read it as JSON/);
    await badIndex([], /must be a JSON object/);
    await badIndex({ metadata: {} }, /"weight_map" must be an object/);
    await badIndex({ metadata: 3, weight_map: {} }, /"metadata" must be an object/);
    await badIndex({ weight_map: { w: 1 } }, /weight_map\["w"\] must be a shard file name/);
    await badIndex(
      { weight_map: { w: "../escape.safetensors" } },
      /weight_map\["w"\] = "\.\.\/escape\.safetensors" must name a file inside/,
    );
    await badIndex({ weight_map: { w: "/etc/passwd" } }, /must name a file inside/);
  });
});

Deno.test("a name in the index but absent from its shard is reported with both", async () => {
  await withTempDir(async (dir) => {
    await writeSharded(dir, { a: SHARD1, b: SHARD1, c: SHARD2, "model.d": SHARD2 });
    const ckpt = await openCheckpoint(dir);
    try {
      await assert.rejects(ckpt.read("model.d"), (e: Error) => {
        assert.ok(e.message.includes(`${dir}/${INDEX_FILE}`), e.message);
        assert.ok(e.message.includes(`${dir}/${SHARD2}`), e.message);
        assert.match(e.message, /tensor "model\.d" to shard "model-00002-of-00002/);
        return true;
      });
      await assert.rejects(ckpt.tensors(), /"model\.d"/);
      assert.throws(() => ckpt.shardOf("model.a"), (e: Error) => {
        assert.ok(e.message.includes(dir));
        assert.match(e.message, /no tensor "model\.a" among 4 \(did you mean "a"/);
        return true;
      });
      await assert.rejects(ckpt.info("zzz-unknown"), /no tensor "zzz-unknown"/);
    } finally {
      ckpt.close();
    }
  });
});

Deno.test("a shard that is not valid safetensors names the shard on first use", async () => {
  await withTempDir(async (dir) => {
    await writeSharded(dir);
    await Deno.writeFile(
      `${dir}/${SHARD1}`,
      rawSafetensors({ a: { dtype: "I8", shape: [1], data_offsets: [0, 1] } }, new Uint8Array(1)),
    );
    const ckpt = await openCheckpoint(dir);
    await assert.rejects(
      ckpt.read("a"),
      new RegExp(`${SHARD1}: tensor "a": unsupported dtype "I8"`),
    );
    ckpt.close();
  });
});

Deno.test("the OPT fixture directory opens as a single-file checkpoint", async () => {
  const dir = `${FIXTURES}models/opt`;
  const ckpt = await openCheckpoint(dir);
  try {
    const file = await SafetensorsFile.open(`${dir}/model.safetensors`);
    assert.equal(ckpt.listTensors().length, file.tensors().length);
    file.close();
    assert.ok(ckpt.listTensors().length > 0);
    const info = await ckpt.info("model.decoder.embed_tokens.weight");
    assert.deepEqual(info.shape, [128, 32]);
    assert.equal(info.file, `${dir}/model.safetensors`);
    assert.equal((await ckpt.read("model.decoder.embed_tokens.weight")).size, 128 * 32);
  } finally {
    ckpt.close();
  }
});
