import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { REPO_ROOT } from "../../config/settings.js";

/** Where the browser tests leave their screenshots for a person to look at (under .stack/, git-ignored). */
export const SCREENSHOT_DIR = path.join(REPO_ROOT, ".stack", "screenshots");

/** Debian's chromium (`.ci/run` installs it), or the one CHROMIUM_PATH names. */
export function chromiumPath(): string {
  return process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
}

/**
 * A headless chromium through playwright-core (which brings no browser of its own). As root
 * (CI containers) chromium refuses to start without --no-sandbox; elsewhere its sandbox stays on.
 */
export async function openBrowser(): Promise<Browser> {
  const executablePath = chromiumPath();
  if (!existsSync(executablePath)) {
    throw new Error(`no chromium at ${executablePath}: apt-get install -y --no-install-recommends chromium, or set CHROMIUM_PATH`);
  }
  const asRoot = typeof process.getuid === "function" && process.getuid() === 0;
  return chromium.launch({
    executablePath,
    headless: true,
    // /dev/shm is small in containers; chromium falls back to /tmp with this flag instead of crashing tabs.
    args: [...(asRoot ? ["--no-sandbox"] : []), "--disable-dev-shm-usage"],
  });
}

/** A full-page PNG of `page` at `.stack/screenshots/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, "-")}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
