/**
 * Writers of small but real Hugging Face tokenizers for tiny test models: a GPT-2-style
 * byte-level BPE as OPT (BLIP-2) uses and a LLaMA-style BPE with byte fallback as LLaVA and
 * MiniGPT-4 (Vicuna) use. Each writes `tokenizer.json` and `tokenizer_config.json` (and
 * `special_tokens_map.json` in the `v4` layout) as `transformers` saves them (see `layout.ts`),
 * with merges learnt by {@linkcode trainBpe} from a built-in English corpus (or the caller's),
 * so the result loads with `src/io/tokenizer.ts` and with `AutoTokenizer`.
 *
 * @module
 */
import { join } from "node:path";
import { writeJsonAtomic } from "../../io/atomic.ts";
import {
  SPECIAL_TOKENS_MAP_FILE,
  TOKENIZER_CONFIG_FILE,
  TOKENIZER_FILE,
} from "../../io/tokenizer.ts";
import { sortKeys } from "./configs.ts";
import type { HfLayout } from "./layout.ts";

/**
 * The default training text: lower-case ASCII English about images, questions and edits, so
 * upper case and non-ASCII characters exercise the byte paths.
 */
export const TINY_CORPUS: string = [
  "a photo of a cat sitting on a red chair in the kitchen.",
  "a photo of a dog running on the green grass in the park.",
  "what is shown in this image? the answer is a small brown dog.",
  "what color is the car in the picture? the answer is blue.",
  "the man is riding a bike down the street near the old station.",
  "two children are playing with a ball on the sandy beach.",
  "there is a bowl of fresh fruit on the wooden table.",
  "the woman holds an umbrella while it is raining in the city.",
  "which animal is in the photo? the answer is a horse.",
  "a plate of pasta with tomato sauce and cheese on top.",
  "the train is arriving at the station in the morning.",
  "a bird is standing on the edge of the water looking for fish.",
  "how many people are in the image? the answer is three.",
  "the knowledge of the model is edited so the new answer is given.",
  "after the edit the model answers the question with the new target.",
  "the locality of the edit means other answers do not change.",
  "a large white building with many windows and a clock tower.",
  "someone is cooking dinner in a small kitchen with a stove.",
  "a group of people are standing around a table at a party.",
  "the sky is clear and the mountains are covered with snow.",
  "a close up of a sandwich with lettuce, tomato and bread.",
  "is the light on in the room? the answer is yes, it is.",
  "where is the cat sleeping? the answer is on the sofa.",
  "the image shows a street sign next to a tall green tree.",
].join(" ");

/** A word of a BPE training corpus: its symbols and how often it occurs. */
export interface BpeWord {
  /** The word split into base symbols (characters, or byte-level characters). */
  readonly symbols: readonly string[];
  /** Its number of occurrences. */
  readonly count: number;
}

/**
 * Learns BPE merges until they have created `newTokens` distinct tokens, merging the most
 * frequent adjacent pair first (ties: the pair whose `"a b"` sorts first, so the result is
 * deterministic). Throws when the corpus runs out of pairs earlier, naming how many it made.
 *
 * @example
 * ```ts
 * import { trainBpe } from "./tokenizer.ts";
 * const merges = trainBpe([{ symbols: ["a", "b", "a", "b"], count: 1 }], 2);
 * if (merges[0].join(" ") !== "a b" || merges[1].join(" ") !== "ab ab") throw new Error("bpe");
 * ```
 */
export function trainBpe(words: readonly BpeWord[], newTokens: number): [string, string][] {
  const state = words.map((w) => ({ symbols: [...w.symbols], count: w.count }));
  const made = new Set<string>();
  const merges: [string, string][] = [];
  while (made.size < newTokens) {
    const counts = new Map<string, number>();
    for (const w of state) {
      for (let i = 0; i + 1 < w.symbols.length; i++) {
        const key = `${w.symbols[i]} ${w.symbols[i + 1]}`;
        counts.set(key, (counts.get(key) ?? 0) + w.count);
      }
    }
    let best: string | undefined;
    let bestCount = 0;
    for (const [key, n] of counts) {
      if (n > bestCount || (n === bestCount && best !== undefined && key < best)) {
        best = key;
        bestCount = n;
      }
    }
    if (best === undefined) {
      throw new Error(
        `BPE training: the corpus yields only ${made.size} new tokens, ${newTokens} requested`,
      );
    }
    const [a, b] = best.split(" ") as [string, string];
    merges.push([a, b]);
    made.add(a + b);
    for (const w of state) {
      const out: string[] = [];
      for (let i = 0; i < w.symbols.length; i++) {
        if (i + 1 < w.symbols.length && w.symbols[i] === a && w.symbols[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.symbols[i]);
      }
      w.symbols = out;
    }
  }
  return merges;
}

/** Options of {@linkcode writeOptTokenizer}. */
export interface OptTokenizerOptions {
  /** Total number of ids: 4 special tokens + 256 byte symbols + learnt merges (>= 260). */
  readonly vocabSize: number;
  /** Training text for the merges (default {@linkcode TINY_CORPUS}). */
  readonly corpus?: string;
  /** `model_max_length` of `tokenizer_config.json` (default 2048). */
  readonly modelMaxLength?: number;
  /** The files' layout (default `v4`). */
  readonly layout?: HfLayout;
}

/** The OPT special tokens and their ids. */
const OPT_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"] as const;
/** The GPT-2 pre-tokenizer's split pattern (what the ByteLevel pre-tokenizer uses). */
const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * The byte-level alphabet of GPT-2: the printable character each byte 0..255 stands for
 * (printable Latin-1 bytes map to themselves, the others to U+0100 onwards).
 */
export function byteLevelAlphabet(): string[] {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : next++));
  }
  return out;
}

/**
 * Writes an OPT-style tokenizer into `dir`: GPT-2 byte-level BPE, ids `<s>`=0 `<pad>`=1
 * `</s>`=2 `<unk>`=3, then the 256 byte symbols, then `vocabSize - 260` learnt tokens; a
 * `TemplateProcessing` post-processor and `add_bos_token: true` that put `</s>` first, and
 * OPT's special tokens (BOS = EOS = UNK = `</s>`, PAD = `<pad>`).
 */
export async function writeOptTokenizer(dir: string, options: OptTokenizerOptions): Promise<void> {
  const base = OPT_SPECIALS.length + 256;
  checkVocabSize(options.vocabSize, base, "an OPT-style tokenizer (4 special + 256 byte tokens)");
  const alphabet = byteLevelAlphabet();
  const encoder = new TextEncoder();
  const counts = new Map<string, number>();
  for (const piece of (options.corpus ?? TINY_CORPUS).match(GPT2_SPLIT) ?? []) {
    const word = [...encoder.encode(piece)].map((b) => alphabet[b]).join("");
    counts.set(word, (counts.get(word) ?? 0) + 1);
  }
  const merges = trainBpe(
    [...counts].map(([w, count]) => ({ symbols: [...w], count })),
    options.vocabSize - base,
  );
  const vocab = buildVocab([...OPT_SPECIALS, ...alphabet], merges, options.vocabSize);
  const added = OPT_SPECIALS.map((content, id) => addedToken(id, content, true));
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  await writeJsonAtomic(join(dir, TOKENIZER_FILE), {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", ...byteLevel },
    post_processor: bosTemplate("</s>", 2),
    decoder: { type: "ByteLevel", ...byteLevel },
    model: bpeModel(vocab, merges, { unk: null, byteFallback: false }),
  });
  const specials = { bos: "</s>", eos: "</s>", unk: "</s>", pad: "<pad>" };
  await writeTokenizerSettings(dir, options.layout ?? "v4", specials, {
    add_bos_token: true,
    added_tokens_decoder: addedTokensDecoder(added),
  }, {
    add_prefix_space: false,
    clean_up_tokenization_spaces: false,
    errors: "replace",
    model_max_length: options.modelMaxLength ?? 2048,
    tokenizer_class: "GPT2Tokenizer",
  });
}

/** Options of {@linkcode writeLlamaTokenizer}. */
export interface LlamaTokenizerOptions {
  /**
   * Total number of ids: 3 special + 256 byte tokens + the corpus's characters + learnt
   * merges + the optional `<image>`/`<pad>` added tokens (which take the last ids).
   */
  readonly vocabSize: number;
  /** Add LLaVA's `<image>` added token (default `false`). */
  readonly imageToken?: boolean;
  /** Add a `<pad>` added token and make it the PAD token, as llava-hf does (default `false`). */
  readonly padToken?: boolean;
  /** Training text for the merges (default {@linkcode TINY_CORPUS}). */
  readonly corpus?: string;
  /** `model_max_length` of `tokenizer_config.json` (default 2048). */
  readonly modelMaxLength?: number;
  /** The files' layout (default `v4`). */
  readonly layout?: HfLayout;
}

const LLAMA_SPECIALS = ["<unk>", "<s>", "</s>"] as const;
const METASPACE = "\u2581";

/**
 * Writes a LLaMA-style tokenizer into `dir`, serialized as `LlamaTokenizerFast` saves it: BPE
 * with `byte_fallback`, a `Prepend("▁")` + `Replace(" ", "▁")` normalizer, a
 * `Replace`/`ByteFallback`/`Fuse`/`Strip` decoder, ids `<unk>`=0 `<s>`=1 `</s>`=2, then
 * `<0x00>`..`<0xFF>`, the corpus's characters, learnt merges (never across words), and
 * optionally `<image>` and `<pad>` as added tokens with the last ids. Characters outside the
 * corpus encode as their UTF-8 byte tokens.
 */
export async function writeLlamaTokenizer(
  dir: string,
  options: LlamaTokenizerOptions,
): Promise<void> {
  const normalized = METASPACE + (options.corpus ?? TINY_CORPUS).replaceAll(" ", METASPACE);
  const chars = [...new Set(normalized)].sort();
  const extra = [
    ...(options.imageToken ? ["<image>"] : []),
    ...(options.padToken ? ["<pad>"] : []),
  ];
  const base = LLAMA_SPECIALS.length + 256 + chars.length;
  checkVocabSize(
    options.vocabSize,
    base + extra.length,
    `a LLaMA-style tokenizer (3 special + 256 byte + ${chars.length} character tokens${
      extra.length > 0 ? ` + ${extra.join(" ")}` : ""
    })`,
  );
  const counts = new Map<string, number>();
  for (const word of normalized.split(METASPACE)) {
    if (word !== "") counts.set(METASPACE + word, (counts.get(METASPACE + word) ?? 0) + 1);
  }
  const merges = trainBpe(
    [...counts].map(([w, count]) => ({ symbols: [...w], count })),
    options.vocabSize - base - extra.length,
  );
  const bytes = Array.from(
    { length: 256 },
    (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`,
  );
  const firstExtra = options.vocabSize - extra.length;
  const vocab = buildVocab([...LLAMA_SPECIALS, ...bytes, ...chars], merges, firstExtra);
  const added = [
    ...LLAMA_SPECIALS.map((content, id) => addedToken(id, content, false)),
    ...extra.map((content, i) => addedToken(firstExtra + i, content, false)),
  ];
  await writeJsonAtomic(join(dir, TOKENIZER_FILE), {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: METASPACE },
        { type: "Replace", pattern: { String: " " }, content: METASPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: bosTemplate("<s>", 1),
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: METASPACE }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: bpeModel(vocab, merges, { unk: "<unk>", byteFallback: true }),
  });
  const specials = {
    bos: "<s>",
    eos: "</s>",
    unk: "<unk>",
    pad: options.padToken ? "<pad>" : undefined,
  };
  await writeTokenizerSettings(dir, options.layout ?? "v4", specials, {
    add_bos_token: true,
    add_eos_token: false,
    added_tokens_decoder: addedTokensDecoder(added),
  }, {
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: options.modelMaxLength ?? 2048,
    padding_side: "left",
    sp_model_kwargs: {},
    tokenizer_class: "LlamaTokenizer",
    use_default_system_prompt: false,
  });
}

/**
 * Writes `tokenizer_config.json` with the special tokens `specials` and the `common` fields,
 * keys sorted: in the `v4` layout with the `v4Only` fields (`add_bos_token`,
 * `added_tokens_decoder`) and a `special_tokens_map.json` next to it; in the `v5` layout with
 * `backend: "tokenizers"` and no map (what `encode` adds then comes from `tokenizer.json`'s
 * post-processor).
 */
async function writeTokenizerSettings(
  dir: string,
  layout: HfLayout,
  specials: Record<"bos" | "eos" | "unk" | "pad", string | undefined>,
  v4Only: Record<string, unknown>,
  common: Record<string, unknown>,
): Promise<void> {
  const roles = specialFields(specials, (t) => t);
  if (layout === "v4") {
    await writeJsonAtomic(
      join(dir, TOKENIZER_CONFIG_FILE),
      sortKeys({ ...v4Only, ...roles, ...common }),
    );
    await writeJsonAtomic(join(dir, SPECIAL_TOKENS_MAP_FILE), specialFields(specials, tokenEntry));
  } else {
    await writeJsonAtomic(
      join(dir, TOKENIZER_CONFIG_FILE),
      sortKeys({ ...roles, ...common, backend: "tokenizers", is_local: true }),
    );
  }
}

function checkVocabSize(vocabSize: number, min: number, what: string): void {
  if (!Number.isInteger(vocabSize) || vocabSize < min) {
    throw new Error(`vocabSize must be an integer >= ${min} for ${what}, got ${vocabSize}`);
  }
}

/** Ids for `base` then the merged tokens, in order; checks they come to `size` distinct ids. */
function buildVocab(
  base: readonly string[],
  merges: readonly [string, string][],
  size: number,
): Record<string, number> {
  const vocab = new Map<string, number>();
  for (const token of [...base, ...merges.map(([a, b]) => a + b)]) {
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  }
  if (vocab.size !== size) {
    throw new Error(`tiny tokenizer: built ${vocab.size} distinct tokens, expected ${size}`);
  }
  return Object.fromEntries(vocab);
}

interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

function addedToken(id: number, content: string, normalized: boolean): AddedTokenJson {
  return {
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized,
    special: true,
  };
}

/** `added_tokens_decoder` of `tokenizer_config.json`: id → token without `id`. */
function addedTokensDecoder(added: readonly AddedTokenJson[]): Record<string, unknown> {
  return Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest]));
}

/** The `AddedToken` object form of a special token in `special_tokens_map.json`. */
function tokenEntry(content: string): Record<string, unknown> {
  return { content, lstrip: false, normalized: false, rstrip: false, single_word: false };
}

/** `bos_token`, `eos_token`, ... fields for the roles that are set, each written by `form`. */
function specialFields(
  tokens: Record<"bos" | "eos" | "unk" | "pad", string | undefined>,
  form: (content: string) => unknown,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [role, content] of Object.entries(tokens)) {
    if (content !== undefined) out[`${role}_token`] = form(content);
  }
  return out;
}

/** A `TemplateProcessing` post-processor that puts `bos` (id `id`) before each sequence. */
function bosTemplate(bos: string, id: number): Record<string, unknown> {
  const special = { SpecialToken: { id: bos, type_id: 0 } };
  return {
    type: "TemplateProcessing",
    single: [special, { Sequence: { id: "A", type_id: 0 } }],
    pair: [special, { Sequence: { id: "A", type_id: 0 } }, {
      SpecialToken: { id: bos, type_id: 1 },
    }, {
      Sequence: { id: "B", type_id: 1 },
    }],
    special_tokens: { [bos]: { id: bos, ids: [id], tokens: [bos] } },
  };
}

function bpeModel(
  vocab: Record<string, number>,
  merges: readonly [string, string][],
  { unk, byteFallback }: { unk: string | null; byteFallback: boolean },
): Record<string, unknown> {
  return {
    type: "BPE",
    dropout: null,
    unk_token: unk,
    continuing_subword_suffix: null,
    end_of_word_suffix: null,
    fuse_unk: byteFallback,
    byte_fallback: byteFallback,
    ignore_merges: false,
    vocab,
    merges,
  };
}
