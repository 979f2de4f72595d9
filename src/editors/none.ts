/**
 * The `none` editor (`-en none`, alias `unedited`): the unedited backbone as an
 * {@linkcode EditingModel}, so a baseline runs through the same evaluation and writes the same
 * result layout as a real editor. `edit` records the request and changes nothing; predictions
 * and generations are the backbone's own. Its reliability is how often the model already
 * gives the edit targets (low for counterfactual targets); its locality is 1 by construction.
 *
 * @module
 */
import type { EditingModel, EditorEntry, ModelSetup, Prediction } from "./api.ts";
import type { Example } from "../data/sample.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { loadVllm } from "../models/vllm/mod.ts";
import { placeVllm } from "../models/vllm/place.ts";
import type { VllmRunner } from "../models/vllm/runner.ts";
import type { Request } from "../models/vllm/processor.ts";
import { targetPredictions } from "./liveedit/backbone.ts";

/** The unedited backbone (see the module docs). */
export class UneditedModel implements EditingModel {
  /** Always `"none"`. */
  readonly editorName = "none";
  /** Backbone name. */
  readonly modelName: string;
  /** The backbone's runner. */
  readonly runner: VllmRunner;
  readonly #onClose?: () => Promise<void>;
  #requests: Example[] = [];

  /** Wraps `runner`; `onClose` (default: release the runner's sessions) runs on close. */
  constructor(runner: VllmRunner, modelName: string, onClose?: () => Promise<void>) {
    this.runner = runner;
    this.modelName = modelName;
    this.#onClose = onClose;
  }

  /** Records the request; the model does not change. */
  edit(request: Example): Promise<void> {
    this.#requests.push(request);
    return Promise.resolve();
  }

  /** Forgets the recorded requests. */
  restore(): Promise<void> {
    this.#requests = [];
    return Promise.resolve();
  }

  /**
   * Teacher-forced predictions of the backbone, one per example, in order (examples with and
   * without an image run as two batches).
   */
  async predict(examples: readonly (Example | Request)[]): Promise<Prediction[]> {
    const vllm = this.runner.vllm;
    const out: Prediction[] = new Array(examples.length);
    const withImage = (x: Example | Request) => x.image !== undefined && x.image !== null;
    for (const images of [true, false]) {
      const rows = examples.flatMap((x, i) => withImage(x) === images ? [i] : []);
      if (rows.length === 0) continue;
      const batch = await vllm.prepare(rows.map((i) => examples[i]));
      const { logits } = await this.runner.stage(0, vllm.numLayers, batch);
      targetPredictions(logits!, batch).forEach((p, k) => (out[rows[k]] = p));
    }
    return out;
  }

  /** The backbone's greedy decoding (KV-cached), EOS not included. */
  async generate(example: Example | Request, maxNewTokens: number): Promise<number[]> {
    const input = { text: example.prompt, image: example.image };
    return [...(await this.runner.generate(input, { maxNewTokens })).ids];
  }

  /**
   * Writes a safetensors file with no tensors whose metadata records the editor, the backbone
   * and the requests (which changed nothing), as JSON.
   */
  async saveState(path: string): Promise<void> {
    await writeSafetensors(path, {}, {
      editor: this.editorName,
      backbone: this.modelName,
      requests: JSON.stringify(this.#requests),
    });
  }

  /** Runs `onClose`, or releases the runner's sessions. */
  async close(): Promise<void> {
    if (this.#onClose) await this.#onClose();
    else await this.runner.close();
  }
}

/**
 * Loads the VLLM of `setup.modelDir`, places it on `setup.devices` (as `setup.placement` says;
 * one device by default) and wraps it as an {@linkcode UneditedModel}; its `close()` also stops
 * the devices and closes the VLLM. The checkpoint, edits and editor config of `setup` do not
 * apply and are ignored.
 *
 * @example
 * ```ts ignore
 * const model = await openUneditedModel({
 *   modelDir: "demo/demo-blip2",
 *   modelName: "demo-blip2",
 *   devices: ["cpu"],
 *   checkpoint: null,
 *   checkpointModel: "none/demo-blip2",
 * });
 * const [p] = await model.predict([{ image: "a.png", prompt: "What color? The answer is:", target: "red" }]);
 * await model.close();
 * ```
 */
export async function openUneditedModel(
  setup: ModelSetup & { readonly cacheDir?: string },
): Promise<UneditedModel> {
  const devices = setup.devices.length > 0 ? setup.devices : ["cpu"];
  const vllm = await loadVllm(setup.modelDir, { device: devices[0] });
  try {
    const placed = await placeVllm(vllm, {
      ...setup.placement,
      devices,
      cacheDir: setup.cacheDir,
    });
    return new UneditedModel(placed.runner, setup.modelName, async () => {
      await placed.close();
      vllm.close();
    });
  } catch (error) {
    vllm.close();
    throw error;
  }
}

/** The `none` entry of the editor registry: no training, the unedited backbone. */
export const NONE_EDITOR: EditorEntry = {
  description: "no editor: the unedited backbone, a baseline in the same evaluation",
  openModel: openUneditedModel,
};
