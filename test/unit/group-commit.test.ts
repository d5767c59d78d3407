import { describe, expect, it } from "vitest";
import { createGroupCommit } from "../../streams/group-commit.js";

describe("group commit", () => {
  it("commits the batches of one fetch in one transaction once every started handler has joined", async () => {
    const commits: string[][] = [];
    const group = createGroupCommit<string>(async (parts) => void commits.push([...parts]));
    const [a, b, c] = [group.begin(), group.begin(), group.begin()];
    const joinedA = a.join("p0");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(commits).toEqual([]); // b and c are still processing
    c.abandon();
    await Promise.all([joinedA, b.join("p1")]);
    expect(commits).toEqual([["p0", "p1"]]);
  });

  it("rejects every joined handler when the transaction fails, and keeps working afterwards", async () => {
    let fail = true;
    const group = createGroupCommit<number>(async () => {
      if (fail) throw new Error("broker gone");
    });
    const [a, b] = [group.begin(), group.begin()];
    const results = await Promise.allSettled([a.join(1), b.join(2)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    fail = false;
    await expect(group.begin().join(3)).resolves.toBeUndefined();
  });

  it("spaces commits by the minimum interval, and a group that waits takes the handlers joining meanwhile", async () => {
    const commits: { at: number; parts: number[] }[] = [];
    const group = createGroupCommit<number>(async (parts) => void commits.push({ at: performance.now(), parts: [...parts] }), 100);
    await group.begin().join(1);
    const second = group.begin();
    const third = group.begin();
    const joined = second.join(2);
    await new Promise((resolve) => setTimeout(resolve, 10));
    third.abandon(); // the group {2} is complete now, and waits out the interval
    await new Promise((resolve) => setTimeout(resolve, 10));
    const fourth = group.begin().join(4); // joins during the wait
    await Promise.all([joined, fourth]);
    expect(commits.map((c) => c.parts)).toEqual([[1], [2, 4]]);
    expect(commits[1]!.at - commits[0]!.at).toBeGreaterThanOrEqual(95); // timers may fire a millisecond early
  });

  it("a ticket is used once", () => {
    const ticket = createGroupCommit<number>(async () => undefined).begin();
    ticket.abandon();
    expect(() => ticket.abandon()).toThrow(/used once/);
  });
});
