import assert from "node:assert/strict";
import sharp from "sharp";
import { join } from "node:path";
import {
  centerCropHwc,
  ImageProcessor,
  loadImageProcessor,
  parseImageProcessorConfig,
  resizedSize,
} from "../../src/io/image.ts";
import { withTempDir } from "./_helpers.ts";

const MEAN = [0.48145466, 0.4578275, 0.40821073];
const STD = [0.26862954, 0.26130258, 0.27577711];

/** A 40×30 RGB test image: R a horizontal ramp, G a vertical ramp, B a smooth wave. */
function gradient(w = 40, h = 30): Uint8Array {
  const px = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      px[i] = x * 6;
      px[i + 1] = y * 8;
      px[i + 2] = Math.round(127 + 120 * Math.sin(x / 5 + y / 7));
    }
  }
  return px;
}

async function writePng(path: string, px: Uint8Array, w: number, h: number, channels = 3) {
  await sharp(px, { raw: { width: w, height: h, channels: channels as 1 | 3 | 4 } }).png()
    .toFile(path);
}

function clip(extra: Record<string, unknown> = {}): ImageProcessor {
  return new ImageProcessor(parseImageProcessorConfig({
    image_processor_type: "CLIPImageProcessor",
    size: { shortest_edge: 30 },
    crop_size: { height: 20, width: 24 },
    resample: 3,
    rescale_factor: 1 / 255,
    image_mean: MEAN,
    image_std: STD,
    ...extra,
  }, "preprocessor_config.json"));
}

function blip(side: number): ImageProcessor {
  return new ImageProcessor(parseImageProcessorConfig({
    image_processor_type: "BlipImageProcessor",
    size: { height: side, width: side },
    image_mean: MEAN,
    image_std: STD,
  }, "preprocessor_config.json"));
}

/** Pixel value (0..255) that normalized value `v` of channel `c` came from. */
function unnormalize(v: number, c: number): number {
  return (v * STD[c] + MEAN[c]) * 255;
}

/**
 * Naive PIL-style antialiased bicubic resize (separable, a = -0.5, support 2 scaled by the
 * shrink factor, horizontal pass first, each pass rounded to 8 bits), as a reference.
 */
function pilBicubic(px: Uint8Array, w: number, h: number, ow: number, oh: number): Uint8Array {
  const cubic = (t: number) => {
    const a = -0.5, x = Math.abs(t);
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  };
  const taps = (inSize: number, outSize: number) => {
    const scale = inSize / outSize, fs = Math.max(scale, 1);
    return Array.from({ length: outSize }, (_, i) => {
      const c = (i + 0.5) * scale;
      const lo = Math.max(Math.trunc(c - 2 * fs + 0.5), 0);
      const hi = Math.min(Math.trunc(c + 2 * fs + 0.5), inSize);
      const ws = Array.from({ length: hi - lo }, (_, j) => cubic((lo + j - c + 0.5) / fs));
      const sum = ws.reduce((s, v) => s + v, 0);
      return { lo, ws: ws.map((v) => v / sum) };
    });
  };
  const pass = (
    src: Uint8Array,
    sw: number,
    sh: number,
    dw: number,
    dh: number,
    horiz: boolean,
  ) => {
    const k = horiz ? taps(sw, dw) : taps(sh, dh);
    const out = new Uint8Array(dw * dh * 3);
    for (let y = 0; y < dh; y++) {
      for (let x = 0; x < dw; x++) {
        for (let c = 0; c < 3; c++) {
          const { lo, ws } = k[horiz ? x : y];
          let s = 0;
          ws.forEach((wt, j) => {
            const sx = horiz ? lo + j : x, sy = horiz ? y : lo + j;
            s += wt * src[(sy * sw + sx) * 3 + c];
          });
          out[(y * dw + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(s)));
        }
      }
    }
    return out;
  };
  return pass(pass(px, w, h, ow, h, true), ow, h, ow, oh, false);
}

Deno.test("CLIP: centre crop and normalize equal a naive reference (no resize needed)", async () => {
  await withTempDir(async (dir) => {
    const px = gradient();
    await writePng(join(dir, "g.png"), px, 40, 30);
    const out = await clip().loadImage(join(dir, "g.png"));
    assert.deepEqual(out.shape, [1, 3, 20, 24]);
    // Crop offsets floor((30 - 20) / 2) = 5 rows, floor((40 - 24) / 2) = 8 columns.
    let worst = 0;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 20; y++) {
        for (let x = 0; x < 24; x++) {
          const ref = (px[((y + 5) * 40 + x + 8) * 3 + c] / 255 - MEAN[c]) / STD[c];
          worst = Math.max(worst, Math.abs(out.data[(c * 20 + y) * 24 + x] - ref));
        }
      }
    }
    assert.ok(worst <= 1e-6, `normalize differs from the reference by ${worst} (bound 1e-6)`);
  });
});

Deno.test("CLIP: shortest-edge bicubic shrink is within 3 levels of a PIL-style reference", async () => {
  await withTempDir(async (dir) => {
    const px = gradient();
    await writePng(join(dir, "g.png"), px, 40, 30);
    const proc = clip({ size: { shortest_edge: 15 }, crop_size: { height: 12, width: 12 } });
    const out = await proc.loadImage(join(dir, "g.png"));
    assert.deepEqual(out.shape, [1, 3, 12, 12]);
    const ref = pilBicubic(px, 40, 30, 20, 15); // 40x30 -> 20x15, then crop rows 1.., cols 4..
    let worst = 0;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 12; y++) {
        for (let x = 0; x < 12; x++) {
          const got = unnormalize(out.data[(c * 12 + y) * 12 + x], c);
          worst = Math.max(worst, Math.abs(got - ref[((y + 1) * 20 + x + 4) * 3 + c]));
        }
      }
    }
    assert.ok(worst <= 3 + 1e-3, `resized pixels differ from the reference by ${worst} levels`);
  });
});

Deno.test("BLIP: exact resize with different factors per axis is close to the reference", async () => {
  await withTempDir(async (dir) => {
    const px = gradient();
    await writePng(join(dir, "g.png"), px, 40, 30);
    const out = await blip(16).loadImage(join(dir, "g.png"));
    assert.deepEqual(out.shape, [1, 3, 16, 16]);
    const ref = pilBicubic(px, 40, 30, 16, 16);
    let worst = 0;
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < 256; i++) {
        worst = Math.max(worst, Math.abs(unnormalize(out.data[c * 256 + i], c) - ref[i * 3 + c]));
      }
    }
    assert.ok(worst <= 3 + 1e-3, `resized pixels differ from the reference by ${worst} levels`);
  });
});

Deno.test("enlarging a constant image keeps it constant; portrait images keep their orientation", async () => {
  await withTempDir(async (dir) => {
    const flat = new Uint8Array(30 * 40 * 3);
    for (let i = 0; i < flat.length; i += 3) flat.set([200, 100, 50], i);
    await writePng(join(dir, "tall.png"), flat, 30, 40); // width 30, height 40
    const proc = clip({ size: { shortest_edge: 45 }, do_center_crop: false });
    const out = await proc.loadImage(join(dir, "tall.png"));
    assert.deepEqual(out.shape, [1, 3, 60, 45]); // width 45, height floor(45 * 40 / 30)
    for (let c = 0; c < 3; c++) {
      const want = Math.fround(([200, 100, 50][c] / 255 - MEAN[c]) / STD[c]);
      const plane = out.data.subarray(c * 60 * 45, (c + 1) * 60 * 45);
      assert.ok(plane.every((v) => v === want), `channel ${c} is not constant ${want}`);
    }
    assert.equal(proc.outputSize, undefined);
  });
});

Deno.test("grey and RGBA images become RGB (grey replicated, alpha dropped)", async () => {
  await withTempDir(async (dir) => {
    const grey = new Uint8Array(40 * 30).map((_, i) => i % 200);
    await writePng(join(dir, "grey.png"), grey, 40, 30, 1);
    const rgba = new Uint8Array(40 * 30 * 4);
    for (let i = 0; i < rgba.length; i += 4) rgba.set([10, 20, 30, 77], i);
    await writePng(join(dir, "rgba.png"), rgba, 40, 30, 4);
    const proc = clip();
    const g = await proc.loadImage(join(dir, "grey.png"));
    for (let i = 0; i < 20 * 24; i++) {
      const v = [0, 1, 2].map((c) => Math.round(unnormalize(g.data[c * 480 + i], c)));
      assert.ok(v[0] === v[1] && v[1] === v[2], `pixel ${i} is not grey: ${v}`);
    }
    assert.equal(Math.round(unnormalize(g.data[0], 0)), grey[5 * 40 + 8]);
    const a = await proc.loadImage(join(dir, "rgba.png"));
    assert.deepEqual([0, 1, 2].map((c) => Math.round(unnormalize(a.data[c * 480], c))), [
      10,
      20,
      30,
    ]);
  });
});

Deno.test("loadImages stacks a batch; differing output sizes are an error naming the file", async () => {
  await withTempDir(async (dir) => {
    await writePng(join(dir, "a.png"), gradient(), 40, 30);
    await writePng(join(dir, "b.png"), gradient(30, 40), 30, 40);
    const proc = clip();
    const batch = await proc.loadImages([join(dir, "a.png"), join(dir, "b.png")]);
    assert.deepEqual(batch.shape, [2, 3, 20, 24]);
    const b = await proc.loadImage(join(dir, "b.png"));
    assert.deepEqual(batch.data.subarray(b.size), b.data);
    const free = clip({ do_center_crop: false });
    await assert.rejects(
      free.loadImages([join(dir, "a.png"), join(dir, "b.png")]),
      (e: Error) => e.message.includes(join(dir, "b.png")) && e.message.includes("one size"),
    );
  });
});

Deno.test("missing and undecodable image files are errors naming the file", async () => {
  await withTempDir(async (dir) => {
    const missing = join(dir, "nope.jpg");
    await assert.rejects(clip().loadImage(missing), (e: Error) => {
      assert.match(e.message, /does not exist/);
      return e.message.includes(missing);
    });
    const junk = join(dir, "junk.png");
    await Deno.writeTextFile(junk, "this is not an image");
    await assert.rejects(clip().loadImage(junk), (e: Error) => {
      assert.match(e.message, /is not a png, jpeg, webp, svg image \(from its content/);
      return e.message.includes(junk);
    });
  });
});

Deno.test("resizedSize follows HF's shortest-edge rule with truncation", () => {
  const rule = { kind: "shortest_edge", shortestEdge: 336 } as const;
  assert.deepEqual(resizedSize(rule, 480, 640), { height: 336, width: 448 });
  assert.deepEqual(resizedSize(rule, 640, 480), { height: 448, width: 336 });
  assert.deepEqual(resizedSize({ kind: "shortest_edge", shortestEdge: 224 }, 333, 500), {
    height: 224,
    width: 336, // floor(224 * 500 / 333) = floor(336.34)
  });
  assert.deepEqual(resizedSize({ kind: "exact", height: 7, width: 9 }, 480, 640), {
    height: 7,
    width: 9,
  });
});

Deno.test("centerCropHwc pads with zeros where the crop is larger, like HF center_crop", () => {
  // 2 rows x 3 columns, one channel: values 1..6.
  const src = new Uint8Array([1, 2, 3, 4, 5, 6]);
  // To 4 rows x 2 columns: rows padded by ceil((4-2)/2) = 1 on top; columns offset floor(1/2)=0.
  const out = centerCropHwc(src, { height: 2, width: 3 }, { height: 4, width: 2 }, 1);
  assert.deepEqual([...out], [0, 0, 1, 2, 4, 5, 0, 0]);
  // 3 rows needs padding ceil(1/2) = 1 on top, none below.
  const odd = centerCropHwc(src, { height: 2, width: 3 }, { height: 3, width: 1 }, 1);
  assert.deepEqual([...odd], [0, 2, 5]);
});

Deno.test("config errors name the file and the field; unknown processor types list the known", async () => {
  const file = "x/preprocessor_config.json";
  assert.throws(
    () => parseImageProcessorConfig({ image_processor_type: "SiglipImageProcessor" }, file),
    (e: Error) =>
      e.message.includes(file) && e.message.includes("SiglipImageProcessor") &&
      e.message.includes("supported: CLIPImageProcessor"),
  );
  assert.throws(
    () =>
      parseImageProcessorConfig({
        image_processor_type: "BlipImageProcessor",
        size: { height: 8, width: 8 },
        image_mean: [0.5, 0.5],
        image_std: STD,
      }, file),
    (e: Error) => e.message.startsWith(`${file}: field 'image_mean'`),
  );
  assert.throws(
    () => parseImageProcessorConfig({ image_processor_type: "CLIPImageProcessor", size: 8 }, file),
    (e: Error) => e.message.startsWith(`${file}: field 'crop_size' is missing`),
  );
  assert.throws(
    () =>
      parseImageProcessorConfig({
        image_processor_type: "BlipImageProcessor",
        size: { height: 0, width: 8 },
        do_normalize: false,
      }, file),
    (e: Error) => e.message.startsWith(`${file}: field 'size.height'`),
  );
  await withTempDir(async (dir) => {
    await assert.rejects(loadImageProcessor(dir), (e: Error) => e.message.includes(dir));
    await Deno.writeTextFile(join(dir, "preprocessor_config.json"), "{ not json");
    await assert.rejects(
      loadImageProcessor(dir),
      (e: Error) => e.message.includes(join(dir, "preprocessor_config.json")),
    );
  });
});

Deno.test("transformers 5: processor_config.json's image_processor, null fields as absent; preprocessor_config.json first", async () => {
  await withTempDir(async (dir) => {
    const blip = {
      image_processor_type: "BlipImageProcessorFast",
      size: { height: 12, width: 12 },
      image_mean: MEAN,
      image_std: STD,
      resample: null,
      rescale_factor: null,
      do_center_crop: null,
      crop_size: null,
      device: null,
    };
    const file = join(dir, "processor_config.json");
    await Deno.writeTextFile(
      file,
      JSON.stringify({ image_processor: blip, processor_class: "Blip2Processor" }),
    );
    const proc = await loadImageProcessor(dir);
    assert.deepEqual(proc.config, {
      type: "BlipImageProcessorFast",
      resize: { kind: "exact", height: 12, width: 12 },
      resample: 3,
      centerCrop: undefined,
      rescaleFactor: 1 / 255,
      normalize: { mean: MEAN, std: STD },
    });
    // a CLIP size with longest_edge null is the shortest-edge rule
    await Deno.writeTextFile(
      file,
      JSON.stringify({
        image_processor: {
          ...blip,
          image_processor_type: "CLIPImageProcessorFast",
          size: { shortest_edge: 10, longest_edge: null },
          crop_size: { height: 8, width: 8 },
        },
      }),
    );
    const clip = await loadImageProcessor(dir);
    assert.deepEqual(clip.config.resize, { kind: "shortest_edge", shortestEdge: 10 });
    assert.deepEqual(clip.config.centerCrop, { height: 8, width: 8 });
    // errors name the nested object
    await Deno.writeTextFile(
      file,
      JSON.stringify({ image_processor: { ...blip, image_mean: null } }),
    );
    await assert.rejects(
      loadImageProcessor(dir),
      (e: Error) => e.message.startsWith(`${file} (image_processor): field 'image_mean'`),
    );
    await Deno.writeTextFile(file, JSON.stringify({ processor_class: "Blip2Processor" }));
    await assert.rejects(
      loadImageProcessor(dir),
      (e: Error) => e.message.startsWith(`${file}: field 'image_processor' must be an object`),
    );
    // preprocessor_config.json, when present, is the one read
    await Deno.writeTextFile(
      join(dir, "preprocessor_config.json"),
      JSON.stringify({ ...blip, image_processor_type: "BlipImageProcessor" }),
    );
    assert.equal((await loadImageProcessor(dir)).config.type, "BlipImageProcessor");
    await Deno.remove(join(dir, "preprocessor_config.json"));
    await Deno.remove(file);
    await assert.rejects(
      loadImageProcessor(dir),
      (e: Error) =>
        e.message ===
          `model directory ${dir} has no preprocessor_config.json or processor_config.json`,
    );
  });
});
