import assert from "node:assert/strict";
import { imageCacheCapacity } from "../../../src/data/images.ts";
import { loadVllm } from "../../../src/models/vllm/mod.ts";
import { expandImageToken } from "../../../src/models/vllm/llava.ts";
import { labelTensors } from "../../../src/models/vllm/processor.ts";
import type { Vllm } from "../../../src/models/vllm/vllm.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";
import { pixels, withTempDir, writeTinyVllm } from "./_tiny.ts";

function rows(t: Tensor): number[][] {
  const [b, s] = t.shape;
  const v = Array.from(toNumbers(t));
  return Array.from({ length: b }, (_, r) => v.slice(r * s, (r + 1) * s));
}

async function withVllm(
  family: "blip-2" | "llava" | "minigpt4",
  fn: (vllm: Vllm) => Promise<void>,
): Promise<void> {
  await withTempDir(async (dir) => {
    const vllm = await loadVllm(await writeTinyVllm(family, dir));
    try {
      await fn(vllm);
    } finally {
      vllm.close();
    }
  });
}

Deno.test("labelTensors: roll by one, mask from the last prompt token, right padding, slice", () => {
  // row 0: BOS=1 p=5,6 t=7,8 (prompt 3 tokens); row 1: BOS=1 p=5 t=9 (prompt 2 tokens)
  const { labelIds, labelMasks } = labelTensors([[1, 5, 6, 7, 8], [1, 5, 9]], [3, 2], 0);
  // rolled: [5,6,7,8,1] and [5,9,1]; sliced from min(3,2)-1 = 1
  assert.deepEqual(rows(labelIds), [[6, 7, 8, 1], [9, 1, 0, 0]]);
  // masks on [p-1, n-1): row 0 positions 2,3 -> columns 1,2; row 1 position 1 -> column 0
  assert.deepEqual(rows(labelMasks), [[0, 1, 1, 0], [1, 0, 0, 0]]);
  assert.throws(() => labelTensors([[5]], [0], 0), /at least one token/);
});

Deno.test("blip-2 prepare: query tokens first, labels are the target's tokens, aligned from the end", async () => {
  await withVllm("blip-2", async (vllm) => {
    const tok = await vllm.tokenizer();
    const requests = [
      { prompt: "what is this?", target: "a cat", image: pixels(1, 32, 1) },
      { prompt: "a photo of", target: " a dog on the grass", image: pixels(1, 32, 2) },
    ];
    const b = await vllm.prepare(requests);
    assert.deepEqual(b.targets, [" a cat", " a dog on the grass"]);
    assert.deepEqual(b.vtRange, [[0, 4], [0, 4]]);
    const ids = rows(b.feeds.input_ids), mask = rows(b.attentionMask);
    const [T] = [ids[0].length];
    requests.forEach((r, i) => {
      const full = tok.encode(r.prompt + b.targets[i]);
      assert.deepEqual(ids[i].slice(4, 4 + full.length), full);
      assert.equal(b.lengths[i], 4 + full.length);
      assert.equal(mask[i].filter((m) => m === 1).length, b.lengths[i]);
      assert.ok(ids[i].slice(b.lengths[i]).every((id) => id === tok.pad!.id));
      // the last prompt token sits just before promptEnds
      assert.equal(b.promptEnds[i], 4 + tok.encode(r.prompt).length);
      assert.equal(b.promptLengths[i], tok.encode(r.prompt).length);
    });
    const labels = rows(b.labelIds), lmask = rows(b.labelMasks);
    const L = labels[0].length;
    requests.forEach((_, i) => {
      const picked = labels[i].filter((_, j) => lmask[i][j] === 1);
      assert.equal(tok.decode(picked), b.targets[i]);
      // losses read the last L logits: column j is sequence position T - L + j, predicting the
      // token after it
      labels[i].forEach((id, j) => {
        if (lmask[i][j] === 1) assert.equal(ids[i][T - L + j + 1], id);
      });
      assert.equal(T - L + lmask[i].indexOf(1), b.promptEnds[i] - 1);
    });
    const image_index = rows(b.feeds.image_index);
    assert.deepEqual(image_index[0].slice(0, 5), [0, 1, 2, 3, -1]);
    assert.equal(b.feeds.pixel_values.shape.join(), "2,3,32,32");
  });
});

Deno.test("blip-2 text-only inputs: no vision tokens, no image feeds", async () => {
  await withVllm("blip-2", async (vllm) => {
    const tok = await vllm.tokenizer();
    const x = await vllm.inputs([{ text: "a photo of a cat" }]);
    assert.deepEqual(x.vtRange, [null]);
    assert.equal(x.hasImages, false);
    assert.deepEqual(Object.keys(x.feeds).sort(), ["attention_mask", "input_ids"]);
    assert.deepEqual(rows(x.feeds.input_ids)[0], tok.encode("a photo of a cat"));
    await assert.rejects(
      vllm.inputs([{ text: "a", image: pixels(1, 32) }, { text: "b" }]),
      /an image on every row or on none/,
    );
    await assert.rejects(
      vllm.prepare([{ prompt: "a", target: "" }]),
      /request 0 has an empty target/,
    );
  });
});

Deno.test("llava: <image>\\n is added when missing and expanded to the vision tokens", async () => {
  await withVllm("llava", async (vllm) => {
    const tok = await vllm.tokenizer();
    const image = tok.imageTokenId();
    const n = vllm.numImageTokens;
    assert.equal(n, 16); // (32 / 8)^2 patches
    const x = await vllm.inputs([
      { text: "what is this?", image: pixels(1, 32) },
      { text: "a photo <image>\nof a", image: pixels(1, 32, 2) },
    ]);
    const ids = rows(x.feeds.input_ids);
    const auto = expandImageToken(tok.encode("<image>\nwhat is this?"), image, n);
    assert.deepEqual(ids[0].slice(0, auto.length), auto);
    assert.deepEqual(x.vtRange[0], [1, 1 + n]); // after BOS
    const at = tok.encode("a photo <image>\nof a").indexOf(image);
    assert.ok(at > 1);
    assert.deepEqual(x.vtRange[1], [at, at + n]);
    assert.ok(ids[1].slice(at, at + n).every((id) => id === image));
    assert.deepEqual(rows(x.feeds.image_index)[1].slice(at - 1, at + 2), [-1, 0, 1]);
    await assert.rejects(vllm.inputs([{ text: "<image>\nwhat" }]), /has <image> but no image/);
    await assert.rejects(
      vllm.inputs([{ text: "<image> and <image>", image: pixels(1, 32) }]),
      /exactly one <image>/,
    );
    await assert.rejects(
      vllm.inputs([{ text: "x", image: pixels(1, 16) }]),
      /image 0 must be f32 \[3, 32, 32\] pixel values, got f32\[1, 3, 16, 16\]/,
    );
  });
});

Deno.test("minigpt4: [BOS, query tokens, tokens of '\\n' + text], vt_range [1, 1 + n]", async () => {
  await withVllm("minigpt4", async (vllm) => {
    const tok = await vllm.tokenizer();
    const x = await vllm.inputs([{ text: "what is this?", image: pixels(1, 32) }]);
    const after = tok.encode("\nwhat is this?", { addSpecialTokens: false });
    assert.deepEqual(rows(x.feeds.input_ids)[0], [tok.bos!.id, 0, 0, 0, 0, ...after]);
    assert.deepEqual(x.vtRange, [[1, 5]]);
    const plain = await vllm.inputs([{ text: "what is this?" }]);
    assert.deepEqual(rows(plain.feeds.input_ids)[0], tok.encode("what is this?"));
    await assert.rejects(vllm.inputs([{ text: "<ImageHere> x" }]), /has <ImageHere> but no image/);
  });
});

Deno.test("images given as paths go through the directory's image processor", async () => {
  await withVllm("blip-2", async (vllm) => {
    const sharp = (await import("sharp")).default;
    const file = `${vllm.dir.dir}/red.png`;
    await sharp({
      create: { width: 40, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } },
    })
      .png().toFile(file);
    const px = await vllm.pixelValues([file]);
    assert.equal(px.shape.join(), "1,3,32,32");
    // red channel: (1 - mean) / std of CLIP's normalisation
    assert.ok(Math.abs(px.data[0] - (1 - 0.48145466) / 0.26862954) < 1e-5);
    await assert.rejects(
      vllm.pixelValues([`${vllm.dir.dir}/none.png`]),
      /none\.png: does not exist/,
    );
    // decoded at once, but the error names the first image at fault in order
    await assert.rejects(
      vllm.pixelValues([file, `${vllm.dir.dir}/first.png`, `${vllm.dir.dir}/second.png`]),
      /first\.png: does not exist/,
    );
    // a decoded image is kept: 256 MiB of 32 x 32 pixels hold 21845 of them
    assert.equal(vllm.images.capacity, imageCacheCapacity(32));
    assert.equal(vllm.images.capacity, 21845);
    const misses = vllm.images.misses;
    await vllm.pixelValues([file, file]);
    assert.equal(vllm.images.misses, misses, "red.png decoded once");
  });
});
