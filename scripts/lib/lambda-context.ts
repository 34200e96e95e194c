// A fake Lambda context for local invocations and tests: a fresh awsRequestId and a getRemainingTimeInMillis()
// that counts down from the configured timeout, so the db module's deadlines behave as they would in Lambda.
// The callback-era methods (done, succeed, fail) throw: handlers here are async.
import crypto from 'node:crypto';
import type { Context } from 'aws-lambda';

/** Options for {@link createLambdaContext}. */
export interface LambdaContextOptions {
  /** (Default: 'local') */
  readonly functionName?: string;
  /** The function timeout the countdown starts from. (Default: 30000) */
  readonly timeoutMillis?: number;
  /** (Default: 1024) */
  readonly memoryLimitInMB?: number;
}

/** A Context whose remaining time runs down in real time from `timeoutMillis`. */
export function createLambdaContext(options: LambdaContextOptions = {}): Context {
  const functionName = options.functionName ?? 'local';
  const timeoutMillis = options.timeoutMillis ?? 30_000;
  const startedAt = Date.now();
  const unsupported = (): never => {
    throw new Error('This fake context supports async handlers only.');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}`,
    memoryLimitInMB: String(options.memoryLimitInMB ?? 1024),
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMillis - (Date.now() - startedAt)),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}
