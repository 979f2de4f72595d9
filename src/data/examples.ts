/**
 * The examples of an {@linkcode EditSample} one by one, each with the record fields it was
 * built from (so a problem with an example can name them), and rebuilding a sample with some
 * examples replaced (e.g. a prompt cut to fit a model's context).
 *
 * @module
 */
import type { EditSample, Example, PortabilityExample } from "./sample.ts";

/** One example of a sample and the record fields behind it. */
export interface SampleExample {
  /** The example. */
  readonly example: Example;
  /** The record field its prompt comes from (`src`, `rephrase`, `loc`, `m_loc_q`, ...). */
  readonly promptField: string;
  /** The record field its target comes from (`alt`, `loc_ans`, `m_loc_a`, ...). */
  readonly targetField: string;
}

/**
 * Every example of `sample`, in a fixed order: request, text rephrase, image rephrase, text
 * locality, image locality, then the portability examples.
 *
 * @example
 * ```ts
 * import { sampleExamples } from "./examples.ts";
 * import type { EditSample } from "./sample.ts";
 * const e = { image: null, prompt: "p", target: "t" };
 * const s: EditSample = { index: 0, request: e, generality: { text_rephrase: e, image_rephrase: e },
 *   locality: { text_loc: e, image_loc: e } };
 * if (sampleExamples(s).map((x) => x.promptField).join() !== "src,rephrase,src,loc,m_loc_q") {
 *   throw new Error("order");
 * }
 * ```
 */
export function sampleExamples(sample: EditSample): SampleExample[] {
  const { request, generality: g, locality: l, portability = [] } = sample;
  return [
    { example: request, promptField: "src", targetField: "alt" },
    { example: g.text_rephrase, promptField: "rephrase", targetField: "alt" },
    { example: g.image_rephrase, promptField: "src", targetField: "alt" },
    { example: l.text_loc, promptField: "loc", targetField: "loc_ans" },
    { example: l.image_loc, promptField: "m_loc_q", targetField: "m_loc_a" },
    ...portability.map((example, j) => ({
      example,
      promptField: `port_new[${j}].port_q`,
      targetField: `port_new[${j}].port_a`,
    })),
  ];
}

/**
 * `sample` with its examples replaced by `examples` (in the order of
 * {@linkcode sampleExamples}, as many as it gives).
 */
export function withExamples(sample: EditSample, examples: readonly Example[]): EditSample {
  const n = 5 + (sample.portability?.length ?? 0);
  if (examples.length !== n) {
    throw new Error(`record ${sample.index}: ${examples.length} examples given, it has ${n}`);
  }
  const [request, textRephrase, imageRephrase, textLoc, imageLoc, ...ports] = examples;
  const out: EditSample = {
    index: sample.index,
    request,
    generality: { text_rephrase: textRephrase, image_rephrase: imageRephrase },
    locality: { text_loc: textLoc, image_loc: imageLoc },
  };
  if (sample.portability === undefined) return out;
  const portability = sample.portability.map((p, j): PortabilityExample => ({
    ...p,
    ...ports[j],
  }));
  return { ...out, portability };
}
