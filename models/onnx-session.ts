import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { InferenceSession, Tensor } from "onnxruntime-node";

/**
 * What the main thread and the inference workers share: the session options, the verified read
 * of a version's file and the session creation, so that a version loads, and fails to load, the
 * same way in either; and the plain form a tensor crosses between threads in.
 */

export function sessionOptions(): InferenceSession.SessionOptions {
  // Processors share a small machine: one thread per session (SWITCHBOARD_INFERENCE_THREADS sets how many run at once).
  return {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    logSeverityLevel: 3,
  };
}

/** Reads `name` from `directory` and checks its sha256; the bytes returned are the bytes checked. */
export async function readVerifiedFile(directory: string, name: string, expected: string): Promise<Buffer> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path.join(directory, name));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === "ENOENT" ? `${name} is missing` : `${name} cannot be read (${(error as Error).message})`, {
      cause: error,
    });
  }
  const actual = createHash("sha256").update(bytes).digest("hex");
  if (actual !== expected)
    throw new Error(`${name} has sha256 ${actual}, the manifest says ${expected} (corrupt or replaced)`);
  return bytes;
}

export async function createSession(bytes: Uint8Array, file: string): Promise<InferenceSession> {
  try {
    return await InferenceSession.create(bytes, sessionOptions());
  } catch (error) {
    throw new Error(`onnxruntime cannot load ${file} (${(error as Error).message})`, { cause: error });
  }
}

/** A tensor as it crosses between threads: numeric data as a typed array (transferable), strings as an array. */
export interface WireTensor {
  readonly type: Tensor.Type;
  readonly dims: readonly number[];
  readonly data: Tensor.DataType;
}
export type WireTensors = Record<string, WireTensor>;

export function toWire(tensors: Readonly<Record<string, Tensor>>): { tensors: WireTensors; transfer: ArrayBuffer[] } {
  const wire: WireTensors = {};
  const transfer = new Set<ArrayBuffer>();
  for (const [name, tensor] of Object.entries(tensors)) {
    let data = tensor.data;
    if (ArrayBuffer.isView(data)) {
      // Only a buffer the tensor owns whole can be handed over; a view into a shared one is copied.
      const owned =
        data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer;
      if (!owned || transfer.has(data.buffer as ArrayBuffer)) data = data.slice();
      transfer.add(data.buffer as ArrayBuffer);
    }
    wire[name] = { type: tensor.type, dims: tensor.dims, data };
  }
  return { tensors: wire, transfer: [...transfer] };
}

export function fromWire(wire: WireTensors): Record<string, Tensor> {
  return Object.fromEntries(
    Object.entries(wire).map(([name, { type, dims, data }]) => [
      name,
      new Tensor(type, data as Tensor.DataTypeMap[typeof type], dims),
    ]),
  );
}
