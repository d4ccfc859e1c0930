// Bundles the TypeScript library (without SignalR) with esbuild so that node's test runner can
// import it: `node --test tests/ts/` needs no build step first.

import { build } from "esbuild";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const root = resolve(import.meta.dirname, "../..");
const dir = mkdtempSync(join(tmpdir(), "collab-ts-"));
const outfile = join(dir, "lib.mjs");
await build({
  stdin: {
    contents: `
      export * as ot from "./client/ts/ot.ts";
      export * as richText from "./client/ts/rich-text.ts";
      export { Delta } from "./client/ts/rich-text.ts";
      export { docTypes, richTextType, textType } from "./client/ts/doctype.ts";
      export { RichTextDocument } from "./client/ts/rich-document.ts";
      export * as sync from "./client/ts/sync.ts";
      export * as engine from "./client/ts/engine.ts";
      export { CollabDocument } from "./client/ts/document.ts";
      export { checkUnsent } from "./client/ts/unsent.ts";
      export { reconnectDelay } from "./client/ts/backoff.ts";
      export { CollabError, classifyHandshake, reasonOfCode } from "./client/ts/errors.ts";
      export { errorCode, readJoinResult, readOpMessage, readPresenceMessage, readResetMessage } from "./client/ts/messages.ts";
      export { HeldEdits, loneSurrogates } from "./client/codemirror/held.ts";
      export { changesSince, applyChanges } from "./client/web/pastdiff.ts";
      export { ChangeSet, EditorState } from "@codemirror/state";
    `,
    resolveDir: root,
    loader: "ts",
  },
  bundle: true,
  format: "esm",
  platform: "node",
  // The packages from their sources (as `npm run build` bundles them), not from a dist that may not be built.
  conditions: ["collab-source"],
  outfile,
  logLevel: "error",
});
const lib = await import(pathToFileURL(outfile).href);
rmSync(dir, { recursive: true, force: true });

export const { ot, richText, Delta, docTypes, richTextType, textType, RichTextDocument, sync, engine, CollabDocument, checkUnsent, reconnectDelay, CollabError, classifyHandshake, reasonOfCode, errorCode, readJoinResult, readOpMessage, readPresenceMessage, readResetMessage, HeldEdits, loneSurrogates, changesSince, applyChanges, ChangeSet, EditorState } = lib;
export const repoRoot = root;

/** A small seeded random number generator (mulberry32), so a failing case can be replayed. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  next.int = (n) => Math.floor(next() * n);
  next.pick = (items) => items[Math.floor(next() * items.length)];
  return next;
}

const alphabet = ["a", "b", "c", " ", "\n", "é", "中", "😀"];

/** A random text of up to `max` code units, never splitting a surrogate pair. */
export function randomText(r, max) {
  let s = "";
  const n = r.int(max + 1);
  while (s.length < n) s += r.pick(alphabet);
  return s;
}

/** Positions in `doc` that do not split a surrogate pair. */
export function boundaries(doc) {
  const result = [];
  for (let i = 0; i <= doc.length; i++) {
    const low = doc.charCodeAt(i);
    if (i > 0 && i < doc.length && low >= 0xdc00 && low <= 0xdfff) continue;
    result.push(i);
  }
  return result;
}

/** A random valid op on `doc`, made of a few random edits. */
export function randomOp(r, doc) {
  const b = new ot.Builder();
  const cuts = boundaries(doc);
  let pos = 0;
  let i = 0;
  while (pos < doc.length && i < 6) {
    i++;
    const later = cuts.filter((c) => c > pos);
    if (later.length === 0) break;
    const next = r.pick(later.slice(0, 8));
    const kind = r.int(3);
    if (kind === 0) b.retain(next - pos);
    else if (kind === 1) b.delete(next - pos);
    else b.insert(randomText(r, 4)).retain(next - pos);
    pos = next;
  }
  if (r.int(2) === 0) b.insert(randomText(r, 3));
  return b.build();
}
