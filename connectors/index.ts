import type { TriageConnectorName } from "../streams/topology.js";
import type { ConnectorFactory } from "./connector.js";

/**
 * The implementation of each declared connector, by name. Loaded on demand: a process runs one
 * connector and needs only its dependencies.
 */
const IMPLEMENTATIONS: { readonly [Name in TriageConnectorName]: () => Promise<ConnectorFactory> } = {
  api: async () => (await import("./api/index.js")).api,
  email: async () => (await import("./email/index.js")).email,
  chat: async () => (await import("./chat/index.js")).chat,
};

export async function connectorFactory(name: string): Promise<ConnectorFactory> {
  const load = (IMPLEMENTATIONS as Readonly<Record<string, () => Promise<ConnectorFactory>>>)[name];
  if (!load) throw new Error(`connector "${name}" is declared in the topology but has no implementation`);
  return load();
}
