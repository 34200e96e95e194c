// A fault-injection TCP proxy for integration tests: sits between pg and PostgreSQL on 127.0.0.1 and can reset
// connections, stall the network, refuse connections, or cut a connection at the exact message a hook picks.
// Hooks see plaintext only, so tests that use them connect with TLS off.
import net, { type AddressInfo } from 'node:net';

/** What a data hook wants done with the chunk it was shown. */
export type ProxyVerdict = 'forward' | 'drop-connection' | 'forward-then-drop';

/** Inspects one chunk travelling in one direction; chunks follow TCP reads, so one may hold several messages. */
export type ProxyDataHook = (chunk: Buffer) => ProxyVerdict;

/** A running proxy and its faults. */
export interface TcpProxy {
  /** Port on 127.0.0.1 to connect to instead of the target's. */
  readonly port: number;
  /** Live client connections. */
  readonly connections: number;
  /** Aborts every live connection with a TCP RST on both sides. */
  resetAll(): void;
  /**
   * While on, the network stalls: connections are still accepted but no byte moves either way (the bytes wait in
   * TCP buffers, not dropped), so a client only notices through its own timeouts. Off: everything flows again.
   */
  blackhole(on: boolean): void;
  /** While on, the proxy stops listening, so connecting fails with ECONNREFUSED; live connections keep working. */
  refuse(on: boolean): Promise<void>;
  /**
   * Shows every client-to-server chunk to `hook`. 'drop-connection' discards it and resets both sides;
   * 'forward-then-drop' delivers it with a FIN after it (so the server still reads it) and resets the client.
   */
  onClientData(hook: ProxyDataHook | null): void;
  /** The same for server-to-client chunks, e.g. to lose the reply to a COMMIT the server has already performed. */
  onServerData(hook: ProxyDataHook | null): void;
  /** Resets every connection and stops listening. */
  close(): Promise<void>;
}

interface ConnectionPair {
  readonly client: net.Socket;
  readonly server: net.Socket;
}

/** Starts a proxy on 127.0.0.1 (a free port) that forwards to `target`. */
export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<ConnectionPair>();
  let stalled = false;
  let clientHook: ProxyDataHook | null = null;
  let serverHook: ProxyDataHook | null = null;

  const reset = (pair: ConnectionPair): void => {
    pairs.delete(pair);
    for (const socket of [pair.client, pair.server]) if (!socket.destroyed) socket.resetAndDestroy();
  };
  const pipe = (pair: ConnectionPair, from: net.Socket, to: net.Socket, hook: () => ProxyDataHook | null): void => {
    from.on('data', (chunk: Buffer) => {
      const verdict = hook()?.(chunk) ?? 'forward';
      if (verdict === 'drop-connection') return reset(pair);
      if (verdict === 'forward-then-drop') {
        pairs.delete(pair);
        from.resetAndDestroy();
        to.removeAllListeners('data').on('data', () => undefined); // whatever the receiver answers is lost
        return void to.end(chunk); // FIN, not RST: an RST could make the receiver discard the chunk unread
      }
      // Backpressure, so that a stalled reader holds the writer back instead of growing this process's memory.
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => stalled || from.resume());
      }
    });
    from.on('end', () => to.end());
    from.on('close', () => {
      // A clean FIN was passed on by 'end' and lets the other side finish; a reset or error is passed on as an RST.
      if (pairs.delete(pair) && !from.readableEnded && !to.destroyed) to.resetAndDestroy();
    });
  };
  const handleConnection = (client: net.Socket): void => {
    client.on('error', () => undefined); // resets are what this proxy is for
    const server = net.connect(target.port, target.host);
    server.on('error', () => undefined);
    const pair: ConnectionPair = { client, server };
    pairs.add(pair);
    pipe(pair, client, server, () => clientHook);
    pipe(pair, server, client, () => serverHook);
    if (stalled) for (const socket of [client, server]) socket.pause();
  };

  const listen = async (port: number): Promise<net.Server> => {
    const listener = net.createServer(handleConnection);
    await new Promise<void>((resolve, reject) => listener.once('error', reject).listen(port, '127.0.0.1', resolve));
    return listener;
  };
  let listener: net.Server | null = await listen(0);
  const { port } = listener.address() as AddressInfo;
  const stopListening = (): void => {
    // Not awaited: close() calls back only once every connection has ended, but stops listening at once.
    listener?.close();
    listener = null;
  };

  return {
    port,
    get connections() {
      return pairs.size;
    },
    resetAll() {
      for (const pair of [...pairs]) reset(pair);
    },
    blackhole(on) {
      stalled = on;
      for (const pair of pairs) {
        for (const socket of [pair.client, pair.server]) {
          if (on) socket.pause();
          else socket.resume();
        }
      }
    },
    async refuse(on) {
      if (on) stopListening();
      else listener ??= await listen(port);
    },
    onClientData(hook) {
      clientHook = hook;
    },
    onServerData(hook) {
      serverHook = hook;
    },
    async close() {
      stopListening();
      for (const pair of [...pairs]) reset(pair);
    },
  };
}
