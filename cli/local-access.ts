import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { SETTINGS, type Config } from "../config/settings.js";
import { chatTokenSecret } from "../connectors/chat/tokens.js";
import { DESKS, SECRET_SETTING, type Desk } from "../connectors/tickets/signatures.js";

/**
 * Credentials the main job makes for the person at this machine, kept under
 * `<stack home>/secrets/` (mode 600): signing secrets for the ticket webhooks, so that the local
 * API accepts webhooks signed by `switchboard webhook send` without any set-up, and the key that
 * signs chat session tokens (`chat-token-secret`), shared by the API and the chat gateway. A secret set in
 * the environment always wins; production deployments set them there.
 */
export const secretsDir = (stackHome: string) => path.join(stackHome, "secrets");
export const localApiKeyFile = (stackHome: string) => path.join(secretsDir(stackHome), "api-key");
const secretFile = (stackHome: string, desk: Desk) => path.join(secretsDir(stackHome), `${desk}-webhook-secret`);

/** The desk's signing secret: the configured one, else the local one if the main job made it. */
export function webhookSecret(config: Config, desk: Desk): string | undefined {
  const configured = config[SECRET_SETTING[desk]];
  if (configured) return configured;
  try {
    return readFileSync(secretFile(config.stackHome, desk), "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The environment that gives the API every desk's secret: configured ones stay as they are, the
 * others get a local secret (made once, then reused so that earlier signed payloads stay valid).
 */
export function localWebhookEnv(config: Config): Record<string, string> {
  mkdirSync(secretsDir(config.stackHome), { recursive: true, mode: 0o700 });
  const env: Record<string, string> = {};
  for (const desk of DESKS) {
    if (config[SECRET_SETTING[desk]]) continue;
    let secret = webhookSecret(config, desk);
    if (!secret) {
      secret = randomBytes(32).toString("hex");
      writeFileSync(secretFile(config.stackHome, desk), `${secret}\n`, { mode: 0o600 });
    }
    env[SETTINGS[SECRET_SETTING[desk]].env] = secret;
  }
  return env;
}

/**
 * The environment that gives the API (which issues chat tokens) and the chat gateway (which
 * verifies them) one signing key: the configured one, else the local one (made once, then reused
 * so that the sessions of open chat pages stay valid across restarts).
 */
export function localChatEnv(config: Config): Record<string, string> {
  return { [SETTINGS.chatTokenSecret.env]: chatTokenSecret(config) };
}
