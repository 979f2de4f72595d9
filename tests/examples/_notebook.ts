/**
 * Running a Jupyter notebook's code cells without Jupyter: the cells become one module, in
 * order, each preceded by a marker assignment, run by `deno run` in a subprocess whose working
 * directory is the notebook's, with the `deno.json` found from there (as the Deno kernel runs
 * it). Static imports become dynamic ones
 * where they stand (a kernel evaluates cell by cell, so an import fails in its own cell), with
 * relative specifiers made absolute (the module lives in a temporary directory). A cell that
 * throws is named in the result: its number among all cells (1-based, markdown included, as a
 * notebook shows them).
 *
 * @module
 */
import { dirname, join, resolve } from "node:path";

/** What {@linkcode runNotebook} saw. */
export interface NotebookRun {
  /** The subprocess's exit status. */
  readonly code: number;
  /** Its standard output. */
  readonly stdout: string;
  /** Its standard error. */
  readonly stderr: string;
  /** The 1-based number of the cell that threw, or null. */
  readonly failedCell: number | null;
}

const MARK = "__notebookCell";

/** The module of the code cells of `notebook` (a parsed `.ipynb`), imports based at `dir`. */
export function notebookModule(notebook: unknown, dir: string): string {
  const cells = (notebook as { cells?: unknown }).cells;
  if (!Array.isArray(cells)) throw new Error("notebook: no 'cells' array");
  const base = new URL(`file://${resolve(dir)}/`);
  const absolute = (spec: string) => spec.startsWith(".") ? new URL(spec, base).href : spec;
  const parts: string[] = [];
  cells.forEach((cell, i) => {
    if (cell.cell_type !== "code") return;
    const source = Array.isArray(cell.source) ? cell.source.join("") : String(cell.source);
    const code = dynamicImports(source, absolute);
    parts.push(
      `// cell ${i + 1}\n(globalThis as Record<string, unknown>).${MARK} = ${i + 1};\n${code}\n`,
    );
  });
  return parts.join("\n");
}

/**
 * `source` with each static import turned into an `await import(...)` of `rebase(specifier)`
 * (type-only imports dropped) and each dynamic import's specifier rebased.
 */
function dynamicImports(source: string, rebase: (spec: string) => string): string {
  const q = (spec: string) => JSON.stringify(rebase(spec));
  return source
    .replace(/^import\s+type\b[\s\S]*?from\s*(["'])[^"']+\1;?/gm, "")
    .replace(
      /^import\s+\*\s+as\s+(\w+)\s+from\s*(["'])([^"']+)\2;?/gm,
      (_m, name: string, _q, spec: string) => `const ${name} = await import(${q(spec)});`,
    )
    .replace(
      /^import\s*\{([\s\S]*?)\}\s*from\s*(["'])([^"']+)\2;?/gm,
      (_m, names: string, _q, spec: string) =>
        `const {${names.replace(/\b(\w+)\s+as\s+(\w+)/g, "$1: $2")}} = await import(${q(spec)});`,
    )
    .replace(
      /^import\s+(\w+)\s+from\s*(["'])([^"']+)\2;?/gm,
      (_m, name: string, _q, spec: string) => `const ${name} = (await import(${q(spec)})).default;`,
    )
    .replace(
      /^import\s*(["'])([^"']+)\1;?/gm,
      (_m, _q, spec: string) => `await import(${q(spec)});`,
    )
    .replace(
      /(\bimport\s*\(\s*)(["'])(\.[^"']*)\2/g,
      (_m, head: string, _q, spec: string) => `${head}${q(spec)}`,
    );
}

/**
 * `--config` with the `deno.json` in `dir` or its nearest parent (as the Deno kernel finds it
 * from the notebook's directory), or nothing.
 */
function configArgs(dir: string): string[] {
  for (let d = dir;; d = dirname(d)) {
    try {
      if (Deno.statSync(join(d, "deno.json")).isFile) return ["--config", join(d, "deno.json")];
    } catch {
      // not here: look further up
    }
    if (dirname(d) === d) return [];
  }
}

/** Options of {@linkcode runNotebook}. */
export interface RunNotebookOptions {
  /** Added to the environment. */
  readonly env?: Record<string, string>;
  /**
   * The directory the notebook runs in and resolves relative imports against (default: the
   * notebook's), e.g. to run a copy as if it were the original.
   */
  readonly dir?: string;
}

/**
 * Runs the code cells of the notebook at `path` in order (see the module docs); resolves with
 * the exit status, the output and the cell that threw.
 */
export async function runNotebook(
  path: string,
  options: RunNotebookOptions = {},
): Promise<NotebookRun> {
  const notebook = JSON.parse(await Deno.readTextFile(path));
  const dir = resolve(options.dir ?? dirname(path));
  const tmp = await Deno.makeTempDir({ prefix: "liveedit-notebook-" });
  try {
    await Deno.writeTextFile(join(tmp, "cells.ts"), notebookModule(notebook, dir));
    await Deno.writeTextFile(
      join(tmp, "run.ts"),
      `try {\n  await import("./cells.ts");\n} catch (error) {\n` +
        `  const cell = (globalThis as Record<string, unknown>).${MARK} ?? "?";\n` +
        `  console.error(\`notebook cell \${cell} failed: \${(error as Error)?.stack ?? error}\`);\n` +
        `  Deno.exit(1);\n}\n`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...configArgs(dir), join(tmp, "run.ts")],
      cwd: dir,
      env: options.env ?? {},
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    const failed = /notebook cell (\d+) failed/.exec(stderr);
    return { code: out.code, stdout, stderr, failedCell: failed ? Number(failed[1]) : null };
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
