import { mkdir, open, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";

/**
 * Runs `task` while holding `<home>/run/stack.lock`, so that two `stack up` (or a test run's
 * setup and a hand-started one) never build or start the same service at once: two Maven builds
 * writing one build directory broke each other. A lock whose holder died is taken over.
 */
export function withStackLock<T>(home: string, log: Logger, task: () => Promise<T>, pollMs = 500): Promise<T> {
  return withFileLock(path.join(home, "run", "stack.lock"), log, "another process that is bringing the stack up or down", task, pollMs);
}

/**
 * Runs `task` while holding the lock file `file` (created exclusively, holding this process's
 * pid); waits while another live process holds it, saying once what it waits for.
 */
export async function withFileLock<T>(file: string, log: Logger, waitingFor: string, task: () => Promise<T>, pollMs = 500): Promise<T> {
  await mkdir(path.dirname(file), { recursive: true });
  let reported = false;
  for (;;) {
    try {
      const handle = await open(file, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    const holder = Number((await readFile(file, "utf8").catch(() => "")).trim());
    if (!Number.isInteger(holder) || holder <= 0 || !isAlive(holder)) {
      // Empty: the holder is between creating and writing it; give it one poll before judging.
      if (holder === 0) await sleep(pollMs);
      const again = Number((await readFile(file, "utf8").catch(() => "")).trim());
      if (again === holder) await rm(file, { force: true });
      continue;
    }
    if (!reported) {
      log.info({ holder, lock: file }, `waiting for ${waitingFor}`);
      reported = true;
    }
    await sleep(pollMs);
  }
  try {
    return await task();
  } finally {
    await rm(file, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive, but another user's.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
