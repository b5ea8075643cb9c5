// An independent ActivityPub peer built with Fedify, for tests/test_fedify_peer.py.
// One actor, "alice", with an RSA key. Fedify verifies the HTTP signature of every inbox POST
// before a listener runs, and (authorized fetch) of every GET of alice's actor document; what
// passed is appended as one JSON line to PEER_RECORD. A small control API under /control/
// makes alice follow an actor (looked up by WebFinger), reply to an object, Like or boost it.
import { Temporal } from "@js-temporal/polyfill";
import http from "node:http";
import { appendFileSync } from "node:fs";
import {
  Accept, Announce, Create, Delete, Follow, Like, Mention, Note, Person, PropertyValue,
  PUBLIC_COLLECTION, Undo, Update, createFederation, Endpoints, generateCryptoKeyPair,
  MemoryKvStore,
} from "@fedify/fedify";

const HOST = process.env.PEER_HOST ?? "127.0.0.1";
const PORT = Number(process.env.PEER_PORT ?? 8787);
const RECORD = process.env.PEER_RECORD ?? "peer.jsonl";
const ORIGIN = `http://${HOST}:${PORT}`;
const record = (entry) => appendFileSync(RECORD, JSON.stringify(entry) + "\n");

// Fedify's acct: WebFinger lookups always use https; the test nodes serve plain http on
// loopback, so https URLs of loopback hosts (and only those) are fetched over http.
const realFetch = globalThis.fetch;
globalThis.fetch = (input, init) => {
  const url = new URL(input instanceof Request ? input.url : String(input));
  if (url.protocol === "https:" && url.hostname.startsWith("127.")) {
    url.protocol = "http:";
    input = input instanceof Request ? new Request(url, input) : url.href;
  }
  return realFetch(input, init);
};

const federation = createFederation({ kv: new MemoryKvStore(), allowPrivateAddress: true });
const keyPair = await generateCryptoKeyPair("RSASSA-PKCS1-v1_5");

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== "alice") return null;
    if (ctx.url.pathname === `/users/${identifier}`) {
      const owner = await ctx.getSignedKeyOwner(); // null unless the GET's signature verified
      record({ kind: "actor-fetch", signedBy: owner?.id?.href ?? null });
    }
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier), preferredUsername: identifier, name: "Alice (Fedify)",
      inbox: ctx.getInboxUri(identifier), publicKey: keys[0].cryptographicKey,
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
    });
  })
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === "alice" ? [keyPair] : []))
  // Authorized fetch, as Mastodon's secure mode: unsigned or badly signed GETs are refused.
  .authorize(async (_ctx, _identifier, signedKey, owner) => signedKey != null && owner != null);

const inbox = federation.setInboxListeners("/users/{identifier}/inbox", "/inbox");
for (const type of [Accept, Create, Update, Delete, Undo, Follow, Like]) {
  inbox.on(type, async (ctx, activity) => {
    record({
      kind: "inbox", type: type.name, id: activity.id?.href, actor: activity.actorId?.href,
      activity: await activity.toJsonLd({ format: "compact", contextLoader: ctx.contextLoader }),
    });
  });
}

const controls = {
  async follow(ctx, body) {
    const target = await ctx.lookupObject(body.handle);
    if (target?.id == null || target.inboxId == null) throw new Error(`no actor ${body.handle}`);
    const follow = new Follow({
      id: new URL(`/follows/${crypto.randomUUID()}`, ORIGIN),
      actor: ctx.getActorUri("alice"), object: target.id,
    });
    await ctx.sendActivity({ identifier: "alice" }, target, follow);
    // The profile as Fedify's JSON-LD reading understood it (unknown terms would be dropped).
    const fields = [];
    for await (const item of target.getAttachments()) {
      if (item instanceof PropertyValue) fields.push([item.name?.toString(), item.value?.toString()]);
    }
    const icon = await target.getIcon();
    return {
      id: follow.id.href, target: target.id.href, inbox: target.inboxId.href,
      type: target.constructor.name, name: target.name?.toString(),
      summary: target.summary?.toString(), url: target.url?.href, icon: icon?.url?.href,
      published: target.published?.toString(), fields,
      featuredTags: target.featuredTagsId?.href,
    };
  },
  async reply(ctx, body) {
    const target = await ctx.lookupObject(body.to);
    const noteId = new URL(`/notes/${crypto.randomUUID()}`, ORIGIN);
    // A direct reply (as Mastodon's "mentioned people only") names its recipient only.
    const audience = body.direct
      ? { to: target.id, tags: [new Mention({ href: target.id })] }
      : { to: target.id, cc: PUBLIC_COLLECTION };
    const note = new Note({
      id: noteId, attribution: ctx.getActorUri("alice"), replyTarget: new URL(body.object),
      content: body.content, published: Temporal.Now.instant(), ...audience,
    });
    const create = new Create({
      id: new URL(`${noteId.href}/activity`), actor: ctx.getActorUri("alice"), object: note,
      to: audience.to, ...(audience.cc ? { cc: audience.cc } : {}),
    });
    await ctx.sendActivity({ identifier: "alice" }, target, create);
    return { id: noteId.href };
  },
  async like(ctx, body) {
    const target = await ctx.lookupObject(body.to);
    const like = new Like({
      id: new URL(`/likes/${crypto.randomUUID()}`, ORIGIN),
      actor: ctx.getActorUri("alice"), object: new URL(body.object),
    });
    await ctx.sendActivity({ identifier: "alice" }, target, like);
    return { id: like.id.href };
  },
  async boost(ctx, body) {
    const target = await ctx.lookupObject(body.to);
    const boost = new Announce({
      id: new URL(`/boosts/${crypto.randomUUID()}`, ORIGIN), actor: ctx.getActorUri("alice"),
      object: new URL(body.object), to: PUBLIC_COLLECTION, cc: target.id,
    });
    await ctx.sendActivity({ identifier: "alice" }, target, boost);
    return { id: boost.id.href };
  },
};

async function toRequest(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const body = ["GET", "HEAD"].includes(req.method) ? undefined : Buffer.concat(chunks);
  return new Request(new URL(req.url, ORIGIN), { method: req.method, headers: req.headers, body });
}

http.createServer(async (req, res) => {
  try {
    const request = await toRequest(req);
    const path = new URL(request.url).pathname;
    let response;
    if (path.startsWith("/control/") && request.method === "POST") {
      const action = controls[path.slice("/control/".length)];
      const ctx = federation.createContext(new URL(ORIGIN), undefined);
      response = action
        ? Response.json(await action(ctx, await request.json()))
        : Response.json({ error: "unknown control" }, { status: 404 });
    } else {
      response = await federation.fetch(request, { contextData: undefined });
    }
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    res.writeHead(500, { "content-type": "application/json" });
    res.end(JSON.stringify({ error: String(error?.stack ?? error) }));
  }
}).listen(PORT, HOST, () => console.log(`fedify peer listening on ${ORIGIN}`));
