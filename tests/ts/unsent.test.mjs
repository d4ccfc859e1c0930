// Unsent edits kept outside the client (client/ts/unsent.ts): a document opened from another
// instance's `doc.unsent()` sends them again, the one already sent under its own clientId and
// opId, so an edit the server had committed before the first instance died is not applied twice,
// and one it never saw arrives. Against sim.mjs's server, which has the real server's rules.

import assert from "node:assert/strict";
import { describe, mock, test } from "node:test";
import { CollabDocument, checkUnsent, ot } from "./lib.mjs";
import { Connection, World, docId } from "./sim.mjs";

/** A host as CollabClient is one: its clientId and its own op id counter, which `restoring` moves past the unsent edits' ids as open does. */
function host(clientId, restoring) {
  let last = restoring ? restoring.opIdsThrough : 0;
  return { clientId, user: () => undefined, nextOpId: () => ++last, lastOpId: () => last, redirect: () => assert.fail("no redirects here") };
}

async function openDoc(world, clientId, unsent) {
  if (unsent) assert.equal(checkUnsent(unsent, docId), null);
  const doc = new CollabDocument(docId, host(clientId, unsent), unsent && structuredClone(unsent));
  const conn = new Connection(world, doc);
  doc.attach(conn);
  await world.run(world.now + 200);
  return { doc, conn };
}

describe("unsent edits restored in another client instance", () => {
  mock.timers.enable({ apis: ["setTimeout"] });

  for (const [name, maxResumeOps] of [
    ["resuming from the missed ops", 1000],
    ["resuming from the whole text", 0],
  ]) {
    test(`an edit committed before its acknowledgement was lost is applied once (${name})`, async () => {
      const world = new World(1, { maxResumeOps, echo: false });
      const other = await openDoc(world, "other");
      const first = await openDoc(world, "first");
      first.doc.insert(0, "hello");
      // Kept at once, as the page keeps it: sent, not yet acknowledged.
      const unsent = first.doc.unsent();
      assert.equal(unsent.sent, true);
      assert.equal(unsent.clientId, "first");
      assert.deepEqual(unsent.outstanding.op, ["hello"]);
      // The server commits it; the first instance dies before the acknowledgement reaches it.
      await world.run(world.now + 40);
      assert.equal(world.server.text, "hello", "the submit has reached the server");
      first.conn.cut();
      other.doc.insert(5, " world");
      await world.run(world.now + 200);

      const second = await openDoc(world, "second", unsent);
      assert.equal(second.doc.clientId, "first", "joins under the clientId the edits were made under");
      await world.run(world.now + 2000);
      assert.equal(world.server.text, "hello world", "applied once");
      assert.equal(second.doc.text, "hello world");
      assert.equal(second.doc.pendingEdits, 0);
      assert.equal(second.doc.unsent(), undefined, "nothing left to keep");
      assert.equal(other.doc.text, "hello world");
    });
  }

  test("edits made offline, never sent, reach the server over what others wrote meanwhile", async () => {
    const world = new World(2, { maxResumeOps: 1000, echo: false });
    const other = await openDoc(world, "other");
    other.doc.insert(0, "abc");
    await world.run(world.now + 200);
    const first = await openDoc(world, "first");
    first.conn.cut();
    first.doc.insert(3, "!");
    first.doc.insert(0, ">");
    const unsent = first.doc.unsent();
    assert.equal(unsent.sent, false);
    assert.equal(unsent.version, 1);
    assert.equal(unsent.serverText, "abc");
    assert.equal(ot.apply(ot.apply(unsent.serverText, unsent.outstanding.op), unsent.buffer?.op ?? []), ">abc!");
    other.doc.insert(1, "X");
    await world.run(world.now + 200);

    const restored = new CollabDocument(docId, host("second", unsent), structuredClone(unsent));
    assert.equal(restored.text, ">abc!", "the restored text is there before any join");
    assert.equal(restored.pendingEdits, 2);
    const second = await openDoc(world, "second", unsent);
    await world.run(world.now + 2000);
    assert.equal(world.server.text, ">aXbc!");
    assert.equal(second.doc.text, ">aXbc!");
    assert.equal(other.doc.text, ">aXbc!");
    // New edits count on from above the restored ids: they are new to the server, not duplicates.
    second.doc.insert(0, "#");
    await world.run(world.now + 500);
    assert.equal(world.server.text, "#>aXbc!");
    const ids = world.server.history.filter((m) => m.clientId === "first").map((m) => m.opId);
    assert.equal(new Set(ids).size, ids.length, "no op id used twice under one clientId");
  });

  test("a document whose edits are all confirmed has none to keep", async () => {
    const world = new World(3, { maxResumeOps: 1000, echo: false });
    const { doc } = await openDoc(world, "first");
    assert.equal(doc.unsent(), undefined);
    doc.insert(0, "x");
    await world.run(world.now + 500);
    assert.equal(doc.unsent(), undefined);
  });

  test("unsent edits that are not for the document or do not fit their text are refused", async () => {
    const world = new World(4, { maxResumeOps: 1000, echo: false });
    const first = await openDoc(world, "first");
    first.conn.cut();
    first.doc.insert(0, "abc");
    const unsent = first.doc.unsent();
    assert.equal(checkUnsent(unsent, docId), null);
    assert.match(checkUnsent(unsent, "another"), /not "another"/);
    assert.match(checkUnsent({ ...unsent, buffer: { op: [9, "y"], edits: 1 } }, docId), /buffer.op does not fit/);
    assert.match(checkUnsent({ ...unsent, outstanding: { ...unsent.outstanding, op: [5, "x"] } }, docId), /does not fit/);
    assert.match(checkUnsent({ ...unsent, outstanding: { ...unsent.outstanding, opId: unsent.opIdsThrough + 1 } }, docId), /opId/);
    assert.match(checkUnsent({ ...unsent, clientId: "" }, docId), /clientId/);
    assert.match(checkUnsent({ ...unsent, version: -1 }, docId), /version/);
    assert.match(checkUnsent(null, docId), /not an object/);
  });
});
