/**
 * Bounds how many records a processor works on at once. Processors whose work is mostly waiting
 * (a model batch, an Elasticsearch query) declare a concurrency above 1, so that the records of
 * a fetch overlap instead of queueing; with 1, records are processed strictly one at a time.
 * An exclusive task (a sink's flush) waits for the tasks before it and runs alone.
 */
export interface Limiter {
  run<T>(task: () => Promise<T>): Promise<T>;
  exclusive<T>(task: () => Promise<T>): Promise<T>;
}

interface Queued {
  readonly exclusive: boolean;
  readonly start: () => void;
}

export function createLimiter(concurrency: number): Limiter {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`concurrency must be a positive integer, got ${concurrency}`);
  let running = 0;
  let exclusiveRunning = false;
  const queue: Queued[] = [];

  // First in, first out: a task queued after an exclusive one waits for it, so a flush is never starved.
  const pump = (): void => {
    while (queue.length > 0 && !exclusiveRunning) {
      const head = queue[0]!;
      if (head.exclusive ? running > 0 : running >= concurrency) return;
      queue.shift();
      if (head.exclusive) exclusiveRunning = true;
      else running++;
      head.start();
    }
  };

  const enqueue = <T>(exclusive: boolean, task: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const finish = () => {
        if (exclusive) exclusiveRunning = false;
        else running--;
        pump();
      };
      queue.push({
        exclusive,
        start: () => void Promise.resolve().then(task).then(resolve, reject).finally(finish),
      });
      pump();
    });

  return {
    run: (task) => enqueue(false, task),
    exclusive: (task) => enqueue(true, task),
  };
}
