import { Counter, Gauge, type Registry } from "prom-client";

/** The email connector's own metrics, beside the shared connector metrics (accepted, rejected by reason). */
export interface EmailMetrics {
  /** 1 while the IMAP session has the watched mailbox open. */
  readonly imapConnected: Gauge;
  readonly imapReconnects: Counter;
  /** Messages handled, by outcome: published, duplicate, refused, deferred, failed. */
  readonly messages: Counter<"outcome">;
  /** Responses to email inquiries, by what happened: sent, draft (not allowed to be sent), failed, ... */
  readonly replies: Counter<"outcome">;
  readonly rulesReloads: Counter<"outcome">;
}

export function createEmailMetrics(registry: Registry): EmailMetrics {
  const registers = [registry];
  return {
    imapConnected: new Gauge({ name: "switchboard_email_imap_connected", help: "1 while the IMAP session has the watched mailbox open", registers }),
    imapReconnects: new Counter({ name: "switchboard_email_imap_reconnects_total", help: "IMAP sessions started again after a lost connection", registers }),
    messages: new Counter({
      name: "switchboard_email_messages_total",
      help: "Email messages handled, by outcome (published, duplicate, refused, deferred, failed)",
      labelNames: ["outcome"],
      registers,
    }),
    replies: new Counter({
      name: "switchboard_email_replies_total",
      help: "Responses to email inquiries, by outcome (sent, or why not: draft, automatic_sender, no_classification, failed, ...)",
      labelNames: ["outcome"],
      registers,
    }),
    rulesReloads: new Counter({
      name: "switchboard_email_rules_reloads_total",
      help: "Reloads of the routing rules (auto_reply) by the email connector, by outcome",
      labelNames: ["outcome"],
      registers,
    }),
  };
}
