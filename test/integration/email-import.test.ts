import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { mboxMessages } from "../../connectors/email/mail-files.js";
import type { InquiryReceived } from "../../schemas/types.generated.js";
import { createTopicCodec, type TopicCodec } from "../../streams/codec.js";
import { createKafka } from "../../streams/kafka.js";
import { TRIAGE, allTopics } from "../../streams/topology.js";
import { CLI, setupServices, tailTopic, type Tail } from "../support/api.js";
import { expectInquiryMatches } from "../support/email-expect.js";
import { isRefusal, loadEmailFixtures, uniquify, type ExpectedInquiry } from "../support/email-fixtures.js";
import { expectedInquiry, waitFor } from "../support/email.js";
import { quietLog, serviceEnv } from "../support/topics.js";
import { schemaRegistryOptions } from "../../config/security.js";

/** `switchboard import-mail` against the real Kafka and Redis: an mbox and a folder of .eml files, each message once. */

const run = promisify(execFile);
const endpoints = inject("endpoints");
const fixtures = loadEmailFixtures();
const accepted = fixtures.filter((f): f is ExpectedInquiry & { raw: Buffer } => !isRefusal(f));
let kafka: Kafka;
let codec: TopicCodec;
let received: Tail<InquiryReceived>;
const wanted = new Set<string>();

const importMail = async (target: string) => {
  const { stdout } = await run(process.execPath, [CLI, "import-mail", target], {
    env: { ...serviceEnv(endpoints), LOG_LEVEL: "warn" },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
};

/** An mbox as mail clients export it: LF line ends, a "From " line before each message, body "From " lines quoted (mboxrd). */
function mbox(messages: readonly Buffer[]): Buffer {
  return Buffer.concat(
    messages.map((raw) => {
      const text = raw
        .toString("latin1")
        .replace(/\r\n/g, "\n")
        .replace(/^(>*From )/gm, ">$1");
      return Buffer.from(
        `From MAILER-DAEMON Thu Apr  3 22:22:22 2025\n${text}${text.endsWith("\n") ? "" : "\n"}\n`,
        "latin1",
      );
    }),
  );
}

async function expectedIds(messages: readonly Buffer[]): Promise<string[]> {
  const ids = [];
  for (const raw of messages) ids.push((await expectedInquiry(raw))?.inquiry_id);
  const known = ids.filter((id): id is string => id !== undefined);
  for (const id of known) wanted.add(id);
  return known;
}

beforeAll(async () => {
  await setupServices(endpoints);
  kafka = createKafka(endpoints, `email-import-${randomUUID().slice(0, 8)}`, quietLog);
  codec = await createTopicCodec(new SchemaRegistry(schemaRegistryOptions(endpoints)), allTopics(TRIAGE));
  received = await tailTopic<InquiryReceived>(kafka, codec, "inquiries.received", (v) => wanted.has(v.inquiry_id));
});

afterAll(async () => {
  await received?.close();
});

describe("switchboard import-mail", () => {
  it("back-fills an mbox through the connector's mapping: one inquiry per message, refusals listed; a second run imports nothing", async () => {
    const tag = randomUUID().slice(0, 8);
    const quoted = Buffer.from(
      `From: Wren Holt <wren.holt@example.org>\r\nSubject: About the delivery\r\nMessage-ID: <quoted-from.${tag}@example.org>\r\n\r\n` +
        "The courier said the parcel was left at reception.\r\nFrom what I can see on the camera, nobody came.\r\n",
    );
    const messages = [...fixtures.map((f) => uniquify(f.raw, tag)), quoted];
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-mbox-"));
    const file = path.join(dir, "support-export.mbox");
    writeFileSync(file, mbox(messages));

    // The reader gives back each message as written (LF line ends), the "From " line of the body unquoted.
    const read: Buffer[] = [];
    for await (const message of mboxMessages(file)) read.push(message.raw);
    expect(read.map((raw) => raw.toString("latin1"))).toEqual(
      messages.map((raw) => `${raw.toString("latin1").replace(/\r\n/g, "\n").replace(/\n?$/, "\n")}`),
    );
    const ids = await expectedIds(read);

    const first = await importMail(file);
    expect(first).toContain(
      `${messages.length} messages: ${accepted.length + 1} imported, 0 already present, 3 refused (`,
    );
    expect(first).toMatch(/refused {2}.*support-export\.mbox #21 {2}no_sender: /);
    for (const reason of ["binary", "invalid_encoding"]) expect(first).toContain(` ${reason}: `);
    await waitFor(
      () => ids.every((id) => received.records().some((r) => r.key === id)),
      30_000,
      "every imported inquiry",
    );

    const second = await importMail(file);
    expect(second).toContain(
      `${messages.length} messages: 0 imported, ${accepted.length + 1} already present, 3 refused`,
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const id of ids) expect(received.records().filter((r) => r.key === id)).toHaveLength(1);

    accepted.forEach((fixture, i) => {
      const record = received.records().find((r) => r.key === ids[i]);
      expect(record, fixture.file).toBeDefined();
      // An attached message is a line shorter per line in an mbox's LF line ends.
      const attachments = fixture.attachments.map((a) =>
        a.type === "message/rfc822" ? { ...a, size: expect.any(Number) as number } : a,
      );
      expectInquiryMatches(record!.value, { ...fixture, attachments }, tag);
      expect(record!.value.envelope.metadata.source).toBe("import");
    });
  });

  it("back-fills a folder of .eml files, and takes a message already imported from an mbox as present", async () => {
    const tag = randomUUID().slice(0, 8);
    const messages = accepted.slice(0, 6).map((f) => uniquify(f.raw, tag));
    const ids = await expectedIds(messages);
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-eml-"));
    messages.forEach((raw, i) => writeFileSync(path.join(dir, `${String(i).padStart(2, "0")}.eml`), raw));
    writeFileSync(path.join(dir, "notes.txt"), "not a message");
    const mboxDir = mkdtempSync(path.join(os.tmpdir(), "switchboard-mbox-"));
    writeFileSync(path.join(mboxDir, "first-two.mbox"), mbox(messages.slice(0, 2)));

    expect(await importMail(path.join(mboxDir, "first-two.mbox"))).toContain("2 messages: 2 imported");
    expect(await importMail(dir)).toContain("6 messages: 4 imported, 2 already present, 0 refused");
    await waitFor(
      () => ids.every((id) => received.records().some((r) => r.key === id)),
      30_000,
      "every imported inquiry",
    );
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    for (const id of ids) expect(received.records().filter((r) => r.key === id)).toHaveLength(1);
  });

  it("says so when there is nothing to import", async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-empty-"));
    const file = path.join(dir, "empty.mbox");
    writeFileSync(file, "this is not an mbox\n");
    await expect(importMail(file)).rejects.toMatchObject({ stderr: expect.stringContaining("no messages in") });
  });
});
