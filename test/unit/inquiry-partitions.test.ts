import { describe, expect, it } from "vitest";
import { loadConfig } from "../../config/settings.js";
import { coPartitioningProblem } from "../../streams/topics.js";
import { INQUIRY_PARTITIONS, TRIAGE, allTopics, withPartitions } from "../../streams/topology.js";
import { configuredTopologies } from "../../cli/topics.js";

describe("inquiry partitions setting", () => {
  it("defaults to the declared count, and takes 1 to 10000", () => {
    expect(loadConfig({}).inquiryPartitions).toBe(INQUIRY_PARTITIONS);
    expect(loadConfig({ SWITCHBOARD_INQUIRY_PARTITIONS: "12" }).inquiryPartitions).toBe(12);
    expect(() => loadConfig({ SWITCHBOARD_INQUIRY_PARTITIONS: "0" })).toThrow(/SWITCHBOARD_INQUIRY_PARTITIONS="0"/);
  });

  it("sets every co-partitioned topic of the topology, and only those", () => {
    const topology = withPartitions(TRIAGE, 12);
    const counts = new Map(allTopics(topology).map((t) => [t.name, t.partitions]));
    for (const name of [
      "inquiries.received",
      "inquiries.cleaned",
      "inquiries.classified",
      "inquiries.sentiment",
      "inquiries.urgency",
      "inquiries.routed",
      "inquiries.responses",
      "predictions.feedback",
      "route.timeouts",
    ]) {
      expect(counts.get(name), name).toBe(12);
    }
    // Single-partition topics and the DLQs keep their declared counts.
    expect(counts.get("models.lifecycle")).toBe(1);
    expect(counts.get("inquiries.received.dlq")).toBe(1);
    expect(
      configuredTopologies({ inquiryPartitions: 12 }).map(
        (t) => t.topics.find((x) => x.name === "inquiries.routed")?.partitions,
      ),
    ).toEqual([12]);
    // The declaration itself is untouched.
    expect(TRIAGE.topics.find((t) => t.name === "inquiries.routed")?.partitions).toBe(INQUIRY_PARTITIONS);
  });
});

describe("co-partitioning check of topics create", () => {
  const wanted = allTopics(withPartitions(TRIAGE, 12));
  const keyed = wanted.filter((t) => t.coPartitioned).map((t) => t.name);

  it("accepts a new cluster, and existing topics that share a count (even not the configured one)", () => {
    expect(coPartitioningProblem(wanted, new Map())).toBeUndefined();
    expect(coPartitioningProblem(wanted, new Map(keyed.map((name) => [name, 6])))).toBeUndefined();
  });

  it("refuses to make a missing inquiry topic with a count the existing ones do not have", () => {
    const actual = new Map(keyed.filter((n) => n !== "route.timeouts").map((name) => [name, 6]));
    expect(coPartitioningProblem(wanted, actual)).toBe(
      "cannot create route.timeouts with 12 partitions: the existing inquiry topics have 6, and all must share one count; set SWITCHBOARD_INQUIRY_PARTITIONS=6",
    );
  });

  it("names existing inquiry topics whose counts disagree", () => {
    const actual = new Map(keyed.map((name) => [name, name === "inquiries.urgency" ? 3 : 6]));
    expect(coPartitioningProblem(wanted, actual)).toMatch(
      /^the inquiry topics have different partition counts \(.*inquiries\.urgency: 3.*\)/,
    );
  });
});
