import path from "node:path";
import type { Command } from "commander";
import { SCHEMAS_DIR, topicValueSchema } from "../schemas/catalog.js";
import { checkCompatibility, registerSchema, type SchemaTarget } from "../schemas/registry.js";
import { resolveEndpoints } from "../stack/index.js";
import { TOPOLOGIES } from "../streams/topology.js";
import type { CliContext } from "./context.js";

/** Every topic with an Avro value, with its schema as found in `dir`. */
export function schemaTargets(dir = SCHEMAS_DIR): SchemaTarget[] {
  const topics = new Map(TOPOLOGIES.flatMap((t) => t.topics).map((t) => [t.name, t]));
  return [...topics.values()]
    .filter((t) => t.valueSchema !== "raw")
    .map((t) => ({ topic: t.name, schema: topicValueSchema(t.valueSchema, dir) }));
}

export function schemaCommands(program: Command, { config }: CliContext): void {
  const schemas = program.command("schemas").description("Avro contracts in the schema registry");
  schemas
    .command("register")
    .description("set BACKWARD compatibility and register every topic's value schema (idempotent)")
    .action(async () => {
      const registry = resolveEndpoints(config);
      for (const target of schemaTargets()) {
        const { subject, id } = await registerSchema(registry, target);
        console.log(`${subject}: id ${id}`);
      }
    });
  schemas
    .command("check")
    .description("fail if a working-tree schema is not BACKWARD compatible with the registered one")
    .option("--dir <path>", "schemas folder to check", SCHEMAS_DIR)
    .action(async (options: { dir: string }) => {
      const registry = resolveEndpoints(config);
      let breaking = 0;
      for (const target of schemaTargets(path.resolve(options.dir))) {
        const verdict = await checkCompatibility(registry, target);
        if (verdict.status === "incompatible") {
          breaking++;
          console.log(`${verdict.subject}: INCOMPATIBLE\n  ${verdict.messages.join("\n  ") || "(the registry gave no detail)"}`);
        } else {
          console.log(`${verdict.subject}: ${verdict.status}`);
        }
      }
      if (breaking > 0) {
        console.error(`${breaking} schema(s) would break consumers`);
        process.exitCode = 1;
      }
    });
}
