/**
 * The questions of an E-VQA-layout split with their TRUE answers, for training and scoring the
 * model before any edit: per record the question (`src`), its rephrasing and the image
 * rephrase, all answered by `pred`, the image locality question (`m_loc_q`, `m_loc_a`) and the
 * text locality question (`loc`, `loc_ans`), with E-VQA's prompt suffixes. (The edit samples of
 * `loadDataset` carry the counterfactual `alt` instead.)
 *
 * @module
 */
import { join } from "node:path";
import { isPlainObject } from "../../io/json.ts";
import { DATASETS } from "../datasets.ts";
import { resolveImagePath } from "../image_paths.ts";
import { PROMPT_RULES } from "../prompts.ts";
import { type Example, RECORD_FIELDS } from "../sample.ts";

/** The fields {@linkcode answeredExamples} reads: every record field and the answer `pred`. */
const FIELDS: readonly string[] = ["pred", ...RECORD_FIELDS];

/**
 * The answered questions of split `split` (`"train"` or `"eval"`) of the E-VQA-layout data
 * under `dataRoot` (see the module docs), five per record, image paths resolved under the
 * image root. Throws naming the file, record and field of a missing or non-string field.
 *
 * @example
 * ```ts ignore
 * const examples = await answeredExamples("demo/data", "eval");
 * // [{ image: ".../eval/00000.png", prompt: "What color is the shape? The answer is:", target: "red" }, ...]
 * ```
 */
export async function answeredExamples(
  dataRoot: string,
  split: "train" | "eval",
): Promise<Example[]> {
  const layout = DATASETS.EVQA;
  const file = join(dataRoot, layout.files[split]!);
  const imageRoot = join(dataRoot, layout.imageDir);
  const records: unknown = JSON.parse(await Deno.readTextFile(file));
  if (!Array.isArray(records)) throw new Error(`${file}: must be a JSON array of records`);
  const rules = PROMPT_RULES.EVQA;
  return records.flatMap((record, index): Example[] => {
    if (!isPlainObject(record)) throw new Error(`${file}: record ${index}: must be an object`);
    const f: Record<string, string> = {};
    for (const k of FIELDS) {
      const v = record[k];
      if (typeof v !== "string") {
        throw new Error(`${file}: record ${index}: field '${k}' must be a string`);
      }
      f[k] = v;
    }
    const image = (field: string) => resolveImagePath(imageRoot, f[field], file, index, field);
    return [
      { image: image("image"), prompt: rules.edit(f.src), target: f.pred },
      { image: image("image"), prompt: rules.edit(f.rephrase), target: f.pred },
      { image: image("image_rephrase"), prompt: rules.edit(f.src), target: f.pred },
      { image: image("m_loc"), prompt: rules.imageLoc(f.m_loc_q), target: f.m_loc_a },
      { image: null, prompt: rules.loc(f.loc), target: f.loc_ans },
    ];
  });
}
