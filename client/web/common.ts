// What both pages share: who you are (name and color, remembered in this browser), the dialog
// that changes it, and small formatting helpers.

import type { UserInfo } from "@collabserver/client";
import { textColorOn } from "@collabserver/codemirror";

/** Colors that read well as a caret, a name tag background and a translucent selection. */
export const palette: readonly { readonly color: string; readonly name: string }[] = [
  { color: "#e5484d", name: "Red" },
  { color: "#f76b15", name: "Orange" },
  { color: "#c2850c", name: "Amber" },
  { color: "#30a46c", name: "Green" },
  { color: "#12a594", name: "Teal" },
  { color: "#0090ff", name: "Blue" },
  { color: "#6e56cf", name: "Violet" },
  { color: "#d6409f", name: "Pink" },
];

const adjectives = ["Brisk", "Calm", "Clever", "Curious", "Gentle", "Keen", "Lucky", "Merry", "Nimble", "Quiet", "Swift", "Witty"];
const animals = ["Badger", "Crane", "Falcon", "Fox", "Heron", "Lynx", "Marten", "Otter", "Owl", "Panda", "Robin", "Wren"];

const storageKey = "collab.user";

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)];
}

/**
 * This browser's user as remembered: `colorChosen` when the person picked the color in the dialog
 * (kept whatever others use); otherwise the color is a preference the page may change while
 * someone else in the document has it (`colorFor`).
 */
export interface StoredUser extends UserInfo {
  readonly colorChosen?: boolean;
}

function isUser(value: unknown): value is UserInfo {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.name === "string" && v.name.trim() !== "" && typeof v.color === "string" && /^#[0-9a-f]{6}$/i.test(v.color);
}

/** This browser's user, made up and remembered on the first visit. */
export function loadUser(): StoredUser {
  try {
    const stored: unknown = JSON.parse(localStorage.getItem(storageKey) ?? "null");
    if (isUser(stored)) {
      const chosen = (stored as { colorChosen?: unknown }).colorChosen === true;
      return { name: stored.name.slice(0, 40), color: stored.color, ...(chosen ? { colorChosen: true } : {}) };
    }
  } catch {
    // Unreadable: make a new one.
  }
  const user = { name: `${pick(adjectives)} ${pick(animals)}`, color: pick(palette).color };
  saveUser(user);
  return user;
}

/**
 * The color to show for `me` among the other members of a document (`others`: clientId and
 * color). A chosen color is kept. Otherwise `me.color` is kept unless someone else has it and
 * `me` must yield: when joining (`joining`) the newcomer always yields to those already there;
 * later, of two with one color the one with the greater clientId (ordinal) yields. Yielding takes
 * the first palette color no other member has; when all are taken the color stays.
 */
export function colorFor(
  me: StoredUser,
  current: string,
  myClientId: string,
  others: readonly { readonly clientId: string; readonly color: string }[],
  joining: boolean,
): string {
  if (me.colorChosen) return me.color;
  const same = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();
  const clash = others.some((o) => same(o.color, current) && (joining || o.clientId < myClientId));
  if (!clash) return current;
  return palette.find((p) => !others.some((o) => same(o.color, p.color)))?.color ?? current;
}

export function saveUser(user: StoredUser): void {
  try {
    localStorage.setItem(storageKey, JSON.stringify(user));
  } catch {
    // Storage may be disabled; the name then lasts for this page only.
  }
}

/** Up to two initials of a name. */
export function initials(name: string): string {
  const words = name.trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) return "?";
  const first = [...words[0]][0] ?? "";
  const second = words.length > 1 ? [...words[words.length - 1]][0] ?? "" : "";
  return (first + second).toUpperCase();
}

/** A small round badge with a member's initials in their color. */
export function avatar(user: UserInfo, label?: string): HTMLElement {
  const el = document.createElement("span");
  el.className = "avatar";
  el.textContent = initials(user.name);
  el.style.background = user.color;
  el.style.color = textColorOn(user.color);
  if (label) el.setAttribute("aria-label", label);
  else el.setAttribute("aria-hidden", "true");
  return el;
}

/** Looks an element up by id, failing loudly if the page lacks it. */
export function byId<T extends HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`The page has no #${id}.`);
  return el as T;
}

/** "just now", "5 minutes ago", "3 days ago". */
export function timeAgo(date: Date, now = new Date()): string {
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  if (seconds < 45) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return rtf.format(-minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours < 24) return rtf.format(-hours, "hour");
  const days = Math.round(hours / 24);
  if (days < 30) return rtf.format(-days, "day");
  return date.toLocaleDateString();
}

/** "812 characters", "12.4k characters", "1.2M characters". */
export function formatLength(n: number): string {
  const unit = n === 1 ? "character" : "characters";
  if (n < 1000) return `${n} ${unit}`;
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k ${unit}`;
  return `${(n / 1_000_000).toFixed(1)}M ${unit}`;
}

/** Who this page is: the user as remembered, and as shown in this document. */
export interface Identity {
  /** The user as remembered in this browser (the preferred color, and whether it was chosen). */
  readonly stored: StoredUser;
  /** The user as this page shows it and tells the others: the color may differ from the remembered one (`colorFor`). */
  readonly current: UserInfo;
  /** Shows `color` as this page's color, without remembering it. */
  showColor(color: string): void;
}

/**
 * Wires the "you" button and its dialog (markup in the page): shows the user, lets them change
 * name and color, remembers the change and reports it to `onChange`. A color picked in the dialog
 * is remembered as chosen; saving only a new name leaves the color as it was.
 */
export function setUpIdentity(onChange: (user: UserInfo) => void): Identity {
  let stored = loadUser();
  let current: UserInfo = { name: stored.name, color: stored.color };
  const button = byId<HTMLButtonElement>("me-button");
  const dialog = byId<HTMLDialogElement>("me-dialog");
  const form = byId<HTMLFormElement>("me-form");
  const nameInput = byId<HTMLInputElement>("me-name");
  const swatches = byId<HTMLElement>("me-colors");
  const cancel = byId<HTMLButtonElement>("me-cancel");

  for (const { color, name } of palette) {
    const label = document.createElement("label");
    label.className = "swatch";
    label.title = name;
    const input = document.createElement("input");
    input.type = "radio";
    input.name = "color";
    input.value = color;
    input.setAttribute("aria-label", name);
    const dot = document.createElement("span");
    dot.style.background = color;
    label.append(input, dot);
    swatches.append(label);
  }

  const render = () => {
    button.replaceChildren(avatar(current), Object.assign(document.createElement("span"), { className: "me-name", textContent: current.name }));
    button.setAttribute("aria-label", `You are ${current.name}. Change your name or color`);
  };
  render();

  // Whether a color was picked this time the dialog is open: only then is it remembered as chosen.
  let picked = false;
  swatches.addEventListener("change", () => (picked = true));
  button.addEventListener("click", () => {
    picked = false;
    nameInput.value = current.name;
    for (const input of swatches.querySelectorAll<HTMLInputElement>("input")) input.checked = input.value === current.color;
    dialog.showModal();
    nameInput.select();
  });
  cancel.addEventListener("click", () => dialog.close());
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = nameInput.value.trim().slice(0, 40);
    if (!name) {
      nameInput.setCustomValidity("Enter a name others will see.");
      nameInput.reportValidity();
      return;
    }
    const color = swatches.querySelector<HTMLInputElement>("input:checked")?.value ?? current.color;
    stored = picked ? { name, color, colorChosen: true } : { ...stored, name };
    current = { name, color };
    saveUser(stored);
    render();
    dialog.close();
    onChange(current);
  });
  nameInput.addEventListener("input", () => nameInput.setCustomValidity(""));
  return {
    get stored() {
      return stored;
    },
    get current() {
      return current;
    },
    showColor(color: string) {
      if (color === current.color) return;
      current = { ...current, color };
      render();
    },
  };
}

const tokenKey = "collab.token";

/**
 * The access token for a server that requires one (PROTOCOL §8), or undefined. A link can carry
 * it in its fragment, `/d/notes#token=…` (never sent to the server in the URL or logged there):
 * it is kept for this browser tab and taken out of the address bar.
 */
export function accessToken(): string | undefined {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (match) {
    const token = decodeURIComponent(match[1]);
    try {
      sessionStorage.setItem(tokenKey, token);
    } catch {
      // Storage refused (private mode): the token still serves this page.
    }
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  try {
    return sessionStorage.getItem(tokenKey) ?? undefined;
  } catch {
    return undefined;
  }
}

/** Headers for a REST call: the bearer token when there is one. */
export function authHeaders(): Record<string, string> {
  const token = accessToken();
  return token ? { authorization: `Bearer ${token}` } : {};
}

/** What the page reads from its own token (a JWT's payload, not verified: the server decides). */
export interface TokenClaims {
  /** The expiry, in ms since the epoch, if the token has one. */
  readonly expiresAt: number | undefined;
  /** The grants of its `scope` (or `scp`) claim, PROTOCOL §8. */
  readonly grants: readonly string[];
}

/** The claims of a JWT, or undefined when the token is not one this page can read. */
export function tokenClaims(token: string): TokenClaims | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const payload = JSON.parse(new TextDecoder().decode(Uint8Array.from(json, (c) => c.charCodeAt(0)))) as Record<string, unknown>;
    const scopes = [payload.scope, payload.scp].flat().filter((s): s is string => typeof s === "string");
    return {
      expiresAt: typeof payload.exp === "number" ? payload.exp * 1000 : undefined,
      grants: scopes.flatMap((s) => s.split(/\s+/)).filter(Boolean),
    };
  } catch {
    return undefined;
  }
}
