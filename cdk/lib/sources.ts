// The event source mappings a `TenantRouter` puts on itself: their options (with today's safe
// defaults), the checks a mapping's settings must pass (Lambda's limits, a queue's visibility
// timeout against the router's timeout, a stream's retention against the maximum record age),
// and the CDK event sources that create them. Every mapping reports batch item failures
// (FunctionResponseTypes ReportBatchItemFailures): without it Lambda would delete or checkpoint
// past the records the router reports for redelivery. Also each source's retry horizon: how long
// after a record arrives the source may still deliver it again, as far as CDK can see.
import { Annotations, Duration, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { FailureDestination } from './destinations';

/** Options of `TenantRouter.addSqsSource`. */
export interface SqsSourceOptions {
  /**
   * A short name for this source: the prefix of its alarms' construct ids and its label on the
   * dashboard (e.g. `Orders` gives `OrdersMessageAge`).
   * @default the queue's construct id
   */
  readonly name?: string;
  /** Records per batch (FIFO: 1–10; standard: 1–10000, above 10 with a batching window). @default 10 */
  readonly batchSize?: number;
  /** How long Lambda gathers a batch; standard queues only (FIFO queues have none). @default 1 second (standard), none (FIFO) */
  readonly maxBatchingWindow?: Duration;
  /** Most concurrent router invocations this mapping drives (2–1000). @default 10 */
  readonly maxConcurrency?: number;
  /** Event filtering: `lambda.FilterCriteria.filter({...})` patterns; records not matching are dropped by Lambda. @default none */
  readonly filters?: { [key: string]: string }[];
}

/** Options of `TenantRouter.addKinesisSource` and `TenantRouter.addDynamoDbSource`. */
export interface StreamSourceOptions {
  /** Where a new mapping starts reading (TRIM_HORIZON, LATEST, or AT_TIMESTAMP for Kinesis). */
  readonly startingPosition: lambda.StartingPosition;
  /** For AT_TIMESTAMP (Kinesis): the time to start from, in Unix seconds. @default none */
  readonly startingPositionTimestamp?: number;
  /** A short name for this source (alarm ids, dashboard labels). @default the stream's or table's construct id */
  readonly name?: string;
  /** Records per batch (1–10000; DynamoDB 1–10000, Kinesis 1–10000). @default 100 */
  readonly batchSize?: number;
  /** How long Lambda gathers a batch. @default 1 second */
  readonly maxBatchingWindow?: Duration;
  /** Concurrent batches per shard (1–10); the router keeps order per partition key. @default 1 */
  readonly parallelizationFactor?: number;
  /** Split a failing batch in two and retry the halves, isolating a bad record. @default true */
  readonly bisectBatchOnError?: boolean;
  /** Retries of a failing batch before it goes to the on-failure destination (finite, 0–10000). @default 10 */
  readonly retryAttempts?: number;
  /** Records older than this go to the on-failure destination instead (60 seconds to 7 days, below the stream's retention). @default 12 hours */
  readonly maxRecordAge?: Duration;
  /**
   * Where Lambda sends a batch it gave up on: a queue (a description of the batch) or a bucket
   * (the whole batch).
   * @default the router's stream-failures queue (created once, encrypted, alarmed)
   */
  readonly onFailure?: FailureDestination;
  /** Event filtering patterns (`lambda.FilterCriteria.filter({...})`). @default none */
  readonly filters?: { [key: string]: string }[];
}

/**
 * AWS: a queue feeding a function needs a visibility timeout of at least six times the function
 * timeout plus the batching window, or messages reappear while a retried invocation still works.
 */
export function visibilityTimeout(functionTimeout: Duration, batchingWindow: Duration): Duration {
  return Duration.seconds(6 * functionTimeout.toSeconds() + batchingWindow.toSeconds());
}

/**
 * The batching window of an SQS mapping: none for a FIFO queue (Lambda has none; giving one is
 * refused, the error prefixed with `where`), else the given one or 1 second.
 */
export function sqsBatchingWindow(where: string, fifo: boolean | undefined, maxBatchingWindow: Duration | undefined): Duration | undefined {
  if (fifo) {
    if (maxBatchingWindow !== undefined) {
      throw new Error(`${where}: maxBatchingWindow: Lambda has no batching window for FIFO queues`);
    }
    return undefined;
  }
  return maxBatchingWindow ?? Duration.seconds(1);
}

/** The CDK event source of an SQS queue, checked against the queue and the router's timeout. */
export function sqsEventSource(scope: Construct, queue: sqs.IQueue, routerTimeout: Duration, options: SqsSourceOptions): eventSources.SqsEventSource {
  const fifo = queue.fifo;
  const batchSize = options.batchSize ?? 10;
  const window = sqsBatchingWindow('addSqsSource', fifo, options.maxBatchingWindow);
  if (fifo) {
    checkInteger('addSqsSource: batchSize (FIFO)', batchSize, 1, 10);
  } else {
    checkInteger('addSqsSource: batchSize', batchSize, 1, 10_000);
  }
  const maxConcurrency = options.maxConcurrency ?? 10;
  checkInteger('addSqsSource: maxConcurrency', maxConcurrency, 2, 1000);
  checkQueue(scope, queue, routerTimeout, window ?? Duration.seconds(0));
  return new eventSources.SqsEventSource(queue, {
    batchSize,
    maxBatchingWindow: window,
    maxConcurrency,
    reportBatchItemFailures: true,
    filters: options.filters,
  });
}

/**
 * A queue CDK can see (defined in this app) must hide a message for at least the router's
 * timeout (Lambda refuses the mapping otherwise), and should for six times it plus the window;
 * without a dead-letter queue a message that keeps failing comes back until its retention ends.
 */
function checkQueue(scope: Construct, queue: sqs.IQueue, routerTimeout: Duration, window: Duration): void {
  if (!(queue instanceof sqs.Queue)) {
    return;
  }
  const cfn = queue.node.defaultChild as sqs.CfnQueue;
  const visibility = cfn.visibilityTimeout ?? 30;
  if (!Token.isUnresolved(visibility) && !routerTimeout.isUnresolved()) {
    const recommended = visibilityTimeout(routerTimeout, window).toSeconds();
    if (visibility < routerTimeout.toSeconds()) {
      throw new Error(
        `addSqsSource: ${queue.node.path} hides messages for ${visibility} s, less than the router's timeout ` +
          `(${routerTimeout.toSeconds()} s), which Lambda refuses; give it visibilityTimeout: Duration.seconds(${recommended}) ` +
          '(6 × the router timeout + the batching window)',
      );
    }
    if (visibility < recommended) {
      Annotations.of(scope).addWarningV2('tenant-router:visibility-timeout',
        `${queue.node.path} hides messages for ${visibility} s; AWS recommends ${recommended} s (6 × the router timeout + ` +
          'the batching window), or a message may reappear while a retried invocation still works on it');
    }
  }
  if (queue.deadLetterQueue === undefined) {
    Annotations.of(scope).addWarningV2('tenant-router:no-dead-letter-queue',
      `${queue.node.path} has no dead-letter queue: a message that keeps failing is redelivered until its retention ends`);
  }
}

/** The maximum record age of a stream mapping when none is given. */
const DEFAULT_MAX_RECORD_AGE = Duration.hours(12);

/** How long SQS keeps a message when the queue sets no retention period. */
const SQS_DEFAULT_RETENTION = Duration.days(4);

/**
 * How long after a record arrives its source may still deliver it to the router again, and what
 * sets that (for the warning that names it).
 */
export interface RetryHorizon {
  /** The horizon, in seconds. */
  readonly seconds: number;
  /** What sets it, e.g. `Consumer/Orders keeps a message for 345600 s (its retention period)`. */
  readonly what: string;
}

/**
 * An SQS queue redelivers a message that keeps failing until its retention period ends (its
 * dead-letter queue may take it earlier; a redrive from there brings it back): the retention of a
 * queue defined in the app (4 days unless set), undefined for an imported queue or a token.
 */
export function sqsRetryHorizon(queue: sqs.IQueue): RetryHorizon | undefined {
  if (!(queue instanceof sqs.Queue)) {
    return undefined;
  }
  const retention = (queue.node.defaultChild as sqs.CfnQueue).messageRetentionPeriod ?? SQS_DEFAULT_RETENTION.toSeconds();
  if (Token.isUnresolved(retention)) {
    return undefined;
  }
  return { seconds: retention, what: `${queue.node.path} keeps a message for ${retention} s (its retention period)` };
}

/**
 * A stream mapping retries a record until it is `maxRecordAge` old: the mappings made here always
 * have finite retries and a finite maximum record age (below the stream's retention; CDK refuses
 * a token for it), so that age is the horizon.
 */
export function streamRetryHorizon(source: string, options: StreamSourceOptions): RetryHorizon | undefined {
  const maxRecordAge = options.maxRecordAge ?? DEFAULT_MAX_RECORD_AGE;
  if (maxRecordAge.isUnresolved()) {
    return undefined;
  }
  const age = maxRecordAge.toSeconds();
  return { seconds: age, what: `the mapping of ${source} delivers a record until it is ${age} s old (maxRecordAge)` };
}

/** The retention of a Kinesis stream defined in the app (24 hours unless set); undefined for an imported one or a token. */
function kinesisRetention(stream: kinesis.IStream): Duration | undefined {
  if (!(stream instanceof kinesis.Stream)) {
    return undefined;
  }
  const hours = (stream.node.defaultChild as kinesis.CfnStream).retentionPeriodHours ?? 24;
  return Token.isUnresolved(hours) ? undefined : Duration.hours(hours);
}

/** The settings a stream mapping shares between Kinesis and DynamoDB, checked. */
function streamSettings(name: string, options: StreamSourceOptions, retention: Duration | undefined, onFailure: FailureDestination) {
  const retryAttempts = options.retryAttempts ?? 10;
  checkInteger(`${name}: retryAttempts (finite)`, retryAttempts, 0, 10_000);
  const maxRecordAge = options.maxRecordAge ?? DEFAULT_MAX_RECORD_AGE;
  if (!maxRecordAge.isUnresolved()) {
    const ageSeconds = maxRecordAge.toSeconds();
    if (ageSeconds < 60 || ageSeconds > 7 * 24 * 3600) {
      throw new Error(`${name}: maxRecordAge must be between 60 seconds and 7 days (finite), got ${ageSeconds} s`);
    }
    if (retention !== undefined && ageSeconds >= retention.toSeconds()) {
      throw new Error(
        `${name}: maxRecordAge (${ageSeconds} s) must be shorter than the stream's retention (${retention.toSeconds()} s), ` +
          'so the records of a discarded batch can still be read',
      );
    }
  }
  const batchSize = options.batchSize ?? 100;
  checkInteger(`${name}: batchSize`, batchSize, 1, 10_000);
  const parallelizationFactor = options.parallelizationFactor ?? 1;
  checkInteger(`${name}: parallelizationFactor`, parallelizationFactor, 1, 10);
  return {
    startingPosition: options.startingPosition,
    batchSize,
    maxBatchingWindow: options.maxBatchingWindow ?? Duration.seconds(1),
    parallelizationFactor,
    retryAttempts,
    maxRecordAge,
    bisectBatchOnError: options.bisectBatchOnError ?? true,
    reportBatchItemFailures: true,
    onFailure,
    filters: options.filters,
  };
}

/** The CDK event source of a Kinesis stream; its retention is checked when CDK can see the stream. */
export function kinesisEventSource(stream: kinesis.IStream, options: StreamSourceOptions, onFailure: FailureDestination): eventSources.KinesisEventSource {
  return new eventSources.KinesisEventSource(stream, {
    ...streamSettings('addKinesisSource', options, kinesisRetention(stream), onFailure),
    startingPositionTimestamp: options.startingPositionTimestamp,
  });
}

/** DynamoDB Streams keep records for 24 hours. */
const DYNAMODB_STREAM_RETENTION = Duration.hours(24);

/** The CDK event source of a DynamoDB table's stream (the table must have one, and CDK must know its ARN). */
export function dynamoEventSource(table: dynamodb.ITable, options: StreamSourceOptions, onFailure: FailureDestination): eventSources.DynamoEventSource {
  if (table.tableStreamArn === undefined) {
    throw new Error(
      `addDynamoDbSource: ${table.node.path} has no stream CDK knows of: give the table a stream ` +
        '(stream: StreamViewType.NEW_AND_OLD_IMAGES), or import it with Table.fromTableAttributes({ tableName, tableStreamArn })',
    );
  }
  return new eventSources.DynamoEventSource(table, streamSettings('addDynamoDbSource', options, DYNAMODB_STREAM_RETENTION, onFailure));
}

/** A whole number from `min` to `max`, or the error `<name> must be <min>–<max>, got <value>`; a CDK token is passed through. */
export function checkInteger(name: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) {
    return;
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${name} must be ${min}–${max}, got ${value}`);
  }
}
