/**
 * "Did you mean" suggestions for a tensor name that is not in a file or checkpoint.
 *
 * @module
 */

/**
 * Up to `limit` names from `candidates` close to `name`: those where one name ends with the
 * other (a missing or extra prefix such as `model.`), then those within an edit distance of
 * about a third of the name's length, nearest first.
 */
export function closeNames(name: string, candidates: Iterable<string>, limit = 3): string[] {
  const maxDistance = Math.max(2, Math.floor(name.length / 3));
  const scored: [number, string][] = [];
  for (const c of candidates) {
    if ((name !== "" && c.endsWith(name)) || (c !== "" && name.endsWith(c))) scored.push([0, c]);
    else {
      const d = editDistance(name, c, maxDistance);
      if (d <= maxDistance) scored.push([d, c]);
    }
  }
  scored.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return scored.slice(0, limit).map(([, c]) => c);
}

/**
 * The message suffix for a missing `name`: ` (did you mean "a", "b"?)`, or `""` when nothing is
 * close.
 */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const close = closeNames(name, candidates);
  return close.length === 0
    ? ""
    : ` (did you mean ${close.map((c) => JSON.stringify(c)).join(", ")}?)`;
}

/** Levenshtein distance of `a` and `b`, or a value above `cap` as soon as it must exceed it. */
function editDistance(a: string, b: string, cap: number): number {
  if (Math.abs(a.length - b.length) > cap) return cap + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost);
      rowMin = Math.min(rowMin, cur[j]);
    }
    if (rowMin > cap) return cap + 1;
    prev = cur;
  }
  return prev[b.length];
}
