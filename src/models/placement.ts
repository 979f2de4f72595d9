/**
 * Placing a VLLM on several devices, as a pure plan: which contiguous decoder layers each device
 * holds, with the vision side (vision tower, Q-Former or projector) and the embeddings on the
 * first and the final norm and LM head on the last, where the editor and its experts go, and
 * how many bytes each device needs. `VllmRunner` runs the plan's stages; this file only plans.
 *
 * - {@linkcode paramInventory}: the parameters of a checkpoint by part (vision side,
 *   embeddings, each decoder layer, head), from tensor names and shapes alone (a checkpoint's
 *   headers, or the weight list of dims), classified by the backbone table's layer path.
 * - {@linkcode planPlacement}: the stages. By default the cuts minimise the largest device
 *   need (relative to its cap with `maxMemory`); `splitLayers` sets them. A device's need is
 *   its parameter bytes (in the compute dtype), plus the editor's bytes on the stage holding
 *   the edit layer `l_e` (or on `editorDevice`), plus a reserve for activations and the KV
 *   cache ({@linkcode reserveBytes}). A plan that exceeds `maxMemory` throws, before anything
 *   is loaded, with every device's numbers.
 * - {@linkcode formatPlacement}: the lines printed at start.
 *
 * The reserve is an estimate, not a measurement: per stage, the KV cache of its layers for
 * `sequences × tokens` tokens, one layer's working set (eight hidden-sized buffers per token
 * and the attention scores), and on the last stage the logits (compute dtype and their f32
 * copy). The vision side's own activations are not counted.
 *
 * @example
 * ```ts
 * import { planPlacement } from "./placement.ts";
 * const plan = planPlacement({
 *   parts: { vision: 100, embeddings: 50, layers: [10, 10, 10, 10], head: 50 },
 *   shape: { hiddenSize: 8, numHeads: 2, numKvHeads: 2, headDim: 4, vocabSize: 50 },
 *   devices: ["cpu:0", "cpu:1"],
 *   bytesPerParam: 4,
 *   reserve: { sequences: 1, tokens: 4 },
 * });
 * // the last device also holds the head and the reserve for the logits: it gets one layer
 * if (plan.stages.map((s) => s.to).join() !== "3,4") throw new Error("cuts");
 * ```
 *
 * @module
 */

/** Parameter counts (elements) of a VLLM by part. */
export interface ParamInventory {
  /** The vision side: vision tower, Q-Former and query tokens, projector. */
  readonly vision: number;
  /** Token (and position) embeddings. */
  readonly embeddings: number;
  /** Each decoder layer, by index. */
  readonly layers: readonly number[];
  /** The final norm and the LM head (the embedding table again when the head is tied). */
  readonly head: number;
}

/** The decoder sizes the reserve is estimated from. */
export interface DecoderShape {
  /** Width of hidden states. */
  readonly hiddenSize: number;
  /** Query heads. */
  readonly numHeads: number;
  /** Key/value heads. */
  readonly numKvHeads: number;
  /** Width of a head. */
  readonly headDim: number;
  /** Vocabulary size. */
  readonly vocabSize: number;
}

/** How much work the reserve is sized for: `sequences` sequences of `tokens` tokens at once. */
export interface ReserveSize {
  /** Sequences in flight at once (a batch). */
  readonly sequences: number;
  /** Tokens per sequence (vision tokens included). */
  readonly tokens: number;
}

/** A tensor as a checkpoint header lists it. */
export interface NamedShape {
  /** Key, e.g. `language_model.model.layers.3.mlp.up_proj.weight`. */
  readonly name: string;
  /** Shape. */
  readonly shape: readonly number[];
}

/**
 * The parameters of `tensors` by part: keys under `<layerPath>.<i>.` are decoder layer `i`;
 * the decoder's `embed_*` tensors (next to `layers`) the embeddings; other keys of the language
 * model (the first segment of `layerPath`, e.g. `language_model.`) the head (final norm,
 * `lm_head`); everything else the vision side. With `tiedHead`, the head also counts the
 * token embedding table, which the last stage needs as the LM head. Throws naming `source`
 * when a layer index is outside `0 .. numLayers - 1`.
 */
export function paramInventory(
  tensors: readonly NamedShape[],
  layerPath: string,
  numLayers: number,
  tiedHead: boolean,
  source = "checkpoint",
): ParamInventory {
  const decoder = layerPath.slice(0, layerPath.lastIndexOf(".") + 1);
  const lm = layerPath.slice(0, layerPath.indexOf(".") + 1);
  const layers = new Array<number>(numLayers).fill(0);
  let vision = 0, embeddings = 0, head = 0;
  for (const { name, shape } of tensors) {
    const size = shape.reduce((a, d) => a * d, 1);
    if (name.startsWith(`${layerPath}.`)) {
      const i = Number(name.slice(layerPath.length + 1).split(".")[0]);
      if (!(Number.isInteger(i) && i >= 0 && i < numLayers)) {
        throw new Error(`${source}: tensor '${name}' is not in a layer 0..${numLayers - 1}`);
      }
      layers[i] += size;
    } else if (name.startsWith(`${decoder}embed_`)) {
      embeddings += size;
      if (tiedHead && name === `${decoder}embed_tokens.weight`) head += size;
    } else if (name.startsWith(lm)) head += size;
    else vision += size;
  }
  return { vision, embeddings, layers, head };
}

/**
 * Bytes of the reserve for activations and the KV cache of a stage of `layers` decoder layers
 * (see the module docs); `last` adds the logits.
 */
export function reserveBytes(
  shape: DecoderShape,
  size: ReserveSize,
  layers: number,
  last: boolean,
  bytesPerParam: number,
): number {
  const { sequences: s, tokens: t } = size;
  const kv = 2 * layers * shape.numKvHeads * shape.headDim * s * t;
  const working = layers > 0 ? s * (8 * t * shape.hiddenSize + shape.numHeads * t * t) : 0;
  const logits = last ? s * t * shape.vocabSize * (bytesPerParam + 4) : 0;
  return (kv + working) * bytesPerParam + logits;
}

/** Where the editor goes and what it needs. */
export interface EditorNeed {
  /** The edit layer `l_e`: the editor goes with the stage holding it. */
  readonly layer: number;
  /** Bytes of its weights and experts. */
  readonly bytes: number;
  /** A device for the editor instead (`--editor-device`). */
  readonly device?: string;
}

/** What {@linkcode planPlacement} places. */
export interface PlacementRequest {
  /** The parameters by part. */
  readonly parts: ParamInventory;
  /** The decoder's sizes (for the reserve). */
  readonly shape: DecoderShape;
  /** The devices, in stage order (one stage each). */
  readonly devices: readonly string[];
  /** Bytes per parameter: 4 (f32) or 2 (f16), the compute dtype's. */
  readonly bytesPerParam: number;
  /** The editor, if one is placed with the model. */
  readonly editor?: EditorNeed;
  /** The first layer of every stage but the first (`--split-layers`); default: balanced. */
  readonly splitLayers?: readonly number[];
  /** Bytes each device may use (`--max-memory`): one for all, or one per device. */
  readonly maxMemory?: readonly number[];
  /** What the reserve is sized for (default 1 sequence of 1024 tokens). */
  readonly reserve?: ReserveSize;
}

/** One device's part of a {@linkcode ModelPlacement}. */
export interface PlannedStage {
  /** The device. */
  readonly device: string;
  /** First decoder layer. */
  readonly from: number;
  /** One past the last decoder layer. */
  readonly to: number;
  /** Its modules, in order, e.g. `["vision", "embeddings", "layers 0-15"]`. */
  readonly modules: readonly string[];
  /** Whether the editor runs on this stage's device. */
  readonly holdsEditor: boolean;
  /** Parameter bytes. */
  readonly paramBytes: number;
  /** The editor's bytes (0 unless the editor is here). */
  readonly editorBytes: number;
  /** The reserve for activations and the KV cache. */
  readonly reserveBytes: number;
  /** Estimated peak: the sum of the three. */
  readonly peakBytes: number;
  /** The cap (`maxMemory`), or null. */
  readonly maxBytes: number | null;
}

/** A plan: the stages, and where the editor is. */
export interface ModelPlacement {
  /** One per device, in order. */
  readonly stages: readonly PlannedStage[];
  /**
   * The editor's device and its bytes, and the stage it shares a device with (null when it
   * has a device of its own); null without an editor.
   */
  readonly editor: {
    readonly device: string;
    readonly stage: number | null;
    readonly bytes: number;
  } | null;
  /** Bytes per parameter. */
  readonly bytesPerParam: number;
  /** What the reserve is sized for. */
  readonly reserve: ReserveSize;
}

const DEFAULT_RESERVE: ReserveSize = { sequences: 1, tokens: 1024 };

/** The parts of layers `[from, to)` as module names. */
function modulesOf(from: number, to: number, first: boolean, last: boolean): string[] {
  const out = first ? ["vision", "embeddings"] : [];
  out.push(to - from === 1 ? `layer ${from}` : `layers ${from}-${to - 1}`);
  if (last) out.push("norm + head");
  return out;
}

/**
 * The stages of `request` (see the module docs). Throws for more devices than layers, bad
 * `splitLayers` or `maxMemory`, an edit layer outside the model, and a plan that does not fit
 * `maxMemory` (naming every device's need and cap).
 */
export function planPlacement(request: PlacementRequest): ModelPlacement {
  const { parts, devices, bytesPerParam: bpp } = request;
  const n = parts.layers.length, k = devices.length;
  const reserve = request.reserve ?? DEFAULT_RESERVE;
  if (k < 1) throw new Error("placement: no device");
  if (k > n) throw new Error(`placement: ${k} devices for ${n} decoder layers (one stage each)`);
  const caps = capsOf(request.maxMemory, devices);
  const editor = request.editor;
  if (editor && !(Number.isInteger(editor.layer) && editor.layer >= 0 && editor.layer < n)) {
    throw new Error(`placement: edit layer ${editor.layer} is not a layer 0..${n - 1}`);
  }
  const sharedWith = editor?.device === undefined ? -1 : devices.indexOf(editor.device);
  const prefix = [0];
  for (const p of parts.layers) prefix.push(prefix[prefix.length - 1] + p);
  const stage = (i: number, from: number, to: number): PlannedStage => {
    const first = i === 0, last = i === k - 1;
    const params = prefix[to] - prefix[from] + (first ? parts.vision + parts.embeddings : 0) +
      (last ? parts.head : 0);
    const here = editor !== undefined &&
      (editor.device === undefined ? from <= editor.layer && editor.layer < to : sharedWith === i);
    const paramBytes = params * bpp;
    const editorBytes = here ? editor!.bytes : 0;
    const reserved = reserveBytes(request.shape, reserve, to - from, last, bpp);
    const modules = modulesOf(from, to, first, last);
    if (here) modules.push("editor");
    return {
      device: devices[i],
      from,
      to,
      modules,
      holdsEditor: here,
      paramBytes,
      editorBytes,
      reserveBytes: reserved,
      peakBytes: paramBytes + editorBytes + reserved,
      maxBytes: caps?.[i] ?? null,
    };
  };
  const cuts = request.splitLayers === undefined
    ? balancedCuts(n, k, (i, a, b) => {
      const s = stage(i, a, b);
      return s.peakBytes / (s.maxBytes ?? 1);
    })
    : checkCuts(request.splitLayers, n, k);
  const bounds = [0, ...cuts, n];
  const stages = devices.map((_, i) => stage(i, bounds[i], bounds[i + 1]));
  let placedEditor: ModelPlacement["editor"] = null;
  if (editor) {
    const at = stages.findIndex((s) => s.holdsEditor);
    placedEditor = at >= 0
      ? { device: devices[at], stage: at, bytes: editor.bytes }
      : { device: editor.device!, stage: null, bytes: editor.bytes };
  }
  const plan = { stages, editor: placedEditor, bytesPerParam: bpp, reserve };
  const over = stages.filter((s) => s.maxBytes !== null && s.peakBytes > s.maxBytes);
  const editorCap = caps !== null && caps.length === 1 ? caps[0] : null;
  const editorOver = placedEditor?.stage === null && editorCap !== null &&
    placedEditor.bytes > editorCap;
  if (over.length > 0 || editorOver) {
    throw new Error(
      `the model does not fit --max-memory: ` +
        [
          ...over.map((s) =>
            `${s.device} needs ${formatBytes(s.peakBytes)} > ${formatBytes(s.maxBytes!)}`
          ),
          ...(editorOver
            ? [
              `${placedEditor!.device} (editor) needs ${formatBytes(placedEditor!.bytes)} > ${
                formatBytes(editorCap!)
              }`,
            ]
            : []),
        ].join("; ") + ". The best placement found:\n" + formatPlacement(plan).join("\n"),
    );
  }
  return plan;
}

/** `maxMemory` as one cap per device, or null; throws for a bad length or value. */
function capsOf(
  maxMemory: readonly number[] | undefined,
  devices: readonly string[],
): readonly number[] | null {
  if (maxMemory === undefined) return null;
  if (maxMemory.some((m) => !(m > 0))) {
    throw new Error(`placement: max memory must be positive, got ${maxMemory.join(", ")}`);
  }
  if (maxMemory.length === 1) return devices.map(() => maxMemory[0]);
  if (maxMemory.length !== devices.length) {
    throw new Error(
      `placement: ${maxMemory.length} max memory values for ${devices.length} devices ` +
        "(give one for all, or one per device)",
    );
  }
  return maxMemory;
}

/** `cuts` checked: `k - 1` increasing layer indices within `1 .. n - 1`. */
function checkCuts(cuts: readonly number[], n: number, k: number): readonly number[] {
  const ok = cuts.length === k - 1 &&
    cuts.every((c, i) => Number.isInteger(c) && c > (i === 0 ? 0 : cuts[i - 1]) && c < n);
  if (!ok) {
    throw new Error(
      `--split-layers ${cuts.join(",")}: expected ${k - 1} increasing layer indices within ` +
        `1..${n - 1} for ${k} devices (the first layer of every stage but the first)`,
    );
  }
  return cuts;
}

/**
 * Cuts of `n` layers into `k` non-empty contiguous stages minimising the largest
 * `cost(stage, from, to)` (dynamic programming; on ties the earliest cuts).
 */
function balancedCuts(
  n: number,
  k: number,
  cost: (stage: number, from: number, to: number) => number,
): number[] {
  // best[i][a]: the least largest cost of stages i.. over layers a..n, and the end of stage i
  const best: { cost: number; end: number }[][] = Array.from({ length: k }, () => []);
  for (let a = k - 1; a < n; a++) best[k - 1][a] = { cost: cost(k - 1, a, n), end: n };
  for (let i = k - 2; i >= 0; i--) {
    for (let a = i; a <= n - (k - i); a++) {
      let pick = { cost: Infinity, end: -1 };
      for (let b = a + 1; b <= n - (k - i - 1); b++) {
        const c = Math.max(cost(i, a, b), best[i + 1][b].cost);
        if (c < pick.cost) pick = { cost: c, end: b };
      }
      best[i][a] = pick;
    }
  }
  const cuts: number[] = [];
  for (let i = 0, a = 0; i < k - 1; i++) cuts.push(a = best[i][a].end);
  return cuts;
}

/** `n` bytes for people: `"1.5 GiB"`, `"12.0 MiB"`, `"300 B"` (binary units). */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0, v = n;
  while (v >= 1024 && u < units.length - 1) [v, u] = [v / 1024, u + 1];
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/**
 * The placement as the lines printed at start: a header (dtype, what the reserve is sized
 * for), then per device its modules and layers, parameter bytes, editor bytes, reserve and
 * estimated peak (and cap), and the editor's own device when it has one.
 */
export function formatPlacement(plan: ModelPlacement): string[] {
  const dtype = plan.bytesPerParam === 2 ? "f16" : "f32";
  const r = plan.reserve;
  const lines = [
    `placement (${dtype} weights; reserve for ${r.sequences} x ${r.tokens} tokens of activations ` +
    `and KV cache):`,
  ];
  for (const s of plan.stages) {
    const cap = s.maxBytes === null ? "" : ` (max ${formatBytes(s.maxBytes)})`;
    lines.push(
      `  ${s.device}: ${s.modules.join(", ")}; parameters ${formatBytes(s.paramBytes)}` +
        (s.editorBytes > 0 ? `, editor ${formatBytes(s.editorBytes)}` : "") +
        `, reserve ${formatBytes(s.reserveBytes)}, estimated peak ${
          formatBytes(s.peakBytes)
        }${cap}`,
    );
  }
  if (plan.editor !== null && plan.editor.stage === null) {
    lines.push(`  ${plan.editor.device}: editor ${formatBytes(plan.editor.bytes)}`);
  }
  return lines;
}
