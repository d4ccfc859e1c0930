// The error codes are written once (client/error-codes.json); the C# and TypeScript tables are
// generated from it and must be current.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { errorCode, repoRoot } from "./lib.mjs";

test("the generated C# and TypeScript tables are what client/error-codes.json gives", () => {
  execFileSync(process.execPath, [join(repoRoot, "scripts", "error-codes.mjs"), "--check"], { stdio: "pipe" });
});

test("every code the server sends is read from a hub error, and nothing else is: not a code only clients raise", () => {
  const { codes } = JSON.parse(readFileSync(join(repoRoot, "client", "error-codes.json"), "utf8"));
  const hubError = (code) => new Error(`An unexpected error occurred invoking 'Submit' on the server. HubException: ${code}: why`);
  for (const { code, clientOnly } of codes) assert.equal(errorCode(hubError(code)), clientOnly ? undefined : code);
  assert.ok(codes.some((c) => c.code === "diverged" && c.clientOnly && c.http === undefined));
  assert.equal(errorCode(new Error("HubException: no_such_code: why")), undefined);
});
