import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { withStackLock } from "../../stack/lock.js";
import { quietLog } from "../support/topics.js";

const home = () => mkdtempSync(path.join(os.tmpdir(), "switchboard-lock-"));

describe("stack lock", () => {
  it("runs one holder at a time and removes the lock afterwards", async () => {
    const dir = home();
    const events: string[] = [];
    const holder = (name: string) =>
      withStackLock(dir, quietLog, async () => {
        events.push(`start ${name}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        events.push(`end ${name}`);
      }, 10);
    await Promise.all([holder("a"), holder("b")]);
    expect(events).toEqual(["start a", "end a", "start b", "end b"]);
    expect(existsSync(path.join(dir, "run", "stack.lock"))).toBe(false);
  });

  it("takes over a lock whose holder died", async () => {
    const dir = home();
    const dead = spawnSync(process.execPath, ["-e", ""]).pid!;
    mkdirSync(path.join(dir, "run"), { recursive: true });
    writeFileSync(path.join(dir, "run", "stack.lock"), String(dead));
    await expect(withStackLock(dir, quietLog, async () => "ran", 10)).resolves.toBe("ran");
  });

  it("releases the lock when the task fails", async () => {
    const dir = home();
    await expect(withStackLock(dir, quietLog, async () => Promise.reject(new Error("build failed")), 10)).rejects.toThrow("build failed");
    expect(existsSync(path.join(dir, "run", "stack.lock"))).toBe(false);
  });
});
