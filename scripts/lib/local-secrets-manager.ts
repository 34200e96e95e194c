// A local AWS Secrets Manager for tests and `npm start`: GetSecretValue over the JSON 1.1 protocol (enough for the
// real @aws-sdk/client-secrets-manager) and the Lambda Parameters and Secrets Extension's HTTP API, with staging
// labels, injectable errors and latency, and a record of every call.
import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** The errors {@link LocalSecretsManager.failNext} and {@link LocalSecretsManager.setFailure} can inject. */
export type SecretsManagerErrorType =
  | 'ResourceNotFoundException'
  | 'ThrottlingException'
  | 'InternalServiceError'
  | 'AccessDeniedException';

/** Options for {@link startLocalSecretsManager}. */
export interface LocalSecretsManagerOptions {
  /** TCP port on 127.0.0.1. (Default: a free port) */
  readonly port?: number;
  /** Value the extension API requires in `X-Aws-Parameters-Secrets-Token`. (Default: 'local-session-token') */
  readonly extensionToken?: string;
  /** Region used in the ARNs it makes up. (Default: 'us-east-1') */
  readonly region?: string;
}

/** One GetSecretValue request, failed ones included. */
export interface SecretsManagerCall {
  readonly secretId: string;
  readonly versionStage: string | undefined;
  readonly versionId: string | undefined;
  readonly via: 'api' | 'extension';
}

/** A running local Secrets Manager and its control API. */
export interface LocalSecretsManager {
  /** Base URL for the SDK's `endpoint` or `AWS_ENDPOINT_URL_SECRETS_MANAGER`; the extension API is served here too. */
  readonly url: string;
  readonly port: number;
  readonly extensionToken: string;
  /** Every GetSecretValue call so far, oldest first, injected failures included (not ones refused for their token). */
  readonly calls: readonly SecretsManagerCall[];
  /** Adds a version carrying `stages`, moving those labels off older versions; returns its VersionId. */
  putSecretValue(secretId: string, secretString: string, stages?: readonly string[]): string;
  /** Finishes a rotation: AWSCURRENT moves to the AWSPENDING version and the old current becomes AWSPREVIOUS. */
  promotePending(secretId: string): void;
  /** Fails the next `count` requests with `errorType`. */
  failNext(count: number, errorType: SecretsManagerErrorType): void;
  /** Fails every request with `errorType` until called with null (an outage). */
  setFailure(errorType: SecretsManagerErrorType | null): void;
  /** Delays every response by `latencyMillis`. */
  setLatency(latencyMillis: number): void;
  /** Empties `calls` (the same array, so references to it stay valid). */
  resetCalls(): void;
  /** Stops the server, dropping kept-alive connections. */
  close(): Promise<void>;
}

interface SecretVersion {
  readonly versionId: string;
  readonly secretString: string;
  readonly createdDate: Date;
  readonly stages: Set<string>;
}

interface StoredSecret {
  readonly name: string;
  readonly arn: string;
  readonly versions: SecretVersion[];
}

class SecretsManagerError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = type === 'InternalServiceError' ? 500 : 400,
  ) {
    super(message);
    this.name = 'SecretsManagerError';
  }
}
const errorMessages: Record<SecretsManagerErrorType, string> = {
  ResourceNotFoundException: "Secrets Manager can't find the specified secret.",
  ThrottlingException: 'Rate exceeded',
  InternalServiceError: 'An error occurred on the server side.',
  AccessDeniedException: 'User is not authorized to perform: secretsmanager:GetSecretValue',
};

/** Starts the local Secrets Manager on 127.0.0.1, holding no secret until the first putSecretValue. */
export async function startLocalSecretsManager(
  options: LocalSecretsManagerOptions = {},
): Promise<LocalSecretsManager> {
  const extensionToken = options.extensionToken ?? 'local-session-token';
  const region = options.region ?? 'us-east-1';
  const secrets = new Map<string, StoredSecret>();
  const calls: SecretsManagerCall[] = [];
  let pendingFailures: { count: number; errorType: SecretsManagerErrorType } | null = null;
  let outage: SecretsManagerErrorType | null = null;
  let latencyMillis = 0;

  const lookup = (secretId: string): StoredSecret | undefined =>
    secrets.get(secretId) ?? [...secrets.values()].find((candidate) => candidate.arn === secretId);
  const find = (secretId: string): StoredSecret => {
    const secret = lookup(secretId);
    if (!secret) throw new SecretsManagerError('ResourceNotFoundException', errorMessages.ResourceNotFoundException);
    return secret;
  };
  const getSecretValue = (call: SecretsManagerCall): object => {
    calls.push(call);
    const injected = outage ?? (pendingFailures && pendingFailures.count > 0 ? pendingFailures.errorType : null);
    if (injected) {
      if (!outage && pendingFailures) pendingFailures.count -= 1;
      throw new SecretsManagerError(injected, errorMessages[injected]);
    }
    const secret = find(call.secretId);
    const stage = call.versionStage ?? (call.versionId ? undefined : 'AWSCURRENT');
    const version = secret.versions.find(
      (candidate) =>
        (call.versionId === undefined || candidate.versionId === call.versionId) &&
        (stage === undefined || candidate.stages.has(stage)),
    );
    if (!version) {
      const wanted = stage ? `staging label: ${stage}` : `VersionId: ${call.versionId}`;
      const message = `Secrets Manager can't find the secret value for ${wanted}`;
      throw new SecretsManagerError('ResourceNotFoundException', message);
    }
    return {
      ARN: secret.arn,
      Name: secret.name,
      VersionId: version.versionId,
      SecretString: version.secretString,
      VersionStages: [...version.stages],
      CreatedDate: version.createdDate.getTime() / 1000,
    };
  };

  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      setTimeout(() => {
        try {
          const call = readCall(request, Buffer.concat(chunks).toString('utf8'), extensionToken);
          send(response, 200, getSecretValue(call));
        } catch (error) {
          const { type, status, message } = error instanceof SecretsManagerError ? error : internalError(error);
          send(response, status, { __type: type, message }, { 'x-amzn-ErrorType': type });
        }
      }, latencyMillis);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    extensionToken,
    calls,
    putSecretValue(secretId, secretString, stages = ['AWSCURRENT']) {
      const secret = lookup(secretId) ?? createSecret(secretId, region);
      secrets.set(secret.name, secret);
      const versionId = crypto.randomUUID();
      const version: SecretVersion = { versionId, secretString, createdDate: new Date(), stages: new Set() };
      secret.versions.push(version);
      for (const stage of stages) moveStage(secret, stage, version);
      return version.versionId;
    },
    promotePending(secretId) {
      const secret = find(secretId);
      const pending = secret.versions.find((version) => version.stages.has('AWSPENDING'));
      if (!pending) throw new Error(`Secret ${secretId} has no AWSPENDING version`);
      pending.stages.delete('AWSPENDING');
      moveStage(secret, 'AWSCURRENT', pending);
    },
    failNext(count, errorType) {
      pendingFailures = { count, errorType };
    },
    setFailure(errorType) {
      outage = errorType;
    },
    setLatency(newLatencyMillis) {
      latencyMillis = newLatencyMillis;
    },
    resetCalls() {
      calls.length = 0;
    },
    async close() {
      server.closeAllConnections(); // the SDK keeps connections alive, which would hold close() open
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Moves `stage` onto `target` as Secrets Manager does: the version losing AWSCURRENT becomes AWSPREVIOUS. */
function moveStage(secret: StoredSecret, stage: string, target: SecretVersion): void {
  const holder = secret.versions.find((version) => version !== target && version.stages.has(stage));
  holder?.stages.delete(stage);
  target.stages.add(stage);
  if (stage === 'AWSCURRENT' && holder) moveStage(secret, 'AWSPREVIOUS', holder);
}

/** A secret put under an ARN keeps it (and answers to its name too); one put under a name gets a made-up ARN. */
function createSecret(secretId: string, region: string): StoredSecret {
  const arnName = /:secret:(.+)-[A-Za-z0-9]{6}$/.exec(secretId)?.[1];
  if (secretId.startsWith('arn:')) return { name: arnName ?? secretId, arn: secretId, versions: [] };
  const suffix = crypto.randomBytes(3).toString('hex');
  const arn = `arn:aws:secretsmanager:${region}:000000000000:secret:${secretId}-${suffix}`;
  return { name: secretId, arn, versions: [] };
}

/** Reads a GetSecretValue call from either API; throws the SecretsManagerError to answer with otherwise. */
function readCall(request: http.IncomingMessage, rawBody: string, extensionToken: string): SecretsManagerCall {
  const url = new URL(request.url ?? '/', 'http://localhost');
  if (request.method === 'GET' && url.pathname === '/secretsmanager/get') {
    const token = request.headers['x-aws-parameters-secrets-token'];
    if (token !== extensionToken) {
      const [problem, status] = token === undefined ? ['missing', 401] : ['invalid', 403];
      throw new SecretsManagerError('UnauthorizedException', `${problem} X-Aws-Parameters-Secrets-Token`, status);
    }
    const parameter = (name: string): string | undefined => url.searchParams.get(name) ?? undefined;
    const versionStage = parameter('versionStage');
    return { secretId: parameter('secretId') ?? '', versionStage, versionId: parameter('versionId'), via: 'extension' };
  }
  const target = request.headers['x-amz-target'];
  if (request.method !== 'POST' || target !== 'secretsmanager.GetSecretValue') {
    throw new SecretsManagerError('UnknownOperationException', `This local server only does GetSecretValue`);
  }
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(rawBody || '{}') as Record<string, unknown>;
  } catch (error) {
    throw new SecretsManagerError('SerializationException', `Malformed JSON body: ${internalError(error).message}`);
  }
  const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);
  const versionStage = text(body.VersionStage);
  return { secretId: text(body.SecretId) ?? '', versionStage, versionId: text(body.VersionId), via: 'api' };
}

function internalError(error: unknown): SecretsManagerError {
  return new SecretsManagerError('InternalServiceError', error instanceof Error ? error.message : String(error));
}

function send(response: http.ServerResponse, status: number, body: object, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-RequestId': crypto.randomUUID(),
    ...headers,
  });
  response.end(payload);
}
