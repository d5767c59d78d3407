import path from "node:path";
import fastifyStatic from "@fastify/static";
import type { FastifyInstance } from "fastify";
import { REPO_ROOT } from "../config/settings.js";

/** The pages people use (DESIGN.md's `web/`): plain HTML, CSS and ES modules, served as they are. */
export const WEB_DIR = path.join(REPO_ROOT, "web");

/**
 * Serves `web/<folder>/` under `prefix` (its index.html at the prefix itself) and `web/common/`
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
  if (!app.hasRoute({ method: "GET", url: "/web/common/*" })) {
    await app.register(fastifyStatic, { root: path.join(WEB_DIR, "common"), prefix: "/web/common/", decorateReply: false, maxAge: 0 });
  }
}
