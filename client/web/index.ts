// The home page, /: every document with its size and last change, a filter, and a form that
// creates (or opens) a document by name, as plain or rich text; for those who may (manage.ts), "Rename…" and "Delete…"
// on each row, with the document page's dialogs.

import "./styles.css";
import { accessToken, authHeaders, byId, formatLength, setUpIdentity, timeAgo } from "./common.js";
import { deleteDialog, deleteDocument, docIdPattern, mayAdminister, renameDialog, renameDocument, serverSource } from "./manage.js";

interface DocSummary {
  readonly id: string;
  readonly version: number;
  readonly length: number;
  readonly updatedAt: string;
}

const listEl = byId<HTMLUListElement>("doc-list");
const emptyEl = byId("empty");
const filterInput = byId<HTMLInputElement>("filter");
const form = byId<HTMLFormElement>("create-form");
const nameInput = byId<HTMLInputElement>("new-name");
const typeSelect = byId<HTMLSelectElement>("new-type");
const messageEl = byId("create-message");
const countEl = byId("doc-count");
const listMessage = byId("list-message");

// Listing needs collab:admin (PROTOCOL §7), and so do rename and delete: offered on the document page's terms.
const manage = mayAdminister(accessToken()) ? { deletion: deleteDialog(), renaming: renameDialog() } : undefined;

function sayAboutList(text: string, kind: "info" | "error" = "info"): void {
  listMessage.textContent = text;
  listMessage.className = kind === "info" ? "message info" : "message";
  listMessage.hidden = text === "";
}

/** "Rename…" and "Delete…" for one row. */
function rowActions(id: string): HTMLElement {
  const actions = Object.assign(document.createElement("div"), { className: "doc-actions" });
  const rename = Object.assign(document.createElement("button"), { type: "button", className: "ghost small", textContent: "Rename…" });
  rename.setAttribute("aria-label", `Rename ${id}`);
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "ghost small danger", textContent: "Delete…" });
  remove.setAttribute("aria-label", `Delete ${id}`);
  rename.addEventListener("click", () =>
    manage?.renaming.open(id, async (newId, say) => {
      const refused = await renameDocument(id, newId, serverSource(id), say);
      if (refused === undefined) {
        sayAboutList(`“${id}” was renamed to “${newId}”; links to “${id}” lead there.`);
        // The dialog closes with the message; the list follows when it has loaded again.
        void load();
      }
      return refused;
    }),
  );
  remove.addEventListener("click", () =>
    manage?.deletion.open(id, async () => {
      const refused = await deleteDocument(id);
      if (refused !== undefined) return sayAboutList(refused, "error");
      sayAboutList(`“${id}” was deleted.`);
      docs = docs.filter((d) => d.id !== id);
      render();
    }),
  );
  actions.append(rename, remove);
  return actions;
}

let docs: DocSummary[] = [];

function openUrl(id: string): string {
  return `/d/${encodeURIComponent(id)}`;
}

function kindOf(id: string): string {
  const ext = id.includes(".") ? id.slice(id.lastIndexOf(".") + 1).toLowerCase() : "";
  return ({ md: "MD", markdown: "MD", js: "JS", mjs: "JS", jsx: "JS", ts: "TS", tsx: "TS", py: "PY", json: "{}" } as Record<string, string>)[ext] ?? "TXT";
}

function render(): void {
  const filter = filterInput.value.trim().toLowerCase();
  const shown = docs.filter((d) => d.id.toLowerCase().includes(filter));
  const items = shown.map((d) => {
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = openUrl(d.id);
    a.className = "doc-link";
    const badge = Object.assign(document.createElement("span"), { className: "doc-kind", textContent: kindOf(d.id) });
    badge.setAttribute("aria-hidden", "true");
    const name = Object.assign(document.createElement("span"), { className: "doc-name", textContent: d.id });
    const updated = new Date(d.updatedAt);
    const meta = Object.assign(document.createElement("span"), {
      className: "doc-meta",
      textContent: `${formatLength(d.length)} · edited ${timeAgo(updated)}`,
    });
    meta.title = `${d.version.toLocaleString()} changes, last ${updated.toLocaleString()}`;
    a.append(badge, name, meta);
    li.append(a);
    if (manage) li.append(rowActions(d.id));
    return li;
  });
  listEl.replaceChildren(...items);
  listEl.setAttribute("aria-busy", "false");
  emptyEl.hidden = shown.length > 0;
  emptyEl.textContent = docs.length === 0 ? "No documents yet. Name one above to start writing." : "No document matches the filter.";
  countEl.textContent = docs.length > 0 ? `${docs.length}` : "";
}

async function load(): Promise<void> {
  try {
    const response = await fetch("/api/docs", { headers: { accept: "application/json", ...authHeaders() } });
    if (response.status === 401 || response.status === 403) {
      throw new Error("listing documents needs a token with the collab:admin grant; open a document by its name instead");
    }
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    const body = (await response.json()) as DocSummary[];
    docs = body.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt) || a.id.localeCompare(b.id));
    render();
  } catch (error) {
    listEl.setAttribute("aria-busy", "false");
    emptyEl.hidden = false;
    emptyEl.textContent = `The documents could not be listed (${error instanceof Error ? error.message : String(error)}). Reload to try again.`;
  }
}

function suggestName(): string {
  const date = new Date().toISOString().slice(0, 10);
  let name = `notes-${date}.md`;
  for (let i = 2; docs.some((d) => d.id === name); i++) name = `notes-${date}-${i}.md`;
  return name;
}

function setMessage(text: string, link?: { href: string; label: string }): void {
  messageEl.replaceChildren(text);
  if (link) {
    messageEl.append(" ", Object.assign(document.createElement("a"), { href: link.href, textContent: link.label }));
  }
  messageEl.hidden = text === "";
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const id = nameInput.value.trim() || suggestName();
  if (!docIdPattern.test(id)) {
    setMessage("Use 1 to 128 letters, digits, dots, dashes or underscores, not starting with a dot.");
    nameInput.setAttribute("aria-invalid", "true");
    nameInput.focus();
    return;
  }
  if (docs.some((d) => d.id === id)) {
    setMessage(`“${id}” already exists.`, { href: openUrl(id), label: "Open it" });
    nameInput.setAttribute("aria-invalid", "true");
    return;
  }
  // Joining creates the document, of the type the address asks for (doc.ts).
  location.href = typeSelect.value === "rich-text" ? `${openUrl(id)}?type=rich-text` : openUrl(id);
});
nameInput.addEventListener("input", () => {
  nameInput.removeAttribute("aria-invalid");
  setMessage("");
});
filterInput.addEventListener("input", render);

setUpIdentity(() => undefined);
nameInput.placeholder = suggestName();
await load();
nameInput.placeholder = suggestName();
setInterval(() => void load(), 15_000);
