// Each view's HTML runs this, inline: its script, bundled by build.mjs, is stored gzip-compressed and
// base64-encoded in <script type="application/gzip+base64" id="view-script"> (about 111 KB in
// place of 318 KB). Unpack it with the browser's own DecompressionStream and run it as an inline
// module script: the host's CSP allows inline scripts, and this needs neither eval nor an object URL.
const root = document.getElementById("root");

function say(text) {
  const message = document.createElement("p");
  message.className = "error";
  message.textContent = text;
  root.replaceChildren(message);
}

if (typeof DecompressionStream !== "function") {
  say("This view needs a browser with DecompressionStream (Chromium 80+, Firefox 113+, Safari 16.4+).");
} else {
  try {
    const packed = document.getElementById("view-script").textContent.trim();
    const gzipped = Uint8Array.from(atob(packed), (character) => character.charCodeAt(0));
    const unpacked = new Blob([gzipped]).stream().pipeThrough(new DecompressionStream("gzip"));
    const script = document.createElement("script");
    script.type = "module";
    script.textContent = await new Response(unpacked).text();
    document.head.append(script);
  } catch (error) {
    say(`This view could not unpack its script: ${error}`);
  }
}
