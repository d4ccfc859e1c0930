// What changed between an old text and the current one, as replacements on the old text: the
// lines that differ (a line diff, longest common subsequence) narrowed to the characters that
// differ inside each run of changed lines. Used to highlight an old version in the history view.

import { ot } from "@collabserver/client";

/** In the old text, `[from, to)` was replaced by `inserted` since. */
export interface Change {
  readonly from: number;
  readonly to: number;
  readonly inserted: string;
}

/** Line diff tables bigger than this (changed old lines × changed new lines) use one replacement instead. */
const maxCells = 4_000_000;

function splitLines(text: string): string[] {
  // Each line keeps its "\n", so joining them gives the text back and offsets add up.
  const lines = text.match(/[^\n]*\n|[^\n]+$/g);
  return lines ?? [];
}

/** The one smallest replacement turning `from` into `to` (common prefix and suffix kept), or none. */
function single(from: string, to: string, offset: number): Change[] {
  const op = ot.diff(from, to);
  let pos = 0;
  let start = -1;
  let end = 0;
  let inserted = "";
  for (const c of op) {
    if (ot.isRetain(c)) pos += c;
    else if (ot.isInsert(c)) {
      if (start < 0) start = pos;
      inserted += c;
      end = Math.max(end, pos);
    } else {
      if (start < 0) start = pos;
      pos += -c;
      end = pos;
    }
  }
  if (start < 0) return [];
  return [{ from: offset + start, to: offset + Math.max(start, end), inserted }];
}

/** The changes that turn `old` into `current`, in order, not overlapping, on `old`'s offsets. */
export function changesSince(old: string, current: string): Change[] {
  if (old === current) return [];
  const a = splitLines(old);
  const b = splitLines(current);
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const n = a.length - head - tail;
  const m = b.length - head - tail;
  let offset = 0;
  for (let i = 0; i < head; i++) offset += a[i].length;
  const oldMiddle = a.slice(head, head + n).join("");
  const newMiddle = b.slice(head, head + m).join("");
  if (n === 0 || m === 0 || n * m > maxCells) return single(oldMiddle, newMiddle, offset);

  // lcs[i][j]: the longest common subsequence of a[head+i..] and b[head+j..].
  const width = m + 1;
  const lcs = new Uint32Array((n + 1) * width);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i * width + j] =
        a[head + i] === b[head + j] ? lcs[(i + 1) * width + j + 1] + 1 : Math.max(lcs[(i + 1) * width + j], lcs[i * width + j + 1]);
    }
  }
  const changes: Change[] = [];
  let i = 0;
  let j = 0;
  let pos = offset;
  while (i < n || j < m) {
    if (i < n && j < m && a[head + i] === b[head + j]) {
      pos += a[head + i].length;
      i++;
      j++;
      continue;
    }
    // A run of changed lines: old lines i..i2 became new lines j..j2.
    const start = pos;
    let removed = "";
    let added = "";
    while ((i < n || j < m) && !(i < n && j < m && a[head + i] === b[head + j])) {
      if (j >= m || (i < n && lcs[(i + 1) * width + j] >= lcs[i * width + j + 1])) {
        removed += a[head + i];
        pos += a[head + i].length;
        i++;
      } else {
        added += b[head + j];
        j++;
      }
    }
    changes.push(...single(removed, added, start));
  }
  return changes;
}

/** Applies `changes` (from {@link changesSince}) to `old`: gives the current text back. */
export function applyChanges(old: string, changes: readonly Change[]): string {
  let out = "";
  let pos = 0;
  for (const c of changes) {
    out += old.slice(pos, c.from) + c.inserted;
    pos = c.to;
  }
  return out + old.slice(pos);
}
