import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import type { Command } from "commander";
import type { Logger } from "pino";
import { SAMPLE_INQUIRIES, toInquiry } from "../connectors/samples.js";
import type { InquiryReceived } from "../schemas/types.generated.js";
import { registerSchema } from "../schemas/registry.js";
import { localServices, resolveEndpoints, stackPorts, type Endpoints } from "../stack/index.js";
import { createSupervisor } from "../stack/supervisor.js";
import { createTopicCodec } from "../streams/codec.js";
import { createKafka } from "../streams/kafka.js";
import { createTopics } from "../streams/topics.js";
import { RELAY, TOPOLOGIES, allTopics } from "../streams/topology.js";
import type { CliContext } from "./context.js";
import { spawnProcessor, stopProcessor, waitHealthy } from "./processes.js";
import { schemaTargets } from "./schemas.js";

/** The topology the main job runs until the triage processors exist. */
const DEMO_TOPOLOGY = RELAY;

/**
 * Streams the sample inquiries into the demo topology and prints each one as it comes out of the
 * last hop, with its end-to-end latency.
 */
async function streamDemo(endpoints: Endpoints, log: Logger, count: number): Promise<void> {
  const kafka = createKafka(endpoints.kafkaBrokers, "switchboard-demo", log);
  const codec = await createTopicCodec(new SchemaRegistry({ host: endpoints.schemaRegistryUrl }), allTopics(DEMO_TOPOLOGY));
  const input = DEMO_TOPOLOGY.processors[0]!.inputs[0]!;
  const output = DEMO_TOPOLOGY.processors.at(-1)!.outputs[0]!;
  const consumer = kafka.consumer({ groupId: `switchboard-demo-${Date.now()}`, maxWaitTimeInMs: 50 });
  await consumer.connect();
  await consumer.subscribe({ topic: output, fromBeginning: false });
  const sent = new Set<string>();
  let received = 0;
  const allArrived = new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: async ({ message }) => {
        const inquiry = (await codec.decode(output, message.value)) as InquiryReceived;
        if (!sent.has(inquiry.inquiry_id)) return;
        received++;
        const latency = Date.now() - inquiry.envelope.received_at;
        console.log(`${String(received).padStart(3)} ${inquiry.envelope.channel.padEnd(6)} ${latency.toString().padStart(5)} ms  ${inquiry.body.slice(0, 70)}`);
        if (received === sent.size) resolve();
      },
    });
  });
  await new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  const producer = kafka.producer({ idempotent: true });
  await producer.connect();
  console.log(`streaming ${count} inquiries through ${DEMO_TOPOLOGY.processors.length} hops (${input} → ${output})`);
  for (let i = 0; i < count; i++) {
    const inquiry = toInquiry(SAMPLE_INQUIRIES[i % SAMPLE_INQUIRIES.length]!);
    sent.add(inquiry.inquiry_id);
    await producer.send({ topic: input, messages: [{ key: inquiry.inquiry_id, value: codec.encode(input, inquiry) }] });
  }
  await allArrived;
  await producer.disconnect();
  await consumer.disconnect();
}

/** Topics and schemas of every topology: idempotent, safe on every start. */
async function setup(endpoints: Endpoints, log: Logger): Promise<void> {
  const kafka = createKafka(endpoints.kafkaBrokers, "switchboard-setup", log);
  for (const topology of TOPOLOGIES) await createTopics(kafka, topology, log);
  for (const target of schemaTargets()) await registerSchema(endpoints.schemaRegistryUrl, target);
}

export function upCommand(program: Command, { config, log }: CliContext): void {
  program
    .command("setup")
    .description("create every topic and register every schema (idempotent; `up` does this too)")
    .action(async () => setup(resolveEndpoints(config), log));

  program
    .command("up")
    .description("the main job: local stack, topics, schemas, every processor, then a live demo; Ctrl-C stops the processors")
    .option("--no-demo", "start everything without streaming the sample inquiries")
    .action(async (options: { demo: boolean }) => {
      const endpoints = resolveEndpoints(config);
      await createSupervisor(config.stackHome, stackPorts(config), log).up(localServices(config));
      await setup(endpoints, log);
      const processes = DEMO_TOPOLOGY.processors.map((p) => spawnProcessor(p, config.stackHome));
      const stopAll = () => Promise.all(processes.map(stopProcessor));
      try {
        await Promise.all(processes.map((p) => waitHealthy(p)));
        console.log(`${processes.length} processors running; metrics at ${processes.map((p) => `:${p.declaration.metricsPort}`).join(" ")}`);
        if (options.demo) await streamDemo(endpoints, log, SAMPLE_INQUIRIES.length);
      } catch (error) {
        await stopAll();
        throw error;
      }
      console.log("running; Ctrl-C stops the processors (`switchboard stack down` stops the services)");
      await new Promise<void>((resolve) => {
        process.once("SIGINT", resolve);
        process.once("SIGTERM", resolve);
      });
      await stopAll();
    });

  program
    .command("demo")
    .description("stream sample inquiries through the running processors and print each as it comes out")
    .option("-n, --count <n>", "how many inquiries", (v) => Number(v), SAMPLE_INQUIRIES.length)
    .action(async (options: { count: number }) => streamDemo(resolveEndpoints(config), log, options.count));
}
