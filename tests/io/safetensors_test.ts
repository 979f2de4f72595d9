import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { SafetensorsError, SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.ts";
import { DTYPE_BYTES } from "../../src/tensor/dtype.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { leBytes, listDir, rawSafetensors, withTempDir } from "./_helpers.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

/** One tensor of every dtype, with edge values (f16/bf16 as raw bits: NaN, Inf, subnormal). */
function allDtypes(): Record<string, Tensor> {
  return {
    f32: new Tensor("f32", [2, 3], new Float32Array([1.5, -0, Infinity, -1e-40, 3.25, NaN])),
    f64: new Tensor("f64", [3], new Float64Array([Math.PI, -Number.MAX_VALUE, 5e-324])),
    f16: new Tensor("f16", [2, 2], new Uint16Array([0x3c00, 0x7e00, 0xfc00, 0x0001])),
    bf16: new Tensor("bf16", [3], new Uint16Array([0x3f80, 0x7fc0, 0x8001])),
    i64: new Tensor("i64", [2], new BigInt64Array([-(2n ** 63n), 2n ** 62n + 7n])),
    i32: new Tensor("i32", [1, 2], new Int32Array([-(2 ** 31), 2 ** 31 - 1])),
    u8: new Tensor("u8", [4], new Uint8Array([0, 1, 128, 255])),
    bool: new Tensor("bool", [3], new Uint8Array([1, 0, 1])),
    scalar: new Tensor("f32", [], new Float32Array([42])),
    empty: new Tensor("i32", [0, 5], new Int32Array(0)),
  };
}

function bitsOf(t: Tensor): Uint8Array {
  return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
}

Deno.test("round trip of every dtype, bit-exact, with metadata", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/all.safetensors`;
    const tensors = allDtypes();
    await writeSafetensors(path, tensors, { format: "pt", note: "ünïcode" });
    const file = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(file.metadata, { format: "pt", note: "ünïcode" });
      assert.equal(file.tensors().length, Object.keys(tensors).length);
      for (const [name, t] of Object.entries(tensors)) {
        const got = await file.read(name);
        assert.equal(got.dtype, t.dtype, name);
        assert.deepEqual(got.shape, t.shape, name);
        assert.deepEqual(bitsOf(got), bitsOf(t), name);
        const info = file.info(name);
        assert.equal(info.byteLength, t.data.byteLength);
        assert.equal(info.fileOffset, 8 + file.headerLength + info.dataOffsets[0]);
        assert.equal(info.fileOffset % DTYPE_BYTES[t.dtype], 0, `${name} is aligned`);
      }
    } finally {
      file.close();
    }
    assert.deepEqual(await listDir(dir), ["all.safetensors"]);
  });
});

Deno.test("writer output matches the spec when parsed by hand", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/w.safetensors`;
    const tensors = allDtypes();
    await writeSafetensors(path, tensors, { k: "v" });
    const bytes = await Deno.readFile(path);
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    assert.equal((8 + n) % 8, 0, "data section starts at a multiple of 8");
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    assert.match(text, /^\{.*\} *$/s, "header is JSON padded with spaces");
    const header = JSON.parse(text);
    assert.deepEqual(header.__metadata__, { k: "v" });
    const names: Record<string, string> = {
      f32: "F32",
      f64: "F64",
      f16: "F16",
      bf16: "BF16",
      i64: "I64",
      i32: "I32",
      u8: "U8",
      bool: "BOOL",
    };
    let end = 0;
    const order = Object.keys(header).filter((k) => k !== "__metadata__");
    for (const name of order) {
      const t = tensors[name];
      const e = header[name];
      assert.equal(e.dtype, names[t.dtype]);
      assert.deepEqual(e.shape, [...t.shape]);
      assert.equal(e.data_offsets[0], end, "tensors are contiguous in header order");
      end = e.data_offsets[1];
      const at = 8 + n + e.data_offsets[0];
      assert.deepEqual(bytes.subarray(at, 8 + n + end), bitsOf(t), name);
    }
    assert.equal(8 + n + end, bytes.length);
    // Documented order: element size descending, then name.
    assert.deepEqual(order, [
      "f64",
      "i64",
      "empty",
      "f32",
      "i32",
      "scalar",
      "bf16",
      "f16",
      "bool",
      "u8",
    ]);
  });
});

Deno.test("writer stores bool as 0/1 bytes", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/b.safetensors`;
    await writeSafetensors(path, { b: new Tensor("bool", [3], new Uint8Array([0, 7, 255])) });
    const file = await SafetensorsFile.open(path);
    assert.deepEqual([...(await file.read("b")).data], [0, 1, 1]);
    file.close();
  });
});

Deno.test("writer rejects the reserved name, non-tensors and non-string metadata", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/x.safetensors`;
    const t = new Tensor("u8", [1], new Uint8Array([1]));
    await assert.rejects(writeSafetensors(path, { __metadata__: t }), /__metadata__ is reserved/);
    await assert.rejects(
      writeSafetensors(path, { w: [1, 2] as unknown as Tensor }),
      /x\.safetensors: tensor "w": value is not a Tensor/,
    );
    await assert.rejects(
      writeSafetensors(path, { t }, { n: 3 as unknown as string }),
      /metadata\["n"\] must be a string/,
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("reads a hand-written file in the spec's format", async () => {
  await withTempDir(async (dir) => {
    const header = {
      __metadata__: { source: "hand" },
      "w.f32": { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] },
      "ids": { dtype: "I64", shape: [2], data_offsets: [16, 32] },
      "h": { dtype: "F16", shape: [4], data_offsets: [32, 40] },
      "b16": { dtype: "BF16", shape: [2], data_offsets: [40, 44] },
      "mask": { dtype: "BOOL", shape: [2], data_offsets: [44, 46] },
      "raw": { dtype: "U8", shape: [2], data_offsets: [46, 48] },
      "d": { dtype: "F64", shape: [1], data_offsets: [48, 56] },
      "i": { dtype: "I32", shape: [1, 1], data_offsets: [56, 60] },
    };
    const data = leBytes(60, (v) => {
      [1, -2, 0.5, 1024].forEach((x, k) => v.setFloat32(4 * k, x, true));
      v.setBigInt64(16, -5n, true);
      v.setBigInt64(24, 1n << 40n, true);
      [0x3c00, 0xc000, 0x0001, 0x7bff].forEach((x, k) => v.setUint16(32 + 2 * k, x, true));
      v.setUint16(40, 0x3f80, true);
      v.setUint16(42, 0x4049, true);
      v.setUint8(44, 1);
      v.setUint8(46, 200);
      v.setUint8(47, 3);
      v.setFloat64(48, -0.125, true);
      v.setInt32(56, -77, true);
    });
    // No padding and a multi-byte prefix length: unaligned data must still read correctly.
    const path = `${dir}/hand.safetensors`;
    await Deno.writeFile(path, rawSafetensors(header, data));
    const file = await SafetensorsFile.open(path);
    try {
      assert.deepEqual(file.metadata, { source: "hand" });
      assert.deepEqual(
        file.tensors().map((t) => t.name),
        ["w.f32", "ids", "h", "b16", "mask", "raw", "d", "i"],
      );
      assert.deepEqual([...(await file.read("w.f32")).data], [1, -2, 0.5, 1024]);
      assert.deepEqual((await file.read("w.f32")).shape, [2, 2]);
      assert.deepEqual([...(await file.read("ids")).data], [-5n, 1n << 40n]);
      assert.deepEqual([...(await file.read("h")).data], [0x3c00, 0xc000, 0x0001, 0x7bff]);
      assert.deepEqual([...(await file.readAs("h", "f32")).data], [1, -2, 2 ** -24, 65504]);
      assert.deepEqual([...(await file.readAs("b16", "f32")).data], [1, 3.140625]);
      assert.deepEqual([...(await file.read("mask")).data], [1, 0]);
      assert.equal((await file.read("mask")).dtype, "bool");
      assert.deepEqual([...(await file.read("raw")).data], [200, 3]);
      assert.deepEqual([...(await file.readAs("d", "f32")).data], [-0.125]);
      assert.deepEqual([...(await file.read("i")).data], [-77]);
      const h = file.info("h");
      assert.deepEqual(h.dataOffsets, [32, 40]);
      assert.equal(h.fileOffset, 8 + file.headerLength + 32);
      await assert.rejects(file.readAs("ids", "f32"), /tensor "ids": .*float tensors only/);
    } finally {
      file.close();
    }
  });
});

Deno.test("readAs f32 decodes f16 and bf16 like Float16Array and the bf16 definition", async () => {
  await withTempDir(async (dir) => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const path = `${dir}/half.safetensors`;
    await writeSafetensors(path, {
      h: new Tensor("f16", [65536], all),
      b: new Tensor("bf16", [65536], all),
    });
    const file = await SafetensorsFile.open(path);
    const h = await file.readAs("h", "f32");
    const b = await file.readAs("b", "f32");
    file.close();
    const ref16 = new Float16Array(all.buffer);
    const ref32 = new Float32Array(new Uint32Array(all).map((x) => x << 16).buffer);
    for (let i = 0; i < 65536; i++) {
      assert.ok(
        Object.is(h.data[i], ref16[i]) || (isNaN(h.data[i]) && isNaN(ref16[i])),
        `f16 ${i}`,
      );
      assert.ok(
        Object.is(b.data[i], ref32[i]) || (isNaN(b.data[i]) && isNaN(ref32[i])),
        `bf16 ${i}`,
      );
    }
  });
});

/** Writes `bytes` as `bad.safetensors` and expects open (or read) to fail naming it. */
async function expectBad(
  dir: string,
  bytes: Uint8Array,
  pattern: RegExp,
  tensor?: string,
  readName?: string,
): Promise<void> {
  const path = `${dir}/bad.safetensors`;
  await Deno.writeFile(path, bytes);
  const attempt = async () => {
    const file = await SafetensorsFile.open(path);
    try {
      if (readName !== undefined) await file.read(readName);
    } finally {
      file.close();
    }
  };
  await assert.rejects(attempt, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, String(e));
    assert.equal(e.file, path);
    assert.ok(e.message.startsWith(path), e.message);
    assert.equal(e.tensor, tensor, e.message);
    if (tensor !== undefined) assert.ok(e.message.includes(`"${tensor}"`), e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

const F32_2x2 = { dtype: "F32", shape: [2, 2], data_offsets: [0, 16] };

Deno.test("bad files: truncation and lying header lengths", async () => {
  await withTempDir(async (dir) => {
    await expectBad(dir, new Uint8Array([1, 0, 0]), /truncated: the file is 3 bytes/);
    await expectBad(dir, new Uint8Array(0), /truncated: the file is 0 bytes/);
    await expectBad(
      dir,
      rawSafetensors({ a: F32_2x2 }, new Uint8Array(16), 2n ** 40n),
      /header length 1099511627776 is beyond the 100000000-byte limit/,
    );
    await expectBad(
      dir,
      rawSafetensors({ a: F32_2x2 }, new Uint8Array(16), 5000n),
      /header length 5000 runs past the end of the file/,
    );
    // The header length is too short: the JSON is cut off.
    await expectBad(dir, rawSafetensors({ a: F32_2x2 }, new Uint8Array(16), 10n), /not valid JSON/);
    // A file cut inside the data section.
    const whole = rawSafetensors({ a: F32_2x2 }, new Uint8Array(16));
    await expectBad(
      dir,
      whole.subarray(0, whole.length - 4),
      /data_offsets \[0, 16\] run past the end of the file: the data section is only 12 bytes/,
      "a",
    );
  });
});

Deno.test("bad files: header syntax and structure", async () => {
  await withTempDir(async (dir) => {
    await expectBad(dir, rawSafetensors("{not json"), /header is not valid JSON/);
    await expectBad(dir, rawSafetensors(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid UTF-8/);
    await expectBad(dir, rawSafetensors("[1, 2]"), /header must be a JSON object, got an array/);
    await expectBad(dir, rawSafetensors("null"), /header must be a JSON object, got null/);
    await expectBad(dir, rawSafetensors({ a: 3 }), /entry must be an object, got number 3/, "a");
    await expectBad(
      dir,
      rawSafetensors({ a: { ...F32_2x2, extra: 1 } }, new Uint8Array(16)),
      /unknown field "extra"/,
      "a",
    );
    await expectBad(
      dir,
      rawSafetensors({ __metadata__: { x: 1 } }),
      /__metadata__\["x"\] must be a string, got number 1/,
    );
    await expectBad(
      dir,
      rawSafetensors({ __metadata__: ["x"] }),
      /__metadata__ must be an object of strings, got an array/,
    );
  });
});

Deno.test("bad files: dtype, shape and offsets name the tensor", async () => {
  await withTempDir(async (dir) => {
    const data = new Uint8Array(32);
    const one = (entry: Record<string, unknown>) => rawSafetensors({ "w.q": entry }, data);
    await expectBad(
      dir,
      one({ ...F32_2x2, dtype: "I8" }),
      /unsupported dtype "I8" \(supported: F64, F32, F16, BF16, I64, I32, U8, BOOL\)/,
      "w.q",
    );
    await expectBad(dir, one({ ...F32_2x2, dtype: "Q7" }), /unsupported dtype "Q7"/, "w.q");
    await expectBad(dir, one({ ...F32_2x2, dtype: 4 }), /dtype must be a string/, "w.q");
    await expectBad(dir, one({ ...F32_2x2, shape: [2, -2] }), /shape must be an array/, "w.q");
    await expectBad(dir, one({ ...F32_2x2, shape: "2x2" }), /shape must be an array/, "w.q");
    for (const bad of [[0], [0, 16, 32], ["0", 16], [0.5, 16], [-4, 12], null]) {
      await expectBad(
        dir,
        one({ ...F32_2x2, data_offsets: bad }),
        /data_offsets must be \[begin, end\] with integers >= 0/,
        "w.q",
      );
    }
    await expectBad(
      dir,
      one({ ...F32_2x2, data_offsets: [16, 0] }),
      /data_offsets \[16, 0\] end before they begin/,
      "w.q",
    );
    await expectBad(
      dir,
      one({ ...F32_2x2, data_offsets: [0, 12] }),
      /hold 12 bytes but F32 shape \[2, 2\] needs 16/,
      "w.q",
    );
    await expectBad(
      dir,
      one({ dtype: "BF16", shape: [3], data_offsets: [0, 8] }),
      /hold 8 bytes but BF16 shape \[3\] needs 6/,
      "w.q",
    );
    await expectBad(
      dir,
      one({ ...F32_2x2, data_offsets: [24, 40] }),
      /run past the end of the file: the data section is only 32 bytes/,
      "w.q",
    );
    await expectBad(
      dir,
      one({ dtype: "F32", shape: [2 ** 40, 2 ** 20], data_offsets: [0, 16] }),
      /too large/,
      "w.q",
    );
  });
});

Deno.test("bad files: overlapping tensors are reported whatever their header order", async () => {
  await withTempDir(async (dir) => {
    const data = new Uint8Array(32);
    await expectBad(
      dir,
      rawSafetensors({
        late: { dtype: "F32", shape: [4], data_offsets: [8, 24] },
        early: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      }, data),
      /data_offsets \[8, 24\] overlap tensor "early" at \[0, 16\]/,
      "late",
    );
    // An empty tensor inside another one's range overlaps it too.
    await expectBad(
      dir,
      rawSafetensors({
        a: { dtype: "U8", shape: [16], data_offsets: [0, 16] },
        z: { dtype: "U8", shape: [0], data_offsets: [4, 4] },
      }, data),
      /overlap tensor "a"/,
      "z",
    );
  });
});

Deno.test("bad files: the tensors must tile the data section exactly", async () => {
  await withTempDir(async (dir) => {
    const f32 = (begin: number) => ({ dtype: "F32", shape: [2], data_offsets: [begin, begin + 8] });
    // A valid two-tensor file, for reference.
    const good = rawSafetensors({ a: f32(0), b: f32(8) }, new Uint8Array(16));
    await Deno.writeFile(`${dir}/good.safetensors`, good);
    (await SafetensorsFile.open(`${dir}/good.safetensors`)).close();
    // 4 bytes appended after the last tensor.
    await expectBad(
      dir,
      rawSafetensors({ a: f32(0), b: f32(8) }, new Uint8Array(20)),
      /4 extra bytes: the data section is 20 bytes but the tensors end at byte 16 \(bytes \[16, 20\)/,
    );
    // 4 bytes inserted between the tensors (offsets rewritten to step over them): a hole.
    await expectBad(
      dir,
      rawSafetensors({ a: f32(0), b: f32(12) }, new Uint8Array(20)),
      /data_offsets \[12, 20\] leave a hole: data bytes \[8, 12\) after tensor "a" belong to no tensor/,
      "b",
    );
    // 4 bytes inserted into the data, header unchanged: extra bytes at the end.
    const inserted = new Uint8Array(good.length + 4);
    const split = good.length - 10;
    inserted.set(good.subarray(0, split));
    inserted.set([9, 9, 9, 9], split);
    inserted.set(good.subarray(split), split + 4);
    await expectBad(dir, inserted, /4 extra bytes/);
    // A hole before the first tensor.
    await expectBad(
      dir,
      rawSafetensors({ a: f32(4) }, new Uint8Array(12)),
      /leave a hole: data bytes \[0, 4\) after the start of the data section/,
      "a",
    );
    // No tensors, but data.
    await expectBad(
      dir,
      rawSafetensors({ __metadata__: { k: "v" } }, new Uint8Array(8)),
      /the header has no tensors but 8 data bytes follow it/,
    );
    // No tensors and no data is a valid (empty) file; so is an empty tensor where the tiling is.
    await Deno.writeFile(`${dir}/empty.safetensors`, rawSafetensors({}));
    const empty = await SafetensorsFile.open(`${dir}/empty.safetensors`);
    assert.equal(empty.tensors().length, 0);
    empty.close();
    await Deno.writeFile(
      `${dir}/z.safetensors`,
      rawSafetensors(
        { a: f32(0), z: { dtype: "U8", shape: [0], data_offsets: [8, 8] } },
        new Uint8Array(8),
      ),
    );
    const z = await SafetensorsFile.open(`${dir}/z.safetensors`);
    assert.deepEqual(z.tensors().map((t) => t.name), ["a", "z"]);
    z.close();
  });
});

Deno.test("bad files: a tensor name given twice is named as a duplicate, not as a hole", async () => {
  await withTempDir(async (dir) => {
    const f32 = (begin: number) =>
      `{"dtype":"F32","shape":[2],"data_offsets":[${begin},${begin + 8}]}`;
    // JSON keeps the second "a": bytes [0, 8) belong to no tensor
    await expectBad(
      dir,
      rawSafetensors(
        `{"__metadata__":{"k\\"}":"v"},"a":${f32(0)}, "b" :${f32(16)},\n"a"\t:${f32(8)}}`,
        new Uint8Array(24),
      ),
      /: tensor "a": duplicate tensor name: the header names it twice/,
      "a",
    );
    // a name repeated inside an entry or in the metadata is not a tensor name
    await expectBad(
      dir,
      rawSafetensors(
        `{"__metadata__":{"a":"x"},"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`,
        new Uint8Array(12),
      ),
      /leave a hole/,
      "a",
    );
  });
});

Deno.test("bad files: BOOL bytes other than 0/1 fail on read, naming the tensor", async () => {
  await withTempDir(async (dir) => {
    const bytes = rawSafetensors(
      { m: { dtype: "BOOL", shape: [3], data_offsets: [0, 3] } },
      new Uint8Array([1, 0, 2]),
    );
    await expectBad(dir, bytes, /BOOL element 2 is byte 2/, "m", "m");
  });
});

Deno.test("open errors name a missing file; info suggests close names", async () => {
  await withTempDir(async (dir) => {
    const missing = `${dir}/nope.safetensors`;
    await assert.rejects(SafetensorsFile.open(missing), (e: Error) => {
      assert.ok(e instanceof SafetensorsError);
      assert.match(e.message, /nope\.safetensors: cannot open/);
      return true;
    });
    await assert.rejects(SafetensorsFile.open(dir), /not a regular file/);

    const path = `${dir}/m.safetensors`;
    const z = (n: number) => new Tensor("f32", [n], new Float32Array(n));
    await writeSafetensors(path, {
      "model.layers.0.weight": z(1),
      "model.layers.0.bias": z(1),
      "other": z(2),
    });
    const file = await SafetensorsFile.open(path);
    assert.ok(file.has("other"));
    assert.ok(!file.has("othr"));
    assert.throws(
      () => file.info("layers.0.weight"),
      /m\.safetensors: tensor "layers\.0\.weight": no such tensor among 3 \(did you mean "model\.layers\.0\.weight"\?\)/,
    );
    assert.throws(() => file.info("othr"), /did you mean "other"/);
    assert.throws(() => file.info("completely-unrelated-name"), (e: Error) => {
      assert.doesNotMatch(e.message, /did you mean/);
      return e.message.includes('"completely-unrelated-name"');
    });
    await assert.rejects(file.read("nothing"), /tensor "nothing": no such tensor/);
    file.close();
    file.close();
    await assert.rejects(file.read("other"), /tensor "other": read after close\(\)/);
  });
});

Deno.test("open reads only the header: a sparse 6 GiB file opens and its small tensor reads", async () => {
  await withTempDir(async (dir) => {
    const huge = 6 * 2 ** 30;
    const header = {
      small: { dtype: "I32", shape: [2], data_offsets: [0, 8] },
      huge: { dtype: "U8", shape: [huge], data_offsets: [8, 8 + huge] },
    };
    const path = `${dir}/sparse.safetensors`;
    const head = rawSafetensors(
      header,
      leBytes(8, (v) => {
        v.setInt32(0, 11, true);
        v.setInt32(4, -12, true);
      }),
    );
    await Deno.writeFile(path, head);
    await Deno.truncate(path, head.length + huge); // sparse: the huge region is never stored
    const file = await SafetensorsFile.open(path);
    try {
      assert.equal(file.info("huge").byteLength, huge);
      assert.equal(file.info("huge").fileOffset, head.length);
      assert.deepEqual([...(await file.read("small")).data], [11, -12]);
    } finally {
      file.close();
    }
  });
});

Deno.test("read() reads only the requested byte range", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/ranges.safetensors`;
    await writeSafetensors(path, {
      a: new Tensor("f32", [2], new Float32Array([1, 2])),
      b: new Tensor("f32", [2], new Float32Array([3, 4])),
      c: new Tensor("f32", [2], new Float32Array([5, 6])),
    });
    const file = await SafetensorsFile.open(path);
    try {
      const [a, b, c] = ["a", "b", "c"].map((n) => file.info(n));
      // Overwrite everything except b's bytes with garbage (the header included, which was
      // parsed at open), then cut the file off right after b.
      const f = await Deno.open(path, { read: true, write: true });
      await f.write(new Uint8Array(b.fileOffset).fill(0xee));
      await f.truncate(b.fileOffset + b.byteLength);
      f.close();
      assert.ok(a.fileOffset < b.fileOffset && b.fileOffset < c.fileOffset);
      assert.deepEqual([...(await file.read("b")).data], [3, 4]);
      assert.notDeepEqual([...(await file.read("a")).data], [1, 2]);
      await assert.rejects(file.read("c"), /tensor "c": file ended after 0 of 8 bytes/);
      // Concurrent reads share one handle and still each get their own range.
      const again = await Promise.all([file.read("b"), file.read("b"), file.read("a")]);
      assert.deepEqual([...again[1].data], [3, 4]);
    } finally {
      file.close();
    }
  });
});

Deno.test("concurrent reads return the right tensors", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/many.safetensors`;
    const tensors: Record<string, Tensor> = {};
    for (let i = 0; i < 40; i++) {
      tensors[`t${i}`] = new Tensor("i32", [i + 1], new Int32Array(i + 1).fill(i));
    }
    await writeSafetensors(path, tensors);
    const file = await SafetensorsFile.open(path);
    const read = await Promise.all(Object.keys(tensors).map((n) => file.read(n)));
    file.close();
    read.forEach((t, i) => assert.deepEqual([...t.data], new Array(i + 1).fill(i)));
  });
});

Deno.test("the OPT fixture parses and matches its config and raw bytes", async () => {
  const dir = `${FIXTURES}models/opt/`;
  const config = JSON.parse(await Deno.readTextFile(`${dir}config.json`));
  const path = `${dir}model.safetensors`;
  const file = await SafetensorsFile.open(path);
  try {
    const infos = file.tensors();
    assert.ok(infos.length > 0);
    const name = "model.decoder.embed_tokens.weight";
    const embed = file.info(name);
    assert.deepEqual(embed.shape, [config.vocab_size, config.hidden_size]);
    assert.deepEqual(embed.shape, [128, 32]);
    assert.equal(embed.dtype, "f32");
    const t = await file.read(name);
    // Independent check: decode a few floats straight from the file bytes at fileOffset.
    const bytes = await Deno.readFile(path);
    const view = new DataView(bytes.buffer, embed.fileOffset, embed.byteLength);
    for (const k of [0, 1, 777, t.size - 1]) assert.equal(t.data[k], view.getFloat32(4 * k, true));
    const all = await file.readAll();
    assert.equal(Object.keys(all).length, infos.length);
    for (const x of Object.values(all)) {
      assert.ok((x.data as Float32Array).every(Number.isFinite));
    }
  } finally {
    file.close();
  }
});

Deno.test("the editor params fixture parses", async () => {
  const file = await SafetensorsFile.open(`${FIXTURES}editor/params.safetensors`);
  try {
    const infos = file.tensors();
    assert.ok(infos.length > 0);
    assert.equal(typeof file.metadata.case, "string");
    const e = file.info("edit_extractor.eqe1");
    assert.deepEqual(e.shape, [1, 4, 32]);
    const all = await file.readAll();
    for (const info of infos) assert.equal(all[info.name].data.byteLength, info.byteLength);
  } finally {
    file.close();
  }
});
