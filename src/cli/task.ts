/**
 * What the tasks (`tasks/train.ts`, `tasks/test_edit.ts`, `tasks/infer.ts`) share around their
 * work: where messages go, which editors exist, the working directory, and the exit status of
 * a failure (2 for a usage error, printed with a hint at `--help`; 1 for anything else).
 *
 * @module
 */
import type { EditorRegistry } from "../editors/api.ts";
import { EDITORS } from "../editors/registry.ts";
import { UsageError } from "./flags.ts";

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
