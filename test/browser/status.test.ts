import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { deployedRunnables } from "../../cli/processes.js";
import { ALERT_RULES_FILE } from "../../monitoring/alerts.js";
import { SERIES, prometheusReader } from "../../monitoring/status.js";
import { TRIAGE } from "../../streams/topology.js";
import { preparePipeline, startPipeline, type Pipeline } from "../e2e/pipeline.js";
import { freePort, get, post, startApi, testKey, type ApiProcess } from "../support/api.js";
import { SCREENSHOT_DIR, openBrowser, screenshot } from "../support/browser.js";
import { startTestPrometheus, type TestPrometheus } from "../support/prometheus.js";

/**
 * The status page (/status) and the console's model page charts in Debian's chromium, on live
 * figures: the triage pipeline as `up` deploys it and the API, inquiries posted through the API
 * all along, and a Prometheus of the test's own (Debian's, as the local stack runs it) scraping
 * exactly these processes every second with the alert rules loaded — the stack's Prometheus
 * scrapes the main job's ports, not a test's. The pages must show every process with its state
 * and rates, the charts' series non-empty, the models' predictions, confidence, estimated
 * accuracy and drift against its threshold; screenshots in .stack/screenshots/status*.png and
 * console-models-charts.png. No step waits a fixed time.
 */

const endpoints = inject("endpoints");
const run = randomUUID().slice(0, 8);
/** Small drift windows, so that one closes for each model within the test's traffic. */
const DRIFT_WINDOW = 30;
const LIVE_MS = 150_000;

const TEXTS = [
  ["Where is my parcel?", "I ordered a lamp last week and the tracking has not moved since Monday. Can you check where it is?"],
  ["Refund please", "The blender arrived broken. I would like a refund to my card, not store credit."],
  ["Cannot log in", "Your site says my password is wrong although I reset it twice today. Please help me get into my account."],
  ["Invoice address", "Please change the billing address on my last invoice to our new office in Leeds."],
  ["Cancel my order", "I want to cancel order 4471 before it ships, I bought the wrong size."],
  ["Checkout down", "The checkout page is down and payments fail with an error. Fix it ASAP, we are losing orders."],
  ["Thank you", "Just wanted to say the support team was great yesterday, thanks a lot!"],
  ["Change delivery date", "Could the delivery of my sofa be moved to next Friday? Nobody is home on Tuesday."],
] as const;

let pipeline: Pipeline;
let api: ApiProcess;
let browser: Browser;
let token: string;
let prometheus: TestPrometheus | undefined;
let sending = true;
let sent = 0;
let traffic: Promise<void>;
const pageErrors: string[] = [];

async function sendTraffic(): Promise<void> {
  while (sending) {
    const [subject, body] = TEXTS[sent % TEXTS.length]!;
    const response = await post(`${api.url}/v1/inquiries`, token, { subject, body: `${body} (ref ${run}-${sent})`, customer: { id: `cust-${run}-${sent % 5}`, tier: "standard" } });
    if (response.status !== 202) throw new Error(`POST /v1/inquiries answered ${response.status}: ${await response.text()}`);
    sent += 1;
    // Fast until each model's first drift window has closed, then a trickle that keeps the rates up.
    await new Promise((resolve) => setTimeout(resolve, sent < DRIFT_WINDOW * 2 ? 150 : 1_000));
  }
}

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(
    endpoints,
    { SWITCHBOARD_DRIFT_WINDOW_ROWS: String(DRIFT_WINDOW), SWITCHBOARD_QUALITY_REFRESH_MS: "2000", SWITCHBOARD_QUALITY_WINDOWS: "1h" },
    "chained",
  );
  const prometheusPort = await freePort();
  api = await startApi(endpoints, { PROMETHEUS_URL: `http://127.0.0.1:${prometheusPort}` });
  // The pipeline's processes where startPipeline puts them (declared port + 10,000); the connectors
  // this test does not run (email, chat) at a port nothing listens on, so they show as down.
  const idle = await freePort();
  const jobs = [
    ...deployedRunnables(TRIAGE).map((task) => ({ job: task.name, port: task.port + 10_000 })),
    ...TRIAGE.connectors.map((c) => ({ job: c.name, port: c.name === "api" ? api.port : idle })),
  ].map(({ job, port }) => ({ job, target: `127.0.0.1:${port}`, labels: { topology: "triage" } }));
  prometheus = await startTestPrometheus(jobs, { port: prometheusPort, ruleFiles: [fileURLToPath(ALERT_RULES_FILE)] });
  ({ token } = await testKey(endpoints, ["agent", "ingest", "read"], `Status ${run}`));
  traffic = sendTraffic();
  browser = await openBrowser();
}, 1_800_000);

afterAll(async () => {
  sending = false;
  await traffic?.catch(() => undefined);
  await browser?.close();
  await api?.stop();
  await pipeline?.stop();
  prometheus?.stop();
});

async function signIn(next: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  await page.goto(`${api.url}${next}`);
  await page.waitForURL(new RegExp(`/console/login\\?next=${encodeURIComponent(next).replace(/[/]/g, "\\/")}$`));
  await page.getByLabel("API key").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${api.url}${next}`);
  return page;
}

/** Series drawn by a chart (its figure's data-series), 0 while it shows none. */
const drawn = async (page: Page, selector: string) => Number((await page.locator(selector).getAttribute("data-series")) ?? 0);
/** Points of a chart's longest series. */
const points = async (page: Page, selector: string) => Number((await page.locator(selector).getAttribute("data-points")) ?? 0);

describe("the status page and the model page's charts on live figures", () => {
  it("serves the named series only, to an agent", { timeout: 30_000 }, async () => {
    expect((await fetch(`${api.url}/v1/series?names=received`)).status).toBe(401);
    expect((await fetch(`${api.url}/status`, { redirect: "manual" })).headers.get("location")).toBe("/console/login?next=%2Fstatus");
    const unknown = await get(`${api.url}/v1/series?names=received,up`, token);
    expect(unknown.status).toBe(422);
    expect(await unknown.json()).toMatchObject({ error: "unknown_series" });
    // No PromQL of the client's own, whatever the parameter.
    expect((await get(`${api.url}/v1/series?names=received&query=up`, token)).status).toBe(422);
    const answer = await get(`${api.url}/v1/series?names=${Object.keys(SERIES).join(",")}&minutes=5`, token);
    expect(answer.status).toBe(200);
    expect(Object.keys(((await answer.json()) as { series: object }).series).sort()).toEqual(Object.keys(SERIES).sort());
  });

  it("shows every process up or down with its rates, and charts of the key series", { timeout: LIVE_MS + 60_000 }, async () => {
    const page = await signIn("/status");
    // The last 5 minutes: a point every 2 s, where this test's Prometheus has data.
    await page.getByLabel("Charts over the last").selectOption("5");
    // Live: the pipeline answering, so that received and answered both have points, and latency and lag too.
    await expect
      .poll(async () => {
        const [inquiries, latency, lag] = await Promise.all([drawn(page, "#chart-inquiries"), drawn(page, "#chart-latency"), drawn(page, "#chart-lag")]);
        return inquiries === 2 && latency >= 1 && lag >= 1 && (await points(page, "#chart-inquiries")) >= 10;
      }, { timeout: LIVE_MS, interval: 2_000 })
      .toBe(true);

    const reader = prometheusReader(prometheus!.url);
    const up = await reader.query("up");
    const processes = page.locator("#processes tbody tr");
    expect(await processes.count()).toBe(deployedRunnables(TRIAGE).length + TRIAGE.connectors.length);
    for (const task of deployedRunnables(TRIAGE)) {
      expect(up.find((s) => s.metric["job"] === task.name)?.value, `${task.name} scraped`).toBe(1);
      const row = page.locator("#processes tbody tr", { has: page.locator(`[data-process="${task.name}"]`) });
      await expect.poll(() => row.locator(".sb-badge").textContent(), { timeout: 30_000 }).toBe("up");
    }
    const chain = page.locator("#processes tbody tr", { has: page.locator('[data-process="triage"]') });
    await expect.poll(async () => (await chain.locator("td").allTextContents())[3], { timeout: 30_000 }).toMatch(/^\d+\.\d+\/s$/);
    expect((await chain.locator("td").allTextContents())[7]).toMatch(/\d (ms|s)$/);
    const apiRow = page.locator("#processes tbody tr", { has: page.locator('[data-process="api"]') });
    expect(await apiRow.locator(".sb-badge").textContent()).toBe("up");
    expect((await apiRow.locator("td").allTextContents())[3]).toMatch(/^\d+\.\d+\/s$/);
    // The connectors not running here are down, and said so.
    for (const name of ["email", "chat"]) {
      const row = page.locator("#processes tbody tr", { has: page.locator(`[data-process="${name}"]`) });
      await expect.poll(() => row.locator(".sb-badge").textContent(), { timeout: 30_000 }).toBe("down");
    }
    expect(await page.locator("#summary").textContent()).toMatch(/\d+ of \d+ processes up received → response p95 \d/);
    expect(await page.locator("#summary-p95").textContent()).toMatch(/^\d+(\.\d+)? (ms|s)$/);
    // The registry's production versions, as `switchboard status` lists them.
    expect(await page.locator("#models").textContent()).toMatch(/intent\s*\S+\s*production/);
    // ProcessDown for email and chat is pending within its minute, then firing.
    await expect.poll(() => page.locator("#alerts").textContent(), { timeout: 60_000, interval: 2_000 }).toMatch(/ProcessDown/);
    // The drift processor's windows, closed by the traffic.
    await expect.poll(() => page.locator("#drift").textContent(), { timeout: LIVE_MS, interval: 2_000 }).toMatch(/over \d+ watched features/);
    await screenshot(page, "status");
    await page.setViewportSize({ width: 420, height: 900 });
    // On a phone's width the page stacks; wide tables scroll in their cards, the page does not.
    await expect.poll(() => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth), { timeout: 10_000 }).toBeLessThanOrEqual(0);
    await screenshot(page, "status-narrow");
    await page.context().close();
  });

  it("charts each model's predictions by label, confidence, estimated accuracy and drift against its threshold", { timeout: LIVE_MS + 60_000 }, async () => {
    const page = await signIn("/console/models");
    const card = page.locator('article.model-card[data-model="intent"]');
    const chart = (title: string) => card.locator("figure.sb-chart", { has: page.locator("figcaption", { hasText: title }) });
    // The page refreshes every 15 s: reload rather than wait. A drift window closes once each model has DRIFT_WINDOW predictions.
    const titles = ["Predictions by label", "Confidence", "Accuracy, measured and estimated", "Drift statistic ÷ threshold"];
    const counts = async () => Promise.all(titles.map(async (t) => Number((await chart(t).getAttribute("data-series")) ?? 0)));
    await expect
      .poll(
        async () => {
          await page.reload();
          await card.locator(".model-charts").waitFor();
          // A line, not a dot: the series over a few of the page's 10 s steps.
          return (await counts()).every((count) => count > 0) && Number(await chart("Predictions by label").getAttribute("data-points")) >= 4;
        },
        { timeout: LIVE_MS, interval: 3_000 },
      )
      .toBe(true);
    expect(await chart("Confidence").locator(".sb-chart-legend").textContent()).toMatch(/mean\d+\.\d %/);
    expect(await chart("Drift statistic ÷ threshold").locator(".sb-chart-legend").textContent()).toMatch(/threshold1\.00×/);
    expect(await chart("Accuracy, measured and estimated").locator(".sb-chart-legend").textContent()).toMatch(/estimated 1h\d+\.\d %/);
    // The card alone: the whole page is every model's, long.
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await card.screenshot({ path: path.join(SCREENSHOT_DIR, "console-models-charts.png") });
    expect(pageErrors, "errors thrown by the pages' scripts").toEqual([]);
  });
});
