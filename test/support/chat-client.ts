import { randomUUID } from "node:crypto";
import WebSocket from "ws";

/** A frame the gateway sent, as JSON. */
export type ServerFrame = { readonly type: string } & Record<string, unknown>;

/**
 * A test's chat client over a real WebSocket: every frame the gateway sends is kept, in order;
 * waits are on what arrived, never on time alone.
 */
export class ChatClient {
  readonly frames: ServerFrame[] = [];
  readonly closed: Promise<{ readonly code: number; readonly reason: string }>;
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: WebSocket) {
    socket.on("message", (data) => {
      this.frames.push(JSON.parse(data.toString()) as ServerFrame);
      this.wake();
    });
    this.closed = new Promise((resolve) => socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() })));
    void this.closed.then(() => this.wake());
    socket.on("error", () => undefined);
  }

  static async open(url: string): Promise<ChatClient> {
    const socket = new WebSocket(url);
    const client = new ChatClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return client;
  }

  /** Opens a socket and says hello; resolves with the welcome. */
  static async session(url: string, token: string, resumeAfter: string | null = null): Promise<ChatClient> {
    const client = await ChatClient.open(url);
    client.send({ type: "hello", token, resume_after: resumeAfter });
    await client.next((f) => f.type === "welcome", 10_000);
    return client;
  }

  private wake() {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Sends a message; resolves with its client id. */
  message(text: string, clientId: string = randomUUID()): string {
    this.send({ type: "message", client_id: clientId, text });
    return clientId;
  }

  /** The first frame (from the start) that passes `match`, waiting up to `timeoutMs` for it. */
  async next(match: (frame: ServerFrame) => boolean, timeoutMs = 15_000): Promise<ServerFrame> {
    const found = await this.until(() => this.frames.find(match), timeoutMs);
    if (!found) throw new Error(`no matching frame within ${timeoutMs} ms; got: ${JSON.stringify(this.frames).slice(0, 1_000)}`);
    return found;
  }

  /** Waits until `probe` answers something, the socket closes, or the time is up. */
  async until<T>(probe: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = probe();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0 || this.socket.readyState === WebSocket.CLOSED) return probe();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  replies(): ServerFrame[] {
    return this.frames.filter((f) => f.type === "reply");
  }

  close(): void {
    this.socket.close();
  }
}
