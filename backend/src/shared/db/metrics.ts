// CloudWatch Embedded Metric Format (DB_METRICS=emf): one JSON line per query() or withTransaction() call that
// CloudWatch Logs turns into metrics (queries, errors, retries, duration) with no agent and no API call.
import type { QueryEvent } from './hooks';

/** The namespace the metrics are published under. */
export const EMF_NAMESPACE = 'LambdaPg';

/** Builds one EMF line for an operation; `write` defaults to stdout, where Lambda ships it to CloudWatch Logs. */
export function createEmfReporter(functionName: string, write: (line: string) => void = (line) => process.stdout.write(`${line}\n`)) {
  return (event: QueryEvent): void => {
    write(JSON.stringify({
      _aws: {
        Timestamp: Date.now(),
        CloudWatchMetrics: [{
          Namespace: EMF_NAMESPACE,
          Dimensions: [['FunctionName', 'Operation']],
          Metrics: [
            { Name: 'Operations', Unit: 'Count' },
            { Name: 'Errors', Unit: 'Count' },
            { Name: 'Retries', Unit: 'Count' },
            { Name: 'Duration', Unit: 'Milliseconds' },
          ],
        }],
      },
      FunctionName: functionName,
      Operation: event.kind,
      Operations: 1,
      Errors: event.ok ? 0 : 1,
      Retries: Math.max(0, event.attempts - 1),
      Duration: event.durationMillis,
      ...(event.errorCode ? { errorCode: event.errorCode } : {}),
      ...(event.requestId ? { requestId: event.requestId } : {}),
    }));
  };
}
