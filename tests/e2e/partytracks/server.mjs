// partytracks' own server proxy (routePartyTracksRequest from `partytracks/server`) under node 20, in front of the
// embedded SFU, plus a page that runs the real partytracks client bundled with esbuild.
//
// Environment: PT_PORT (listen on 127.0.0.1), SFU_BASE (e.g. http://127.0.0.1:8080/sfu/v1), SFU_APP_ID,
// SFU_APP_SECRET, PT_LOG (optional: every proxied exchange appended as one JSON line, for fixtures).
import { appendFileSync, readFileSync } from "node:fs";
import http from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { routePartyTracksRequest } from "partytracks/server";

const here = dirname(fileURLToPath(import.meta.url));
const { PT_PORT, SFU_BASE, SFU_APP_ID, SFU_APP_SECRET, PT_LOG } = process.env;

// Shim 1 (webrtc-notes): node's fetch refuses a streamed body without `duplex: "half"`; the proxy forwards
// `request.body` (a stream) as is.
const nodeFetch = globalThis.fetch;
globalThis.fetch = (input, init) =>
  nodeFetch(input, init && init.body && !init.duplex ? { ...init, duplex: "half" } : init);

// Shim 2 (webrtc-notes): hop-by-hop headers must not be forwarded (undici refuses some of them).
const HOP_BY_HOP = new Set([
  "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "host",
]);

const bundle = await esbuild.build({
  entryPoints: [join(here, "app.js")],
  bundle: true,
  format: "esm",
  write: false,
  target: "chrome120",
  logLevel: "silent",
});
const appJs = bundle.outputFiles[0].text;
const indexHtml = readFileSync(join(here, "index.html"));

const server = http.createServer(async (req, res) => {
  try {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (req.method === "GET" && url.pathname === "/") {
      res.writeHead(200, { "content-type": "text/html" }).end(indexHtml);
      return;
    }
    if (req.method === "GET" && url.pathname === "/app.js") {
      res.writeHead(200, { "content-type": "text/javascript" }).end(appJs);
      return;
    }
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name)) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
    }
    headers.set("content-length", String(body.length));
    const request = new Request(url, {
      method: req.method,
      headers,
      body: body.length ? body : undefined,
      duplex: "half",
    });
    const response = await routePartyTracksRequest({
      appId: SFU_APP_ID,
      token: SFU_APP_SECRET,
      realtimeApiBaseUrl: SFU_BASE,
      prefix: "/partytracks",
      request,
      lockSessionToInitiator: true,
    });
    const out = Buffer.from(await response.arrayBuffer());
    const outHeaders = {};
    response.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name) && name !== "content-length" && name !== "content-encoding") {
        outHeaders[name] = value;
      }
    });
    const cookies = response.headers.getSetCookie ? response.headers.getSetCookie() : [];
    if (cookies.length) outHeaders["set-cookie"] = cookies;
    if (PT_LOG) {
      appendFileSync(
        PT_LOG,
        JSON.stringify({
          method: req.method,
          path: url.pathname,
          request: body.length ? JSON.parse(body.toString()) : null,
          status: response.status,
          response: out.length && out[0] === 0x7b ? JSON.parse(out.toString()) : out.toString(),
        }) + "\n",
      );
    }
    res.writeHead(response.status, outHeaders).end(out);
  } catch (error) {
    console.error("proxy error", error);
    res.writeHead(502, { "content-type": "text/plain" }).end(String(error));
  }
});
server.listen(Number(PT_PORT), "127.0.0.1", () => console.log(`partytracks harness on ${PT_PORT}`));
