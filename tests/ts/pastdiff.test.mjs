// The history view's highlight of what changed since an old version (client/web/pastdiff.ts):
// the changes, applied to the old text, give the current text; they are in order and do not
// overlap; they never split a surrogate pair; unchanged lines are never marked. Seeded.

import assert from "node:assert/strict";
import { test } from "node:test";
import { applyChanges, changesSince, randomOp, randomText, ot, rng } from "./lib.mjs";

function splitsPair(s, i) {
  return i > 0 && i < s.length && s.charCodeAt(i) >= 0xdc00 && s.charCodeAt(i) <= 0xdfff;
}

test("changes applied to the old text give the current text, in order, never splitting a pair", () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const r = rng(seed);
    const old = randomText(r, 60);
    let current = old;
    for (let k = r.int(4); k >= 0; k--) current = ot.apply(current, randomOp(r, current));
    const changes = changesSince(old, current);
    assert.equal(applyChanges(old, changes), current, `seed ${seed}`);
    let last = 0;
    for (const c of changes) {
      assert.ok(c.from >= last && c.to >= c.from && c.to <= old.length, `seed ${seed}: ${JSON.stringify(changes)}`);
      assert.ok(c.from < c.to || c.inserted !== "", `seed ${seed}: an empty change`);
      assert.ok(!splitsPair(old, c.from) && !splitsPair(old, c.to), `seed ${seed}: splits a pair`);
      last = c.to;
    }
    if (old === current) assert.deepEqual(changes, []);
  }
});

test("edits on separate lines are separate changes; untouched lines are not marked", () => {
  const old = "one\ntwo\nthree\nfour\nfive\n";
  const current = "one\nTWO\nthree\nfour\nfive and more\n";
  assert.deepEqual(changesSince(old, current), [
    { from: 4, to: 7, inserted: "TWO" },
    { from: 23, to: 23, inserted: " and more" },
  ]);
  assert.deepEqual(changesSince("a\nb\n", "a\nx\nb\n"), [{ from: 2, to: 2, inserted: "x\n" }]);
  assert.deepEqual(changesSince("a\nx\nb\n", "a\nb\n"), [{ from: 2, to: 4, inserted: "" }]);
  assert.deepEqual(changesSince("same", "same"), []);
  assert.deepEqual(changesSince("", "new"), [{ from: 0, to: 0, inserted: "new" }]);
  assert.deepEqual(changesSince("gone", ""), [{ from: 0, to: 4, inserted: "" }]);
});
