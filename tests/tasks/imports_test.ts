/**
 * What the tasks load when they start: `test-edit` and `infer` only edit and evaluate, so their
 * static imports (Deno's module graph, code dependencies, dynamic imports left out) hold no
 * training code: no trainer, loss graph, autodiff or Adam.
 */
import assert from "node:assert/strict";

const root = new URL("../../", import.meta.url);

interface Dependency {
  readonly code?: { readonly specifier?: string };
  readonly isDynamic?: boolean;
}

interface ModuleGraph {
  readonly roots: readonly string[];
  readonly modules: readonly { specifier: string; dependencies?: readonly Dependency[] }[];
  readonly redirects: Readonly<Record<string, string>>;
}

/** The modules `task` loads before it runs: its static code imports, transitively. */
async function loadedAtStart(task: string): Promise<Set<string>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", task],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const graph: ModuleGraph = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules = new Map(graph.modules.map((m) => [m.specifier, m]));
  const seen = new Set<string>();
  const stack = [...graph.roots];
  while (stack.length > 0) {
    const specifier = stack.pop()!;
    if (seen.has(specifier)) continue;
    seen.add(specifier);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      const target = dep.code?.specifier;
      if (target !== undefined && !dep.isDynamic) stack.push(graph.redirects[target] ?? target);
    }
  }
  return seen;
}

const TRAINING = [
  "src/editors/liveedit/trainer.ts",
  "src/editors/liveedit/losses.ts",
  "src/editors/liveedit/train_batch.ts",
  "src/editors/liveedit/stage_step.ts",
  "src/graph/grad.ts",
  "src/graph/rules.ts",
  "src/train/adam.ts",
];

for (const task of ["tasks/test_edit.ts", "tasks/infer.ts"]) {
  Deno.test(`${task} loads no training code when it starts`, async () => {
    const loaded = await loadedAtStart(task);
    const entry = new URL("src/editors/liveedit/entry.ts", root).href;
    assert.ok(loaded.has(entry), "the editor entry is loaded");
    for (const file of TRAINING) {
      assert.ok(!loaded.has(new URL(file, root).href), `${task} loads ${file}`);
    }
  });
}
