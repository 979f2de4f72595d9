/** Shared helpers of the LiveEdit editor tests: the shared fixture's location and contents. */
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { SafetensorsFile } from "../../../src/io/safetensors.ts";
import type { EditorDims } from "../../../src/editors/liveedit/config.ts";
import type { Tensor } from "../../../src/tensor/tensor.ts";

/** The editor fixture directory (`tests/fixtures/editor`, read-only). */
export const FIXTURE_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  "../../fixtures/editor",
);

/** Every tensor of a safetensors file of the fixture. */
export async function fixtureTensors(file: string): Promise<Record<string, Tensor>> {
  const f = await SafetensorsFile.open(path.join(FIXTURE_DIR, file));
  const out: Record<string, Tensor> = {};
  for (const info of f.tensors()) out[info.name] = await f.read(info.name);
  f.close();
  return out;
}

/** The fixture's manifest. */
export async function fixtureManifest(): Promise<
  { dims: Record<string, number>; params: { name: string; shape: number[] }[] }
> {
  return JSON.parse(await Deno.readTextFile(path.join(FIXTURE_DIR, "manifest.json")));
}

/** The fixture's editor dims. */
export async function fixtureDims(): Promise<EditorDims> {
  const { dims } = await fixtureManifest();
  return {
    llmMidDim: dims.llm_mid_dim,
    moduleDim: dims.module_dim,
    crossAttHeadN: dims.cross_att_head_n,
    eqeN: dims.eqe_n,
    loraRank: dims.lora_rank,
    loraScale: dims.lora_scale,
    visionTokN: dims.vision_tok_n,
  };
}
