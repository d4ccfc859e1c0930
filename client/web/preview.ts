// The Markdown preview beside the editor, for `.md` and `.markdown` documents. markdown-it is
// loaded only when a Markdown document's preview is first shown, with raw HTML off (`html:
// false`): HTML in the text is shown as text, never made part of the page, and links with
// `javascript:` and similar schemes are not made links (markdown-it's `validateLink`).

import type { EditorView } from "@codemirror/view";
import { byId } from "./common.js";

const shownKey = "collab.preview";

/** Whether a document id names a Markdown document (`.md`, `.markdown`). */
export function isMarkdown(docId: string): boolean {
  return /\.(md|markdown)$/i.test(docId);
}

type Render = (text: string) => string;

async function loadRenderer(): Promise<Render> {
  const MarkdownIt = (await import("markdown-it")).default;
  const md = new MarkdownIt({ html: false, linkify: true, typographer: false });
  // Links open in a new tab, so following one does not leave the editor.
  const defaultLinkOpen = md.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet("target", "_blank");
    tokens[idx].attrSet("rel", "noopener noreferrer");
    return defaultLinkOpen(tokens, idx, options, env, self);
  };
  return (text) => md.render(text);
}

/** The preview's state, for the browser tests. */
export interface Preview {
  readonly shown: boolean;
  /** How many times the preview was rendered. */
  readonly renders: number;
  /** The text changed: render it again soon. */
  changed(): void;
}

/**
 * Wires the "Preview" button and pane (markup in doc.html) for a Markdown document: the pane
 * shows the live text rendered, updated (at most every 100 ms) whenever it changes, from anyone.
 * Whether it is shown is remembered in this browser.
 */
export function setUpPreview(view: () => EditorView | undefined): Preview {
  const toggle = byId<HTMLButtonElement>("preview-toggle");
  const pane = byId("preview");
  const body = byId("preview-body");
  let shown = false;
  let renders = 0;
  let renderer: Promise<Render> | undefined;
  let queued: ReturnType<typeof setTimeout> | undefined;

  const render = async () => {
    queued = undefined;
    const editor = view();
    if (!shown || !editor) return;
    renderer ??= loadRenderer();
    let html: string;
    try {
      html = (await renderer)(editor.state.doc.toString());
    } catch (error) {
      renderer = undefined;
      body.replaceChildren(Object.assign(document.createElement("p"), {
        className: "preview-error",
        textContent: `The preview could not be shown: ${error instanceof Error ? error.message : String(error)}`,
      }));
      return;
    }
    // Safe: markdown-it with html: false escapes every tag written in the text.
    body.innerHTML = html;
    pane.setAttribute("aria-busy", "false");
    renders++;
  };

  const show = (on: boolean) => {
    shown = on;
    pane.hidden = !on;
    toggle.setAttribute("aria-pressed", String(on));
    toggle.textContent = on ? "Hide preview" : "Preview";
    try {
      localStorage.setItem(shownKey, String(on));
    } catch {
      // Storage refused: the choice lasts for this page.
    }
    if (on) void render();
  };

  toggle.hidden = false;
  toggle.addEventListener("click", () => show(!shown));
  let remembered = false;
  try {
    remembered = localStorage.getItem(shownKey) === "true";
  } catch {
    // Storage refused.
  }
  show(remembered);

  return {
    get shown() {
      return shown;
    },
    get renders() {
      return renders;
    },
    changed() {
      if (shown && queued === undefined) queued = setTimeout(() => void render(), 100);
    },
  };
}
