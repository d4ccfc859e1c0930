// How much receiving a remote op costs a CollabDocument: time and heap bytes allocated per op,
// on a 1 KB and a 10 MB document, each op a single-character insert at a seeded random place
// (the 1 KB case starts a fresh document every 200 ops, so it stays near 1 KB).
// Not a test (node --test runs only *.test.mjs); run it with `npm run bench:ts`, which passes
// --expose-gc. docs/PERFORMANCE-TS-CLIENT.md has the figures.
//
// Bytes allocated = growth of the used heap over the measured ops plus what every garbage
// collection during them freed (v8.GCProfiler). The op messages are built beforehand, so the
// figure is what applying costs beyond the op itself.

import v8 from "node:v8";
import { CollabDocument, ot, rng } from "../lib.mjs";

if (typeof globalThis.gc !== "function") {
  console.error("run with node --expose-gc (npm run bench:ts)");
  process.exit(2);
}

/** `size` code units of 63-character lines, as source text tends to be. */
function makeText(size) {
  const line = "abcdefghijklmnopqrstuvwxyz0123456789 ABCDEFGHIJKLMNOPQRSTUVWXYZ+-=".slice(0, 63) + "\n";
  return line.repeat(Math.ceil(size / line.length)).slice(0, size);
}

async function joinedDocument(text) {
  let n = 0;
  const host = { clientId: "me", user: () => undefined, nextOpId: () => ++n, redirect: () => {} };
  const doc = new CollabDocument("bench", host);
  const opened = doc.opened();
  const answer = { docId: "bench", version: 0, text, ops: null, readOnly: false, redirect: null, presence: [] };
  doc.attach({
    join: async () => answer,
    submit: () => new Promise(() => {}),
    setPresence: async () => {},
    leave: async () => {},
  });
  await opened;
  return doc;
}

/** Remote single inserts for versions `first`.., each valid on the text the previous ones leave. */
function messages(r, length, first, count) {
  const result = [];
  for (let i = 0; i < count; i++) {
    const version = first + i;
    result.push({ docId: "bench", version, op: ot.insert(r.int(length + i + 1), "x"), clientId: "them", opId: version });
  }
  return result;
}

function usedHeap() {
  return v8.getHeapStatistics().used_heap_size;
}

/** Receives `ops` remote inserts, on a fresh document every `perDocument` ops so its size stays near `size`. */
async function run(label, size, ops, perDocument) {
  const r = rng(size);
  let elapsed = 0;
  let allocated = 0;
  let collections = 0;
  let textElapsed = 0;
  for (let done = 0; done < ops; done += perDocument) {
    const doc = await joinedDocument(makeText(size));
    let seen = 0;
    doc.on("change", ({ op }) => {
      seen += op.length; // what an editor binding does: it reads the op, not the text
    });
    const warmup = done === 0 ? 100 : 0;
    for (const m of messages(r, size, 1, warmup)) doc.receiveOp(m);
    const measured = messages(r, size + warmup, warmup + 1, perDocument);

    globalThis.gc();
    const profiler = new v8.GCProfiler();
    const heapBefore = usedHeap();
    profiler.start();
    const start = process.hrtime.bigint();
    for (const m of measured) doc.receiveOp(m);
    elapsed += Number(process.hrtime.bigint() - start);
    const heapAfter = usedHeap();
    const { statistics } = profiler.stop();
    let freed = 0;
    for (const s of statistics) freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
    allocated += heapAfter - heapBefore + freed;
    collections += statistics.length;

    if (doc.version !== warmup + perDocument || seen === 0) throw new Error(`${label}: the ops were not applied`);
    const textStart = process.hrtime.bigint();
    const text = doc.text;
    textElapsed = Math.max(textElapsed, Number(process.hrtime.bigint() - textStart));
    if (text.length !== size + warmup + perDocument) throw new Error(`${label}: text length ${text.length}`);
    doc.detach();
  }
  console.log(
    `${label.padEnd(6)} ${String(ops).padStart(6)} ops  ` +
      `${(elapsed / ops / 1000).toFixed(2).padStart(9)} µs/op  ` +
      `${Math.round(allocated / ops).toLocaleString("en-US").padStart(12)} B/op  ` +
      `(${collections} GCs; doc.text after the ops: ${(textElapsed / 1e6).toFixed(2)} ms at most)`,
  );
}

console.log(`node ${process.version}, remote single-character inserts`);
await run("1 KB", 1024, 20_000, 200);
await run("10 MB", 10 * 1024 * 1024, 2_000, 2_000);
