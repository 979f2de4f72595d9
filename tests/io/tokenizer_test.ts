import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTokenizer } from "../../src/io/tokenizer.ts";
import { writeLlamaTokenizer, writeOptTokenizer } from "../../src/models/tiny/tokenizer.ts";
import { withTempDir } from "./_helpers.ts";

const TEXTS = [
  "a photo of a cat",
  "What is shown in this image? The answer is:",
  "naïve café, Ünïcødé → 日本語 🙂",
  "  two  spaces\nand a new line\t tab",
  "",
];

async function editJson(path: string, edit: (json: Record<string, unknown>) => void) {
  const json = JSON.parse(await Deno.readTextFile(path));
  edit(json);
  await Deno.writeTextFile(path, JSON.stringify(json));
}

/** A hand-written tokenizer.json: BPE over characters with two merges, no normalizer. */
const HAND_MADE = {
  added_tokens: [{ id: 0, content: "<s>", special: true, normalized: false }],
  normalizer: null,
  pre_tokenizer: { type: "WhitespaceSplit" },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [],
    special_tokens: { "<s>": { id: "<s>", ids: [0], tokens: ["<s>"] } },
  },
  decoder: null,
  model: {
    type: "BPE",
    unk_token: "<unk>",
    vocab: { "<s>": 0, "<unk>": 1, a: 2, b: 3, ab: 4, abb: 5 },
    merges: ["a b", "ab b"],
  },
};

Deno.test("a hand-written BPE tokenizer.json encodes by its merges; the template adds <s>", async () => {
  await withTempDir(async (dir) => {
    await Deno.writeTextFile(join(dir, "tokenizer.json"), JSON.stringify(HAND_MADE));
    const tok = await loadTokenizer(dir);
    // "abbab" -> a b b a b -> ab b ab -> abb ab; "c" is unknown.
    assert.deepEqual(tok.encode("abbab c"), [0, 5, 4, 1]);
    assert.deepEqual(tok.encode("abbab", { addSpecialTokens: false }), [5, 4]);
    assert.deepEqual(tok.prefixIds, [0]);
    assert.equal(tok.vocabSize, 6);
    assert.equal(tok.bos, undefined); // no tokenizer_config.json: no named special tokens
  });
});

Deno.test("OPT-style: ids start with </s> = 2 and text round-trips, non-ASCII included", async () => {
  await withTempDir(async (dir) => {
    await writeOptTokenizer(dir, { vocabSize: 400 });
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.bos, { token: "</s>", id: 2 });
    assert.deepEqual(tok.eos, { token: "</s>", id: 2 });
    assert.deepEqual(tok.pad, { token: "<pad>", id: 1 });
    assert.equal(tok.vocabSize, 400);
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      assert.equal(ids[0], 2, `first id of ${JSON.stringify(text)}`);
      assert.equal(ids.filter((id) => id === 2).length, 1);
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text);
      assert.equal(tok.decode(ids), `</s>${text}`);
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids.slice(1));
    }
    // GPT-2 byte-level pieces: a leading space is part of the word ("Ġ").
    assert.deepEqual(tok.tokenize("a cat").slice(0, 1), ["a"]);
    assert.ok(tok.tokenize("a cat").slice(1).join("").startsWith("\u0120"));
  });
});

Deno.test("LLaMA-style: ids start with <s> = 1, unseen characters use byte fallback", async () => {
  await withTempDir(async (dir) => {
    await writeLlamaTokenizer(dir, { vocabSize: 420, imageToken: true });
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.bos, { token: "<s>", id: 1 });
    assert.deepEqual(tok.eos, { token: "</s>", id: 2 });
    assert.deepEqual(tok.unk, { token: "<unk>", id: 0 });
    for (const text of TEXTS) {
      const ids = tok.encode(text);
      assert.equal(ids[0], 1, `first id of ${JSON.stringify(text)}`);
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text);
    }
    // "é" (U+00E9) is not in the corpus: its UTF-8 bytes C3 A9 become byte tokens.
    const pieces = tok.tokenize("café");
    assert.deepEqual(pieces.slice(-2), ["<0xC3>", "<0xA9>"]);
    assert.deepEqual(tok.encode("é", { addSpecialTokens: false }).slice(-2), [
      tok.idOf("<0xC3>"),
      tok.idOf("<0xA9>"),
    ]);
    assert.equal(tok.idOf("<0xC3>"), 3 + 0xc3);
    // The metaspace normalizer: words carry "▁".
    assert.equal(tok.tokenize("a")[0], "\u2581a");
    assert.ok(!tok.encode("a photo of a cat").includes(tok.unk!.id));
  });
});

Deno.test("LLaVA's <image> added token: one id, looked up by imageTokenId", async () => {
  await withTempDir(async (dir) => {
    await writeLlamaTokenizer(dir, { vocabSize: 420, imageToken: true, padToken: true });
    const tok = await loadTokenizer(dir);
    assert.equal(tok.imageTokenId(), 418);
    assert.deepEqual(tok.pad, { token: "<pad>", id: 419 });
    const ids = tok.encode("USER: <image>\nWhat is it?");
    assert.equal(ids.filter((id) => id === 418).length, 1);
    assert.ok(tok.specialIds.includes(418));
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }).includes("<image>"), false);
    assert.ok(tok.decode(ids).includes("<image>"));
  });
  await withTempDir(async (dir) => {
    await writeLlamaTokenizer(dir, { vocabSize: 420 });
    const tok = await loadTokenizer(dir);
    assert.throws(
      () => tok.imageTokenId(),
      (e: Error) => e.message.includes("<image>") && e.message.includes(dir),
    );
  });
});

Deno.test("add_bos_token / add_eos_token decide; absent flags defer to the template", async () => {
  await withTempDir(async (dir) => {
    await writeLlamaTokenizer(dir, { vocabSize: 420 });
    const configPath = join(dir, "tokenizer_config.json");
    await editJson(configPath, (c) => {
      c.add_bos_token = false;
      c.add_eos_token = true;
    });
    let tok = await loadTokenizer(dir);
    let ids = tok.encode("a cat");
    assert.notEqual(ids[0], 1);
    assert.equal(ids.at(-1), 2);

    await editJson(configPath, (c) => {
      delete c.add_bos_token;
      delete c.add_eos_token;
    });
    tok = await loadTokenizer(dir);
    ids = tok.encode("a cat");
    assert.equal(ids[0], 1); // from the TemplateProcessing post-processor
    assert.notEqual(ids.at(-1), 2);

    await editJson(join(dir, "tokenizer.json"), (t) => t.post_processor = null);
    tok = await loadTokenizer(dir);
    assert.deepEqual(tok.prefixIds, []);
  });
});

Deno.test("special_tokens_map.json overrides tokenizer_config.json; string and object forms", async () => {
  await withTempDir(async (dir) => {
    await writeOptTokenizer(dir, { vocabSize: 300 });
    await editJson(join(dir, "special_tokens_map.json"), (m) => m.eos_token = "<s>");
    await editJson(join(dir, "tokenizer_config.json"), (c) => c.unk_token = { content: "<unk>" });
    const tok = await loadTokenizer(dir);
    assert.deepEqual(tok.eos, { token: "<s>", id: 0 });
    assert.deepEqual(tok.unk, { token: "</s>", id: 2 }); // the map's "</s>" wins
    await Deno.remove(join(dir, "special_tokens_map.json"));
    assert.deepEqual((await loadTokenizer(dir)).unk, { token: "<unk>", id: 3 });
  });
});

Deno.test("transformers 5 tokenizer_config.json: extra_special_tokens (list or object) are special; no map needed", async () => {
  await withTempDir(async (dir) => {
    await writeOptTokenizer(dir, { vocabSize: 300, layout: "v5" });
    await assert.rejects(Deno.stat(join(dir, "special_tokens_map.json")));
    let tok = await loadTokenizer(dir);
    assert.deepEqual([tok.bos?.id, tok.eos?.id, tok.unk?.id, tok.pad?.id], [2, 2, 2, 1]);
    assert.deepEqual(tok.prefixIds, [2]); // from tokenizer.json's post-processor
    const a = tok.idOf("a"), b = tok.idOf("b");
    assert.equal(tok.decode([a, b], { skipSpecialTokens: true }), "ab");
    await editJson(join(dir, "tokenizer_config.json"), (c) => c.extra_special_tokens = ["a"]);
    tok = await loadTokenizer(dir);
    assert.ok(tok.specialIds.includes(a) && !tok.specialIds.includes(b));
    assert.equal(tok.decode([a, b], { skipSpecialTokens: true }), "b");
    await editJson(join(dir, "tokenizer_config.json"), (c) => {
      c.extra_special_tokens = { image_token: "b" };
      c.additional_special_tokens = [{ content: "a" }];
    });
    tok = await loadTokenizer(dir);
    assert.equal(tok.decode([a, b, a], { skipSpecialTokens: true }), "");
    await editJson(join(dir, "tokenizer_config.json"), (c) => c.extra_special_tokens = "b");
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) =>
        e.message.includes(join(dir, "tokenizer_config.json")) &&
        e.message.includes("'extra_special_tokens' must be an array or an object"),
    );
  });
});

Deno.test("decode: empty list, bad ids, and skipSpecialTokens", async () => {
  await withTempDir(async (dir) => {
    await writeOptTokenizer(dir, { vocabSize: 300 });
    const tok = await loadTokenizer(dir);
    assert.equal(tok.decode([]), "");
    assert.equal(tok.decode([2, 1, 1], { skipSpecialTokens: true }), "");
    assert.throws(() => tok.decode([5, 300]), /token id 300 is not in the vocabulary \(size 300\)/);
    assert.throws(() => tok.decode([1.5]), /token id 1.5/);
    assert.equal(tok.tokenOf(2), "</s>");
    assert.equal(tok.idOf("<pad>"), 1);
    assert.equal(tok.has("nope-not-a-token"), false);
    assert.throws(() => tok.idOf("nope-not-a-token"), /nope-not-a-token/);
  });
});

Deno.test("errors: missing tokenizer.json names the directory, malformed files name the file", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) => e.message.includes(dir) && e.message.includes("tokenizer.json"),
    );
    await writeOptTokenizer(dir, { vocabSize: 300 });
    const configPath = join(dir, "tokenizer_config.json");
    await Deno.writeTextFile(configPath, "{ broken");
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) => e.message.includes(configPath) && /malformed JSON/.test(e.message),
    );
    await Deno.remove(join(dir, "special_tokens_map.json")); // it would override bos_token
    await Deno.writeTextFile(configPath, JSON.stringify({ bos_token: "<nope>" }));
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) => e.message.includes(configPath) && e.message.includes("'bos_token'"),
    );
    await Deno.writeTextFile(configPath, JSON.stringify({ add_bos_token: "yes" }));
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) => e.message.includes(configPath) && e.message.includes("'add_bos_token'"),
    );
    await Deno.writeTextFile(join(dir, "tokenizer.json"), "[1, 2]");
    await assert.rejects(
      loadTokenizer(dir),
      (e: Error) => e.message.includes(join(dir, "tokenizer.json")),
    );
  });
});
