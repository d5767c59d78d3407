import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The email connector's own metrics, beside the shared connector metrics (accepted, rejected by reason). */
export interface EmailMetrics {
  /** 1 while the IMAP session has the watched mailbox open. */
  readonly imapConnected: Gauge;
  readonly imapReconnects: Counter;
  /** Messages handled, by outcome: published, duplicate, refused, deferred, failed. */
  readonly messages: Counter<"outcome">;
  /** From the IMAP server receiving a message to Kafka acknowledging its inquiry. */
  readonly deliverySeconds: Histogram;
  /** Responses to email inquiries, by what happened: sent, draft (not allowed to be sent), failed, ... */
  readonly replies: Counter<"outcome">;
  readonly agentReplies: Counter<"outcome">;
  readonly rulesReloads: Counter<"outcome">;
}

export function createEmailMetrics(registry: Registry): EmailMetrics {
  const registers = [registry];
  return {
    imapConnected: new Gauge({
      name: "switchboard_email_imap_connected",
      help: "1 while the IMAP session has the watched mailbox open",
      registers,
    }),
    imapReconnects: new Counter({
      name: "switchboard_email_imap_reconnects_total",
      help: "IMAP sessions started again after a lost connection",
      registers,
    }),
    messages: new Counter({
      name: "switchboard_email_messages_total",
      help: "Email messages handled, by outcome (published, duplicate, refused, deferred, failed)",
      labelNames: ["outcome"],
      registers,
    }),
    deliverySeconds: new Histogram({
      name: "switchboard_email_delivery_seconds",
      help: "From the IMAP server receiving a message (INTERNALDATE) to Kafka acknowledging its inquiry",
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    }),
    replies: new Counter({
      name: "switchboard_email_replies_total",
      help: "Responses to email inquiries, by outcome (sent, or why not: draft, automatic_sender, no_classification, failed, ...)",
      labelNames: ["outcome"],
      registers,
    }),
    agentReplies: new Counter({
      name: "switchboard_email_agent_replies_total",
      help: "Replies agents sent from the console to email inquiries, by outcome (sent, already_handled, unconfirmed, refused_by_server, no_address, retried)",
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
