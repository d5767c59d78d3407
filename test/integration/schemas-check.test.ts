import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { SCHEMAS_DIR } from "../../schemas/catalog.js";
import { serviceEnv } from "../support/topics.js";

const exec = promisify(execFile);
const CLI = path.resolve(SCHEMAS_DIR, "../bin/switchboard.js");

async function switchboard(...args: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await exec(process.execPath, [CLI, ...args], { env: { ...serviceEnv(inject("endpoints")), LOG_LEVEL: "warn" } });
    return { code: 0, stdout };
  } catch (error) {
    const failed = error as { code: number; stdout: string };
    return { code: failed.code, stdout: failed.stdout };
  }
}

function copyOfSchemas(edit: (dir: string) => void): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), "switchboard-schemas-"));
  cpSync(SCHEMAS_DIR, dir, { recursive: true, filter: (src) => !src.endsWith(".ts") });
  edit(dir);
  return dir;
}

describe("schemas check", () => {
  beforeAll(async () => {
    expect((await switchboard("schemas", "register")).code).toBe(0);
  });

  it("passes for the working tree and for a compatible change", async () => {
    expect((await switchboard("schemas", "check")).code).toBe(0);
    const dir = copyOfSchemas((d) => {
      const file = path.join(d, "inquiries.urgency.avsc");
      const schema = JSON.parse(readFileSync(file, "utf8"));
      schema.fields.push({ name: "explanation", type: ["null", "string"], default: null });
      writeFileSync(file, JSON.stringify(schema));
    });
    const result = await switchboard("schemas", "check", "--dir", dir);
    rmSync(dir, { recursive: true });
    expect(result.code).toBe(0);
  });

  it("fails on a breaking change and names the subject", async () => {
    const dir = copyOfSchemas((d) => {
      const file = path.join(d, "inquiries.urgency.avsc");
      const schema = JSON.parse(readFileSync(file, "utf8"));
      schema.fields.push({ name: "escalation_team", type: "string" });
      writeFileSync(file, JSON.stringify(schema));
    });
    const result = await switchboard("schemas", "check", "--dir", dir);
    rmSync(dir, { recursive: true });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/inquiries\.urgency-value: INCOMPATIBLE/);
    expect(result.stdout).toMatch(/inquiries\.classified-value: compatible/);
  });
});
