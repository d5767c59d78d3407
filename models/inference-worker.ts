/**
 * An inference worker (models/inference-pool.ts): owns the ONNX sessions of the versions placed
 * on it and runs them, off the processor's event loop. The pool sends one request at a time.
 */
import { parentPort } from "node:worker_threads";
import type { InferenceSession } from "onnxruntime-node";
import { createSession, fromWire, readVerifiedFile, toWire } from "./onnx-session.js";
import type { WorkerReply, WorkerRequest } from "./inference-pool.js";

const port = parentPort;
if (!port) throw new Error("models/inference-worker.ts runs as a worker thread of the inference pool");

const sessions = new Map<number, InferenceSession>();

async function handle(request: WorkerRequest): Promise<{ reply: WorkerReply; transfer?: ArrayBuffer[] }> {
  switch (request.kind) {
    case "load": {
      // The worker reads and verifies the file itself: a replacement worker reloads from disk,
      // so the bytes it serves are always the bytes checked against the manifest.
      const bytes = await readVerifiedFile(request.directory, request.file, request.sha256);
      const session = await createSession(bytes, request.file);
      sessions.set(request.session, session);
      return {
        reply: {
          id: request.id,
          kind: "loaded",
          inputMetadata: session.inputMetadata,
          outputMetadata: session.outputMetadata,
        },
      };
    }
    case "run": {
      const session = sessions.get(request.session);
      if (!session) throw new Error(`no session ${request.session} in this inference worker`);
      const { tensors, transfer } = toWire(await session.run(fromWire(request.feeds)));
      return { reply: { id: request.id, kind: "ran", outputs: tensors }, transfer };
    }
    case "release": {
      const session = sessions.get(request.session);
      sessions.delete(request.session);
      await session?.release();
      return { reply: { id: request.id, kind: "released", held: sessions.size } };
    }
  }
}

port.on("message", (request: WorkerRequest) => {
  handle(request).then(
    ({ reply, transfer }) => {
      // A test's crash (InferencePoolHooks.crashWorker): the work is done, the answer never comes.
      if (request.exitBeforeReply) process.exit(70);
      port.postMessage(reply, transfer ?? []);
    },
    (error: unknown) =>
      port.postMessage({
        id: request.id,
        kind: "failed",
        error: error instanceof Error ? error.message : String(error),
      }),
  );
});
