// The Fedify side of bench/fedify_inbox.py: a shared inbox built on @fedify/fedify (the same
// package and version as the test suite's peer, tests/fedify/peer.mjs) that verifies each
// POST's HTTP signature (keys fetched once, then cached in Fedify's key-value store, as the
// node caches them in remote_actors) and stores every accepted activity: one JSON line appended
// per activity (a write() to the page cache, like SQLite's WAL commit with synchronous=NORMAL:
// neither flushes to disk per activity). Fedify dedupes by activity id itself.
//   BENCH_HOST, BENCH_PORT: where to listen; BENCH_STORE: the file activities are appended to.
import http from "node:http";
import { appendFileSync } from "node:fs";
// The test suite's installation (tests/fedify/node_modules), imported from here without a copy.
const {
  Announce, Create, Delete, Follow, Like, Undo, Update, createFederation, MemoryKvStore,
} = await import(new URL("../tests/fedify/node_modules/@fedify/fedify/esm/mod.js",
  import.meta.url).href);

const HOST = process.env.BENCH_HOST ?? "127.0.0.1";
const PORT = Number(process.env.BENCH_PORT ?? 8788);
const STORE = process.env.BENCH_STORE ?? "fedify-inbox.jsonl";
const ORIGIN = `http://${HOST}:${PORT}`;

const federation = createFederation({ kv: new MemoryKvStore(), allowPrivateAddress: true });
// Fedify needs an actor dispatcher for its inbox routes; nobody is served here.
federation.setActorDispatcher("/users/{identifier}", async () => null);
const inbox = federation.setInboxListeners("/users/{identifier}/inbox", "/inbox");
for (const type of [Create, Update, Delete, Undo, Follow, Like, Announce]) {
  inbox.on(type, async (ctx, activity) => {
    // Without a format, Fedify gives back the JSON it parsed (cached): no JSON-LD compaction,
    // which would cost more than the rest of the request.
    const json = await activity.toJsonLd();
    appendFileSync(STORE, JSON.stringify({ type: type.name, id: activity.id?.href,
      actor: activity.actorId?.href, activity: json }) + "\n");
  });
}

async function toRequest(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = ["GET", "HEAD"].includes(req.method) ? undefined : Buffer.concat(chunks);
  return new Request(new URL(req.url, ORIGIN), { method: req.method, headers: req.headers, body });
}

http.createServer(async (req, res) => {
  try {
    const response = await federation.fetch(await toRequest(req), { contextData: undefined });
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: String(error?.stack ?? error) }));
  }
}).listen(PORT, HOST, () => console.log(`fedify inbox listening on ${ORIGIN}`));
