import path from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { REPO_ROOT } from "../config/settings.js";

/** The pages people use (DESIGN.md's `web/`): plain HTML, CSS and ES modules, served as they are. */
export const WEB_DIR = path.join(REPO_ROOT, "web");

/**
 * Serves `web/<folder>/` under `prefix` (its index.html at `prefix/`, `prefix` redirected there) and `web/common/`
 * (the styles and scripts every page shares) under `/web/common/`. Files are read from disk
 * with ETags, so a browser revalidates rather than downloads again; nothing is cached long, as
 * the pages change with the code.
 */
export async function servePages(app: FastifyInstance, folder: string, prefix: string): Promise<void> {
  await app.register(fastifyStatic, {
    root: path.join(WEB_DIR, folder),
    prefix: `${prefix}/`,
    decorateReply: false,
    redirect: true,
    cacheControl: true,
    maxAge: 0,
  });
  // The bare prefix (/chat) to the folder's index (/chat/), with its query (the chat page reads
  // ?gateways=), unless a route of the page's own serves it (the console's does). @fastify/static
  // makes this redirect only for a prefix given without its slash, which would clash with such a route.
  if (!app.hasRoute({ method: "GET", url: prefix })) {
    app.get(prefix, { schema: { hide: true } }, async (request, reply) => {
      const query = request.url.indexOf("?");
      return reply.redirect(`${prefix}/${query >= 0 ? request.url.slice(query) : ""}`, 301);
    });
  }
  if (!app.hasRoute({ method: "GET", url: "/web/common/*" })) {
    await app.register(fastifyStatic, { root: path.join(WEB_DIR, "common"), prefix: "/web/common/", decorateReply: false, maxAge: 0 });
  }
}
