// Drives a Blohko server with the official TypeScript SDK client, as a Node-based MCP host would,
// and prints one JSON object of what it saw for the pytest side to check.
//
//   node sdk_client.mjs stdio <command> [args...]   (the server's env: BLOHKO_API_KEY, BLOHKO_DATABASE_URL)
//   node sdk_client.mjs http <url> <api-key>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [mode, target, ...rest] = process.argv.slice(2);

function transport() {
  if (mode === "stdio") {
    const env = {};
    for (const name of ["BLOHKO_API_KEY", "BLOHKO_DATABASE_URL"]) env[name] = process.env[name];
    return new StdioClientTransport({ command: target, args: rest, env, stderr: "inherit" });
  }
  if (mode === "http") {
    const headers = { Authorization: `Bearer ${rest[0]}` };
    return new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  }
  throw new Error(`unknown mode ${mode}`);
}

// What an agent reads of an error: the JSON in the text content of a result with isError.
function errorBody(result) {
  return { isError: result.isError === true, body: JSON.parse(result.content[0].text) };
}

const client = new Client({ name: "blohko-ts-sdk-test", version: "1.0.0" });
await client.connect(transport());
try {
  const { tools } = await client.listTools();
  const whoami = await client.callTool({ name: "whoami", arguments: {} });
  const email = `ts-sdk-${mode}-${Date.now()}@example.com`;
  const registered = await client.callTool({ name: "register_student", arguments: { name: "Ada TypeScript", email } });
  const missing = await client.callTool({ name: "get_student", arguments: { studentId: "user_00000000000000000000" } });
  const invalid = await client.callTool({ name: "register_student", arguments: { name: "No Email" } });
  let unknownTool = null;
  try {
    await client.callTool({ name: "no_such_tool", arguments: {} });
  } catch (error) {
    unknownTool = { code: error.code, message: error.message };
  }
  // Prompts: listed, rendered for a course made here, and that course offered by completion.
  const { prompts } = await client.listPrompts();
  const created = await client.callTool({
    name: "create_course",
    arguments: { title: `Kiln Basics ${mode}`, slug: `kiln-basics-${mode}-${Date.now()}`, categoryId: "cat_web_development" },
  });
  const courseId = created.structuredContent.course.id;
  const launch = await client.getPrompt({ name: "launch_course", arguments: { courseId } });
  const completed = await client.complete({
    ref: { type: "ref/prompt", name: "launch_course" },
    argument: { name: "courseId", value: "kiln" },
  });
  let badPrompt = null;
  try {
    await client.getPrompt({ name: "launch_course", arguments: {} });
  } catch (error) {
    badPrompt = { code: error.code, message: error.message };
  }
  const output = {
    capabilities: client.getServerCapabilities(),
    prompts: prompts.map((prompt) => ({ name: prompt.name, arguments: prompt.arguments })),
    launch: { courseId, text: launch.messages[0].content.text },
    completed: completed.completion,
    badPrompt,
    server: client.getServerVersion(),
    instructions: client.getInstructions(),
    tools: tools.map((tool) => ({
      name: tool.name,
      hasOutputSchema: "outputSchema" in tool,
      annotations: tool.annotations,
    })),
    whoami: whoami.structuredContent,
    registered: { isError: registered.isError === true, structured: registered.structuredContent, text: JSON.parse(registered.content[0].text) },
    missing: errorBody(missing),
    invalid: errorBody(invalid),
    unknownTool,
  };
  process.stdout.write(JSON.stringify(output) + "\n");
} finally {
  await client.close();
}
