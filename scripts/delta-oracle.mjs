// Writes seeded random cases of quill-delta 5.1.0's operations as JSON lines on stdout, each
// with quill's own results, for the C# Delta (client/CollabProtocol/Ot/Delta.cs) to replay and
// agree with exactly (tests/CollabProtocol.Tests/DeltaOracleTests.cs).
//
//   node scripts/delta-oracle.mjs --seed S --count N
//
// Every line is one case: {"kind": …, inputs…, outputs…}, deltas as quill's op arrays. Kinds:
// compose (a then b on a document, and a onto the document), transform (both priorities),
// position (transformPosition, both priorities), invert, diff, and history (several sites edit
// their own copies concurrently; a server sequences their ops by transform; every site
// converges). The same seed always gives the same lines: the only randomness is the seeded PRNG.
// Random deltas have attributes (with null removals), embeds, astral characters (two UTF-16
// code units each; cuts never fall inside one) and adjacent pieces that merge.

import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const Delta = require("quill-delta");

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const seed = option("--seed", 1) >>> 0;
const count = option("--count", 1000);

// mulberry32: a 32-bit state, enough for test data.
let state = seed;
const random = () => {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const int = (n) => Math.floor(random() * n);
const pick = (items) => items[int(items.length)];
const chance = (p) => random() < p;

// Text pieces: ASCII, words that diff can align on, newlines, a two-byte letter, astral
// characters (surrogate pairs) and U+0000, which diff also uses to stand for an embed.
// Some whitespace that JavaScript's \s and .NET's char.IsWhiteSpace disagree on, since diff's
// cleanup scores cuts by it: U+0085 (not \s), U+FEFF (\s), and others that both count.
const pieces = [
  "a", "b", "c", "ab", "the ", "cat", " ", "\n", "é", "😀", "𝒜b", "x😀y", "\u0000", "hello world", "\t",
  "\n\n", "\r\n", "\u00a0", "\u0085", "\ufeff", "\u2028", "\u3000", "x.y", "A-Z ",
];
const attributeValues = {
  bold: [true, false],
  italic: [true],
  header: [1, 2, 1.0, 3],
  link: ["https://example.com/a", "https://example.com/b"],
  color: ["#f00", "#00f", "red"],
  size: [1.5, 12],
};
const embeds = [
  () => ({ image: "a.png" }),
  () => ({ image: "b.png" }),
  () => (chance(0.5) ? { video: "v.mp4", width: 2 } : { width: 2, video: "v.mp4" }),
  () => ({ formula: "e=mc^2", meta: { tags: ["x", 1] } }),
];

function attributes(nulls) {
  if (chance(0.45)) return undefined;
  const result = {};
  const n = 1 + int(3);
  for (let i = 0; i < n; i++) {
    const key = pick(Object.keys(attributeValues));
    result[key] = nulls && chance(0.3) ? null : pick(attributeValues[key]);
  }
  return result;
}

function insertion(delta, nulls) {
  if (chance(0.15)) {
    delta.insert(pick(embeds)(), attributes(nulls));
  } else {
    delta.insert(pick(pieces), attributes(nulls));
  }
}

/** A document: inserts only, sometimes several adjacent ones that merge. */
function randomDocument(maxPieces = 8) {
  const doc = new Delta();
  const n = int(maxPieces + 1);
  for (let i = 0; i < n; i++) insertion(doc, false);
  return doc;
}

/** The document as UTF-16 code units (an embed as U+0000), to keep cuts out of surrogate pairs. */
const units = (doc) => doc.ops.map((op) => (typeof op.insert === "string" ? op.insert : "\u0000")).join("");
const splitsPair = (text, pos) =>
  pos > 0 && pos < text.length && /[\ud800-\udbff]/.test(text[pos - 1]) && /[\udc00-\udfff]/.test(text[pos]);

/** A change to `doc`: retains (some with attributes), deletes and inserts; some inserts carry nulls. */
function randomChange(doc) {
  const text = units(doc);
  const delta = new Delta();
  let pos = 0;
  const steps = 1 + int(6);
  for (let i = 0; i < steps; i++) {
    const left = text.length - pos;
    const r = random();
    if (r < 0.35 || left === 0) {
      insertion(delta, chance(0.2));
      continue;
    }
    let n = 1 + int(Math.min(left, 6));
    if (splitsPair(text, pos + n)) n++;
    if (r < 0.65) {
      delta.retain(n, attributes(true));
    } else {
      delta.delete(n);
    }
    pos += n;
  }
  if (chance(0.2) && pos < text.length) {
    delta.retain(text.length - pos, attributes(true));
  }
  return delta.chop();
}

/** JSON with object keys sorted, to compare values as quill's isEqual does. */
const sorted = (value) =>
  JSON.stringify(value, (_, v) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([x], [y]) => (x < y ? -1 : 1))) : v,
  );

function history() {
  const start = randomDocument(4);
  const server = { doc: start, history: [] };
  const queue = [];
  const sites = Array.from({ length: 2 + int(3) }, () => ({ doc: start, version: 0, inflight: null, buffer: null }));
  const events = [];
  const send = (i) => {
    const site = sites[i];
    if (site.inflight || !site.buffer) return false;
    site.inflight = site.buffer;
    site.buffer = null;
    queue.push({ site: i, base: site.version, op: site.inflight });
    events.push({ send: i });
    return true;
  };
  const sequence = () => {
    if (queue.length === 0) return false;
    const { site, base, op } = queue.shift();
    let incoming = op;
    for (const h of server.history.slice(base)) incoming = h.op.transform(incoming, true);
    server.doc = server.doc.compose(incoming);
    server.history.push({ site, op: incoming });
    events.push({ process: 1 });
    return true;
  };
  const deliver = (i) => {
    const site = sites[i];
    if (site.version >= server.history.length) return false;
    const h = server.history[site.version++];
    events.push({ deliver: i });
    if (h.site === i) {
      site.inflight = null;
      return true;
    }
    let op = h.op;
    if (site.inflight) {
      const inflight = op.transform(site.inflight, true);
      op = site.inflight.transform(op, false);
      site.inflight = inflight;
    }
    if (site.buffer) {
      const buffer = op.transform(site.buffer, true);
      op = site.buffer.transform(op, false);
      site.buffer = buffer;
    }
    site.doc = site.doc.compose(op);
    return true;
  };
  const steps = 5 + int(25);
  for (let s = 0; s < steps; s++) {
    const i = int(sites.length);
    const r = random();
    if (r < 0.4) {
      const op = randomChange(sites[i].doc);
      sites[i].doc = sites[i].doc.compose(op);
      sites[i].buffer = sites[i].buffer ? sites[i].buffer.compose(op) : op;
      events.push({ edit: i, op: op.ops });
    } else if (r < 0.6) {
      send(i);
    } else if (r < 0.8) {
      sequence();
    } else {
      deliver(i);
    }
  }
  // Quiesce: everything is sent, sequenced and delivered.
  for (let busy = true; busy; ) {
    busy = false;
    for (let i = 0; i < sites.length; i++) busy = send(i) || busy;
    while (sequence()) busy = true;
    for (let i = 0; i < sites.length; i++) while (deliver(i)) busy = true;
  }
  for (const site of sites) {
    if (sorted(site.doc.ops) !== sorted(server.doc.ops)) {
      throw new Error(`quill-delta did not converge (seed ${seed}): ${sorted(site.doc.ops)} != ${sorted(server.doc.ops)}`);
    }
  }
  return {
    start: start.ops,
    sites: sites.length,
    events,
    history: server.history.map((h) => h.op.ops),
    final: server.doc.ops,
  };
}

const kinds = [
  [0.25, "compose"],
  [0.5, "transform"],
  [0.6, "position"],
  [0.72, "invert"],
  [0.92, "diff"],
  [1, "history"],
];

const out = [];
for (let n = 0; n < count; n++) {
  const r = random();
  const kind = kinds.find(([p]) => r < p)[1];
  let record;
  const doc = randomDocument();
  if (kind === "compose") {
    const a = randomChange(doc);
    const b = randomChange(doc.compose(a));
    record = { doc: doc.ops, a: a.ops, b: b.ops, ab: a.compose(b).ops, applied: doc.compose(a).ops };
  } else if (kind === "transform") {
    const a = randomChange(doc);
    const b = randomChange(doc);
    record = { doc: doc.ops, a: a.ops, b: b.ops, first: a.transform(b, true).ops, second: a.transform(b, false).ops };
  } else if (kind === "position") {
    const a = randomChange(doc);
    const index = int(doc.length() + 3);
    record = { a: a.ops, index, first: a.transformPosition(index, true), second: a.transformPosition(index, false) };
  } else if (kind === "invert") {
    const a = randomChange(doc);
    record = { doc: doc.ops, a: a.ops, inverted: a.invert(doc).ops };
  } else if (kind === "diff") {
    // Longer texts too, so that diff's half-match, bisection and cleanups all take part.
    const base = chance(0.3) ? randomDocument(40) : doc;
    let other = chance(0.3) ? randomDocument(40) : base;
    for (let edits = 1 + int(4); edits > 0; edits--) other = other.compose(randomChange(other));
    record = { doc: base.ops, other: other.ops, diff: base.diff(other).ops };
  } else {
    record = history();
  }
  out.push(JSON.stringify({ kind, ...record }));
  if (out.length === 500) {
    process.stdout.write(out.join("\n") + "\n");
    out.length = 0;
  }
}
process.stdout.write(out.length > 0 ? out.join("\n") + "\n" : "");
