// The TypeScript OT against the vectors generated from the C# TextOperation
// (tests/vectors/ot-vectors.json): both must agree on every case, ties included.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ot, repoRoot } from "./lib.mjs";

const vectors = JSON.parse(readFileSync(join(repoRoot, "tests/vectors/ot-vectors.json"), "utf8"));

const show = (v) => JSON.stringify(v);

describe("shared OT vectors", () => {
  test("the vector file has cases of every kind", () => {
    for (const kind of ["transform", "compose", "apply", "canonicalize", "invalid"]) {
      assert.ok(Array.isArray(vectors[kind]) && vectors[kind].length > 0, `no ${kind} cases`);
    }
  });

  test("transform matches the C# results, both tie orders", () => {
    for (const v of vectors.transform) {
      const a = ot.canonicalize(v.a);
      const b = ot.canonicalize(v.b);
      const aPrime = ot.transform(a, b, true);
      const bPrime = ot.transform(b, a, false);
      assert.deepEqual(aPrime, v.aPrime, `transform(a, b, true) for ${show(v)}`);
      assert.deepEqual(bPrime, v.bPrime, `transform(b, a, false) for ${show(v)}`);
      assert.equal(ot.apply(ot.apply(v.doc, b), aPrime), v.result, `b then a' for ${show(v)}`);
      assert.equal(ot.apply(ot.apply(v.doc, a), bPrime), v.result, `a then b' for ${show(v)}`);
    }
  });

  test("compose matches the C# results", () => {
    for (const v of vectors.compose) {
      const composed = ot.compose(ot.canonicalize(v.a), ot.canonicalize(v.b));
      assert.deepEqual(composed, v.composed, `compose for ${show(v)}`);
      assert.equal(ot.apply(v.doc, composed), v.result, `apply(composed) for ${show(v)}`);
    }
  });

  test("apply matches the C# results", () => {
    for (const v of vectors.apply) {
      assert.equal(ot.validate(v.doc, v.op), null, `valid: ${show(v)}`);
      assert.equal(ot.apply(v.doc, ot.canonicalize(v.op)), v.result, `apply for ${show(v)}`);
    }
  });

  test("canonicalize matches the C# results", () => {
    for (const v of vectors.canonicalize) {
      assert.deepEqual(ot.canonicalize(v.input), v.canonical, `canonicalize ${show(v.input)}`);
    }
  });

  test("every invalid op is rejected", () => {
    for (const v of vectors.invalid) {
      const op = JSON.parse(v.opJson);
      const reason = ot.validate(v.doc, op);
      assert.equal(typeof reason, "string", `${v.opJson} on ${show(v.doc)} (${v.reason}) was accepted`);
    }
  });
});
