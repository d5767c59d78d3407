import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { postgresOptions } from "../../config/security.js";
import type { AgentReply, PredictionFeedback } from "../../schemas/types.generated.js";
import { preparePipeline, startPipeline, type Pipeline } from "../e2e/pipeline.js";
import { post, startApi, tailTopic, testKey, until, type ApiProcess, type Tail } from "../support/api.js";
import { openBrowser, screenshot } from "../support/browser.js";

/**
 * The agent console in Debian's chromium, against the real triage pipeline (chained, as `up`
 * deploys it: triage chain, archive, feedback and search sinks) and the real API: an agent signs
 * in with an API key, watches an escalated inquiry arrive in the review queue live, reads its
 * predictions, urgency signals, routing reason and drafted reply, corrects its intent and
 * sentiment — the labels land on predictions.feedback and in PostgreSQL — edits and sends the
 * reply, searches past inquiries, opens the model page and signs out. Screenshots of each page go
 * to .stack/screenshots/console-*.png. No step waits a fixed time.
 */

const endpoints = inject("endpoints");
const run = randomUUID().slice(0, 8);
const SHOWN_MS = 180_000;
// An outage and "ASAP": urgency at least high plus one step, critical, which the routing rules escalate.
const SUBJECT = `Checkout down ${run}`;
const BODY = `Our checkout page is down since this morning and payments are not working. Please fix it ASAP, we are losing orders. Ref ${run}.`;

let pipeline: Pipeline;
let api: ApiProcess;
let browser: Browser;
let token: string;
let db: pg.Pool;
let feedback: Tail<PredictionFeedback>;
let replies: Tail<AgentReply>;
let inquiryId: string;
const pageErrors: string[] = [];

beforeAll(async () => {
  await preparePipeline(endpoints);
  pipeline = await startPipeline(endpoints, {}, "chained");
  api = await startApi(endpoints);
  ({ token } = await testKey(endpoints, ["agent", "label", "read", "ingest"], `Agent ${run}`));
  db = new pg.Pool(postgresOptions(endpoints));
  feedback = await tailTopic<PredictionFeedback>(pipeline.kafka, pipeline.codec, "predictions.feedback", (v) => v.inquiry_id === inquiryId && v.label_source === "agent");
  replies = await tailTopic<AgentReply>(pipeline.kafka, pipeline.codec, "inquiries.replies", (v) => v.inquiry_id === inquiryId);
  browser = await openBrowser();
}, 1_800_000);

afterAll(async () => {
  await browser?.close();
  await feedback?.close();
  await replies?.close();
  await api?.stop();
  await pipeline?.stop();
  await db?.end();
});

async function signedInPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1360, height: 1000 } });
  const page = await context.newPage();
  page.on("pageerror", (error) => pageErrors.push(error.message));
  return page;
}

describe("the agent console in a browser", () => {
  let page: Page;

  it("sends a visitor without a session to the login page, where an agent signs in with an API key", { timeout: 60_000 }, async () => {
    page = await signedInPage();
    await page.goto(`${api.url}/console`);
    await page.waitForURL(/\/console\/login\?next=%2Fconsole$/);
    await page.getByLabel("API key").fill("sb_000000000000_" + "A".repeat(43));
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.getByRole("alert").textContent()).toMatch(/unknown or revoked/);
    await screenshot(page, "console-login");
    await page.getByLabel("API key").fill(token);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.waitForURL(`${api.url}/console`);
    await page.getByRole("heading", { name: /Review queue/ }).waitFor();
    // The session is in an HttpOnly cookie: the page's scripts cannot read it.
    expect(await page.evaluate(() => document.cookie)).toBe("");
    const [cookie] = await page.context().cookies();
    expect(cookie).toMatchObject({ name: "sb_console", httpOnly: true, sameSite: "Strict" });
  });

  it("shows an escalated inquiry arriving in the queue live, with its predictions, urgency signals, routing reason and drafted reply", { timeout: SHOWN_MS + 60_000 }, async () => {
    await expect.poll(() => page.locator("#live-status").textContent(), { timeout: 30_000 }).toBe("live");
    const response = await post(`${api.url}/v1/inquiries`, token, {
      subject: SUBJECT,
      body: BODY,
      customer: { id: `cust-${run}`, name: "Dana Whitfield", email: "dana.whitfield@example.com", tier: "premium" },
    });
    expect(response.status).toBe(202);
    ({ inquiry_id: inquiryId } = (await response.json()) as { inquiry_id: string });

    // No reload: the Server-Sent Events feed brings it.
    const item = page.locator(`.queue-item[data-inquiry="${inquiryId}"]`);
    await item.waitFor({ timeout: SHOWN_MS });
    await expect.poll(() => item.textContent()).toContain(SUBJECT);
    await expect.poll(() => item.textContent()).toContain("escalated");
    // Wait for the drafted reply before opening it (respond follows route).
    await until(async () => {
      const { rowCount } = await db.query("SELECT 1 FROM switchboard.responses WHERE inquiry_id = $1", [inquiryId]);
      return rowCount ? true : undefined;
    }, SHOWN_MS);
    await item.click();

    const detail = page.locator("#detail");
    await detail.getByRole("heading", { name: SUBJECT }).waitFor();
    const text = await detail.textContent();
    expect(text).toContain("Our checkout page is down");
    // Every prediction with its confidence and model@version.
    const predictions = await db.query<{ task: string; model: string }>("SELECT task, model FROM switchboard.predictions WHERE inquiry_id = $1 AND predicted_at IS NOT NULL", [inquiryId]);
    expect(predictions.rows.map((r) => r.task).sort()).toEqual(["category", "intent", "sentiment", "urgency"]);
    for (const { task, model } of predictions.rows) {
      const row = detail.locator("table.predictions tr", { has: page.locator("th", { hasText: new RegExp(`^${task}$`) }) });
      await expect.poll(() => row.textContent()).toContain(model);
      expect(await row.textContent()).toMatch(/\d+\.\d %/);
    }
    expect(await detail.locator("#urgency").textContent()).toMatch(/critical.*outage.*asap/s);
    expect(await detail.locator("#routing").textContent()).toMatch(/Escalated\s*yes: critical urgency/);
    const draft = await db.query<{ text: string }>("SELECT text FROM switchboard.responses WHERE inquiry_id = $1", [inquiryId]);
    expect(await page.getByLabel("Reply to the customer").inputValue()).toBe(draft.rows[0]!.text);
    // The inquiry as stored, redacted: not the customer's name or address (the drafted reply in the
    // text box, which is addressed to them, may greet them by name).
    expect(text).not.toMatch(/Whitfield|dana\.whitfield/);
    expect(text).not.toContain("null");
    await screenshot(page, "console-queue");
  });

  it("corrects the intent and sentiment: the labels land on predictions.feedback and in PostgreSQL", { timeout: 120_000 }, async () => {
    const predicted = await db.query<{ task: string; predicted_label: string; model: string; prediction_id: string }>(
      "SELECT task, predicted_label, model, prediction_id FROM switchboard.predictions WHERE inquiry_id = $1 AND predicted_at IS NOT NULL",
      [inquiryId],
    );
    const of = (task: string) => predicted.rows.find((r) => r.task === task)!;
    const intentSelect = page.getByLabel("intent", { exact: true });
    // Each choice starts at the prediction; the correction is another of the model's classes.
    expect(await intentSelect.inputValue()).toBe(of("intent").predicted_label);
    const classes = await intentSelect.locator("option").evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
    const trueIntent = classes.find((c) => c !== of("intent").predicted_label)!;
    const trueSentiment = of("sentiment").predicted_label === "negative" ? "neutral" : "negative";
    await intentSelect.selectOption(trueIntent);
    await page.getByLabel("sentiment", { exact: true }).selectOption(trueSentiment);
    await page.getByRole("button", { name: "Save labels" }).click();
    await expect.poll(() => page.locator("#label-status").textContent(), { timeout: 30_000 }).toMatch(/^Saved 5 labels; corrected .*intent → /);

    const records = await until(async () => {
      const seen = feedback.records();
      return seen.some((r) => r.value.task === "intent") && seen.some((r) => r.value.task === "sentiment") ? seen : undefined;
    }, 30_000);
    expect(records, "no agent label on predictions.feedback").toBeDefined();
    const intent = records!.find((r) => r.value.task === "intent")!;
    expect(intent.key).toBe(inquiryId);
    expect(intent.value).toMatchObject({ prediction_id: of("intent").prediction_id, model: of("intent").model, predicted_label: of("intent").predicted_label, label: trueIntent, label_source: "agent" });
    expect(records!.find((r) => r.value.task === "sentiment")!.value).toMatchObject({ label: trueSentiment, label_source: "agent" });
    // Accepted ones are labels too: the urgency as routed (the model's level raised by the signals), which the form started at.
    const routed = await db.query<{ urgency: string }>("SELECT urgency FROM switchboard.routing_decisions WHERE inquiry_id = $1", [inquiryId]);
    expect(records!.find((r) => r.value.task === "urgency")?.value).toMatchObject({ label: routed.rows[0]!.urgency, predicted_label: of("urgency").predicted_label, label_source: "agent" });

    // In PostgreSQL: the feedback sink's labels, and the archive's predictions.
    const stored = await until(async () => {
      const { rows } = await db.query<{ task: string; label: string; label_source: string; judged_label: string }>(
        "SELECT task, label, label_source, judged_label FROM switchboard.labels WHERE prediction_id = ANY($1) ORDER BY task",
        [[of("intent").prediction_id, of("sentiment").prediction_id]],
      );
      return rows.length === 2 ? rows : undefined;
    }, 60_000, 500);
    expect(stored).toEqual([
      { task: "intent", label: trueIntent, label_source: "agent", judged_label: of("intent").predicted_label },
      { task: "sentiment", label: trueSentiment, label_source: "agent", judged_label: of("sentiment").predicted_label },
    ]);
    const archived = await until(async () => {
      const { rows } = await db.query<{ label: string | null }>("SELECT label FROM switchboard.predictions WHERE prediction_id = $1", [of("intent").prediction_id]);
      return rows[0]?.label === trueIntent ? rows[0] : undefined;
    }, 60_000, 500);
    expect(archived).toBeDefined();
    // The page shows the labels given once the feed reports them (or on the next open).
    await page.locator(`.queue-item[data-inquiry="${inquiryId}"]`).first().click();
    await expect.poll(() => page.locator("#detail").textContent(), { timeout: 30_000 }).toContain(`intent: ${trueIntent} (agent`);
  });

  it("edits and sends the reply: an AgentReply on inquiries.replies, and the inquiry leaves the queue", { timeout: 120_000 }, async () => {
    const box = page.getByLabel("Reply to the customer");
    await box.fill(`${await box.inputValue()}\n\nWe have restored the checkout; sorry for the trouble.`);
    await page.getByRole("button", { name: "Send reply" }).click();
    await expect.poll(() => page.locator("#reply-status").textContent(), { timeout: 30_000 }).toMatch(/^Sent \(edited\)/);
    const sent = await until(async () => replies.records()[0], 30_000);
    expect(sent?.value).toMatchObject({ inquiry_id: inquiryId, agent: `Agent ${run}`, edited: true, envelope: { channel: "api" } });
    expect(sent!.value.text).toMatch(/restored the checkout/);
    // Answered: the live feed takes it out of the queue.
    await page.locator(`#queue-list .queue-item[data-inquiry="${inquiryId}"]`).waitFor({ state: "detached", timeout: 60_000 });
    await expect.poll(() => page.locator("#detail").textContent(), { timeout: 30_000 }).toContain("Replies sent");
  });

  it("searches past inquiries", { timeout: 120_000 }, async () => {
    await page.getByLabel("Words in the subject or text").fill(run);
    const hit = page.locator(`#search-results .queue-item[data-inquiry="${inquiryId}"]`);
    // The search sink indexes after routing; search again until it has.
    await until(async () => {
      await page.getByRole("button", { name: "Search" }).click();
      await page.locator("#search-summary").filter({ hasText: /found/ }).waitFor({ timeout: 10_000 });
      return (await hit.count()) > 0 ? true : undefined;
    }, 60_000, 1_000);
    expect(await hit.textContent()).toContain(SUBJECT);
    await screenshot(page, "console-search");
  });

  it("shows the model page: each production version, live and estimated quality, drift, lifecycle events", { timeout: 60_000 }, async () => {
    await page.getByRole("link", { name: "Models" }).click();
    await page.waitForURL(`${api.url}/console/models`);
    const { rows } = await db.query<{ model: string; version: string }>("SELECT model, version FROM model_registry.versions WHERE stage = 'production' AND model <> 'embedder'");
    for (const { model, version } of rows) {
      const card = page.locator(`article.model-card[data-model="${model}"]`);
      await expect.poll(() => card.textContent(), { timeout: 30_000 }).toContain(`${model}@${version}`);
      expect(await card.textContent()).toMatch(/Live quality/);
      expect(await card.textContent()).toMatch(/Drift (normal|alarm|unwatched)/);
    }
    await screenshot(page, "console-models");
  });

  it("signs out: the session ends and the pages send the agent to the login again", { timeout: 30_000 }, async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/console\/login$/);
    await page.goto(`${api.url}/console/models`);
    await page.waitForURL(/\/console\/login\?next=%2Fconsole%2Fmodels$/);
    expect(pageErrors, "errors thrown by the pages' scripts").toEqual([]);
  });
});
