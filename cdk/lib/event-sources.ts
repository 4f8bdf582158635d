import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantSendOnly, QueueOnFailure } from './destinations';
import { SecureQueue } from './secure-queue';

/** Event source mapping settings of an SQS source. */
export interface QueueSourceOptions {
  /** Records per batch. @default 10 */
  readonly batchSize?: number;
  /** How long Lambda gathers a batch (standard queue only). @default 1 second for standard, none for FIFO */
  readonly maxBatchingWindow?: Duration;
  /** Most concurrent router invocations this mapping drives (2–1000). @default 10 */
  readonly maxConcurrency?: number;
  /** Receives before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
}

/** Event source mapping settings of a stream source (Kinesis, DynamoDB Streams). */
export interface StreamSourceOptions {
  /** Records per batch. @default 100 */
  readonly batchSize?: number;
  /** How long Lambda gathers a batch. @default 1 second */
  readonly maxBatchingWindow?: Duration;
  /** Concurrent batches per shard (1–10); order is kept per partition key. @default 1 */
  readonly parallelizationFactor?: number;
  /** Retries of a failing batch before it goes to the on-failure destination (finite). @default 10 */
  readonly retryAttempts?: number;
  /** Records older than this are sent to the on-failure destination instead (finite). @default 12 hours */
  readonly maxRecordAge?: Duration;
}

export interface KinesisSourceOptions extends StreamSourceOptions {
  /** Provisioned shards. @default 1 */
  readonly shardCount?: number;
  /** Stream retention; must exceed maxRecordAge. @default 24 hours */
  readonly retentionPeriod?: Duration;
}

export interface EventSourcesProps {
  /** The function every event source mapping targets. */
  readonly router: lambda.IFunction;
  /** The router's timeout (sets the queues' visibility timeout). */
  readonly routerTimeout: Duration;
  readonly encryptionKey: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  readonly queue?: QueueSourceOptions;
  readonly fifoQueue?: QueueSourceOptions;
  readonly kinesis?: KinesisSourceOptions;
  readonly dynamodb?: StreamSourceOptions;
}

/**
 * The four event sources of the router, each with its mapping: an SQS standard queue and an
 * SQS FIFO queue (each with its own dead-letter queue), a Kinesis stream and a DynamoDB table
 * with a NEW_AND_OLD_IMAGES stream (a shared on-failure queue). Every mapping reports batch item
 * failures; the stream mappings bisect failing batches, retry a finite number of times and stop
 * at a maximum record age.
 */
export class EventSources extends Construct {
  public readonly queue: sqs.Queue;
  public readonly queueDeadLetters: sqs.Queue;
  public readonly fifoQueue: sqs.Queue;
  public readonly fifoDeadLetters: sqs.Queue;
  public readonly stream: kinesis.Stream;
  public readonly table: dynamodb.Table;
  /** Where the stream mappings send the description of batches they gave up on. */
  public readonly streamFailures: sqs.Queue;

  constructor(scope: Construct, id: string, props: EventSourcesProps) {
    super(scope, id);
    const key = props.encryptionKey;

    // --- SQS standard -------------------------------------------------------------------
    const queueOpts = props.queue ?? {};
    const queueWindow = queueOpts.maxBatchingWindow ?? Duration.seconds(1);
    this.queueDeadLetters = this.deadLetterQueue('QueueDeadLetters', key, props.removalPolicy, false);
    this.queue = new SecureQueue(this, 'Queue', {
      encryptionKey: key,
      visibilityTimeout: visibilityTimeout(props.routerTimeout, queueWindow),
      deadLetterQueue: { queue: this.queueDeadLetters, maxReceiveCount: maxReceiveCount(queueOpts) },
      removalPolicy: props.removalPolicy,
    }).queue;
    this.addQueueSource(
      props.router,
      new sources.SqsEventSource(this.queue, {
        batchSize: queueOpts.batchSize ?? 10,
        maxBatchingWindow: queueWindow,
        maxConcurrency: maxConcurrency(queueOpts),
        reportBatchItemFailures: true,
      }),
    );

    // --- SQS FIFO -----------------------------------------------------------------------
    const fifoOpts = props.fifoQueue ?? {};
    if (fifoOpts.maxBatchingWindow !== undefined) {
      throw new Error('fifoQueue.maxBatchingWindow: Lambda has no batching window for FIFO queues');
    }
    const fifoBatch = fifoOpts.batchSize ?? 10;
    if (!Number.isInteger(fifoBatch) || fifoBatch < 1 || fifoBatch > 10) {
      throw new Error(`fifoQueue.batchSize must be 1–10, got ${fifoBatch}`);
    }
    this.fifoDeadLetters = this.deadLetterQueue('FifoDeadLetters', key, props.removalPolicy, true);
    this.fifoQueue = new SecureQueue(this, 'Fifo', {
      encryptionKey: key,
      fifo: true,
      visibilityTimeout: visibilityTimeout(props.routerTimeout, Duration.seconds(0)),
      deadLetterQueue: { queue: this.fifoDeadLetters, maxReceiveCount: maxReceiveCount(fifoOpts) },
      removalPolicy: props.removalPolicy,
    }).queue;
    this.addQueueSource(
      props.router,
      new sources.SqsEventSource(this.fifoQueue, {
        batchSize: fifoBatch,
        maxConcurrency: maxConcurrency(fifoOpts),
        reportBatchItemFailures: true,
      }),
    );

    // --- streams: shared on-failure destination ------------------------------------------
    this.streamFailures = new SecureQueue(this, 'StreamFailures', {
      encryptionKey: key,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    }).queue;
    // The stream mappings send with the router's role.
    grantSendOnly(props.router, 'StreamFailures', this.streamFailures, key);
    Validations.of(this.streamFailures).acknowledge(
      {
        id: 'AwsSolutions-SQS3',
        reason:
          'On-failure destination of the Kinesis and DynamoDB mappings: it holds descriptions of discarded ' +
          'batches (shard, sequence numbers) for operators, so it is itself the dead-letter store. Its depth is alarmed.',
      },
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason:
          'On-failure destination of the stream mappings; a terminal store read by operators, so a redrive policy ' +
          'would only move its messages to another terminal queue. Its depth is alarmed.',
      },
    );

    // --- Kinesis --------------------------------------------------------------------------
    const kinesisOpts = props.kinesis ?? {};
    const retention = kinesisOpts.retentionPeriod ?? Duration.hours(24);
    this.stream = new kinesis.Stream(this, 'Stream', {
      shardCount: kinesisOpts.shardCount ?? 1,
      streamMode: kinesis.StreamMode.PROVISIONED,
      retentionPeriod: retention,
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: key,
      removalPolicy: props.removalPolicy,
    });
    Validations.of(this.stream).acknowledge({
      id: 'AwsSolutions-KDS3',
      reason:
        "The stream is encrypted with the stack's customer managed key (rotated yearly), like the queues and " +
        'the table. Under aws/kinesis any principal of the account allowed kinesis:GetRecords reads the records; ' +
        'under this key it also needs kms:Decrypt on it, granted per role, and the key policy is ours to tighten.',
    });
    const kinesisSettings = streamSettings('kinesis', kinesisOpts);
    if (kinesisSettings.maxRecordAge.toSeconds() >= retention.toSeconds()) {
      throw new Error('kinesis.maxRecordAge must be shorter than the stream retention, so discarded batches can still be read');
    }
    props.router.addEventSource(
      new sources.KinesisEventSource(this.stream, {
        ...kinesisSettings,
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        onFailure: new QueueOnFailure(this.streamFailures),
      }),
    );

    // --- DynamoDB -------------------------------------------------------------------------
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy: props.removalPolicy,
    });
    const dynamoSettings = streamSettings('dynamodb', props.dynamodb ?? {});
    if (dynamoSettings.maxRecordAge.toSeconds() >= 24 * 3600) {
      throw new Error('dynamodb.maxRecordAge must be shorter than the 24-hour stream retention');
    }
    props.router.addEventSource(
      new sources.DynamoEventSource(this.table, {
        ...dynamoSettings,
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        onFailure: new QueueOnFailure(this.streamFailures),
      }),
    );
  }

  /** Adds an SQS mapping; its failed messages go through the queue's redrive policy. */
  private addQueueSource(router: lambda.IFunction, source: sources.SqsEventSource): void {
    router.addEventSource(source);
    const mapping = router.node.children.find(
      (child) => child instanceof lambda.EventSourceMapping && child.eventSourceMappingId === source.eventSourceMappingId,
    );
    if (mapping === undefined) {
      throw new Error('the SQS event source mapping was not found under the router');
    }
    Validations.of(mapping).acknowledge({
      id: 'Serverless-LambdaEventSourceMappingDestination',
      reason:
        'Lambda supports no on-failure destination on SQS mappings: a message whose processing keeps failing ' +
        "moves to the queue's dead-letter queue through its redrive policy (maxReceiveCount), which is alarmed.",
    });
  }

  private deadLetterQueue(id: string, key: kms.IKey, removalPolicy: RemovalPolicy, fifo: boolean): sqs.Queue {
    const queue = new SecureQueue(this, id, {
      encryptionKey: key,
      fifo,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    }).queue;
    Validations.of(queue).acknowledge({
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself the dead-letter queue of a source queue (AwsSolutions-SQS3 recognises it as one); ' +
        'a dead-letter queue needs no redrive policy of its own. Its depth is alarmed.',
    });
    return queue;
  }
}

/**
 * AWS: a queue feeding a function needs a visibility timeout of at least six times the function
 * timeout plus the batching window, or messages reappear while a retried invocation still works.
 */
export function visibilityTimeout(functionTimeout: Duration, batchingWindow: Duration): Duration {
  return Duration.seconds(6 * functionTimeout.toSeconds() + batchingWindow.toSeconds());
}

function maxConcurrency(opts: QueueSourceOptions): number {
  const value = opts.maxConcurrency ?? 10;
  if (!Number.isInteger(value) || value < 2 || value > 1000) {
    throw new Error(`maxConcurrency must be 2–1000, got ${value}`);
  }
  return value;
}

function maxReceiveCount(opts: QueueSourceOptions): number {
  const value = opts.maxReceiveCount ?? 5;
  if (!Number.isInteger(value) || value < 1 || value > 1000) {
    throw new Error(`maxReceiveCount must be 1–1000, got ${value}`);
  }
  return value;
}

interface StreamSettings {
  readonly batchSize: number;
  readonly maxBatchingWindow: Duration;
  readonly parallelizationFactor: number;
  readonly retryAttempts: number;
  readonly maxRecordAge: Duration;
  readonly bisectBatchOnError: true;
  readonly reportBatchItemFailures: true;
}

function streamSettings(name: string, opts: StreamSourceOptions): StreamSettings {
  const retryAttempts = opts.retryAttempts ?? 10;
  if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 10000) {
    throw new Error(`${name}.retryAttempts must be a finite number of retries (0–10000), got ${retryAttempts}`);
  }
  const maxRecordAge = opts.maxRecordAge ?? Duration.hours(12);
  const ageSeconds = maxRecordAge.toSeconds();
  if (ageSeconds < 60 || ageSeconds > 7 * 24 * 3600) {
    throw new Error(`${name}.maxRecordAge must be between 60 seconds and 7 days (finite), got ${ageSeconds} s`);
  }
  return {
    batchSize: opts.batchSize ?? 100,
    maxBatchingWindow: opts.maxBatchingWindow ?? Duration.seconds(1),
    parallelizationFactor: opts.parallelizationFactor ?? 1,
    retryAttempts,
    maxRecordAge,
    bisectBatchOnError: true,
    reportBatchItemFailures: true,
  };
}
