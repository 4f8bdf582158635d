// `SourceQueue`: an SQS source queue made for a `TenantRouter`: encrypted, TLS only, a
// dead-letter queue, and the visibility timeout the router's timeout needs. A standard one is what
// SQS fair queues work on: producers that set `MessageGroupId` to the tenant id on a standard
// queue let SQS keep one noisy tenant from delaying the others.
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { SecureQueue } from './secure-queue';
import { checkInteger, sqsBatchingWindow } from './sources';
import { TenantRouter } from './tenant-router';

/** Properties of a {@link SourceQueue}. */
export interface SourceQueueProps {
  /** The router the queue feeds: its timeout sets the visibility timeout, its key encrypts the queue by default. */
  readonly router: TenantRouter;
  /**
   * A FIFO queue: the router keeps each message group in order (with `request-response`, up to
   * the backend). For fairness between tenants on an unordered workload, keep a standard queue
   * and have producers set `MessageGroupId` = tenant id (SQS fair queues).
   * @default false
   */
  readonly fifo?: boolean;
  /** FIFO only: deduplicate by a hash of the body when a producer gives no deduplication id. @default false */
  readonly contentBasedDeduplication?: boolean;
  /**
   * The batching window the queue's `addSqsSource` uses (standard queues): the visibility
   * timeout is 6 × the router's timeout + this.
   * @default 1 second (standard), none (FIFO): addSqsSource's defaults
   */
  readonly maxBatchingWindow?: Duration;
  /** Receives before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
  /** Encrypts both queues. @default the router's key */
  readonly encryptionKey?: kms.IKey;
  /** How long the source queue keeps a message (the dead-letter queue keeps them 14 days). @default 4 days */
  readonly retentionPeriod?: Duration;
  /** @default RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A source queue and its dead-letter queue for a `TenantRouter`. Add it with
 * `router.addSqsSource(sourceQueue.queue)`.
 *
 * **Fair queues.** On a standard queue, SQS fair queues reduce the time one tenant's backlog
 * makes the others wait: producers set `MessageGroupId` to the tenant id when they send
 * (`aws sqs send-message --message-group-id acme …`), and SQS favours the messages of groups
 * that are not flooding the queue when it fills the batches. Nothing changes for the router or
 * the mapping; inside a batch the router starts tenants round-robin and caps each tenant's
 * in-flight Invokes (`maxInFlightPerTenant`).
 */
export class SourceQueue extends Construct {
  /** The source queue. */
  public readonly queue: sqs.Queue;
  /** Its dead-letter queue (FIFO when the source is). */
  public readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: SourceQueueProps) {
    super(scope, id);
    const fifo = props.fifo ?? false;
    const window = sqsBatchingWindow('SourceQueue', fifo, props.maxBatchingWindow) ?? Duration.seconds(0);
    const maxReceiveCount = props.maxReceiveCount ?? 5;
    checkInteger('SourceQueue: maxReceiveCount', maxReceiveCount, 1, 1000);
    const encryptionKey = props.encryptionKey ?? props.router.encryptionKey;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.deadLetterQueue = new SecureQueue(this, 'DeadLetters', {
      encryptionKey,
      fifo,
      retentionPeriod: Duration.days(14),
      removalPolicy,
    }).queue;
    Validations.of(this.deadLetterQueue).acknowledge({
      id: 'Serverless-SQSRedrivePolicy',
      reason:
        'This queue is itself the dead-letter queue of a source queue (AwsSolutions-SQS3 recognises it as one); ' +
        'a dead-letter queue needs no redrive policy of its own. Its depth is alarmed.',
    });

    this.queue = new SecureQueue(this, 'Queue', {
      encryptionKey,
      fifo,
      contentBasedDeduplication: props.contentBasedDeduplication,
      visibilityTimeout: props.router.queueVisibilityTimeout(window),
      retentionPeriod: props.retentionPeriod,
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount },
      removalPolicy,
    }).queue;
  }
}
