/**
 * LiveEdit hyper-parameters: the editor's dimensions and its training settings, from a JSON
 * file per backbone (`configs/blip2.json`, `configs/llava.json`, `configs/minigpt4.json`) that
 * carries the values of the authors' released YAML configs under the same field names, and
 * `configs/tiny.json` for `make-tiny` backbones. The shipped files are JSON imports, so they
 * load wherever the module does (a file, `https:` or `jsr:` URL); other configs are read from
 * a path.
 *
 * @example
 * ```ts
 * import { loadConfig } from "./config.ts";
 * const cfg = await loadConfig("blip2");
 * if (cfg.dims.llmMidDim !== 2560 || cfg.editLayerI !== 21) throw new Error("blip2 config");
 * ```
 *
 * @module
 */
import * as fs from "node:fs/promises";
import { type Schedule, stepCut } from "../../train/schedule.ts";
import blip2 from "./configs/blip2.json" with { type: "json" };
import llava from "./configs/llava.json" with { type: "json" };
import minigpt4 from "./configs/minigpt4.json" with { type: "json" };
import tiny from "./configs/tiny.json" with { type: "json" };

/**
 * The sizes of the editor modules (spec notation in brackets). Every graph builder of the
 * editor takes these.
 */
export interface EditorDims {
  /** Hidden size of the language model [d]. */
  readonly llmMidDim: number;
  /** Width of the extractor and generator attentions [m]. */
  readonly moduleDim: number;
  /** Heads of every editor attention [h]. */
  readonly crossAttHeadN: number;
  /** Number of extraction queries [e]. */
  readonly eqeN: number;
  /** LoRA rank of an expert [r]. */
  readonly loraRank: number;
  /** LoRA scale [s]; a generator's output is multiplied by `1/(s·sqrt(r))`. */
  readonly loraScale: number;
  /** Vision tokens of one image, the length of the vision prototype [n_v]. */
  readonly visionTokN: number;
}

/** Training settings (`train_cfg` of the authors' configs). */
export interface TrainConfig {
  /** Adam learning rate. */
  readonly lr: number;
  /** Steps after which the learning rate is cut (authors' `lr_cut_it`). */
  readonly lrCutIt: readonly number[];
  /** Factor applied at each cut. */
  readonly lrCutRate: number;
  /** Training batch size (requests per step). */
  readonly batchSize: number;
  /** Weight of the reliability loss. */
  readonly relLambda: number;
  /** Weight of the generality losses. */
  readonly genLambda: number;
  /** Weight of the locality losses. */
  readonly locLambda: number;
  /** Weight of the soft routing loss. */
  readonly softRoutingLambda: number;
  /** Weight of the hard routing losses. */
  readonly hardRoutingLambda: number;
  /**
   * Train as the authors' released code does (`edit_layer_twice`, default false): the
   * continuation applies layer `l_e` again to its own output before adding the residual
   * (spec §4, "Known flaw"), and the locality losses compare with the unedited model run the
   * same way. False: one pass, exactly as inference runs.
   */
  readonly editLayerTwice: boolean;
}

/** A parsed LiveEdit config. */
export interface LiveEditConfig {
  /** The backbone this config is for (`edit_model_name`). */
  readonly editModelName: string;
  /** 0-based index of the decoder layer whose output is edited [l_e]. */
  readonly editLayerI: number;
  /** Module sizes. */
  readonly dims: EditorDims;
  /** Training settings. */
  readonly train: TrainConfig;
  /**
   * Where the config was read from (a file, `shipped configs/<name>.json`, a checkpoint),
   * for error messages; not part of the settings ({@linkcode configJson} leaves it out).
   */
  readonly source?: string;
}

/** The JSON field (dotted path in `configs/*.json`) of each of the {@linkcode EditorDims}. */
export const DIM_FIELDS: Readonly<Record<keyof EditorDims, string>> = Object.freeze({
  llmMidDim: "llm_mid_dim",
  moduleDim: "retrieval_editor.module_dim",
  crossAttHeadN: "retrieval_editor.cross_att_head_n",
  eqeN: "retrieval_editor.eqe_n",
  loraRank: "retrieval_editor.lora_rank",
  loraScale: "retrieval_editor.lora_scale",
  visionTokN: "vision_tok_n",
});

const SHIPPED = { blip2, llava, minigpt4, tiny };

/**
 * The name of a shipped config: a backbone's (`blip2`, `llava`, `minigpt4`), or `"tiny"`
 * (d = 64, l_e = 2) for `make-tiny`.
 */
export type ShippedConfigName = keyof typeof SHIPPED;

/** The JSON of each shipped config (`configs/<name>.json`), as imported. */
export const SHIPPED_CONFIGS: Readonly<Record<ShippedConfigName, unknown>> = Object.freeze(SHIPPED);

/** Whether `name` is the name of a shipped config. */
export function isShippedConfig(name: string): name is ShippedConfigName {
  return Object.hasOwn(SHIPPED_CONFIGS, name);
}

/**
 * A validated config: a shipped one by name (`"blip2"`, `"llava"`, `"minigpt4"`, `"tiny"`),
 * or one read from the JSON file at a path. Throws naming the file and the field at fault.
 */
export async function loadConfig(nameOrPath: ShippedConfigName | string): Promise<LiveEditConfig> {
  if (isShippedConfig(nameOrPath)) {
    return parseConfig(SHIPPED_CONFIGS[nameOrPath], `shipped configs/${nameOrPath}.json`);
  }
  const file = nameOrPath;
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (e) {
    throw new Error(`LiveEdit config ${file}: cannot read: ${e instanceof Error ? e.message : e}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(
      `LiveEdit config ${file}: not valid JSON: ${e instanceof Error ? e.message : e}`,
    );
  }
  return parseConfig(json, file);
}

/**
 * Validates a config object (the JSON layout of `configs/*.json`); `file` names it in errors.
 * Checks types and ranges, and that the head count divides both `module_dim` and
 * `llm_mid_dim` (the generators' value projection maps d→d over the heads).
 */
export function parseConfig(json: unknown, file: string): LiveEditConfig {
  const fail = (field: string, want: string, got: unknown): never => {
    throw new Error(
      `LiveEdit config ${file}: field ${field} must be ${want}, got ${JSON.stringify(got)}`,
    );
  };
  const obj = (v: unknown, field: string): Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v)
      ? v as Record<string, unknown>
      : fail(field, "an object", v);
  const root = obj(json, "(root)");
  const at = (o: Record<string, unknown>, path: string, key: string) => {
    const field = path ? `${path}.${key}` : key;
    if (!(key in o)) throw new Error(`LiveEdit config ${file}: field ${field} is missing`);
    return { v: o[key], field };
  };
  const posInt = (o: Record<string, unknown>, path: string, key: string): number => {
    const { v, field } = at(o, path, key);
    return Number.isSafeInteger(v) && (v as number) > 0
      ? v as number
      : fail(field, "a positive integer", v);
  };
  const nonNegInt = (o: Record<string, unknown>, path: string, key: string): number => {
    const { v, field } = at(o, path, key);
    return Number.isSafeInteger(v) && (v as number) >= 0
      ? v as number
      : fail(field, "an integer >= 0", v);
  };
  const num = (o: Record<string, unknown>, path: string, key: string, positive: boolean) => {
    const { v, field } = at(o, path, key);
    const ok = typeof v === "number" && Number.isFinite(v) && (positive ? v > 0 : v >= 0);
    return ok ? v as number : fail(field, positive ? "a number > 0" : "a number >= 0", v);
  };
  const nameField = at(root, "", "edit_model_name");
  if (typeof nameField.v !== "string" || nameField.v === "") {
    fail("edit_model_name", "a non-empty string", nameField.v);
  }
  const re = obj(at(root, "", "retrieval_editor").v, "retrieval_editor");
  const tc = obj(at(root, "", "train_cfg").v, "train_cfg");
  const dims: EditorDims = {
    llmMidDim: posInt(root, "", "llm_mid_dim"),
    moduleDim: posInt(re, "retrieval_editor", "module_dim"),
    crossAttHeadN: posInt(re, "retrieval_editor", "cross_att_head_n"),
    eqeN: posInt(re, "retrieval_editor", "eqe_n"),
    loraRank: posInt(re, "retrieval_editor", "lora_rank"),
    loraScale: num(re, "retrieval_editor", "lora_scale", true),
    visionTokN: posInt(root, "", "vision_tok_n"),
  };
  for (const [key, width] of [["module_dim", dims.moduleDim], ["llm_mid_dim", dims.llmMidDim]]) {
    if ((width as number) % dims.crossAttHeadN !== 0) {
      throw new Error(
        `LiveEdit config ${file}: field ${key} (${width}) must be divisible by ` +
          `retrieval_editor.cross_att_head_n (${dims.crossAttHeadN})`,
      );
    }
  }
  const twice = "edit_layer_twice" in tc ? tc.edit_layer_twice : false;
  if (typeof twice !== "boolean") fail("train_cfg.edit_layer_twice", "a boolean", twice);
  const cuts = at(tc, "train_cfg", "lr_cut_it");
  const lrCutIt = Array.isArray(cuts.v) &&
      cuts.v.every((c, i, a) => Number.isSafeInteger(c) && c >= 0 && (i === 0 || c > a[i - 1]))
    ? [...cuts.v] as number[]
    : fail(cuts.field, "a strictly increasing list of integers >= 0", cuts.v);
  return {
    editModelName: nameField.v as string,
    editLayerI: nonNegInt(root, "", "edit_layer_i"),
    dims,
    train: {
      lr: num(tc, "train_cfg", "lr", true),
      lrCutIt,
      lrCutRate: num(tc, "train_cfg", "lr_cut_rate", true),
      batchSize: posInt(tc, "train_cfg", "batch_size"),
      relLambda: num(tc, "train_cfg", "rel_lambda", false),
      genLambda: num(tc, "train_cfg", "gen_lambda", false),
      locLambda: num(tc, "train_cfg", "loc_lambda", false),
      softRoutingLambda: num(tc, "train_cfg", "soft_routing_lambda", false),
      hardRoutingLambda: num(tc, "train_cfg", "hard_routing_lambda", false),
      editLayerTwice: twice as boolean,
    },
    source: file,
  };
}

/**
 * `config` in the JSON layout of `configs/*.json` (the authors' field names), as runs store it
 * (`config.json`, checkpoints): {@linkcode parseConfig} reads it back to an equal config.
 *
 * @example
 * ```ts
 * import { configJson, loadConfig, parseConfig } from "./config.ts";
 * const tiny = await loadConfig("tiny");
 * const back = parseConfig(configJson(tiny), "stored");
 * if (back.dims.moduleDim !== tiny.dims.moduleDim) throw new Error("round trip");
 * ```
 */
export function configJson(config: LiveEditConfig): Record<string, unknown> {
  const { dims, train } = config;
  return {
    edit_model_name: config.editModelName,
    llm_mid_dim: dims.llmMidDim,
    vision_tok_n: dims.visionTokN,
    edit_layer_i: config.editLayerI,
    retrieval_editor: {
      module_dim: dims.moduleDim,
      cross_att_head_n: dims.crossAttHeadN,
      lora_rank: dims.loraRank,
      lora_scale: dims.loraScale,
      eqe_n: dims.eqeN,
    },
    train_cfg: {
      lr: train.lr,
      lr_cut_it: [...train.lrCutIt],
      lr_cut_rate: train.lrCutRate,
      batch_size: train.batchSize,
      rel_lambda: train.relLambda,
      gen_lambda: train.genLambda,
      loc_lambda: train.locLambda,
      soft_routing_lambda: train.softRoutingLambda,
      hard_routing_lambda: train.hardRoutingLambda,
      edit_layer_twice: train.editLayerTwice,
    },
  };
}

/**
 * The learning-rate schedule of `train` as the authors run it: PyTorch's `LambdaLR` with
 * `lr_cut_rate ** (step > lr_cut_it).sum()`, stepped after every update, so a cut at 10000
 * first applies to the 10002nd update (zero-based step index 10001).
 */
export function lrSchedule(train: TrainConfig): Schedule {
  return stepCut({ lr: train.lr, rate: train.lrCutRate, cuts: train.lrCutIt.map((c) => c + 1) });
}
