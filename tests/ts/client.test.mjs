// The protocol client's parts that need no server: reading what arrives (null as absent, ops
// checked), error codes, reconnect backoff, redirects, and a document's events.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CollabDocument, errorCode, ot, readJoinResult, readOpMessage, readPresenceMessage, readResetMessage, reconnectDelay } from "./lib.mjs";

const host = (clientId = "me") => {
  let n = 0;
  const redirects = [];
  return { clientId, user: () => ({ name: "Me", color: "#123456" }), nextOpId: () => ++n, redirect: (doc, url) => redirects.push(url), redirects };
};

const joinResult = (fields) => ({ docId: "d", version: 0, text: "", ops: null, readOnly: false, redirect: null, presence: [], ...fields });

/** An invoker whose answers the test gives, recording every request. */
function fakeInvoker(answer) {
  const calls = [];
  return {
    calls,
    join: async (request) => (calls.push(["join", request]), answer("join", request)),
    submit: async (request) => (calls.push(["submit", request]), answer("submit", request)),
    setPresence: async (request) => void calls.push(["presence", request]),
    leave: async (docId) => void calls.push(["leave", docId]),
  };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe("protocol client", () => {
  test("what MessagePack sends as nil reads as absent", () => {
    const result = readJoinResult({ docId: "d", version: 3, text: "abc", ops: null, readOnly: null, redirect: null, presence: null });
    assert.deepEqual(result, { docId: "d", version: 3, text: "abc", ops: undefined, readOnly: false, redirect: undefined, presence: [] });
    const presence = readPresenceMessage({ docId: "d", clientId: "c", user: null, version: 2, selection: null });
    assert.equal(presence.selection, null);
    assert.equal(presence.user, undefined);
    assert.deepEqual(readOpMessage({ docId: "d", version: 1n, op: [2, "x", 0, 1], clientId: "c", opId: 7 }).op, [2, "x"]);
  });

  test("a Reset's movedTo is read when present (renamed), absent when nil or missing", () => {
    assert.deepEqual(readResetMessage({ docId: "old", reason: "renamed", movedTo: "new" }), { docId: "old", reason: "renamed", movedTo: "new" });
    assert.deepEqual(readResetMessage({ docId: "d", reason: "deleted", movedTo: null }), { docId: "d", reason: "deleted" });
    assert.deepEqual(readResetMessage({ docId: "d", reason: "moved" }), { docId: "d", reason: "moved" });
  });

  test("a Reset tells the reset listeners why, with the unconfirmed edits, before the document joins again", async () => {
    const doc = new CollabDocument("d", host());
    const opened = doc.opened();
    const invoker = fakeInvoker((kind) => (kind === "join" ? joinResult({ version: 2, text: "ab" }) : new Promise(() => undefined)));
    doc.attach(invoker);
    await opened;
    doc.insert(2, "c");
    const resets = [];
    doc.on("reset", (e) => resets.push({ ...e, joinsBefore: invoker.calls.filter((c) => c[0] === "join").length }));
    doc.receiveReset({ docId: "d", reason: "deleted" });
    await settle();
    assert.deepEqual(resets, [{ reason: "deleted", movedTo: undefined, unconfirmed: { op: [2, "c"], serverText: "ab" }, joinsBefore: 1 }]);
    assert.equal(invoker.calls.filter((c) => c[0] === "join").length, 2, "it joins again after telling");
  });

  test("a reset listener that closes the document (a rename) keeps it from joining the old id again", async () => {
    const doc = new CollabDocument("old", host());
    const opened = doc.opened();
    const invoker = fakeInvoker((kind) => (kind === "join" ? joinResult({ docId: "old", version: 1, text: "x" }) : { version: 2 }));
    doc.attach(invoker);
    await opened;
    const seen = [];
    doc.on("reset", (e) => {
      seen.push([e.reason, e.movedTo, e.unconfirmed]);
      void doc.close();
    });
    doc.receiveReset({ docId: "old", reason: "renamed", movedTo: "new" });
    doc.receiveReset({ docId: "old", reason: "renamed", movedTo: "new" }); // closed: not told again
    await settle();
    assert.deepEqual(seen, [["renamed", "new", undefined]]);
    assert.deepEqual(invoker.calls.map((c) => c[0]), ["join", "leave"]);
  });

  test("a resume whose JoinResult names movedTo (renamed while away) is told as a Reset renamed; closing then leaves the new, empty one", async () => {
    const doc = new CollabDocument("old", host());
    const opened = doc.opened();
    let joins = 0;
    const invoker = fakeInvoker((kind) =>
      kind === "join" ? (++joins === 1 ? joinResult({ docId: "old", version: 1, text: "x" }) : joinResult({ docId: "old", version: 0, text: "", movedTo: "new" })) : new Promise(() => undefined),
    );
    doc.attach(invoker);
    await opened;
    doc.detach();
    doc.insert(1, "y"); // typed while away
    const seen = [];
    doc.on("reset", (e) => {
      seen.push([e.reason, e.movedTo, e.unconfirmed]);
      void doc.close();
    });
    doc.attach(invoker);
    await settle();
    await settle();
    assert.deepEqual(seen, [["renamed", "new", { op: [1, "y"], serverText: "x" }]]);
    assert.deepEqual(invoker.calls.map((c) => c[0]), ["join", "join", "leave"], "it left the old id instead of taking the join");
    assert.equal(doc.text, "xy", "the edits are still there to carry");
  });

  test("a first join that names movedTo raises nothing: only a document that was joined missed a Reset", async () => {
    const doc = new CollabDocument("old", host());
    const opened = doc.opened();
    const seen = [];
    doc.on("reset", (e) => seen.push(e));
    doc.attach(fakeInvoker((kind) => (kind === "join" ? joinResult({ docId: "old", version: 0, text: "", movedTo: "new" }) : new Promise(() => undefined))));
    await opened;
    assert.deepEqual(seen, []);
    assert.equal(readJoinResult({ docId: "d", version: 0, text: "", presence: [], movedTo: "n" }).movedTo, "n");
    assert.equal("movedTo" in readJoinResult({ docId: "d", version: 0, text: "", presence: [], movedTo: null }), false);
  });

  test("a malformed op from the server is refused, not applied", () => {
    assert.throws(() => readOpMessage({ docId: "d", version: 1, op: [1.5], clientId: "c", opId: 1 }), /Op message/);
    assert.throws(() => readOpMessage({ docId: "d", version: 1, op: "x", clientId: "c", opId: 1 }), /Op message/);
  });

  test("error codes are read from hub errors", () => {
    assert.equal(errorCode(new Error("An unexpected error occurred invoking 'Submit' on the server. HubException: invalid_op: delete runs past the end")), "invalid_op");
    assert.equal(errorCode(new Error("rate_limited: slow down")), "rate_limited");
    assert.equal(errorCode(new Error("Invocation canceled due to the underlying connection being closed.")), undefined);
    assert.equal(errorCode(new Error("nonsense: not a code")), undefined);
  });

  test("reconnect waits grow exponentially with jitter, up to the maximum", () => {
    const policy = { initialDelayMs: 100, maxDelayMs: 1000 };
    for (let attempt = 0; attempt < 12; attempt++) {
      const window = Math.min(1000, 100 * 2 ** attempt);
      assert.equal(reconnectDelay(attempt, policy, () => 0), window / 2);
      assert.equal(reconnectDelay(attempt, policy, () => 1), window);
    }
    const spread = new Set(Array.from({ length: 50 }, () => Math.round(reconnectDelay(3, policy))));
    assert.ok(spread.size > 10, "jitter spreads the waits");
    assert.equal(reconnectDelay(1000, policy, () => 1), 1000);
  });

  test("a redirect hands the document to the node that owns it", async () => {
    const h = host();
    const doc = new CollabDocument("d", h);
    const opened = doc.opened();
    const first = fakeInvoker(() => joinResult({ redirect: "http://node-b:5000", text: null }));
    doc.attach(first);
    await settle();
    assert.deepEqual(h.redirects, ["http://node-b:5000"]);
    const second = fakeInvoker(() => joinResult({ version: 4, text: "owned" }));
    doc.attach(second);
    await opened;
    assert.equal(doc.text, "owned");
    assert.equal(doc.version, 4);
    assert.equal(second.calls[0][1].clientId, "me");
    assert.deepEqual(second.calls[0][1].user, { name: "Me", color: "#123456" });
  });

  test("a resumed join asks for the ops since its version and resubmits with the same opId", async () => {
    const h = host();
    const doc = new CollabDocument("d", h);
    const opened = doc.opened();
    let submits = 0;
    const first = fakeInvoker((kind) => (kind === "join" ? joinResult({ version: 2, text: "ab" }) : new Promise(() => submits++)));
    doc.attach(first);
    await opened;
    doc.insert(2, "c");
    await settle();
    assert.equal(submits, 1);
    const sent = first.calls.find((c) => c[0] === "submit")[1];
    assert.deepEqual(sent, { docId: "d", baseVersion: 2, op: [2, "c"], opId: 1 });

    doc.detach();
    doc.insert(3, "d"); // typed while offline: buffered
    assert.equal(doc.pendingEdits, 2);
    const other = { docId: "d", version: 3, op: ["X"], clientId: "them", opId: 9 };
    const second = fakeInvoker((kind, request) =>
      kind === "join" ? joinResult({ version: 3, text: null, ops: [other] }) : { version: request.opId === 1 ? 4 : 5 },
    );
    const changes = [];
    doc.on("change", (e) => changes.push(e));
    doc.attach(second);
    for (let i = 0; i < 5; i++) await settle();
    assert.equal(second.calls[0][1].sinceVersion, 2);
    const resubmitted = second.calls.filter((c) => c[0] === "submit").map((c) => c[1]);
    assert.deepEqual(resubmitted[0], { docId: "d", baseVersion: 3, op: [3, "c"], opId: 1 });
    assert.deepEqual(resubmitted[1], { docId: "d", baseVersion: 4, op: [4, "d"], opId: 2 });
    assert.deepEqual(changes.map((c) => [c.op, c.origin, c.clientId]), [[["X"], "remote", "them"]]);
    assert.equal(doc.text, "Xabcd");
    assert.equal(doc.version, 5);
    assert.equal(doc.pendingEdits, 0);
  });

  test("an edit with a lone surrogate throws and sends nothing", async () => {
    const doc = new CollabDocument("d", host());
    const opened = doc.opened();
    const invoker = fakeInvoker((kind, request) => (kind === "join" ? joinResult({ version: 1, text: "a😀b" }) : { version: request.opId + 1 }));
    doc.attach(invoker);
    await opened;
    const changes = [];
    doc.on("change", (e) => changes.push(e));
    assert.throws(() => doc.insert(0, "\ud83d"), RangeError);
    assert.throws(() => doc.insert(4, "x\ude00"), RangeError);
    assert.throws(() => doc.applyLocal(["\ud83d\ud83d\ude00"]), /lone surrogate/);
    assert.throws(() => doc.applyLocal([1, "\ude00"]), /lone surrogate/);
    assert.throws(() => doc.insert(2, "x"), /splits a surrogate pair/); // between the halves of 😀
    assert.throws(() => doc.delete(1, 1), /splits a surrogate pair/);
    await settle();
    assert.deepEqual(invoker.calls.filter((c) => c[0] === "submit"), []);
    assert.deepEqual(changes, []);
    assert.equal(doc.text, "a😀b");
    assert.equal(doc.pendingEdits, 0);
    assert.throws(() => ot.insert(0, "\ud83d"), RangeError);
    assert.throws(() => ot.replace(0, 1, "\udc00"), RangeError);
    doc.insert(4, "\ud83d\ude00"); // a whole pair is fine
    await settle();
    assert.deepEqual(invoker.calls.filter((c) => c[0] === "submit").map((c) => c[1].op), [[4, "😀"]]);
  });

  test("toWellFormed replaces lone surrogates with U+FFFD (user names are sent through it)", () => {
    assert.equal(ot.toWellFormed("Ada \ud83d"), "Ada \ufffd");
    assert.equal(ot.toWellFormed("\ude00\ud83d\ude00\ud83d"), "\ufffd😀\ufffd");
    const fine = "Zoë 😀";
    assert.equal(ot.toWellFormed(fine), fine);
  });

  test("edits the server refuses for good are taken back and reported", async () => {
    const doc = new CollabDocument("d", host());
    const opened = doc.opened();
    let joins = 0;
    const invoker = fakeInvoker((kind) => {
      // Made read-only after opening: the next join says so.
      if (kind === "join") return joinResult({ version: 1, text: "hello", readOnly: joins++ > 0 });
      throw new Error("HubException: forbidden: you may read document 'd' but not edit it");
    });
    doc.attach(invoker);
    await opened;
    const events = [];
    doc.on("change", (e) => events.push(["change", e.origin, e.op]));
    doc.on("error", (e) => events.push(["error", e.code]));
    doc.insert(5, " world");
    for (let i = 0; i < 3; i++) await settle();
    assert.equal(doc.text, "hello");
    assert.deepEqual(events.slice(0, 2), [["change", "revert", [5, -6]], ["error", "forbidden"]]);
    assert.equal(doc.readOnly, true);
    assert.throws(() => doc.insert(0, "x"), /read-only/);
  });

  test("a submit answered unknown_version is reported, kept, and resumed", async () => {
    const doc = new CollabDocument("d", host());
    const opened = doc.opened();
    let submits = 0;
    const invoker = fakeInvoker((kind, request) => {
      if (kind === "join") return joinResult({ version: 1, text: "hello", ops: request.sinceVersion === undefined ? null : [] });
      if (submits++ === 0) throw new Error("HubException: unknown_version: version 1 is not between 0 and the current version 0");
      return { version: 2 };
    });
    doc.attach(invoker);
    await opened;
    const errors = [];
    doc.on("error", (e) => errors.push(e.code));
    doc.insert(5, " world");
    for (let i = 0; i < 5; i++) await settle();
    assert.deepEqual(errors, ["unknown_version"]);
    assert.equal(doc.text, "hello world"); // not taken back
    assert.ok(invoker.calls.filter(([kind]) => kind === "join").length >= 2, "it joined again");
  });

  test("presence from members, and a member who leaves", async () => {
    const doc = new CollabDocument("d", host());
    const opened = doc.opened();
    const invoker = fakeInvoker(() =>
      joinResult({ version: 1, text: "hello", presence: [{ docId: "d", clientId: "ada", user: { name: "Ada", color: "#ff0000" }, version: 1, selection: [{ anchor: 1, head: 3 }] }] }),
    );
    doc.attach(invoker);
    await opened;
    assert.deepEqual(doc.members, [{ clientId: "ada", user: { name: "Ada", color: "#ff0000" }, selection: [{ anchor: 1, head: 3 }] }]);
    doc.insert(0, ">> "); // our edit moves Ada's selection
    assert.deepEqual(doc.members[0].selection, [{ anchor: 4, head: 6 }]);
    // Presence made at version 1, before our pending insert: mapped through it.
    doc.receivePresence({ docId: "d", clientId: "ada", user: { name: "Ada", color: "#ff0000" }, version: 1, selection: [{ anchor: 5, head: 5 }] });
    assert.deepEqual(doc.members[0].selection, [{ anchor: 8, head: 8 }]);
    doc.receivePresence({ docId: "d", clientId: "ada", user: undefined, version: 1, selection: null });
    assert.deepEqual(doc.members, []);
  });
});
