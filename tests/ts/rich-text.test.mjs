// The rich-text type (client/ts/rich-text.ts over quill-delta, and richTextType in doctype.ts):
// reading and checking changes as the server does, the tie rule of PROTOCOL §1 carried over to
// quill-delta's priority, and the laws the sync engine relies on, over seeded random Deltas with
// attributes, embeds and surrogate pairs. A failure names its seed and the Deltas.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Delta, ot, richText, richTextType, rng, textType } from "./lib.mjs";
import { plainOf } from "./sim.mjs";

const attributeChoices = [{ bold: true }, { bold: null }, { italic: true }, { color: "#00f" }, { color: null }, { header: 2 }];
const words = ["a", "bc", "é", "😀", "\n", "xyz", "中"];

/** A random document: text runs with or without attributes, and embeds. */
function randomDoc(r) {
  const doc = new Delta();
  const n = r.int(6);
  for (let i = 0; i < n; i++) {
    const attributes = r.int(2) === 0 ? undefined : { ...r.pick(attributeChoices.filter((a) => !Object.values(a).includes(null))) };
    if (r.int(5) === 0) doc.insert({ image: `i${r.int(100)}` }, attributes);
    else doc.insert(r.pick(words), attributes);
  }
  return doc;
}

/** Positions of `doc` that split no surrogate pair. */
function cuts(doc) {
  const plain = plainOf(doc);
  const result = [];
  for (let i = 0; i <= plain.length; i++) {
    const c = plain.charCodeAt(i);
    if (i > 0 && i < plain.length && c >= 0xdc00 && c <= 0xdfff) continue;
    result.push(i);
  }
  return result;
}

/** A random valid change of `doc`: retains (some formatting), deletes, inserts and embeds. */
function randomChange(r, doc) {
  const change = new Delta();
  const at = cuts(doc);
  let pos = 0;
  for (let i = 0; i < 4 && pos < doc.length(); i++) {
    const later = at.filter((c) => c > pos);
    if (later.length === 0) break;
    const next = r.pick(later.slice(0, 4));
    const kind = r.int(4);
    if (kind === 0) change.retain(next - pos);
    else if (kind === 1) change.retain(next - pos, { ...r.pick(attributeChoices) });
    else if (kind === 2) change.delete(next - pos);
    else change.insert(r.pick(words), r.int(2) ? undefined : { bold: true }).retain(next - pos);
    pos = next;
  }
  if (r.int(2) === 0) change.insert(r.int(3) === 0 ? { image: "x" } : r.pick(words));
  return richText.parse(change);
}

const show = (d) => JSON.stringify(d.ops);

describe("rich-text operations", () => {
  test("changes are read into canonical form, and malformed ones are refused with a reason", () => {
    const read = richText.parse([{ insert: "a" }, { insert: "b", attributes: null }, { retain: 0 }, { retain: 2, attributes: { bold: null } }, { delete: 1 }, { retain: 3 }]);
    assert.deepEqual(read.ops, [{ insert: "ab" }, { retain: 2, attributes: { bold: null } }, { delete: 1 }]);
    assert.deepEqual(richText.parse([{ insert: "x", attributes: { bold: null, italic: true } }]).ops, [{ insert: "x", attributes: { italic: true } }], "null removes nothing on an insert");
    assert.deepEqual(richText.parse(new Delta().insert({ image: "u" })).ops, [{ insert: { image: "u" } }]);
    for (const [raw, reason] of [
      ["x", /array/],
      [[1], /not an object/],
      [[{ insert: "" }], /empty string/],
      [[{ insert: 3 }], /neither a string nor an embed/],
      [[{ insert: {} }], /empty embed/],
      [[{ retain: 1.5 }], /not a count/],
      [[{ retain: -1 }], /not a count/],
      [[{ retain: { image: "x" } }], /not a count/],
      [[{ delete: 2, attributes: { bold: true } }], /deletes with attributes/],
      [[{ insert: "a", delete: 1 }], /exactly one/],
      [[{ insert: "a", attributes: [1] }], /attributes must be an object/],
    ]) {
      const result = richText.parse(raw);
      assert.equal(typeof result, "string", `${JSON.stringify(raw)} is refused`);
      assert.match(result, reason);
    }
  });

  test("a change is checked against the document: its length (a trailing retain too), surrogate pairs, lone surrogates", () => {
    const doc = new Delta().insert("a😀").insert({ image: "u" }).insert("b", { bold: true });
    assert.equal(doc.length(), 5, "an embed counts 1, a surrogate pair 2");
    assert.equal(richText.validate(doc, [{ retain: 5 }, { insert: "x" }]), null);
    assert.equal(richText.validate(doc, [{ retain: 3 }, { delete: 1 }, { retain: 1, attributes: { italic: true } }]), null);
    assert.match(richText.validate(doc, [{ retain: 6 }]), /past the end/);
    assert.match(richText.validate(doc, [{ retain: 4 }, { delete: 2 }]), /past the end/);
    assert.match(richText.validate(doc, [{ retain: 2 }, { insert: "x" }]), /position 2 splits a surrogate pair/);
    assert.match(richText.validate(doc, [{ retain: 1 }, { delete: 1 }]), /position 2 splits/);
    assert.match(richText.validate(doc, [{ retain: 2, attributes: { bold: true } }]), /position 2 splits/);
    assert.match(richText.validate(doc, [{ insert: "\ud83d" }]), /lone surrogate/);
    assert.match(richText.validate(doc, [{ insert: 1 }]), /neither/);
    assert.throws(() => richText.apply(doc, richText.parse([{ retain: 6 }, { insert: "x" }])), RangeError);
  });

  test("the op that wins ties goes first, and its attribute values stay (PROTOCOL §1 through quill-delta's priority)", () => {
    const doc = new Delta().insert("xxxx");
    const a = new Delta().retain(2).insert("A");
    const b = new Delta().retain(2).insert("B");
    assert.deepEqual(richText.transform(a, b, true).ops, [{ retain: 2 }, { insert: "A" }]);
    assert.deepEqual(richText.transform(b, a, false).ops, [{ retain: 3 }, { insert: "B" }]);
    const viaA = doc.compose(a).compose(richText.transform(b, a, false));
    const viaB = doc.compose(b).compose(richText.transform(a, b, true));
    assert.deepEqual(viaA.ops, [{ insert: "xxABxx" }]);
    assert.deepEqual(viaB.ops, viaA.ops);

    const bold = new Delta().retain(4, { color: "#f00" });
    const blue = new Delta().retain(2, { color: "#00f" });
    const winner = doc.compose(blue).compose(richText.transform(bold, blue, true));
    assert.deepEqual(winner.ops, [{ insert: "xxxx", attributes: { color: "#f00" } }], "the winner's color, where both set one");
    assert.deepEqual(doc.compose(bold).compose(richText.transform(blue, bold, false)).ops, winner.ops);
  });

  test("transform converges, compose is associative and invert undoes, over random changes", () => {
    for (let seed = 1; seed <= 400; seed++) {
      const r = rng(seed);
      const doc = randomDoc(r);
      const a = randomChange(r, doc);
      const b = randomChange(r, doc);
      const where = `seed ${seed}: doc ${show(doc)}, a ${show(a)}, b ${show(b)}`;
      assert.equal(richText.validate(doc, a.ops), null, where);
      const left = richText.apply(richText.apply(doc, a), richText.transform(b, a, false));
      const right = richText.apply(richText.apply(doc, b), richText.transform(a, b, true));
      assert.ok(richText.equals(left, right), `${where}: ${show(left)} != ${show(right)}`);
      assert.ok(richText.isDocument(left), where);
      const afterA = richText.apply(doc, a);
      const c = randomChange(r, afterA);
      const afterC = richText.apply(afterA, c);
      const d = randomChange(r, afterC);
      const direct = richText.apply(afterC, d);
      assert.ok(richText.equals(richText.apply(doc, richText.compose(richText.compose(a, c), d)), direct), `${where}: (a c) d`);
      assert.ok(richText.equals(richText.apply(doc, richText.compose(a, richText.compose(c, d))), direct), `${where}: a (c d)`);
      assert.ok(richText.equals(richText.apply(afterA, richText.invert(a, doc)), doc), `${where}: invert`);
    }
  });

  test("positions map as the text type maps them: an insert at the position stays after it, a delete moves it to its start", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const doc = new Delta().insert(r.pick(["abcdef", "héllo wörld", "a😀b😀c"]));
      const change = randomChange(r, doc);
      // The same change as a text op: attributes aside, the plain text changes alike.
      const plainBefore = plainOf(doc);
      const textOp = ot.diff(plainBefore, plainOf(richText.apply(doc, change)));
      const text = [];
      for (const c of change.ops) {
        if (c.insert !== undefined) text.push(typeof c.insert === "string" ? c.insert : "\ufffc");
        else if (c.delete !== undefined) text.push(-c.delete);
        else text.push(c.retain);
      }
      const asText = ot.canonicalize(text);
      assert.equal(ot.apply(plainBefore, asText), ot.apply(plainBefore, textOp), `seed ${seed}`);
      for (let p = 0; p <= doc.length(); p++) {
        for (const stick of [false, true]) {
          assert.equal(richText.transformPosition(change, p, stick), ot.transformPosition(asText, p, stick), `seed ${seed}: ${show(change)} at ${p}, stick ${stick}`);
        }
      }
      const after = richText.apply(doc, change).length();
      for (let p = 0; p <= after; p++) {
        assert.equal(richText.transformPositionBack(change, p), ot.transformPositionBack(asText, p), `seed ${seed}: back ${show(change)} at ${p}`);
      }
    }
    const embed = new Delta().retain(1).insert({ image: "u" });
    assert.equal(richText.transformPosition(embed, 3), 4, "an embed moves later positions by 1");
    assert.equal(richTextType.transformPosition(embed, 1), 1);
    assert.equal(richTextType.transformPosition(embed, 1, true), 2);
  });

  test("merge: the server's document and the local one lead to one document, nothing deleted, the local content first", () => {
    for (let seed = 1; seed <= 300; seed++) {
      const r = rng(seed);
      const base = randomDoc(r);
      const server = richText.apply(base, randomChange(r, base));
      const local = richText.apply(base, randomChange(r, base));
      const { restore, local: toLocal } = richText.merge(server, local);
      const where = `seed ${seed}: server ${show(server)}, local ${show(local)}`;
      assert.ok(restore.ops.every((c) => c.delete === undefined), `${where}: restore deletes nothing`);
      assert.ok(toLocal.ops.every((c) => c.insert !== undefined || (c.retain !== undefined && !c.attributes)), `${where}: the local op only inserts`);
      const merged = richText.apply(server, restore);
      assert.ok(richText.equals(merged, richText.apply(local, toLocal)), `${where}: ${show(merged)}`);
      assert.equal(plainOf(merged).length, merged.length(), where);
    }
    const { restore } = richText.merge(new Delta().insert("S"), new Delta().insert("L"));
    assert.deepEqual(richText.apply(new Delta().insert("S"), restore).ops, [{ insert: "LS" }]);
  });

  test("a large change is split into parts that each insert at most the limit and compose to it", () => {
    const doc = new Delta().insert("abc");
    const change = new Delta().retain(1, { bold: true }).insert("x".repeat(9) + "😀" + "y".repeat(4), { italic: true }).insert({ image: "u" }).delete(1).insert("z".repeat(7));
    const parts = richText.split(change, 5);
    assert.ok(parts.length > 3);
    let composed = new Delta();
    let applied = doc;
    for (const part of parts) {
      const inserted = part.ops.reduce((n, c) => n + (c.insert === undefined ? 0 : typeof c.insert === "string" ? c.insert.length : 1), 0);
      assert.ok(inserted <= 5, `${show(part)} inserts ${inserted}`);
      assert.equal(richText.validate(applied, part.ops), null, `${show(part)} applies in turn, splitting no pair`);
      applied = richText.apply(applied, part);
      composed = composed.compose(part);
    }
    assert.ok(richText.equals(composed, change), show(composed));
    assert.deepEqual(richText.split(new Delta().insert("ab"), 5).map(show), [show(new Delta().insert("ab"))]);
  });

  test("the document types: names, empty documents, and the text type is ot.ts's", () => {
    assert.equal(textType.name, "text");
    assert.equal(richTextType.name, "rich-text");
    assert.equal(textType.empty.toString(), "");
    assert.equal(richTextType.empty.length(), 0);
    assert.equal(textType.transform, ot.transform);
    assert.equal(textType.compose, ot.compose);
    assert.deepEqual(richTextType.opToWire(new Delta().insert("a")), [{ insert: "a" }]);
    assert.equal(typeof richTextType.docFromWire([{ retain: 1 }]), "string", "a document has inserts only");
    const merged = textType.merge(textType.docFromWire("ab"), textType.docFromWire("xb"));
    assert.equal(ot.apply("ab", merged.restore), ot.apply("xb", merged.local));
  });
});
