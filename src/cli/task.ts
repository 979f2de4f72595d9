/**
 * What the tasks (`tasks/train.ts`, `tasks/test_edit.ts`, `tasks/infer.ts`) share around their
 * work: where messages go, which editors exist, the working directory, and the exit status of
 * a failure (2 for a usage error, printed with a hint at `--help`; 1 for anything else), and
 * {@linkcode runTask}, which puts these around a task's body after parsing its flags, and
 * {@linkcode resolveTarget}: the devices, the editor, the backbone and the data root the flags
 * name.
 *
 * @module
 */
import { type EditorEntry, editorEntry, type EditorRegistry } from "../editors/api.ts";
import { EDITORS } from "../editors/registry.ts";
import { loadSettings, resolveDataRoot, type ResolvedModel, resolveModel } from "./config.ts";
import { parseDeviceFlags, parsePlacementFlags, parseReplicaGroups } from "./devices.ts";
import type { PlacementOptions } from "../models/vllm/place.ts";
import { applyImageFlags } from "./input_checks.ts";
import { type CommandSpec, type Flags, type FlagSpecs, parseCommand, UsageError } from "./flags.ts";

/** What a task runs with; tests pass a fake editor registry and collect the messages. */
export interface TaskContext {
  /** The editors by name (default {@linkcode EDITORS}). */
  readonly editors?: EditorRegistry;
  /** The working directory relative paths resolve against (default `Deno.cwd()`). */
  readonly cwd?: string;
  /** Informational lines (default `console.log`). */
  readonly print?: (line: string) => void;
  /** Error lines (default `console.error`). */
  readonly printError?: (line: string) => void;
  /** Draw progress as a bar (default `Deno.stdout.isTerminal()`). */
  readonly tty?: boolean;
}

/** The context with every default filled in. */
export function withDefaults(ctx: TaskContext): Required<TaskContext> {
  return {
    editors: ctx.editors ?? EDITORS,
    cwd: ctx.cwd ?? Deno.cwd(),
    print: ctx.print ?? ((line) => console.log(line)),
    printError: ctx.printError ?? ((line) => console.error(line)),
    tty: ctx.tty ?? Deno.stdout.isTerminal(),
  };
}

/**
 * Runs `body` and turns its outcome into an exit status: 0, or the failure printed as
 * `error: ...` with status 2 for a {@linkcode UsageError} (plus `hint`) and 1 otherwise.
 */
export async function exitStatus(
  ctx: Required<TaskContext>,
  hint: string,
  body: () => Promise<number | void>,
): Promise<number> {
  try {
    return (await body()) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      ctx.printError(`error: ${error.message}\n${hint}`);
      return 2;
    }
    ctx.printError(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

/**
 * Runs a task: fills in `context`'s defaults, parses `argv` against `spec.flags`
 * ({@linkcode parseCommand}: `--help` prints the help and succeeds, a usage error exits 2 with
 * the usage), runs `body` with the flags, and turns its outcome into an exit status
 * ({@linkcode exitStatus}).
 */
export async function runTask<S extends FlagSpecs>(
  spec: CommandSpec<S>,
  argv: readonly string[],
  context: TaskContext,
  body: (flags: Flags<S>, ctx: Required<TaskContext>) => Promise<number | void>,
): Promise<number> {
  const ctx = withDefaults(context);
  const flags = parseCommand(spec, argv, ctx.print, ctx.printError);
  if (typeof flags === "number") return flags;
  return await exitStatus(
    ctx,
    `run \`deno task ${spec.name} --help\` for the flags`,
    () => body(flags, ctx),
  );
}

/** What a task works on, as its flags name it. */
export interface TaskTarget {
  /** `-dvc`, canonical: the devices of the model, in stage order. */
  readonly devices: readonly string[];
  /** `-edvc`, canonical (empty without the flag). */
  readonly extraDevices: readonly string[];
  /**
   * The device groups of `--replicas` (`-dvc` cut into equal groups, one copy of the model on
   * each); `[devices]` without it.
   */
  readonly replicas: readonly (readonly string[])[];
  /** `--split-layers`, `--max-memory`, `--editor-device`, checked (against one group). */
  readonly placement: PlacementOptions;
  /** `-en`, lower case. */
  readonly editorName: string;
  /** Its registry entry. */
  readonly entry: EditorEntry;
  /** `-mn` / `--model-dir` resolved against the settings file. */
  readonly model: ResolvedModel;
  /** `--data-root`, else the settings file's `dataRoot`, else `data`. */
  readonly dataRoot: string;
}

/** The flags {@linkcode resolveTarget} reads (`TARGET_FLAGS`, with `-edvc` and `--data-root`). */
export interface TargetFlags {
  /** `--max-image-pixels`. */
  readonly maxImagePixels: number;
  /** `--allow-svg`. */
  readonly allowSvg?: boolean;
  /** `-dvc` (a device list). */
  readonly device: readonly string[];
  /** `-edvc`. */
  readonly extraDevices?: readonly string[];
  /** `--split-layers`. */
  readonly splitLayers?: readonly string[];
  /** `--max-memory`. */
  readonly maxMemory?: readonly string[];
  /** `--editor-device`. */
  readonly editorDevice?: string;
  /** `--replicas` (default 1). */
  readonly replicas?: number;
  /** `-en`. */
  readonly editorName: string;
  /** `-mn`. */
  readonly modelName: string;
  /** `--model-dir`. */
  readonly modelDir?: string;
  /** `--config`. */
  readonly config?: string;
  /** `--data-root`. */
  readonly dataRoot?: string;
}

/**
 * Sets the image limits (`--max-image-pixels`, `--allow-svg`), checks the devices (`-dvc`,
 * `-edvc`), `--replicas` and the placement flags, resolves `-en` through `ctx.editors`, reads the
 * settings file (`--config`) and resolves `-mn` / `--model-dir` and the data root against it;
 * throws naming what is malformed, unknown or missing.
 */
export async function resolveTarget(
  ctx: Required<TaskContext>,
  flags: TargetFlags,
): Promise<TaskTarget> {
  applyImageFlags(flags);
  const { devices, extraDevices } = parseDeviceFlags(flags.device, flags.extraDevices);
  const replicas = parseReplicaGroups(devices, flags.replicas ?? 1);
  const placement = parsePlacementFlags(flags, replicas[0]);
  if (replicas.length > 1 && placement.editorDevice !== undefined) {
    throw new UsageError(
      `--editor-device is for one copy of the model; with --replicas ${replicas.length} each ` +
        "replica keeps the editor on its stage of the edit layer",
    );
  }
  const editorName = flags.editorName.toLowerCase();
  const entry = editorEntry(ctx.editors, editorName);
  const settings = await loadSettings(flags.config, ctx.cwd);
  const model = resolveModel(flags.modelName, flags.modelDir, settings, ctx.cwd);
  const dataRoot = resolveDataRoot(flags.dataRoot, settings, ctx.cwd);
  return { devices, extraDevices, replicas, placement, editorName, entry, model, dataRoot };
}
