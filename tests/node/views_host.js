// A test host for the MCP Apps views, as Claude or ChatGPT would be one: it connects to Blohko over
// streamable HTTP with the TypeScript SDK client, finds the view a tool names in its
// `_meta.ui.resourceUri`, reads it, and runs it in a sandboxed iframe (opaque origin, under the
// MCP Apps specification's default CSP, which is what the view's `_meta.ui.csp` of no origins
// amounts to) connected through the official `AppBridge`,
// which forwards the view's tool calls to the server. Bundled by esbuild for
// tests/e2e/test_views_browser.py, which serves it at the server's own origin.
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { AppBridge, PostMessageTransport, getToolUiResourceUri } from "@modelcontextprotocol/ext-apps/app-bridge";

const HOST = { name: "blohko-test-host", version: "1.0.0" };
/** The specification's default CSP for a view (SEP-1865): inline scripts, no eval, no origin. */
const DEFAULT_VIEW_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
  "img-src 'self' data:; media-src 'self' data:; connect-src 'none'";
/** Put first in the view's document: every CSP violation becomes a console error the test sees. */
const REPORT_VIOLATIONS =
  "<script>document.addEventListener('securitypolicyviolation', (event) => " +
  "console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI}`));</script>";

/** Messages the views asked the host to send (ui/message), for the test to read. */
window.viewMessages = [];

/** As a browser that has no DecompressionStream (older than Chromium 80, Firefox 113, Safari 16.4). */
const WITHOUT_DECOMPRESSION_STREAM = "<script>delete window.DecompressionStream;</script>";

window.openView = async ({ key, tool, args, theme, width, withoutDecompressionStream = false }) => {
  const client = new Client(HOST);
  const transport = new StreamableHTTPClientTransport(new URL("/mcp", location.origin), {
    requestInit: { headers: { Authorization: `Bearer ${key}` } },
  });
  await client.connect(transport);
  const listed = (await client.listTools()).tools.find((candidate) => candidate.name === tool);
  const uri = getToolUiResourceUri(listed);
  if (!uri) throw new Error(`${tool} names no view`);
  const [content] = (await client.readResource({ uri })).contents;
  const csp = `<meta http-equiv="Content-Security-Policy" content="${DEFAULT_VIEW_CSP}">${REPORT_VIOLATIONS}`;

  const iframe = document.createElement("iframe");
  iframe.setAttribute("sandbox", "allow-scripts allow-forms");
  iframe.title = `${tool} view`;
  iframe.style.cssText = `width: ${width}px; height: 100%; border: 0; display: block`;
  document.body.style.background = theme === "dark" ? "#17191e" : "#ffffff";
  document.getElementById("frame").replaceChildren(iframe);

  const bridge = new AppBridge(client, HOST, { serverTools: {}, message: { text: {} }, openLinks: {} }, {
    hostContext: { theme, platform: "web", displayMode: "inline", containerDimensions: { width, maxHeight: 4000 } },
  });
  bridge.onmessage = async (params) => {
    window.viewMessages.push(params);
    return {};
  };
  const initialized = new Promise((resolve) => {
    bridge.oninitialized = resolve;
  });
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  const older = withoutDecompressionStream ? WITHOUT_DECOMPRESSION_STREAM : "";
  iframe.srcdoc = content.text.replace("<head>", `<head>${csp}${older}`);
  // Such a view never starts its App: nothing to send it.
  if (withoutDecompressionStream) return { uri, mimeType: content.mimeType, meta: content._meta };
  await initialized;
  await bridge.sendToolInput({ arguments: args });
  await bridge.sendToolResult(await client.callTool({ name: tool, arguments: args }));
  return { uri, mimeType: content.mimeType, meta: content._meta };
};
