import { Counter, Gauge, Histogram, type Registry } from "prom-client";

/** The chat gateway's own metrics, beside every connector's (the registry adds connector="chat"). */
export interface ChatMetrics {
  /** Sockets open on this instance, by state: waiting for hello, holding a session, or closing. */
  readonly sockets: Gauge<"state">;
  /** Frames in (hello, message, typing, received, ping) and out (welcome, ack, typing, reply, error, pong). */
  readonly messages: Counter<"direction" | "type">;
  /** From the inquiry's receipt to its reply leaving on the socket, by author (assistant, agent). */
  readonly replyLatency: Histogram<"author">;
  /** Hellos of a session opened before (a reconnect), and the replies they delivered that the socket had missed. */
  readonly resumes: Counter;
  readonly resumedReplies: Counter;
  readonly closes: Counter<"reason">;
  /** Replies the delivery consumer read, by outcome: appended to a mailbox, already there, or not for chat. */
  readonly mailbox: Counter<"outcome">;
  /** 1 while the delivery consumer is in its group (replies flow), else 0: an instance up but not delivering. */
  readonly deliveryJoined: Gauge;
}

/** Who a reply on the socket is from. */
export const REPLY_AUTHORS = ["assistant", "agent"] as const;

export function createChatMetrics(registry: Registry): ChatMetrics {
  const registers = [registry];
  const metrics: ChatMetrics = {
    sockets: new Gauge({ name: "switchboard_chat_sockets", help: "WebSockets open on this gateway instance, by state (hello: not yet authenticated; session: holding a session; closing: closed by the gateway, the client not yet gone)", labelNames: ["state"], registers }),
    messages: new Counter({ name: "switchboard_chat_messages_total", help: "Chat frames by direction (in, out) and type", labelNames: ["direction", "type"], registers }),
    replyLatency: new Histogram({
      name: "switchboard_chat_reply_latency_seconds",
      help: "From the inquiry's receipt to its reply being written to the customer's socket, by author (assistant, agent)",
      labelNames: ["author"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 1800],
      registers,
    }),
    resumes: new Counter({ name: "switchboard_chat_resumes_total", help: "Hellos that reopened a session opened before (reconnects, on any instance)", registers }),
    resumedReplies: new Counter({ name: "switchboard_chat_resumed_replies_total", help: "Replies delivered on a resume that the customer had not yet received", registers }),
    closes: new Counter({ name: "switchboard_chat_closes_total", help: "Sockets closed, by reason", labelNames: ["reason"], registers }),
    deliveryJoined: new Gauge({ name: "switchboard_chat_delivery_joined", help: "1 while this instance's delivery consumer is in its group and reading the replies, else 0", registers }),
    mailbox: new Counter({ name: "switchboard_chat_mailbox_total", help: "Reply records the delivery consumer read, by outcome (appended, duplicate, not_chat, expired)", labelNames: ["outcome"], registers }),
  };
  // Each author's latency buckets at 0 from the start: the first reply is then a rate, not a new series.
  for (const author of REPLY_AUTHORS) metrics.replyLatency.zero({ author });
  return metrics;
}
