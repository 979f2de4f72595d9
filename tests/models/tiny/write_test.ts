import assert from "node:assert/strict";
import { join } from "node:path";
import sharp from "sharp";
import { Graph, type Value } from "../../../src/graph/ir.ts";
import { loadImageProcessor } from "../../../src/io/image.ts";
import { SafetensorsFile } from "../../../src/io/safetensors.ts";
import { openCheckpoint } from "../../../src/io/sharded.ts";
import { loadTokenizer } from "../../../src/io/tokenizer.ts";
import { forwardGraph, runTraced } from "../../../src/models/fixtures/decoder.ts";
import { runGraph } from "../../../src/models/fixtures/vision.ts";
import { ConfigFields } from "../../../src/models/hf_config.ts";
import {
  llavaImage,
  llavaKeyPrefix,
  loadLlavaImage,
  parseLlavaImageConfig,
} from "../../../src/models/llava_projector.ts";
import { loadDecoder } from "../../../src/models/backbones.ts";
import {
  blip2ImagePrefix,
  loadBlip2ImagePrefix,
  parseBlip2Config,
} from "../../../src/models/qformer.ts";
import { TINY_ARCHS, type TinyArch } from "../../../src/models/tiny/configs.ts";
import {
  MINIGPT4_IMAGE_KEYS,
  MINIGPT4_IMAGE_PLACEHOLDER,
  MINIGPT4_MODEL_TYPE,
  parseMiniGpt4Config,
} from "../../../src/models/vllm/minigpt4_config.ts";
import { TINY_FILES } from "../../../src/models/tiny/layout.ts";
import { writeTinyModel } from "../../../src/models/tiny/write.ts";
import { WeightStore } from "../../../src/models/weights.ts";
import { randn } from "../../../src/tensor/create.ts";
import { toNumbers } from "../../../src/tensor/elements.ts";
import { Rng } from "../../../src/tensor/rng.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { FIXTURES, listDir, readFiles, readJson, withTempDir } from "./_tiny.ts";

/** A tensor name with layer indices replaced by `N`. */
function pattern(name: string): string {
  return name.replace(/\.\d+\./g, ".N.");
}

/** Dotted paths of every field of a JSON object, recursively. */
function fieldPaths(json: Record<string, unknown>, prefix = ""): string[] {
  return Object.entries(json).flatMap(([k, v]) =>
    v !== null && typeof v === "object" && !Array.isArray(v)
      ? [prefix + k, ...fieldPaths(v as Record<string, unknown>, `${prefix}${k}.`)]
      : [prefix + k]
  );
}

/** The value at dotted path `path` of `json`. */
function at(json: Record<string, unknown>, path: string): unknown {
  return path.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)?.[k], json);
}

/** Fields that fix the architecture (not its sizes): they must equal the fixture's. */
const SEMANTIC_FIELDS = [
  "model_type",
  "architectures",
  "use_decoder_only_language_model",
  "vision_feature_layer",
  "vision_feature_select_strategy",
  "projector_hidden_act",
  "multimodal_projector_bias",
  "tie_word_embeddings",
  "vision_config.model_type",
  "vision_config.hidden_act",
  "vision_config.qkv_bias",
  "vision_config.layer_norm_eps",
  "vision_config.num_channels",
  "qformer_config.model_type",
  "qformer_config.hidden_act",
  "qformer_config.cross_attention_frequency",
  "qformer_config.layer_norm_eps",
  "qformer_config.use_qformer_text_input",
  "text_config.model_type",
  "text_config.activation_function",
  "text_config.do_layer_norm_before",
  "text_config._remove_final_layer_norm",
  "text_config.enable_bias",
  "text_config.layer_norm_elementwise_affine",
  "text_config.tie_word_embeddings",
  "text_config.hidden_act",
  "text_config.attention_bias",
  "text_config.mlp_bias",
  "text_config.rope_theta",
  "text_config.rope_parameters",
  "text_config.bos_token_id",
  "text_config.eos_token_id",
];

/** What a tiny model's layout must match: tensor key patterns and config sections. */
interface Layout {
  /** Key patterns ({@linkcode pattern}) of every tensor. */
  readonly patterns: Set<string>;
  /** Pairs of a section of our config.json (`""`: all of it) and the reference it copies. */
  readonly configs: [string, Record<string, unknown>][];
}

/**
 * The HF fixture layouts each architecture copies; MiniGPT-4 (no HF format) is BLIP-2's image
 * side with LLaVA's LLaMA language model, as `src/models/vllm/minigpt4_config.ts` defines it.
 */
async function expectedLayout(arch: TinyArch): Promise<Layout> {
  const read = async (family: string) => {
    const dir = join(FIXTURES, family);
    const config = await readJson(join(dir, "config.json"));
    delete config._fixture_note;
    const manifest = await readJson(join(dir, "manifest.json"));
    return { config, names: (manifest.weights as { name: string }[]).map((w) => w.name) };
  };
  const blip2 = await read("blip2_opt"), llava = await read("llava");
  const lm = (n: string) => n.startsWith("language_model.");
  const section = (c: Record<string, unknown>, s: string) => c[s] as Record<string, unknown>;
  switch (arch) {
    case "blip2-opt":
      return { patterns: new Set(blip2.names.map(pattern)), configs: [["", blip2.config]] };
    case "llava":
      return { patterns: new Set(llava.names.map(pattern)), configs: [["", llava.config]] };
    case "minigpt4":
      return {
        patterns: new Set([
          ...blip2.names.filter((n) => !lm(n)).map(pattern),
          ...llava.names.filter(lm).map(pattern),
        ]),
        configs: [
          ["vision_config", section(blip2.config, "vision_config")],
          ["qformer_config", section(blip2.config, "qformer_config")],
          ["text_config", section(llava.config, "text_config")],
        ],
      };
  }
}

for (const arch of TINY_ARCHS) {
  Deno.test(`tiny ${arch}: the files, tensor keys and config fields of the HF layout it copies`, async () => {
    await withTempDir(async (parent) => {
      const dir = join(parent, "model");
      const summary = await writeTinyModel(dir, { arch });
      assert.deepEqual(await listDir(dir), [...TINY_FILES.v4]);
      assert.ok(summary.bytes < 3_000_000, `${summary.bytes} bytes`);
      assert.ok(summary.bytes > 500_000, `${summary.bytes} bytes`);

      const layout = await expectedLayout(arch);
      const st = await SafetensorsFile.open(join(dir, "model.safetensors"));
      try {
        const infos = st.tensors();
        assert.equal(infos.length, summary.tensors);
        assert.ok(infos.every((i) => i.dtype === "f32"));
        assert.deepEqual(new Set(infos.map((i) => pattern(i.name))), layout.patterns);
        assert.deepEqual(st.metadata, { format: "pt" });
      } finally {
        st.close();
      }

      const ours = await readJson(join(dir, "config.json"));
      const keys = Object.keys(ours);
      assert.deepEqual(keys, [...keys].sort(), "keys sorted as transformers writes them");
      for (const [name, reference] of layout.configs) {
        const mine = (name === "" ? ours : ours[name]) as Record<string, unknown>;
        const have = new Set(fieldPaths(mine));
        const missing = fieldPaths(reference).filter((p) => !have.has(p));
        assert.deepEqual(missing, [], `fields of the reference missing from ${name || "config"}`);
        for (const field of SEMANTIC_FIELDS) {
          const relative = name === "" ? field : field.slice(name.length + 1);
          if (name !== "" && !field.startsWith(`${name}.`)) continue;
          if (at(reference, relative) !== undefined) {
            assert.deepEqual(at(mine, relative), at(reference, relative), field);
          }
        }
      }
    });
  });
}

Deno.test("tiny configs: the fields the brief names, the sizes, LLaVA's image tokens, MiniGPT-4's layout", async () => {
  await withTempDir(async (parent) => {
    await writeTinyModel(join(parent, "b"), { arch: "blip2-opt" });
    const b = await readJson(join(parent, "b", "config.json"));
    assert.equal(b.model_type, "blip-2");
    assert.equal(b.num_query_tokens, 8);
    assert.equal(at(b, "text_config.model_type"), "opt");
    assert.equal(at(b, "text_config.num_hidden_layers"), 4);
    assert.equal(at(b, "text_config.vocab_size"), 512);
    assert.equal(at(b, "qformer_config.encoder_hidden_size"), at(b, "vision_config.hidden_size"));

    await writeTinyModel(join(parent, "l"), { arch: "llava", layers: 2, hidden: 32 });
    const l = await readJson(join(parent, "l", "config.json"));
    assert.equal(l.model_type, "llava");
    assert.equal(l.image_token_index, 510);
    assert.equal(l.pad_token_id, 511);
    assert.equal(l.image_seq_length, 16);
    assert.equal(at(l, "vision_config.model_type"), "clip_vision_model");
    assert.equal(at(l, "vision_config.num_hidden_layers"), 3);
    assert.equal(at(l, "text_config.num_hidden_layers"), 2);
    assert.equal(at(l, "text_config.hidden_size"), 32);
    assert.equal(at(l, "text_config.head_dim"), 8);
    assert.equal(at(l, "text_config.intermediate_size"), 96);

    await writeTinyModel(join(parent, "m"), { arch: "minigpt4" });
    const fields = await ConfigFields.read(join(parent, "m", "config.json"));
    const m = parseMiniGpt4Config(fields);
    assert.equal(fields.string("model_type"), MINIGPT4_MODEL_TYPE);
    assert.equal(m.imagePlaceholder, MINIGPT4_IMAGE_PLACEHOLDER);
    assert.equal(m.image.numQueryTokens, 8);
    assert.equal(m.image.qformer.encoderHiddenSize, m.image.vision.hiddenSize);
    assert.equal(m.image.textHiddenSize, m.text.hiddenSize);
    assert.equal(m.text.numLayers, 4);
    assert.equal(m.text.vocabSize, 512);
    assert.equal(m.text.tieWordEmbeddings, false);
  });
});

Deno.test("tiny models: tokenizer and image processor load with the project's loaders", async () => {
  await withTempDir(async (parent) => {
    const png = join(parent, "image.png");
    await sharp({ create: { width: 45, height: 37, channels: 3, background: "#3a7" } })
      .png().toFile(png);
    for (const arch of TINY_ARCHS) {
      const dir = join(parent, arch);
      await writeTinyModel(dir, { arch });
      const config = await readJson(join(dir, "config.json"));
      const text = config.text_config as Record<string, number>;
      const tok = await loadTokenizer(dir);
      assert.equal(tok.vocabSize, text.vocab_size, arch);
      assert.equal(tok.bos?.id, text.bos_token_id, arch);
      assert.equal(tok.eos?.id, text.eos_token_id, arch);
      const ids = tok.encode("What is in the Photo? A cat, 42 ☕.");
      assert.equal(ids[0], text.bos_token_id, arch);
      assert.ok(ids.every((id) => id >= 0 && id < text.vocab_size), `${arch}: ${ids}`);
      assert.equal(
        tok.decode(ids, { skipSpecialTokens: true }),
        "What is in the Photo? A cat, 42 ☕.",
      );
      if (arch === "llava") {
        assert.equal(tok.imageTokenId(), config.image_token_index);
        assert.equal(tok.pad?.id, config.pad_token_id);
      } else {
        assert.equal(tok.pad?.id ?? null, text.pad_token_id, arch);
      }

      const side = (config.vision_config as Record<string, number>).image_size;
      const processor = await loadImageProcessor(dir);
      assert.deepEqual(processor.outputSize, { height: side, width: side }, arch);
      assert.deepEqual((await processor.loadImage(png)).shape, [1, 3, side, side], arch);
    }
  });
});

/** The image side of `arch` in `g` on `pixels`: its output and the value it ends with. */
function imageSide(
  arch: TinyArch,
  g: Graph,
  store: WeightStore,
  fields: ConfigFields,
  pixels: Value,
): { tokens: Value; lastLayer: Value } {
  if (arch === "llava") {
    const config = parseLlavaImageConfig(fields);
    const out = llavaImage(loadLlavaImage(g, store, config, llavaKeyPrefix(store)), pixels);
    return { tokens: out.imageFeatures, lastLayer: out.vision.lastHiddenState };
  }
  const keys = arch === "minigpt4" ? MINIGPT4_IMAGE_KEYS : {};
  const model = loadBlip2ImagePrefix(g, store, parseBlip2Config(fields), keys);
  const out = blip2ImagePrefix(model, pixels);
  return { tokens: out.imageTokens, lastLayer: out.vision.hiddenStates.at(-1)! };
}

/** The external weights a graph references. */
function externals(g: Graph): string[] {
  return g.values.flatMap((v) => (v.source.kind === "external" ? [v.source.name] : []));
}

function stats(t: Tensor): { finite: boolean; std: number; maxAbs: number } {
  const x = toNumbers(t);
  const mean = x.reduce((a, b) => a + b, 0) / x.length;
  const variance = x.reduce((a, b) => a + (b - mean) ** 2, 0) / x.length;
  return {
    finite: x.every(Number.isFinite),
    std: Math.sqrt(variance),
    maxAbs: x.reduce((a, b) => Math.max(a, Math.abs(b)), 0),
  };
}

for (const arch of TINY_ARCHS) {
  Deno.test(`tiny ${arch}: the architectures load every tensor; vision and decoder forwards are finite and O(1)`, async () => {
    await withTempDir(async (parent) => {
      const dir = join(parent, "model");
      await writeTinyModel(dir, { arch, seed: 3 });
      const fields = await ConfigFields.read(join(dir, "config.json"));
      const checkpoint = await openCheckpoint(dir);
      try {
        const store = await WeightStore.open(checkpoint);
        const rng = new Rng(11);

        const g = new Graph();
        const side = fields.section("vision_config").int("image_size");
        const pixels = g.input("pixel_values", "f32", ["batch", 3, side, side]);
        const { tokens, lastLayer } = imageSide(arch, g, store, fields, pixels);
        const d = fields.section("text_config").int("hidden_size");
        assert.equal(tokens.shape[2], d);
        const image = await runGraph(g, { tokens, lastLayer }, {
          pixel_values: randn([2, 3, side, side], rng),
        });
        const tokenStats = stats(image.tokens);
        assert.ok(tokenStats.finite, `${arch}: image tokens not finite`);
        assert.ok(tokenStats.std > 0.1 && tokenStats.std < 10, `${arch}: ${tokenStats.std}`);
        assert.ok(stats(image.lastLayer).maxAbs < 50, `${arch}: vision activations`);

        const decoder = await loadDecoder({
          config: fields.section("text_config"),
          store,
          prefix: "language_model.", // in all three layouts
        });
        const traced = forwardGraph(decoder);
        const vocab = decoder.config.vocabSize, n = 2 * 9;
        const ids = BigInt64Array.from({ length: n }, () => BigInt(rng.int(vocab)));
        const out = await runTraced(traced, {
          input_ids: new Tensor("i64", [2, 9], ids),
          attention_mask: new Tensor("i64", [2, 9], new BigInt64Array(n).fill(1n)),
        }, { cacheDir: join(parent, "cache") });
        assert.deepEqual(out.logits.shape, [2, 9, vocab]);
        const logits = stats(out.logits);
        assert.ok(logits.finite, `${arch}: logits not finite`);
        assert.ok(logits.std > 0.3 && logits.std < 5, `${arch}: logits std ${logits.std}`);
        const last = stats(out[`layer_out.${decoder.config.numLayers - 1}`]);
        assert.ok(last.finite && last.maxAbs < 50, `${arch}: residual max ${last.maxAbs}`);

        const used = new Set([...externals(g), ...externals(traced.graph)]);
        const stored = (await checkpoint.tensors()).map((t) => t.name);
        assert.deepEqual(stored.filter((n) => !used.has(n)), [], "tensors no loader reads");
        assert.equal(used.size, stored.length);
      } finally {
        checkpoint.close();
      }
    });
  });
}

Deno.test("tiny models: --layers and --hidden reach the decoder's config and weights", async () => {
  await withTempDir(async (parent) => {
    for (const arch of TINY_ARCHS) {
      const dir = join(parent, arch);
      await writeTinyModel(dir, { arch, layers: 2, hidden: 48 });
      const fields = await ConfigFields.read(join(dir, "config.json"));
      const checkpoint = await openCheckpoint(dir);
      try {
        const store = await WeightStore.open(checkpoint);
        const decoder = await loadDecoder({
          config: fields.section("text_config"),
          store,
          prefix: "language_model.",
        });
        assert.equal(decoder.config.numLayers, 2);
        assert.equal(decoder.config.hiddenSize, 48);
        assert.ok(
          !(await checkpoint.tensors()).some((t) =>
            t.name.includes(".layers.2.") && t.name.startsWith("language_model.")
          ),
        );
        const g = new Graph();
        const side = fields.section("vision_config").int("image_size");
        const pixels = g.input("pixel_values", "f32", ["batch", 3, side, side]);
        assert.equal(imageSide(arch, g, store, fields, pixels).tokens.shape[2], 48);
      } finally {
        checkpoint.close();
      }
    }
    await assert.rejects(
      writeTinyModel(join(parent, "bad"), { arch: "llava", hidden: 36 }),
      /hidden must be a multiple of 8/,
    );
    await assert.rejects(
      writeTinyModel(join(parent, "bad"), { arch: "llava", layers: 0 }),
      /layers must be an integer >= 1/,
    );
    await assert.rejects(writeTinyModel(join(parent, "bad"), { arch: "llava", seed: -1 }), /seed/);
    assert.deepEqual(await listDir(parent), [...TINY_ARCHS].sort());
  });
});

Deno.test("tiny models: the same seed gives the same bytes, another seed other weights", async () => {
  await withTempDir(async (parent) => {
    for (const arch of TINY_ARCHS) {
      await writeTinyModel(join(parent, "a"), { arch, seed: 7, force: true });
      await writeTinyModel(join(parent, "b"), { arch, seed: 7, force: true });
      await writeTinyModel(join(parent, "c"), { arch, seed: 8, force: true });
      const [a, b, c] = await Promise.all(["a", "b", "c"].map((d) => readFiles(join(parent, d))));
      for (const f of TINY_FILES.v4) {
        assert.deepEqual(a.get(f), b.get(f), `${arch} ${f}: same seed`);
        if (f !== "model.safetensors") assert.deepEqual(a.get(f), c.get(f), `${arch} ${f}`);
      }
      const wa = a.get("model.safetensors")!, wc = c.get("model.safetensors")!;
      assert.equal(wa.length, wc.length);
      let differ = 0;
      for (let i = 0; i < wa.length; i += 4) if (wa[i] !== wc[i]) differ++;
      assert.ok(differ > wa.length / 8, `${arch}: only ${differ} words differ between seeds`);
    }
  });
});

Deno.test("tiny models: refuse a non-empty directory unless force; no temporary left behind", async () => {
  await withTempDir(async (parent) => {
    const dir = join(parent, "model");
    await Deno.mkdir(dir);
    await writeTinyModel(dir, { arch: "blip2-opt" }); // an empty directory is fine
    const before = await readFiles(dir);
    await Deno.writeTextFile(join(dir, "notes.txt"), "keep me");
    await assert.rejects(
      writeTinyModel(dir, { arch: "llava" }),
      (e: Error) => e.message.includes(dir) && /not empty \(pass --force/.test(e.message),
    );
    assert.equal(await Deno.readTextFile(join(dir, "notes.txt")), "keep me");
    assert.deepEqual(await readFiles(dir), before);
    assert.deepEqual(await listDir(parent), ["model"]);

    await writeTinyModel(dir, { arch: "llava", force: true });
    assert.deepEqual(await listDir(dir), [...TINY_FILES.v4]);
    assert.equal((await readJson(join(dir, "config.json"))).model_type, "llava");
    assert.deepEqual(await listDir(parent), ["model"]);

    await Deno.writeTextFile(join(parent, "file"), "x");
    await assert.rejects(
      writeTinyModel(join(parent, "file"), { arch: "llava", force: true }),
      /file exists and is not a directory/,
    );
    await writeTinyModel(join(parent, "new", "nested"), { arch: "llava" });
    assert.deepEqual(await listDir(join(parent, "new", "nested")), [...TINY_FILES.v4]);
    assert.deepEqual(await listDir(parent), ["file", "model", "new"]);
  });
});
