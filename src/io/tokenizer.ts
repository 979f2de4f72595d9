/**
 * Hugging Face tokenizers from a model directory: `tokenizer.json` (run by the pure-JS
 * `@huggingface/tokenizers`), plus `tokenizer_config.json` and `special_tokens_map.json` for the
 * special tokens and whether BOS/EOS are added.
 *
 * What `encode(text)` adds mirrors `AutoTokenizer` for the checkpoints LiveEdit edits:
 *
 * - `add_bos_token` / `add_eos_token` in `tokenizer_config.json`, when present, decide (HF's
 *   `LlamaTokenizerFast` rebuilds its post-processor from them; OPT's `GPT2Tokenizer` config
 *   sets `add_bos_token: true`, so OPT ids start with `</s>` = 2 and LLaMA ids with `<s>` = 1).
 * - A flag that is absent falls back to the `TemplateProcessing` post-processor of
 *   `tokenizer.json` (the special tokens before `$A` are the BOS part, those after it the EOS
 *   part); any other post-processor adds nothing.
 *
 * Special tokens come from `tokenizer_config.json`, overridden by `special_tokens_map.json`
 * (the order `from_pretrained` applies them); each may be a string or an `AddedToken` object.
 * `transformers` 5 writes no `special_tokens_map.json`: its `tokenizer_config.json` names the
 * roles, lists the other special tokens as `extra_special_tokens` (4.x wrote
 * `additional_special_tokens`, and some 4.x versions an `extra_special_tokens` object), and
 * `tokenizer.json`'s added tokens say which tokens are special.
 * Decoding uses `clean_up_tokenization_spaces` from `tokenizer_config.json`, default `false`
 * (the current `transformers` default), so `decode(encode(text))` gives `text` back.
 *
 * @module
 */
import { Tokenizer } from "@huggingface/tokenizers";
import { join } from "node:path";
import { isPlainObject, readOptionalJsonObject } from "./json.ts";

/** File holding the tokenizer pipeline (normalizer, pre-tokenizer, model, decoder). */
export const TOKENIZER_FILE = "tokenizer.json";
/** File holding the tokenizer's settings (special tokens, `add_bos_token`, ...). */
export const TOKENIZER_CONFIG_FILE = "tokenizer_config.json";
/** File naming the special tokens (overrides {@linkcode TOKENIZER_CONFIG_FILE}). */
export const SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json";
/** The added token LLaVA puts where the image features go. */
export const IMAGE_TOKEN = "<image>";

/** Options of {@linkcode HfTokenizer.encode}. */
export interface EncodeOptions {
  /** Add the BOS/EOS tokens the tokenizer is configured to add (default `true`). */
  readonly addSpecialTokens?: boolean;
}

/** Options of {@linkcode HfTokenizer.decode}. */
export interface DecodeOptions {
  /**
   * Leave out special tokens: BOS, EOS, UNK, PAD, `additional_special_tokens` and added tokens
   * marked `special` (default `false`).
   */
  readonly skipSpecialTokens?: boolean;
}

/** The roles of special tokens, as named in `special_tokens_map.json`. */
export type SpecialTokenRole = "bos" | "eos" | "unk" | "pad";

const ROLES: readonly SpecialTokenRole[] = ["bos", "eos", "unk", "pad"];

/** A special token of one role: its text and id. */
export interface SpecialToken {
  /** The token's text, e.g. `</s>`. */
  readonly token: string;
  /** Its id in the vocabulary. */
  readonly id: number;
}

/**
 * A loaded tokenizer. Build it with {@linkcode loadTokenizer}.
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 * import { writeLlamaTokenizer } from "../models/tiny/tokenizer.ts";
 * const dir = await Deno.makeTempDir();
 * await writeLlamaTokenizer(dir, { vocabSize: 400 });
 * const tok = await loadTokenizer(dir);
 * const ids = tok.encode("a photo of a cat");
 * if (ids[0] !== tok.bos?.id) throw new Error("bos");
 * if (tok.decode(ids, { skipSpecialTokens: true }) !== "a photo of a cat") throw new Error("rt");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class HfTokenizer {
  /** The directory the tokenizer was loaded from. */
  readonly dir: string;
  /** Number of ids: one more than the largest id of the vocabulary and the added tokens. */
  readonly vocabSize: number;
  /** The BOS token, if the tokenizer has one. */
  readonly bos: SpecialToken | undefined;
  /** The EOS token, if the tokenizer has one. */
  readonly eos: SpecialToken | undefined;
  /** The unknown-token, if the tokenizer has one. */
  readonly unk: SpecialToken | undefined;
  /** The padding token, if the tokenizer has one. */
  readonly pad: SpecialToken | undefined;
  /** Ids `encode` puts before the text's ids (with `addSpecialTokens`). */
  readonly prefixIds: readonly number[];
  /** Ids `encode` puts after the text's ids (with `addSpecialTokens`). */
  readonly suffixIds: readonly number[];
  /** Ids that `decode` leaves out with `skipSpecialTokens`, ascending. */
  readonly specialIds: readonly number[];
  readonly #tokenizer: Tokenizer;
  readonly #vocab: ReadonlyMap<string, number>;
  readonly #special: ReadonlySet<number>;
  readonly #cleanUp: boolean;

  /** Use {@linkcode loadTokenizer}; this wraps already-parsed files of `dir`. */
  constructor(
    dir: string,
    tokenizerJson: Record<string, unknown>,
    config: Record<string, unknown>,
    specialMap: Record<string, unknown>,
  ) {
    this.dir = dir;
    const tokenizerPath = join(dir, TOKENIZER_FILE);
    const configPath = join(dir, TOKENIZER_CONFIG_FILE);
    if (!isPlainObject(tokenizerJson.model)) {
      throw new Error(`${tokenizerPath}: field 'model' must be an object`);
    }
    if (!Array.isArray(tokenizerJson.added_tokens ?? [])) {
      throw new Error(`${tokenizerPath}: field 'added_tokens' must be an array`);
    }
    try {
      this.#tokenizer = new Tokenizer(
        { ...tokenizerJson, added_tokens: tokenizerJson.added_tokens ?? [] },
        config,
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`${tokenizerPath}: cannot build the tokenizer: ${reason}`, { cause: error });
    }
    this.#vocab = this.#tokenizer.get_vocab(true);
    let maxId = -1;
    for (const id of this.#vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const tokens = {} as Record<SpecialTokenRole, SpecialToken | undefined>;
    for (const role of ROLES) {
      const key = `${role}_token`;
      const fromMap = key in specialMap;
      const where = fromMap ? join(dir, SPECIAL_TOKENS_MAP_FILE) : configPath;
      const text = tokenText(fromMap ? specialMap[key] : config[key], where, key);
      if (text === undefined) continue;
      const id = this.#vocab.get(text);
      if (id === undefined) {
        throw new Error(
          `${where}: field '${key}' = ${JSON.stringify(text)} is not a token of ${tokenizerPath}`,
        );
      }
      tokens[role] = { token: text, id };
    }
    this.bos = tokens.bos;
    this.eos = tokens.eos;
    this.unk = tokens.unk;
    this.pad = tokens.pad;

    const template = templateAffixes(tokenizerJson.post_processor, tokenizerPath);
    this.prefixIds = Object.freeze(
      this.#affix(config, "add_bos_token", this.bos, template.prefix, configPath),
    );
    this.suffixIds = Object.freeze(
      this.#affix(config, "add_eos_token", this.eos, template.suffix, configPath),
    );

    const special = new Set<number>();
    for (const t of [this.bos, this.eos, this.unk, this.pad]) if (t) special.add(t.id);
    for (const added of this.#tokenizer.get_added_tokens_decoder().values()) {
      if (added.special) special.add(added.id);
    }
    const additional = specialMap.additional_special_tokens != null
      ? { list: specialMap.additional_special_tokens, file: join(dir, SPECIAL_TOKENS_MAP_FILE) }
      : { list: config.additional_special_tokens, file: configPath };
    const extra = [
      ...extraTokens(additional.list, additional.file, "additional_special_tokens", false),
      ...extraTokens(config.extra_special_tokens, configPath, "extra_special_tokens", true),
    ];
    for (const text of extra) {
      const id = this.#vocab.get(text);
      if (id !== undefined) special.add(id);
    }
    this.#special = special;
    this.specialIds = Object.freeze([...special].sort((a, b) => a - b));

    const cleanUp = config.clean_up_tokenization_spaces ?? false;
    if (typeof cleanUp !== "boolean") {
      throw new Error(`${configPath}: field 'clean_up_tokenization_spaces' must be true or false`);
    }
    this.#cleanUp = cleanUp;
  }

  /**
   * The ids of `text`: the configured BOS/EOS ids around the ids of the text itself (see the
   * module docs), or just the latter with `addSpecialTokens: false`. Added tokens written in
   * the text (`<image>`) become their single id.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    const { ids } = this.#tokenizer.encode(text, { add_special_tokens: false });
    const bad = ids.findIndex((id) => id === undefined);
    if (bad >= 0) {
      throw new Error(
        `${join(this.dir, TOKENIZER_FILE)}: cannot encode ${
          JSON.stringify(text)
        }: a piece is not in the vocabulary and the model has no unk_token`,
      );
    }
    if (options.addSpecialTokens === false) return ids;
    return [...this.prefixIds, ...ids, ...this.suffixIds];
  }

  /** The token strings of `text` (no special tokens added), e.g. `["▁a", "▁cat"]`. */
  tokenize(text: string): string[] {
    return this.#tokenizer.tokenize(text, { add_special_tokens: false });
  }

  /**
   * The text of `ids`. Throws naming the id when one is not an integer in
   * `[0, vocabSize)` or not a token. An empty list decodes to `""`.
   */
  decode(ids: readonly number[], options: DecodeOptions = {}): string {
    for (const id of ids) this.tokenOf(id);
    const kept = options.skipSpecialTokens ? ids.filter((id) => !this.#special.has(id)) : ids;
    if (kept.length === 0) return "";
    return this.#tokenizer.decode([...kept], { clean_up_tokenization_spaces: this.#cleanUp });
  }

  /** True when `token` is in the vocabulary or an added token. */
  has(token: string): boolean {
    return this.#vocab.has(token);
  }

  /** The id of `token`; throws naming the token and the tokenizer when there is none. */
  idOf(token: string): number {
    const id = this.#vocab.get(token);
    if (id === undefined) {
      throw new Error(
        `${join(this.dir, TOKENIZER_FILE)}: no token ${JSON.stringify(token)} in the vocabulary ` +
          `or the added tokens`,
      );
    }
    return id;
  }

  /** The token string of `id`; throws naming the id when it is out of range or unused. */
  tokenOf(id: number): string {
    const token = Number.isInteger(id) && id >= 0 && id < this.vocabSize
      ? this.#tokenizer.id_to_token(id)
      : undefined;
    if (token === undefined) {
      throw new Error(
        `${
          join(this.dir, TOKENIZER_FILE)
        }: token id ${id} is not in the vocabulary (size ${this.vocabSize})`,
      );
    }
    return token;
  }

  /**
   * The id of LLaVA's `<image>` added token (or `token`); throws naming the tokenizer when the
   * checkpoint has none.
   */
  imageTokenId(token: string = IMAGE_TOKEN): number {
    return this.idOf(token);
  }

  #affix(
    config: Record<string, unknown>,
    flag: string,
    special: SpecialToken | undefined,
    fromTemplate: number[],
    configPath: string,
  ): number[] {
    const value = config[flag];
    if (value === undefined || value === null) return fromTemplate;
    if (typeof value !== "boolean") {
      throw new Error(`${configPath}: field '${flag}' must be true or false`);
    }
    if (!value) return [];
    if (special === undefined) {
      const role = flag === "add_bos_token" ? "bos_token" : "eos_token";
      throw new Error(`${configPath}: field '${flag}' is true but no '${role}' is set`);
    }
    return [special.id];
  }
}

/**
 * Loads the tokenizer of model directory `dir`: `tokenizer.json` (required; a missing one is
 * reported naming `dir`), `tokenizer_config.json` and `special_tokens_map.json` (both optional).
 * Malformed JSON is reported naming the file.
 */
export async function loadTokenizer(dir: string): Promise<HfTokenizer> {
  const tokenizerPath = join(dir, TOKENIZER_FILE);
  const tokenizerJson = await readOptionalJsonObject(tokenizerPath);
  if (tokenizerJson === undefined) {
    throw new Error(`model directory ${dir} has no ${TOKENIZER_FILE}`);
  }
  const config = await readOptionalJsonObject(join(dir, TOKENIZER_CONFIG_FILE)) ?? {};
  const specialMap = await readOptionalJsonObject(join(dir, SPECIAL_TOKENS_MAP_FILE)) ?? {};
  return new HfTokenizer(dir, tokenizerJson, config, specialMap);
}

/**
 * The token texts of a list of special tokens (`additional_special_tokens`,
 * `extra_special_tokens`): an array of entries, or with `named` also an object whose values
 * are the entries; absent or null is none.
 */
function extraTokens(value: unknown, file: string, field: string, named: boolean): string[] {
  if (value === undefined || value === null) return [];
  const entries = Array.isArray(value)
    ? value
    : named && isPlainObject(value)
    ? Object.values(value)
    : undefined;
  if (entries === undefined) {
    throw new Error(`${file}: field '${field}' must be an array${named ? " or an object" : ""}`);
  }
  return entries.flatMap((entry) => tokenText(entry, file, field) ?? []);
}

/** The text of a special-token entry: a string, an `AddedToken` object, or null/absent. */
function tokenText(value: unknown, file: string, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (isPlainObject(value) && typeof value.content === "string") return value.content;
  throw new Error(`${file}: field '${field}' must be a token string or {"content": ...}`);
}

/**
 * The special-token ids a `TemplateProcessing` post-processor (alone or inside a `Sequence`)
 * puts before and after `$A` in its `single` template; empty for other post-processors.
 */
function templateAffixes(
  processor: unknown,
  file: string,
): { prefix: number[]; suffix: number[] } {
  const none = { prefix: [], suffix: [] };
  if (!isPlainObject(processor)) return none;
  if (processor.type === "Sequence" && Array.isArray(processor.processors)) {
    for (const p of processor.processors) {
      const found = templateAffixes(p, file);
      if (found.prefix.length > 0 || found.suffix.length > 0) return found;
    }
    return none;
  }
  if (processor.type !== "TemplateProcessing") return none;
  const fail = (problem: string) =>
    new Error(`${file}: post_processor (TemplateProcessing) ${problem}`);
  const single = processor.single;
  const specials = processor.special_tokens ?? {};
  if (!Array.isArray(single)) throw fail("field 'single' must be an array");
  if (!isPlainObject(specials)) throw fail("field 'special_tokens' must be an object");
  const prefix: number[] = [];
  const suffix: number[] = [];
  let seenSequence = false;
  for (const item of single) {
    if (isPlainObject(item) && isPlainObject(item.Sequence)) {
      seenSequence = true;
      continue;
    }
    const name = isPlainObject(item) && isPlainObject(item.SpecialToken)
      ? item.SpecialToken.id
      : undefined;
    if (typeof name !== "string") {
      throw fail("has an item that is neither Sequence nor SpecialToken");
    }
    const entry = specials[name];
    if (!isPlainObject(entry) || !Array.isArray(entry.ids)) {
      throw fail(`uses special token ${JSON.stringify(name)} missing from 'special_tokens'`);
    }
    for (const id of entry.ids) {
      if (!Number.isInteger(id)) throw fail(`special_tokens[${JSON.stringify(name)}].ids`);
      (seenSequence ? suffix : prefix).push(id as number);
    }
  }
  return { prefix, suffix };
}
