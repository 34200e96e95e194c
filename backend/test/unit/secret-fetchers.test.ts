// The Secrets Manager read through the real AWS SDK against an endpoint that accepts connections and never answers:
// the call is aborted at its bound with a CredentialsError, so the shared fetch cannot hang a sandbox.
import net, { type AddressInfo } from 'node:net';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { resolveDbConfig } from '../../src/shared/db/config';
import { CredentialsError } from '../../src/shared/db/errors';
import { createSdkFetcher } from '../../src/shared/db/secret-fetchers';

describe('createSdkFetcher', () => {
  const sockets = new Set<net.Socket>();
  const silent = net.createServer((socket) => void sockets.add(socket.on('error', () => undefined)));

  beforeAll(() => new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve)));

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('gives up on an endpoint that never answers at its bound, with a CredentialsError naming the secret', async () => {
    const client = new SecretsManagerClient({
      endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`,
      region: 'us-east-1',
      credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    const fetch = createSdkFetcher(resolveDbConfig({ secretId: 'app/db', secretsManagerClient: client }, {}), 300);
    const startedAt = Date.now();

    const error = await fetch('AWSCURRENT').catch((e: unknown) => e);
    const millis = Date.now() - startedAt;

    expect(error).toBeInstanceOf(CredentialsError);
    expect((error as Error).message).toMatch(/^Reading secret app\/db from Secrets Manager failed \((AbortError|TimeoutError)\)\.$/);
    expect(millis).toBeGreaterThanOrEqual(250);
    expect(millis).toBeLessThan(3000);
    expect(sockets.size).toBeGreaterThan(0);
    client.destroy();
  });
});
