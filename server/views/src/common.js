// What every view shares: the connection to the host (the extension's own `App`), the host's
// theme, and a small DOM builder that only ever sets text (data never becomes markup).
import "./jitless.js";
import { App } from "@modelcontextprotocol/ext-apps";

/** `h("p", {class: "x"}, "text", child)`: an element; strings become text nodes. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value == null) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

/** An SVG element (charts are inline SVG: nothing is fetched). */
export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, String(value));
  for (const child of children.flat()) {
    if (child != null) element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

export function minutes(seconds) {
  const total = Math.round((seconds || 0) / 60);
  return total >= 60 ? `${Math.floor(total / 60)} h ${total % 60} min` : `${total} min`;
}

export function day(iso) {
  return iso ? new Date(iso).toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" }) : "";
}

export function percent(rate) {
  return `${Math.round((rate || 0) * 100)}%`;
}

/** The JSON a tool answered, or throws its error message (the text of an error result). */
export function structured(result) {
  if (result.isError) {
    const text = result.content?.find((block) => block.type === "text")?.text ?? "the tool failed";
    let message = text;
    try {
      message = JSON.parse(text).message ?? text;
    } catch {
      // not JSON: the text is the message
    }
    throw new Error(message);
  }
  return result.structuredContent;
}

function applyHostContext(context) {
  if (context?.theme) document.documentElement.dataset.theme = context.theme;
}

/**
 * Connect to the host and render each tool result it sends with `render(data, view)`.
 * `view.call(name, args)` calls a server tool through the host (with the key's permissions).
 */
export function startView(name, render) {
  const root = document.getElementById("root");
  const app = new App({ name: `blohko-${name}`, version: "1.0.0" });
  const view = {
    app,
    root,
    call: async (tool, args) => structured(await app.callServerTool({ name: tool, arguments: args })),
    show(...children) {
      root.replaceChildren(...children);
    },
    fail(error) {
      root.replaceChildren(h("p", { class: "error", role: "alert" }, String(error.message ?? error)));
    },
  };
  app.onhostcontextchanged = applyHostContext;
  app.ontoolresult = async (result) => {
    try {
      await render(structured(result), view);
    } catch (error) {
      view.fail(error);
    }
  };
  app.connect().then(() => applyHostContext(app.getHostContext()), (error) => view.fail(error));
  return view;
}
