import assert from "node:assert/strict";
import { join } from "node:path";
import { loadTokenizer } from "../../src/io/tokenizer.ts";
import {
  byteLevelAlphabet,
  TINY_CORPUS,
  trainBpe,
  writeLlamaTokenizer,
  writeOptTokenizer,
} from "../../src/models/tiny/tokenizer.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "liveedit-tiny-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

const ROUND_TRIP = [
  TINY_CORPUS.slice(0, 200),
  "Hello, World! The ANSWER is 42.",
  "Grüße aus Köln — ça va? Ελληνικά, русский, 中文, 😀👍🏽",
  "tabs\tand\nnew lines\r\n and   runs   of spaces ",
  "'s 've 're don't",
];

Deno.test("trainBpe merges the most frequent pair first, ties by sort order", () => {
  const merges = trainBpe([
    { symbols: ["l", "o", "w"], count: 5 },
    { symbols: ["l", "o", "w", "e", "r"], count: 2 },
    { symbols: ["n", "e", "w", "e", "r"], count: 6 },
  ], 3);
  // Pair counts: "e r" 8, "w e" 8, "l o" 7, "o w" 7, "n e" 6, "e w" 6: the tie goes to
  // "e r" < "w e"; then "w er" (8) leads "l o" (7), which comes next ("o w" is down to 5).
  assert.deepEqual(merges, [["e", "r"], ["w", "er"], ["l", "o"]]);
  assert.throws(() => trainBpe([{ symbols: ["a", "b"], count: 1 }], 2), /only 1 new tokens/);
});

Deno.test("OPT-style files: ids 0..3 special, 256 byte symbols, exactly vocabSize ids", async () => {
  await withTempDir(async (dir) => {
    await writeOptTokenizer(dir, { vocabSize: 330 });
    const json = await readJson(join(dir, "tokenizer.json"));
    const model = json.model as { vocab: Record<string, number>; merges: unknown[] };
    assert.deepEqual(
      ["<s>", "<pad>", "</s>", "<unk>"].map((t) => model.vocab[t]),
      [0, 1, 2, 3],
    );
    const alphabet = byteLevelAlphabet();
    assert.equal(new Set(alphabet).size, 256);
    assert.equal(alphabet[32], "\u0120"); // space is "Ġ"
    assert.equal(model.vocab[alphabet[97]], 4 + 97);
    assert.equal(Object.keys(model.vocab).length, 330);
    assert.equal(model.merges.length, 70);
    const config = await readJson(join(dir, "tokenizer_config.json"));
    assert.equal(config.add_bos_token, true);
    assert.equal(config.bos_token, "</s>");
    assert.equal(config.tokenizer_class, "GPT2Tokenizer");
    const map = await readJson(join(dir, "special_tokens_map.json"));
    assert.deepEqual(
      ["bos_token", "eos_token", "unk_token", "pad_token"].map((k) =>
        (map[k] as { content: string }).content
      ),
      ["</s>", "</s>", "</s>", "<pad>"],
    );
    const tok = await loadTokenizer(dir);
    assert.equal(tok.vocabSize, 330);
    for (const text of ROUND_TRIP) {
      assert.equal(tok.decode(tok.encode(text), { skipSpecialTokens: true }), text);
    }
    // The learnt merges compress the corpus below one token per byte.
    const sample = TINY_CORPUS.slice(0, 300);
    assert.ok(tok.encode(sample, { addSpecialTokens: false }).length < sample.length * 0.6);
  });
});

Deno.test("LLaMA-style files: <unk> <s> </s>, <0x00>..<0xFF>, added tokens at the end", async () => {
  await withTempDir(async (dir) => {
    await writeLlamaTokenizer(dir, { vocabSize: 360, imageToken: true, padToken: true });
    const json = await readJson(join(dir, "tokenizer.json"));
    const model = json.model as { vocab: Record<string, number>; byte_fallback: boolean };
    assert.equal(model.byte_fallback, true);
    assert.deepEqual(["<unk>", "<s>", "</s>"].map((t) => model.vocab[t]), [0, 1, 2]);
    assert.equal(model.vocab["<0x00>"], 3);
    assert.equal(model.vocab["<0xFF>"], 258);
    assert.equal(Object.keys(model.vocab).length, 358); // + <image>, <pad> as added tokens
    const normalizer = json.normalizer as { normalizers: { type: string }[] };
    assert.deepEqual(normalizer.normalizers.map((n) => n.type), ["Prepend", "Replace"]);
    const added = json.added_tokens as { id: number; content: string }[];
    assert.deepEqual(added.slice(-2).map((t) => [t.id, t.content]), [[358, "<image>"], [
      359,
      "<pad>",
    ]]);
    const config = await readJson(join(dir, "tokenizer_config.json"));
    assert.equal(config.add_bos_token, true);
    assert.equal(config.add_eos_token, false);
    assert.equal(config.pad_token, "<pad>");
    const tok = await loadTokenizer(dir);
    assert.equal(tok.vocabSize, 360);
    for (const text of ROUND_TRIP) {
      const ids = tok.encode(text);
      assert.equal(ids[0], 1);
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text);
    }
    // Upper case is not in the corpus: "H" (0x48) falls back to its byte token.
    assert.ok(tok.tokenize("Hi").includes("<0x48>"));
  });
});

Deno.test("vocabSize below the fixed part is an error naming the minimum", async () => {
  await withTempDir(async (dir) => {
    await assert.rejects(
      writeOptTokenizer(dir, { vocabSize: 259 }),
      /vocabSize must be an integer >= 260/,
    );
    await assert.rejects(writeLlamaTokenizer(dir, { vocabSize: 270 }), (e: Error) => {
      const min = Number(/>= (\d+)/.exec(e.message)?.[1]);
      assert.ok(min > 259 && min <= 300, `minimum ${min}`);
      return /character tokens/.test(e.message);
    });
    await assert.rejects(
      writeOptTokenizer(dir, { vocabSize: 300, corpus: "ab ab" }),
      /corpus yields only/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  });
});
