// IAM database authentication (DB_AUTH=iam): every new connection gets a signed token as its password. Tokens live
// 15 minutes; one is reused for 10, fetched single-flight, and signed by @aws-sdk/rds-signer (loaded on first use)
// or an injected signer. `npm run build` puts a stand-in that fails to load in its place unless built with --iam.
import type { DbConfig, IamTokenSigner } from './config';
import type { CredentialsProvider } from './credentials';
import { CredentialsError } from './errors';
import { DbCredentials, makeCredentials } from './secret-format';
import { SingleFlight } from './single-flight';

/** A token is reused for this long; RDS accepts it for 15 minutes, so a connection opened late still has margin. */
export const IAM_TOKEN_REUSE_MILLIS = 10 * 60_000;

const SIGNER_PACKAGE = '@aws-sdk/rds-signer';

/**
 * True when `err` says @aws-sdk/rds-signer itself cannot be found (CommonJS `Cannot find module '…'`, ESM `Cannot
 * find package '…'`). Only the first line counts: a dependency missing *inside* the package names it in the require
 * stack below, and that is a broken install, not a bundle built without --iam.
 */
function isSignerMissing(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (code !== 'MODULE_NOT_FOUND' && code !== 'ERR_MODULE_NOT_FOUND') return false;
  return typeof message === 'string' && message.split('\n', 1)[0].includes(`'${SIGNER_PACKAGE}'`);
}

const defaultSigner: IamTokenSigner = async ({ hostname, port, username, region }) => {
  let Signer: typeof import('@aws-sdk/rds-signer').Signer;
  try {
    ({ Signer } = await import('@aws-sdk/rds-signer'));
  } catch (err) {
    if (!isSignerMissing(err)) throw err;
    // Not a ConnectionError and not retryable: the same bundle would fail the same way on every attempt.
    throw new CredentialsError(`DB_AUTH=iam needs ${SIGNER_PACKAGE}, which this bundle does not contain; rebuild with \`npm run build -- --iam\` (or pass an iamTokenSigner).`, { cause: err });
  }
  return new Signer({ hostname, port, username, region }).getAuthToken();
};

/** Signs IAM authentication tokens for the configured user, host and port. */
export class IamCredentials implements CredentialsProvider {
  readonly description: string;
  private entry?: { credentials: DbCredentials; expiresAt: number };
  private readonly flight = new SingleFlight<DbCredentials>();
  private readonly identity: Omit<DbCredentials, 'password'>;
  /** Bumped by clear(): a signature that started before it does not fill the cache. */
  private generation = 0;

  constructor(
    private readonly config: DbConfig,
    private readonly now: () => number = () => Date.now(),
  ) {
    const url = config.urlCredentials;
    const user = (config.user ?? url?.user) as string;
    const host = (config.host ?? url?.host) as string;
    this.identity = { user, host, port: config.port ?? url?.port ?? 5432, database: config.database ?? url?.database ?? 'postgres', source: `IAM token for ${user}@${host}` };
    this.description = this.identity.source;
  }

  peek(): DbCredentials | undefined {
    return this.entry && this.now() < this.entry.expiresAt ? this.entry.credentials : undefined;
  }

  get(): Promise<DbCredentials> {
    const fresh = this.peek();
    if (fresh) return Promise.resolve(fresh);
    return this.flight.run(() => this.sign());
  }

  /**
   * A rejected token is not retried as is: sign a new one (the role may have just been granted rds_iam). A rejection
   * of an older token, arriving after a newer one was signed (or while one is being signed), keeps the newer one.
   */
  refreshAfterRejection(rejected: DbCredentials): Promise<DbCredentials> {
    if (this.flight.pending) return this.flight.pending;
    if (this.entry && this.entry.credentials.password !== rejected.password) return this.get();
    this.entry = undefined;
    return this.get();
  }

  clear(): void {
    this.entry = undefined;
    this.flight.clear();
    this.generation++;
  }

  private async sign(): Promise<DbCredentials> {
    const { user, host, port } = this.identity;
    const startedAt = this.now();
    const generation = this.generation;
    let token: string;
    try {
      token = await (this.config.iamTokenSigner ?? defaultSigner)({ hostname: host, port, username: user, region: this.config.region });
    } catch (err) {
      if (err instanceof CredentialsError && !this.config.iamTokenSigner) throw err; // the signer is missing from the bundle
      throw new CredentialsError(`Signing an IAM authentication token for ${user}@${host} failed (${(err as Error)?.name ?? 'Error'}); check AWS_REGION and the role's rds-db:connect permission.`, { cause: err });
    }
    const credentials = makeCredentials(this.identity, token);
    if (generation === this.generation) this.entry = { credentials, expiresAt: startedAt + IAM_TOKEN_REUSE_MILLIS };
    return credentials;
  }
}
