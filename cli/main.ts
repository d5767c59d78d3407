import { Command } from "commander";
import { apiKeyCommands } from "./api-keys.js";
import { ConfigError, loadConfig } from "../config/settings.js";
import { createLogger } from "../config/log.js";
import { dlqCommands } from "./dlq.js";
import { importMailCommand } from "./import-mail.js";
import { knowledgeBaseCommands } from "./kb.js";
import { pythonEnvCommand } from "./python-env.js";
import { retrainCommand } from "./retrain.js";
import { runCommands } from "./run.js";
import { schemaCommands } from "./schemas.js";
import { stackCommands } from "./stack.js";
import { statusCommand } from "./status.js";
import { topicCommands } from "./topics.js";
import { trainingCommands } from "./training.js";
import { upCommand } from "./up.js";
import { watchCommand } from "./watch.js";
import { webhookCommands } from "./webhook.js";
import { ReportedError, type CliContext } from "./context.js";

/** `switchboard <command>`: the one entry point for operators, CI and the main job. */
async function main(): Promise<void> {
  let context: CliContext;
  try {
    const config = loadConfig();
    context = { config, log: createLogger(config) };
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const program = new Command("switchboard").description("Real-time customer-inquiry triage on Kafka").showHelpAfterError();
  for (const register of [stackCommands, topicCommands, schemaCommands, runCommands, dlqCommands, upCommand, trainingCommands, retrainCommand, watchCommand, statusCommand, pythonEnvCommand, knowledgeBaseCommands, apiKeyCommands, webhookCommands, importMailCommand]) {
    register(program, context);
  }
  await program.parseAsync(process.argv);
}

main().catch((error: unknown) => {
  if (error instanceof ReportedError) console.error(error.message);
  else console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
