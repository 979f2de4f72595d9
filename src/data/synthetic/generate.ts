/**
 * The synthetic benchmark's records, in exactly the E-VQA layout (spec §5): per record an
 * edit (`image`, the question `src`, the counterfactual answer `alt`; `pred` is the true
 * answer), a text rephrase (`rephrase`), an image rephrase (`image_rephrase`: the same scene
 * drawn differently — other sizes, places and background), a text-only locality question
 * (`loc`, `loc_ans`) and an image locality question about another scene (`m_loc`, `m_loc_q`,
 * `m_loc_a`). Everything follows from the seed.
 *
 * Records come in groups of {@linkcode GROUP} (the sequential-edit chunk the demo's targets are
 * set for): within a group the edit scenes look different (no two share colour and kind, see
 * `lookKey`) and no locality scene looks like any of the group's edit scenes, as the pictures
 * of a real benchmark are different pictures. Count and position are drawn at random. Question
 * kinds take turns (colour, shape). Across groups looks repeat, as there are only
 * `LOOK_COUNT` (32, in `scene.ts`): past about that many sequential edits, edits of one look
 * asking one kind of question give it different counterfactual answers (they cannot all
 * hold), and most locality scenes look like an edited scene, those asking its kind of question
 * no different from its image rephrasings. The demo's N = 100 Rel and M-Loc measure this.
 *
 * @module
 */
import type { Rng } from "../../tensor/rng.ts";
import {
  answerOf,
  counterfactual,
  QUESTION_KINDS,
  QUESTIONS,
  type TextFact,
  textFacts,
} from "./questions.ts";
import {
  type Color,
  COLORS,
  COUNTS,
  drawScene,
  pick,
  POSITIONS,
  type SceneSpec,
  SHAPES,
} from "./scene.ts";

/** Records per group of distinct-looking scenes (see the module docs). */
export const GROUP = 10;

/** One record, with E-VQA's fields. */
export interface SyntheticRecord {
  /** The question about `image`. */
  readonly src: string;
  /** The true answer (E-VQA: the unedited model's prediction). */
  readonly pred: string;
  /** `src` asked differently. */
  readonly rephrase: string;
  /** The counterfactual answer: the edit's target. */
  readonly alt: string;
  /** The edit's image, relative to the image root. */
  readonly image: string;
  /** The same scene drawn differently. */
  readonly image_rephrase: string;
  /** A text-only question. */
  readonly loc: string;
  /** Its answer. */
  readonly loc_ans: string;
  /** Another scene's image. */
  readonly m_loc: string;
  /** A question about it. */
  readonly m_loc_q: string;
  /** Its true answer. */
  readonly m_loc_a: string;
}

/** An image to render: its path relative to the image root and its SVG. */
export interface SyntheticImage {
  /** Path relative to the image root. */
  readonly path: string;
  /** The SVG source. */
  readonly svg: string;
  /** What it shows. */
  readonly spec: SceneSpec;
}

/** One generated split. */
export interface SyntheticSplit {
  /** The records. */
  readonly records: SyntheticRecord[];
  /** Every image the records reference, once. */
  readonly images: SyntheticImage[];
}

/**
 * The edit and locality scenes of one group of `n` records: `2n` distinct looks (colour and
 * kind) while there are enough (32), the first `n` for the edits; count and position random.
 */
function groupSpecs(rng: Rng, n: number): { edits: SceneSpec[]; locs: SceneSpec[] } {
  const looks: { color: Color; shape: SceneSpec["shape"] }[] = [];
  for (const color of Object.keys(COLORS) as Color[]) {
    for (const shape of SHAPES) looks.push({ color, shape });
  }
  rng.shuffle(looks);
  const spec = (k: number): SceneSpec => ({
    ...looks[k % looks.length],
    count: pick(rng, COUNTS),
    position: pick(rng, POSITIONS),
  });
  return {
    edits: Array.from({ length: n }, (_, k) => spec(k)),
    locs: Array.from({ length: n }, (_, k) => spec(n + k)),
  };
}

/**
 * The records and images of split `split` (`"train"` or `"eval"`, used in image paths) with
 * `n` records, images of `size` pixels, drawn from `rng`.
 *
 * @example
 * ```ts
 * import { Rng } from "../../tensor/rng.ts";
 * import { syntheticSplit } from "./generate.ts";
 * const { records, images } = syntheticSplit("eval", 4, new Rng(0), 32);
 * if (records.length !== 4 || images.length !== 12) throw new Error("3 images per record");
 * if (records.some((r) => r.alt === r.pred)) throw new Error("alt is counterfactual");
 * ```
 */
export function syntheticSplit(split: string, n: number, rng: Rng, size: number): SyntheticSplit {
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`synthetic data: the ${split} split needs >= 1 records, got ${n}`);
  }
  const scenes = rng.fork();
  const draw = rng.fork();
  let group = groupSpecs(scenes, GROUP);
  const facts: TextFact[] = textFacts();
  const records: SyntheticRecord[] = [];
  const images: SyntheticImage[] = [];
  const width = String(n - 1).length;
  for (let i = 0; i < n; i++) {
    const id = String(i).padStart(Math.max(width, 5), "0");
    if (i > 0 && i % GROUP === 0) group = groupSpecs(scenes, GROUP);
    const spec = group.edits[i % GROUP];
    const locSpec = group.locs[i % GROUP];
    const kind = QUESTION_KINDS[i % QUESTION_KINDS.length];
    const locKind = pick(draw, QUESTION_KINDS);
    const fact = pick(draw, facts);
    const paths = {
      image: `synthetic/${split}/${id}.png`,
      image_rephrase: `synthetic/${split}_rephrase/${id}.png`,
      m_loc: `synthetic/${split}_loc/${id}.png`,
    };
    images.push(
      { path: paths.image, svg: drawScene(spec, draw, size), spec },
      { path: paths.image_rephrase, svg: drawScene(spec, draw, size), spec },
      { path: paths.m_loc, svg: drawScene(locSpec, draw, size), spec: locSpec },
    );
    const pred = answerOf(spec, kind);
    records.push({
      src: pick(draw, QUESTIONS[kind].src),
      pred,
      rephrase: pick(draw, QUESTIONS[kind].rephrase),
      alt: counterfactual(draw, kind, pred),
      image: paths.image,
      image_rephrase: paths.image_rephrase,
      loc: fact.question,
      loc_ans: fact.answer,
      m_loc: paths.m_loc,
      m_loc_q: pick(draw, QUESTIONS[locKind].src),
      m_loc_a: answerOf(locSpec, locKind),
    });
  }
  return { records, images };
}
