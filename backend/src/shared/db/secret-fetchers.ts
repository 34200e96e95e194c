// The two ways to read a secret's SecretString: the Secrets Manager API through the AWS SDK (loaded on first use,
// with connect and request timeouts and a bound on the whole call, so that an endpoint that never answers cannot hang
// the shared fetch), or the AWS Parameters and Secrets Lambda Extension on localhost, which needs no SDK at all.
import { request } from 'node:http';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { DbConfig } from './config';
import { CredentialsError } from './errors';

/** A version stage the module reads. */
export type SecretStage = 'AWSCURRENT' | 'AWSPENDING';

/** Returns the SecretString of one stage of the configured secret. */
export type SecretFetcher = (stage: SecretStage) => Promise<string | undefined>;

const SDK_CONNECT_TIMEOUT_MILLIS = 2000;
const SDK_REQUEST_TIMEOUT_MILLIS = 5000;
/** The whole send(), the SDK's own retries included: its request timeout alone only logs a warning in this version. */
const SDK_CALL_TIMEOUT_MILLIS = 10_000;
const EXTENSION_TIMEOUT_MILLIS = 5000;

function describeSdkError(err: unknown, secretId: string, stage: string): CredentialsError {
  const e = err as { name?: string; code?: string };
  const name = e?.code && (!e.name || e.name === 'Error') ? e.code : e?.name ?? 'Error';
  const why =
    name === 'ResourceNotFoundException' ? `Secrets Manager has no secret ${secretId} with stage ${stage}`
    : name === 'AccessDeniedException' ? `This role may not read secret ${secretId}: grant secretsmanager:GetSecretValue (and kms:Decrypt for a customer-managed key)`
    : name === 'DecryptionFailure' ? `Secrets Manager could not decrypt secret ${secretId}: grant kms:Decrypt on its key`
    : `Reading secret ${secretId} from Secrets Manager failed`;
  return new CredentialsError(`${why} (${name}).`, { cause: err });
}

/**
 * Reads through `@aws-sdk/client-secrets-manager` (or the injected client). Each call is aborted after
 * `callTimeoutMillis`: an endpoint that accepts the connection and never answers would otherwise hold the shared
 * fetch, and with it every caller of the sandbox, forever (and keep the grace period from ever starting).
 */
export function createSdkFetcher(config: DbConfig, callTimeoutMillis = SDK_CALL_TIMEOUT_MILLIS): SecretFetcher {
  let client: SecretsManagerClient | undefined = config.secretsManagerClient;
  const secretId = config.secretId as string;
  return async (stage) => {
    try {
      const sdk = await import('@aws-sdk/client-secrets-manager');
      client ??= new sdk.SecretsManagerClient({
        requestHandler: { connectionTimeout: SDK_CONNECT_TIMEOUT_MILLIS, requestTimeout: SDK_REQUEST_TIMEOUT_MILLIS, throwOnRequestTimeout: true },
      });
      const command = new sdk.GetSecretValueCommand({ SecretId: secretId, VersionStage: stage });
      const output = await client.send(command, { abortSignal: AbortSignal.timeout(callTimeoutMillis) });
      return output.SecretString;
    } catch (err) {
      throw describeSdkError(err, secretId, stage);
    }
  };
}

/**
 * Reads through the Lambda extension's HTTP API, authenticated with the sandbox's AWS_SESSION_TOKEN. The whole
 * exchange is bounded (a socket timeout alone would let a body that trickles in, or a connection that closes
 * mid-answer, hold the shared fetch, and with it every caller in the sandbox, forever); it settles once.
 */
export function createExtensionFetcher(config: DbConfig, timeoutMillis = EXTENSION_TIMEOUT_MILLIS): SecretFetcher {
  const secretId = config.secretId as string;
  return (stage) =>
    new Promise((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        outcome();
      };
      const fail = (why: string, cause?: unknown) =>
        settle(() => reject(new CredentialsError(`Reading secret ${secretId} (${stage}) through the Parameters and Secrets Lambda Extension on port ${config.extensionPort} failed: ${why}.`, { cause })));
      if (!config.extensionToken) {
        fail('AWS_SESSION_TOKEN is not set, and the extension requires it');
        return;
      }
      const path = `/secretsmanager/get?secretId=${encodeURIComponent(secretId)}&versionStage=${stage}`;
      const req = request({ host: 'localhost', port: config.extensionPort, path, headers: { 'X-Aws-Parameters-Secrets-Token': config.extensionToken } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', (err) => fail('the answer was cut off', err));
        // A connection closed mid-answer ends neither the response nor the request with an event of its own.
        res.on('close', () => {
          if (!res.complete) fail('the answer was cut off');
        });
        res.on('end', () => {
          // The body of an error answer is not quoted: only the status names the problem.
          if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
          let secretString: string | undefined;
          try {
            secretString = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { SecretString?: string }).SecretString;
          } catch {
            return fail('the answer was not JSON');
          }
          settle(() => resolve(secretString));
        });
      });
      timer = setTimeout(() => {
        fail(`no complete answer within ${timeoutMillis} ms`);
        req.destroy();
      }, timeoutMillis);
      req.on('error', (err) => fail((err as NodeJS.ErrnoException).code ?? err.message, err));
      req.end();
    });
}
