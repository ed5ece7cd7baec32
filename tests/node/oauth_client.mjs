// A Node MCP host authorizing with the TypeScript SDK's own OAuth client: discovery from the 401,
// dynamic client registration, the authorization code flow with PKCE, then tools over the token.
// The owner's browser step is the pytest side's: this program prints where to send the browser
// and reads back the code the redirect URI received.
//
//   node oauth_client.mjs <mcp-url> <redirect-url> <client-name>
//
// stdout, one JSON object per line:
//   {"authorize": "<authorization URL>"}        then waits for one stdin line: the authorization code
//   {"tools": [names], "called": <list_courses succeeded>, "accessToken": "...", "clientId": "..."}
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [serverUrl, redirectUrl, clientName] = process.argv.slice(2);

// The SDK's OAuthClientProvider, keeping one session's state in memory. What the SDK hands to the
// save methods is stored unchanged: it stamps client information and tokens with their issuer
// and refuses to present them to another authorization server.
class MemoryOAuthProvider {
  #clientInformation;
  #tokens;
  #codeVerifier;
  authorizationUrl;

  get redirectUrl() {
    return redirectUrl;
  }

  get clientMetadata() {
    return {
      client_name: clientName,
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }

  state() {
    return randomBytes(16).toString("hex");
  }

  clientInformation() {
    return this.#clientInformation;
  }

  saveClientInformation(information) {
    this.#clientInformation = information;
  }

  tokens() {
    return this.#tokens;
  }

  saveTokens(tokens) {
    this.#tokens = tokens;
  }

  redirectToAuthorization(url) {
    this.authorizationUrl = url;
  }

  saveCodeVerifier(verifier) {
    this.#codeVerifier = verifier;
  }

  codeVerifier() {
    return this.#codeVerifier;
  }
}

function say(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

async function firstLineOfStdin() {
  const lines = createInterface({ input: process.stdin });
  try {
    for await (const line of lines) return line.trim();
    throw new Error("stdin closed before an authorization code arrived");
  } finally {
    lines.close();
  }
}

const provider = new MemoryOAuthProvider();
const url = new URL(serverUrl);

// The first connection has no token: the 401 starts the flow, which ends in the browser.
const unauthorized = new StreamableHTTPClientTransport(url, { authProvider: provider });
try {
  await new Client({ name: clientName, version: "1.0.0" }).connect(unauthorized);
  throw new Error("the server accepted a connection without a token");
} catch (error) {
  if (!(error instanceof UnauthorizedError) || !provider.authorizationUrl) throw error;
}
say({ authorize: provider.authorizationUrl.href });

// finishAuth on the transport that saw the 401: it holds the resource metadata URL and scope.
await unauthorized.finishAuth(await firstLineOfStdin());

const client = new Client({ name: clientName, version: "1.0.0" });
await client.connect(new StreamableHTTPClientTransport(url, { authProvider: provider }));
try {
  const { tools } = await client.listTools();
  const called = await client.callTool({ name: "list_courses", arguments: {} });
  say({
    tools: tools.map((tool) => tool.name),
    called: called.isError !== true && Array.isArray(called.structuredContent?.data),
    accessToken: provider.tokens().access_token,
    clientId: provider.clientInformation().client_id,
  });
} finally {
  await client.close();
}
