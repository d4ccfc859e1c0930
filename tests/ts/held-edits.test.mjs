// The editor binding's local changes (client/codemirror/held.ts): a change that leaves half of a
// surrogate pair in the editor is held back, mapped over remote changes, until the other half
// comes or it is repaired with U+FFFD; nothing with a lone surrogate ever reaches the document.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EditorState, HeldEdits, loneSurrogates, ot } from "./lib.mjs";

/** A document as the binding sees it: applyLocal checks and applies, as CollabDocument does. */
function fakeDoc(text) {
  return {
    text,
    sent: [],
    applyLocal(op) {
      const reason = ot.validate(this.text, op);
      if (reason !== null) throw new RangeError(reason);
      this.text = ot.apply(this.text, op);
      this.sent.push(op);
    },
  };
}

/** An editor (state only) bound to `doc` through a HeldEdits. */
function editor(text) {
  const doc = fakeDoc(text);
  const edits = new HeldEdits(doc);
  let state = EditorState.create({ doc: text });
  return {
    doc,
    edits,
    get text() {
      return state.doc.toString();
    },
    /** A local change: returns the lone surrogates left, as the binding's update sees them. */
    local(changes) {
      const tr = state.update({ changes });
      state = tr.state;
      return edits.local(tr.changes, tr.newDoc);
    },
    /** Someone else's op reaches the document, then the editor. */
    remote(op) {
      doc.text = ot.apply(doc.text, op);
      state = state.update({ changes: edits.remote(op, state.doc.length) }).state;
    },
    repair() {
      return this.local(edits.repairs(state.doc).map((p) => ({ from: p, to: p + 1, insert: "\ufffd" })));
    },
  };
}

const noLoneSurrogate = (ops) => ops.every((op) => op.every((c) => typeof c !== "string" || ot.isWellFormed(c)));

describe("the editor binding's held edits", () => {
  test("a well-formed change is sent at once", () => {
    const e = editor("ab");
    assert.deepEqual(e.local({ from: 1, insert: "😀" }), []);
    assert.deepEqual(e.doc.sent, [[1, "😀"]]);
    assert.equal(e.edits.holding, false);
  });

  test("an emoji typed as two halves is held after the first and sent whole", () => {
    const e = editor("ab");
    assert.deepEqual(e.local({ from: 1, insert: "\ud83d" }), [1]);
    assert.deepEqual(e.doc.sent, []);
    assert.equal(e.edits.holding, true);
    assert.deepEqual(e.local({ from: 2, insert: "\ude00" }), []);
    assert.deepEqual(e.doc.sent, [[1, "😀"]]);
    assert.equal(e.doc.text, e.text);
  });

  test("remote changes while holding are mapped, the held edit winning ties", () => {
    const e = editor("ab");
    e.local({ from: 1, insert: "\ud83d" });
    e.remote(["X"]);
    e.remote([2, "Y"]); // at the held insert's position in the document ("Xa|b")
    assert.equal(e.text, "Xa\ud83dYb");
    assert.equal(e.doc.text, "XaYb");
    e.local({ from: 3, insert: "\ude00" });
    assert.equal(e.doc.text, "Xa😀Yb");
    assert.equal(e.doc.text, e.text);
  });

  test("a half that stays alone is repaired with U+FFFD", () => {
    const e = editor("ab");
    e.local({ from: 1, insert: "x\ud83d" });
    assert.deepEqual(e.repair(), []);
    assert.equal(e.text, "ax\ufffdb");
    assert.deepEqual(e.doc.sent, [[1, "x\ufffd"]]);
    assert.equal(e.edits.holding, false);
  });

  test("deleting half of a pair is held, then repaired; the pair is never split in the document", () => {
    const e = editor("a😀b");
    assert.deepEqual(e.local({ from: 2, to: 3 }), [1]);
    assert.deepEqual(e.doc.sent, []);
    e.repair();
    assert.equal(e.text, "a\ufffdb");
    assert.equal(e.doc.text, "a\ufffdb");
  });

  test("random edits with surrogate halves: the document always ends equal to the editor, and never gets a lone surrogate", () => {
    const pieces = ["a", "\ud83d", "\ude00", "😀", "\n"];
    let seed = 7;
    const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
    for (let round = 0; round < 50; round++) {
      const e = editor("x😀y");
      for (let step = 0; step < 30; step++) {
        const len = e.text.length;
        const from = rand(len + 1);
        if (rand(4) === 0) {
          const op = ot.insert(rand(e.doc.text.length + 1) , "R");
          if (ot.validate(e.doc.text, op) === null) e.remote(op);
        } else if (rand(3) === 0 && from < len) {
          e.local({ from, to: Math.min(len, from + 1 + rand(2)) });
        } else {
          e.local({ from, insert: pieces[rand(pieces.length)] });
        }
      }
      e.repair();
      assert.equal(e.edits.holding, false);
      assert.equal(e.doc.text, e.text);
      assert.ok(ot.isWellFormed(e.doc.text));
      assert.ok(noLoneSurrogate(e.doc.sent));
    }
  });

  test("loneSurrogates looks only around the changes", () => {
    const state = EditorState.create({ doc: "\ud83d ab 😀" });
    const tr = state.update({ changes: { from: 4, insert: "\ude00" } });
    assert.deepEqual(loneSurrogates(tr.newDoc, tr.changes), [4]);
  });
});
