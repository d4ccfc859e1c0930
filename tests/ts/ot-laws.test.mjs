// The algebraic laws of the OT, checked on seeded random documents and ops. A failure prints
// the seed and the case, so it can be replayed.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { boundaries, ot, randomOp, randomText, rng } from "./lib.mjs";

const runs = 2000;

/** Runs `check` on `runs` random cases; on a failure, says which seed to replay. */
function forAll(name, check) {
  test(name, () => {
    for (let seed = 1; seed <= runs; seed++) {
      const r = rng(seed * 7919);
      try {
        check(r);
      } catch (error) {
        error.message = `seed ${seed}: ${error.message}`;
        throw error;
      }
    }
  });
}

const isCanonical = (op) => {
  for (let i = 0; i < op.length; i++) {
    const c = op[i];
    if (c === 0 || c === "") return false;
    if (i > 0) {
      const p = op[i - 1];
      if (typeof p === typeof c && (typeof c === "string" || Math.sign(p) === Math.sign(c))) return false;
      if (ot.isDelete(p) && typeof c === "string") return false; // insert before an adjacent delete
    }
  }
  return op.length === 0 || !ot.isRetain(op[op.length - 1]);
};

describe("OT laws", () => {
  forAll("apply changes the length by lengthDelta and only accepts ops that fit", (r) => {
    const doc = randomText(r, 20);
    const op = randomOp(r, doc);
    assert.equal(ot.validate(doc, op), null, `${JSON.stringify(op)} on ${JSON.stringify(doc)}`);
    assert.equal(ot.apply(doc, op).length, doc.length + ot.lengthDelta(op));
    assert.ok(isCanonical(op), JSON.stringify(op));
    if (ot.baseLength(op) > 0) assert.throws(() => ot.apply(doc.slice(0, ot.baseLength(op) - 1), op), RangeError);
  });

  forAll("transform converges (TP1) for both tie orders, and its results are canonical", (r) => {
    const doc = randomText(r, 16);
    const a = randomOp(r, doc);
    const b = randomOp(r, doc);
    for (const aWins of [true, false]) {
      const a1 = ot.transform(a, b, aWins);
      const b1 = ot.transform(b, a, !aWins);
      const viaB = ot.apply(ot.apply(doc, b), a1);
      const viaA = ot.apply(ot.apply(doc, a), b1);
      assert.equal(viaB, viaA, `doc ${JSON.stringify(doc)} a ${JSON.stringify(a)} b ${JSON.stringify(b)} aWins ${aWins}`);
      assert.ok(isCanonical(a1) && isCanonical(b1));
    }
  });

  forAll("the op that reached the server later goes left on a tie", (r) => {
    const doc = randomText(r, 10);
    const at = r.pick(boundaries(doc));
    const a = ot.insert(at, "A");
    const b = ot.insert(at, "B");
    // On the server, incoming a is transformed over sequenced b with a winning ties.
    const result = ot.apply(ot.apply(doc, b), ot.transform(a, b, true));
    assert.equal(result, doc.slice(0, at) + "AB" + doc.slice(at));
  });

  forAll("compose equals applying one op after the other", (r) => {
    const doc = randomText(r, 16);
    const a = randomOp(r, doc);
    const mid = ot.apply(doc, a);
    const b = randomOp(r, mid);
    const ab = ot.compose(a, b);
    assert.equal(ot.apply(doc, ab), ot.apply(mid, b), `a ${JSON.stringify(a)} b ${JSON.stringify(b)}`);
    assert.ok(isCanonical(ab));
  });

  forAll("compose is associative", (r) => {
    const doc = randomText(r, 12);
    const a = randomOp(r, doc);
    const d1 = ot.apply(doc, a);
    const b = randomOp(r, d1);
    const c = randomOp(r, ot.apply(d1, b));
    assert.deepEqual(ot.compose(ot.compose(a, b), c), ot.compose(a, ot.compose(b, c)));
  });

  forAll("invert undoes an op", (r) => {
    const doc = randomText(r, 16);
    const op = randomOp(r, doc);
    assert.equal(ot.apply(ot.apply(doc, op), ot.invert(op, doc)), doc);
  });

  forAll("canonicalize keeps the effect and is idempotent", (r) => {
    const doc = randomText(r, 12);
    const op = randomOp(r, doc);
    const noisy = [];
    for (const c of op) {
      if (typeof c === "string" && c.length > 1 && !/[\ud800-\udbff]/.test(c[0])) noisy.push(c[0], c.slice(1));
      else if (typeof c === "number" && Math.abs(c) > 1) noisy.push(Math.sign(c), 0, c - Math.sign(c));
      else noisy.push(c);
    }
    noisy.push(doc.length - ot.baseLength(op) || 0);
    const canonical = ot.canonicalize(noisy);
    assert.deepEqual(canonical, op);
    assert.deepEqual(ot.canonicalize(canonical), canonical);
  });

  forAll("diff turns one text into the other with one replacement", (r) => {
    const from = randomText(r, 16);
    const to = r.int(2) ? randomText(r, 16) : ot.apply(from, randomOp(r, from));
    const d = ot.diff(from, to);
    assert.equal(ot.validate(from, d), null);
    assert.equal(ot.apply(from, d), to);
    assert.ok(d.filter((c) => typeof c === "string").length <= 1);
  });

  forAll("split ops compose back to the original and insert at most the limit each", (r) => {
    const doc = randomText(r, 20);
    const op = randomOp(r, doc);
    const max = 1 + r.int(4);
    const parts = ot.split(op, max);
    let text = doc;
    for (const part of parts) {
      assert.equal(ot.validate(text, part), null, `part ${JSON.stringify(part)} of ${JSON.stringify(op)}`);
      const inserted = part.filter((c) => typeof c === "string").reduce((n, s) => n + s.length, 0);
      assert.ok(inserted <= Math.max(max, 2), `${inserted} > ${max}`);
      text = ot.apply(text, part);
    }
    assert.equal(text, ot.apply(doc, op));
  });

  forAll("positions map through an op and back", (r) => {
    const doc = randomText(r, 16);
    const op = randomOp(r, doc);
    const after = ot.apply(doc, op);
    // Positions strictly inside a retained stretch, or past everything the op touches.
    const untouched = new Set();
    let pos = 0;
    for (const c of op) {
      if (ot.isRetain(c)) for (let i = pos + 1; i < pos + c; i++) untouched.add(i);
      if (typeof c === "number") pos += Math.abs(c);
    }
    for (let i = pos + 1; i <= doc.length; i++) untouched.add(i);
    for (const p of boundaries(doc)) {
      const q = ot.transformPosition(op, p);
      assert.ok(q >= 0 && q <= after.length, `${p} -> ${q}`);
      const back = ot.transformPositionBack(op, q);
      assert.ok(back >= 0 && back <= doc.length);
      if (untouched.has(p)) {
        assert.equal(after[q], doc[p], `${JSON.stringify(op)}: ${p} -> ${q}`);
        assert.equal(back, p, `${JSON.stringify(op)}: ${p} -> ${q} -> ${back}`);
      }
    }
  });

  test("the protocol's examples", () => {
    assert.equal(ot.apply("hello world", [5, " brave"]), "hello brave world");
    assert.equal(ot.apply("hello world", [-6]), "world");
    assert.equal(ot.apply("hello world", [6, "W", -1]), "hello World");
    assert.deepEqual(ot.canonicalize([2, 3, -1, "x", 0, 4]), [5, "x", -1]);
    assert.deepEqual(ot.canonicalize([]), []);
    assert.equal(typeof ot.validate("hello", [6]), "string");
    assert.equal(typeof ot.validate("ab", [1, "\ud83d"]), "string");
    assert.equal(typeof ot.validate("ab", [{}]), "string");
  });
});
