/*
 * gameday scoreboard service worker, served from / so that its scope covers /matches/.
 *
 * - App shell (the page, app.js, style.css): network first, so a deploy shows at
 *   once; the cached copy when the network fails or hangs for SHELL_TIMEOUT_MS.
 * - Snapshots (GET /v1/matches/ID): network first; each one seen, and each state
 *   the page posts, is kept when its seq is not older than the kept one. Offline,
 *   the kept state is served with `X-Gameday-Cache: hit` so the page marks it.
 * - The stream (/v1/matches/ID/stream) is never touched.
 */
"use strict";

const VERSION = "v1";
const SHELL_CACHE = `gameday-shell-${VERSION}`;
const STATE_CACHE = `gameday-state-${VERSION}`;
const SHELL_ASSETS = ["/app.js", "/style.css"];
const SHELL_PAGE = "/";
const SHELL_TIMEOUT_MS = 4000;
const MATCH_ID = /^[a-z0-9]{2,8}-[a-z0-9]{2,8}$/;
const SNAPSHOT_PATH = /^\/v1\/matches\/([a-z0-9]{2,8}-[a-z0-9]{2,8})$/;
const PAGE_PATH = /^\/(matches\/[a-z0-9]{2,8}-[a-z0-9]{2,8}\/?)?$/;

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(SHELL_CACHE);
      await cache.addAll(SHELL_ASSETS);
      // The page is the same HTML under every path; "/" is its canonical copy.
      await cache.add(SHELL_PAGE).catch(() => undefined);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      const keep = new Set([SHELL_CACHE, STATE_CACHE]);
      for (const name of await caches.keys()) {
        if (name.startsWith("gameday-") && !keep.has(name)) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("message", (event) => {
  const message = event.data;
  if (message === null || typeof message !== "object") return;
  if (message.type === "state") event.waitUntil(keepState(message.state));
  if (message.type === "warm" && typeof message.url === "string") event.waitUntil(warm(message.url));
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if ((request.headers.get("Accept") || "").includes("text/event-stream")) return;
  const page = request.mode === "navigate" && PAGE_PATH.test(url.pathname);
  if (page || SHELL_ASSETS.includes(url.pathname)) {
    event.respondWith(shell(request));
    return;
  }
  const snapshot = SNAPSHOT_PATH.exec(url.pathname);
  if (snapshot) event.respondWith(snapshotFirst(request, snapshot[1]));
});

// ---- app shell ----------------------------------------------------------------

async function shell(request) {
  const cache = await caches.open(SHELL_CACHE);
  const cached = () =>
    cache
      .match(request, { ignoreSearch: true })
      .then((hit) => hit || (request.mode === "navigate" ? cache.match(SHELL_PAGE) : undefined));
  const network = fetch(request).then(async (response) => {
    if (response.ok) await cache.put(new URL(request.url).pathname, response.clone());
    return response;
  });
  let timer;
  const slow = new Promise((resolve) => {
    timer = setTimeout(() => cached().then((hit) => hit && resolve(hit)), SHELL_TIMEOUT_MS);
  });
  try {
    return await Promise.race([network, slow]);
  } catch (error) {
    const hit = await cached();
    if (hit) return hit;
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

async function warm(path) {
  const url = new URL(path, self.location.origin);
  if (url.origin !== self.location.origin || !PAGE_PATH.test(url.pathname)) return;
  const cache = await caches.open(SHELL_CACHE);
  if (await cache.match(url.pathname)) return;
  const response = await fetch(url.pathname).catch(() => null);
  if (response && response.ok) await cache.put(url.pathname, response);
}

// ---- last state per match -------------------------------------------------------

async function snapshotFirst(request, matchId) {
  try {
    const response = await fetch(request);
    if (response.ok) {
      const state = await response
        .clone()
        .json()
        .catch(() => null);
      await keepState(state);
    }
    return response;
  } catch {
    const kept = await (await caches.open(STATE_CACHE)).match(snapshotKey(matchId));
    if (!kept) return Response.error();
    const headers = new Headers(kept.headers);
    headers.set("X-Gameday-Cache", "hit");
    return new Response(await kept.text(), { status: 200, headers });
  }
}

async function keepState(state) {
  if (state === null || typeof state !== "object") return;
  if (typeof state.match_id !== "string" || !MATCH_ID.test(state.match_id)) return;
  if (!Number.isSafeInteger(state.seq) || state.seq < 0) return;
  const cache = await caches.open(STATE_CACHE);
  const key = snapshotKey(state.match_id);
  const kept = await cache.match(key);
  if (kept && Number(kept.headers.get("X-Gameday-Seq")) > state.seq) return;
  const headers = {
    "Content-Type": "application/json",
    "X-Gameday-Seq": String(state.seq),
    "X-Gameday-Kept-At": new Date().toISOString(),
  };
  await cache.put(key, new Response(JSON.stringify(state), { headers }));
}

function snapshotKey(matchId) {
  return `/v1/matches/${matchId}`;
}
