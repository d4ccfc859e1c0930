// Why a connection or a join failed, as a typed error with the protocol's code (PROTOCOL §5, §8).
//
// A browser hides the HTTP status of a refused WebSocket handshake, so when the hub's socket
// cannot be opened the client asks the hub's URL once over plain HTTP (`POST /hubs/collab`, with
// the same token, and from a page with the same Origin): 401 is `unauthorized`, 403 `forbidden`
// (or, when the server's sentence names the origin, the page's origin is not allowed), 5xx
// `unavailable`, no answer at all `network`; any other answer means the server would accept this
// client, so the socket failed for a passing reason (`unavailable`). A page on another origin
// cannot read a refusal that carries no CORS headers: when only an opaque (`no-cors`) request is
// answered, the server is refusing the page's origin (`origin`).

import type { ErrorCode } from "./error-codes.js";

/**
 * Why a connection or join failed, finer than the protocol code: `origin` is a `forbidden` for the
 * page's origin, `network` no answer at all, `invalid` a request the server will never take
 * (`invalid_doc_id`, say).
 */
export type FailureReason = "unauthorized" | "forbidden" | "origin" | "unavailable" | "network" | "invalid";

/**
 * A connection or join that failed, with the protocol's code and what it means for retrying:
 * `retryable` is false for `unauthorized`, `forbidden` and `origin` (the same request will be
 * refused again), true for `unavailable` and `network`.
 */
export class CollabError extends Error {
  override readonly name = "CollabError";

  constructor(
    /** The protocol code (PROTOCOL §5): `unauthorized`, `forbidden` (also for a refused origin), `unavailable`, or a join's code. */
    readonly code: ErrorCode,
    /** The finer reason, for telling a person what to do. */
    readonly reason: FailureReason,
    message: string,
    /** The HTTP status the server answered, when there was one. */
    readonly status?: number,
  ) {
    super(message);
  }

  /** Whether trying again later may succeed without anything changing. */
  get retryable(): boolean {
    return this.reason === "unavailable" || this.reason === "network";
  }
}

/** The reason a join refused with `code` gives. */
export function reasonOfCode(code: ErrorCode): FailureReason {
  if (code === "unauthorized" || code === "forbidden") return code;
  return code === "unavailable" || code === "rate_limited" ? "unavailable" : "invalid";
}

/** The sentence of a refused origin names it: `origin http://… is not allowed (Collab:AllowedOrigins)`. */
const originRefusal = /\borigin\b.*\bnot allowed\b/i;

/**
 * What an HTTP answer from the hub's URL says about a failed handshake; `undefined` status: no
 * answer at all. `problem` is the RFC 9457 body, if it had one.
 */
export function classifyHandshake(
  status: number | undefined,
  problem: { readonly type?: unknown; readonly title?: unknown; readonly detail?: unknown } | undefined,
  url: string,
): CollabError {
  const said = [problem?.title, problem?.detail].find((s): s is string => typeof s === "string" && s !== "");
  if (status === undefined) return new CollabError("unavailable", "network", `The server at ${url} did not answer.`);
  if (status === 401) {
    return new CollabError("unauthorized", "unauthorized", `The server at ${url} refused the connection: no valid token (missing, expired or not accepted).`, status);
  }
  if (status === 403) {
    if (said && originRefusal.test(said)) return new CollabError("forbidden", "origin", `The server at ${url} refused this page's origin: ${said}.`, status);
    return new CollabError("forbidden", "forbidden", `The server at ${url} refused the connection${said ? `: ${said}` : ""}.`, status);
  }
  return new CollabError("unavailable", "unavailable", `The server at ${url} could not be connected to (HTTP ${status}${said ? `: ${said}` : ""}).`, status);
}

/** Asks the hub's URL over HTTP why its socket could not be opened (see the top of this file). */
export async function diagnoseHandshake(hubUrl: string, token: string | undefined): Promise<CollabError> {
  let response: Response;
  try {
    response = await fetch(hubUrl, { method: "POST", headers: token ? { Authorization: `Bearer ${token}` } : {}, cache: "no-store" });
  } catch {
    // No readable answer. From a page on another origin, a server that refuses that origin answers
    // without CORS headers, which looks the same; an opaque request tells the two apart.
    try {
      await fetch(hubUrl, { method: "POST", mode: "no-cors", cache: "no-store" });
      return new CollabError("forbidden", "origin", `The server at ${hubUrl} answered, but not to this page's origin (${globalThis.location?.origin ?? "unknown"}): it is not in the server's allowed origins.`);
    } catch {
      return classifyHandshake(undefined, undefined, hubUrl);
    }
  }
  let problem: { type?: unknown; title?: unknown; detail?: unknown } | undefined;
  try {
    if ((response.headers.get("content-type") ?? "").includes("json")) problem = (await response.json()) as typeof problem;
  } catch {
    // Not a problem document: the status says enough.
  }
  return classifyHandshake(response.status, problem, hubUrl);
}
