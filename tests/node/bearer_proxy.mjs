// A loopback proxy that adds `Authorization: Bearer <key>` to every request and forwards it,
// otherwise byte for byte (the Host and Origin headers included), to a Blohko HTTP server.
//
// The conformance suite's client cannot send a header; this plays the part of a client's
// header setting. The server still authenticates every request with a real key.
//
//   node bearer_proxy.mjs <target-origin> <key>   (prints {"url": "http://127.0.0.1:<port>"})
import http from "node:http";

const [target, key] = process.argv.slice(2);
const upstream = new URL(target);

const proxy = http.createServer((request, response) => {
  const headers = { ...request.headers, authorization: `Bearer ${key}` };
  const forwarded = http.request(
    { hostname: upstream.hostname, port: upstream.port, method: request.method, path: request.url, headers },
    (answer) => {
      response.writeHead(answer.statusCode, answer.headers);
      answer.pipe(response);
    },
  );
  forwarded.on("error", (error) => {
    response.writeHead(502, { "content-type": "text/plain" });
    response.end(String(error));
  });
  request.pipe(forwarded);
});

proxy.listen(0, "127.0.0.1", () => {
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${proxy.address().port}` }) + "\n");
});
process.on("SIGTERM", () => proxy.close(() => process.exit(0)));
