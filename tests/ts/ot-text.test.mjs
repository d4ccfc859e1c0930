// Applying ops to a rope (`ot.applyToText` on a CodeMirror Text), as the document keeps its
// texts, against applying them to a string (`ot.apply`). Invariant: for every op valid on `s`,
// applyToText(toText(s), op).toString() === apply(s, op), and the two throw alike.
// Seeded; a failure names its seed and case.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CollabDocument, ot, rng } from "./lib.mjs";

const pieces = ["a", "b", "xyz", " ", "\n", "\r", "\r\n", "\n\n", "é", "😀"];

function text(r, max) {
  let s = "";
  const n = r.int(max + 1);
  while (s.length < n) s += r.pick(pieces);
  return s;
}

/** A random op on a document of `length` code units, its edits spread over the whole document. */
function spreadOp(r, length) {
  const b = new ot.Builder();
  let pos = 0;
  const edits = 1 + r.int(5);
  for (let i = 0; i < edits && pos < length; i++) {
    const skip = r.int(Math.ceil((length - pos) / (edits - i)) + 1);
    b.retain(skip);
    pos += skip;
    const kind = r.int(3);
    if (kind !== 1) b.insert(text(r, r.int(4) === 0 ? 200 : 5));
    if (kind !== 0) {
      const n = Math.min(length - pos, 1 + r.int(r.int(4) === 0 ? 300 : 6));
      b.delete(n);
      pos += n;
    }
  }
  if (r.int(3) === 0) b.insert(text(r, 5));
  return b.build();
}

function forSeeds(runs, check) {
  for (let seed = 1; seed <= runs; seed++) {
    try {
      check(rng(seed * 104729), seed);
    } catch (error) {
      error.message = `seed ${seed}: ${error.message}`;
      throw error;
    }
  }
}

const show = (v) => JSON.stringify(v).slice(0, 300);

describe("ops applied to a rope", () => {
  test("toText keeps every code unit, \\r and \\r\\n included", () => {
    for (const s of ["", "\n", "\r", "\r\n", "a\r\nb\rc\n", "😀\n\n"]) {
      const t = ot.toText(s);
      assert.equal(t.length, s.length, show(s));
      assert.equal(t.toString(), s, show(s));
    }
  });

  test("applyToText gives what apply gives, on small and multi-leaf documents", () => {
    forSeeds(1000, (r, seed) => {
      const doc = text(r, seed % 4 === 0 ? 5000 : 40);
      const op = spreadOp(r, doc.length);
      const result = ot.applyToText(ot.toText(doc), op);
      const expected = ot.apply(doc, op);
      assert.equal(result.length, expected.length, `length, op ${show(op)} on ${show(doc)}`);
      assert.equal(result.toString(), expected, `op ${show(op)} on ${show(doc)}`);
    });
  });

  test("a chain of ops on one rope stays equal to the string at every step", () => {
    forSeeds(20, (r) => {
      let s = text(r, 4000);
      let t = ot.toText(s);
      for (let i = 0; i < 100; i++) {
        const op = spreadOp(r, s.length);
        s = ot.apply(s, op);
        t = ot.applyToText(t, op);
        assert.equal(t.length, s.length, `step ${i}, op ${show(op)}`);
        const from = r.int(s.length + 1);
        const to = from + r.int(s.length - from + 1);
        assert.equal(t.sliceString(from, to), s.slice(from, to), `step ${i}, slice ${from}..${to}`);
      }
      assert.equal(t.toString(), s);
    });
  });

  test("an op running past the end throws the RangeError apply throws, and ops in any form apply", () => {
    forSeeds(300, (r) => {
      const doc = text(r, 60);
      const op = spreadOp(r, doc.length);
      const base = ot.baseLength(op);
      if (base > 0) {
        const short = doc.slice(0, base - 1);
        assert.throws(() => ot.apply(short, op), RangeError);
        assert.throws(() => ot.applyToText(ot.toText(short), op), { name: "RangeError", message: `Operation base length ${base} exceeds document length ${short.length}.` });
      }
      if (doc.length >= 2) {
        // Not canonical: a delete before an insert, and a trailing retain.
        const loose = [-1, "q", doc.length - 1];
        assert.equal(ot.applyToText(ot.toText(doc), loose).toString(), ot.apply(doc, loose), show(loose));
      }
    });
  });

  test("invert reads the same deleted text from a rope as from a string", () => {
    forSeeds(500, (r) => {
      const doc = text(r, r.int(2) === 0 ? 40 : 3000);
      const op = spreadOp(r, doc.length);
      const inverse = ot.invert(op, ot.toText(doc));
      assert.deepEqual(inverse, ot.invert(op, doc), `op ${show(op)}`);
      assert.equal(ot.applyToText(ot.applyToText(ot.toText(doc), op), inverse).toString(), doc);
    });
  });
});

describe("a document's texts", () => {
  const joined = async (text, joins = []) => {
    let n = 0;
    const doc = new CollabDocument("d", { clientId: "me", user: () => undefined, nextOpId: () => ++n, redirect: () => {} });
    const opened = doc.opened();
    const answer = { docId: "d", version: 0, text, ops: null, readOnly: false, redirect: null, presence: [] };
    const join = async (request) => {
      joins.push(request);
      return answer;
    };
    doc.attach({ join, submit: () => new Promise(() => {}), setPresence: async () => {}, leave: async () => {} });
    await opened;
    return doc;
  };

  test("text follows remote and local ops, pending or not, read after each one or not", async () => {
    const r = rng(42);
    let server = text(r, 3000);
    const doc = await joined(server);
    // The local text is the server's with the unconfirmed local edits, transformed over every remote op.
    let pending = [];
    for (let i = 1; i <= 300; i++) {
      if (i % 7 === 0) {
        const local = ot.apply(server, pending);
        const op = spreadOp(r, local.length);
        if (ot.validate(local, op) !== null) {
          // It splits a surrogate pair: refused, changing nothing (the server would refuse it).
          assert.throws(() => doc.applyLocal(op), RangeError);
          assert.equal(doc.text, local, `step ${i}`);
          continue;
        }
        doc.applyLocal(op); // never confirmed
        pending = ot.compose(pending, op);
      } else {
        const op = spreadOp(r, server.length);
        doc.receiveOp({ docId: "d", version: doc.version + 1, op, clientId: "them", opId: i });
        pending = ot.transform(pending, op, true);
        server = ot.apply(server, op);
      }
      if (r.int(3) === 0) assert.equal(doc.text, ot.apply(server, pending), `step ${i}`);
    }
    assert.equal(doc.text, ot.apply(server, pending));
    doc.detach();
  });

  test("a remote op that runs past the end of the text is not applied and throws nothing: the document raises diverged and joins again for the whole text", async () => {
    const joins = [];
    const doc = await joined("ab", joins);
    const errors = [];
    doc.on("error", (e) => errors.push(e));
    doc.receiveOp({ docId: "d", version: 1, op: [3, "x"], clientId: "them", opId: 1 });
    assert.equal(errors.length, 1);
    assert.equal(errors[0].code, "diverged");
    assert.match(errors[0].message, /the server has lost or changed edits this client had seen acknowledged/);
    assert.equal(doc.text, "ab");
    assert.equal(doc.version, 0);
    assert.deepEqual(joins.at(-1), { docId: "d", clientId: "me" }, "joins again without sinceVersion");
    assert.equal(joins.length, 2);
    await new Promise((resolve) => setImmediate(resolve));
    // Joined again: the next op that fits is applied.
    doc.receiveOp({ docId: "d", version: 1, op: [2, "x"], clientId: "them", opId: 2 });
    assert.equal(doc.text, "abx");
    assert.equal(doc.version, 1);
    assert.equal(errors.length, 1);
    doc.detach();
  });
});
