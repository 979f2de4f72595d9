import assert from "node:assert/strict";
import { Progress } from "../../src/cli/progress.ts";

/** What the bar writes before each redraw: back to column 0, clear the row. */
const REDRAW = "\r\x1b[2K";

/** The rows a terminal `columns` wide shows after `writes`: `\r` returns, `\x1b[2K` clears. */
function screen(writes: readonly string[], columns: number): string[] {
  const rows = [""];
  for (const chunk of writes) {
    for (const part of chunk.replaceAll(REDRAW, "\r\0").split(/(\r|\0|\n)/)) {
      if (part === "\r") continue; // the cursor goes back to column 0 of its row
      if (part === "\0") rows[rows.length - 1] = ""; // the row is cleared
      else if (part === "\n") rows.push("");
      else {
        for (const ch of part) {
          if ([...rows.at(-1)!].length === columns) rows.push(""); // the terminal wraps
          rows[rows.length - 1] += ch;
        }
      }
    }
  }
  return rows.at(-1) === "" ? rows.slice(0, -1) : rows;
}

Deno.test("Progress on a 70-column terminal: 34 redraws stay on one line, within the width", () => {
  const writes: string[] = [];
  let t = 0;
  const p = new Progress({
    total: 34,
    label: "test-edit sequential_edit_10",
    unit: "edit",
    tty: true,
    columns: () => 70,
    now: () => t,
    write: (s) => writes.push(s),
  });
  for (let i = 1; i <= 34; i++) {
    t = i * 1000;
    p.update(i, `epoch 1 loss ${(1 / i).toFixed(4)} ema ${(2 / i).toFixed(4)}`);
  }
  p.done();
  const rows = screen(writes, 70);
  assert.equal(rows.length, 1, rows.join("\n"));
  assert.ok([...rows[0]].length <= 69, rows[0]);
  assert.match(rows[0], /^test-edit sequential_edit_10 \|█+\| 100\.0% 34\/34 /);
  for (const w of writes) {
    assert.ok([...w.replaceAll(REDRAW, "").replace(/\n$/, "")].length <= 69, JSON.stringify(w));
  }
});

Deno.test("Progress width: the bar narrows to 8, then the end of the line is cut, then the bar goes", () => {
  let columns = 200;
  const p = new Progress({
    total: 10,
    label: "train",
    tty: true,
    columns: () => columns,
    now: () => 0,
    write: () => {},
  });
  p.update(5, "a note that is rather long");
  const bar = (line: string) => /\|(.*)\|/.exec(line)?.[1] ?? "";
  const full = p.line();
  assert.equal(bar(full).length, 24);
  assert.ok(full.endsWith("a note that is rather long"), full);
  columns = full.length - 5; // 6 characters too many with the full bar
  assert.equal(bar(p.line()).length, 18);
  assert.equal(p.line().length, columns - 1);
  for (columns of [50, 30]) {
    assert.equal(bar(p.line()), "████    ", p.line());
    assert.ok(p.line().endsWith("…") && p.line().length === columns - 1, p.line());
    assert.ok(p.line().startsWith("train |████    |  50.0% 5/10"), p.line());
  }
  columns = 20; // not even the label and the count next to a bar of 8: no bar
  assert.equal(p.line(), "train  50.0% 5/10 …");
  columns = 1;
  assert.equal(p.line(), "…");
  // off a terminal: no bar and the whole line, whatever the width
  const plain = new Progress({
    total: 10,
    label: "train",
    tty: false,
    columns: () => 20,
    write: () => {},
  });
  plain.update(5, "a note that is rather long");
  assert.ok(plain.line().endsWith("a note that is rather long"));
});
