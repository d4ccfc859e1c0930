// Why a connection failed (client/ts/errors.ts): the HTTP answer of the hub's URL after its socket
// was refused, read as the protocol's code and a reason, and whether retrying can help.

import assert from "node:assert/strict";
import { test } from "node:test";
import { CollabError, classifyHandshake, reasonOfCode } from "./lib.mjs";

const hub = "http://127.0.0.1:5000/hubs/collab";

test("401 is unauthorized and not retried", () => {
  const e = classifyHandshake(401, { title: "Unauthorized" }, hub);
  assert.ok(e instanceof CollabError);
  assert.equal(e.code, "unauthorized");
  assert.equal(e.reason, "unauthorized");
  assert.equal(e.status, 401);
  assert.equal(e.retryable, false);
});

test("403 naming the origin is origin, with the protocol's code forbidden", () => {
  const e = classifyHandshake(403, { type: "forbidden", title: "origin http://a.example is not allowed (Collab:AllowedOrigins)" }, hub);
  assert.equal(e.code, "forbidden");
  assert.equal(e.reason, "origin");
  assert.match(e.message, /http:\/\/a\.example/);
  assert.equal(e.retryable, false);
});

test("another 403 is forbidden", () => {
  const e = classifyHandshake(403, { type: "forbidden", title: "this server runs without authentication and answers only clients on its own machine" }, hub);
  assert.equal(e.code, "forbidden");
  assert.equal(e.reason, "forbidden");
  assert.equal(e.retryable, false);
  assert.equal(classifyHandshake(403, undefined, hub).reason, "forbidden");
});

test("5xx and answers that accept the client are unavailable and retried; no answer is network", () => {
  for (const status of [503, 502, 400]) {
    const e = classifyHandshake(status, undefined, hub);
    assert.equal(e.code, "unavailable");
    assert.equal(e.reason, "unavailable");
    assert.equal(e.retryable, true);
  }
  const none = classifyHandshake(undefined, undefined, hub);
  assert.equal(none.code, "unavailable");
  assert.equal(none.reason, "network");
  assert.equal(none.retryable, true);
});

test("a join's code gives its reason", () => {
  assert.equal(reasonOfCode("forbidden"), "forbidden");
  assert.equal(reasonOfCode("unauthorized"), "unauthorized");
  assert.equal(reasonOfCode("unavailable"), "unavailable");
  assert.equal(reasonOfCode("invalid_doc_id"), "invalid");
});
