import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { SETTINGS } from "../config/settings.js";
import { DESKS, signatureHeaders, type Desk } from "../connectors/tickets/signatures.js";
import { findConnector } from "../streams/topology.js";
import { ReportedError, type CliContext } from "./context.js";
import { webhookSecret } from "./local-access.js";

/**
 * `switchboard webhook send <desk> <file>`: signs a payload file as the desk would (its own
 * headers, the configured secret or the one `switchboard up` made locally, the time now) and posts it to the API's ticket webhook, so a
 * person can try the webhooks by hand; prints the answer.
 */
export function webhookCommands(program: Command, { config }: CliContext): void {
  const defaultUrl = `http://localhost:${findConnector("api")?.connector.port ?? 8080}`;
  program
    .command("webhook")
    .description("ticket webhooks: send a signed payload")
    .command("send <desk> <file>")
    .description(`sign a JSON payload file as ${DESKS.join(" / ")} would and POST it to /v1/webhooks/<desk>`)
    .option("--url <url>", "base URL of the API", defaultUrl)
    .action(async (desk: string, file: string, options: { url: string }) => {
      if (!(DESKS as readonly string[]).includes(desk))
        throw new ReportedError(`unknown desk "${desk}"; one of ${DESKS.join(", ")}`);
      const secret = webhookSecret(config, desk as Desk);
      if (!secret) {
        throw new ReportedError(
          `set ${SETTINGS[`${desk as Desk}WebhookSecret`].env} (the API's ${desk} webhook secret) to sign with, or start the API with \`switchboard up\`, which makes local secrets`,
        );
      }
      let body: Buffer;
      try {
        body = await readFile(file);
      } catch (error) {
        throw new ReportedError(`cannot read ${file}: ${(error as Error).message}`);
      }
      const url = `${options.url.replace(/\/$/, "")}/v1/webhooks/${desk}`;
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...signatureHeaders(desk as Desk, secret, body, Date.now()) },
          body: new Uint8Array(body),
        });
      } catch (error) {
        throw new ReportedError(
          `cannot reach ${url}: ${(error as Error).message} (is \`switchboard run api\` running?)`,
        );
      }
      console.log(`${response.status} ${response.statusText}`);
      const location = response.headers.get("location");
      if (location) console.log(`location: ${location}`);
      console.log(await response.text());
      if (!response.ok) process.exitCode = 1;
    });
}
