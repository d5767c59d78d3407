// Loaded into the chat gateway by `npm run bench:chat` only (NODE_OPTIONS="--expose-gc --import …"):
// SIGUSR2 collects the garbage, so that the benchmark reads the memory the sockets hold rather
// than what the handshakes left for a collection that an idle process may never run.
globalThis.process.on("SIGUSR2", () => globalThis.gc?.());
