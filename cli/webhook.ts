import { readFile } from "node:fs/promises";
import type { Command } from "commander";
import { SETTINGS } from "../config/settings.js";
import { DESKS, signatureHeaders, type Desk } from "../connectors/tickets/signatures.js";
import { findConnector } from "../streams/topology.js";
import { ReportedError, type CliContext } from "./context.js";

const SECRET_OF = { zendesk: "zendeskWebhookSecret", freshdesk: "freshdeskWebhookSecret", generic: "genericWebhookSecret" } as const;

/**
 * `switchboard webhook send <desk> <file>`: signs a payload file as the desk would (its own
 * headers, the configured secret, the time now) and posts it to the API's ticket webhook, so a
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
      if (!(DESKS as readonly string[]).includes(desk)) throw new ReportedError(`unknown desk "${desk}"; one of ${DESKS.join(", ")}`);
      const setting = SECRET_OF[desk as Desk];
      const secret = config[setting];
      if (!secret) throw new ReportedError(`set ${SETTINGS[setting].env} (the API's ${desk} webhook secret) to sign with`);
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
        throw new ReportedError(`cannot reach ${url}: ${(error as Error).message} (is \`switchboard run api\` running?)`);
      }
      console.log(`${response.status} ${response.statusText}`);
      const location = response.headers.get("location");
      if (location) console.log(`location: ${location}`);
      console.log(await response.text());
      if (!response.ok) process.exitCode = 1;
    });
}
