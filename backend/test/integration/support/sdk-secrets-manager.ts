// A local Secrets Manager endpoint for the integration tests that read secrets through the real AWS SDK: the SDK of
// this process is pointed at it with dummy credentials (the endpoint does not check signatures).
import { startLocalSecretsManager, type LocalSecretsManager } from '../../../../scripts/lib/local-secrets-manager';

/** Starts the endpoint and points this process's AWS SDK at it; close it in afterAll. */
export async function startSdkSecretsManager(): Promise<LocalSecretsManager> {
  const secrets = await startLocalSecretsManager();
  Object.assign(process.env, { AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url, AWS_REGION: 'eu-west-1', AWS_ACCESS_KEY_ID: 'test', AWS_SECRET_ACCESS_KEY: 'test' });
  return secrets;
}
