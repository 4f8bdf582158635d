import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface SecureQueueProps {
  /** Customer managed key encrypting the messages at rest (SSE-KMS). */
  readonly encryptionKey: kms.IKey;
  /** A FIFO queue (its name then ends in `.fifo`). @default false */
  readonly fifo?: boolean;
  /** @default 4 days (SQS default); dead-letter and failure queues use 14 days */
  readonly retentionPeriod?: Duration;
  /** @default 30 seconds (SQS default) */
  readonly visibilityTimeout?: Duration;
  /** Redrive policy to a dead-letter queue. */
  readonly deadLetterQueue?: sqs.DeadLetterQueue;
  /** @default RemovalPolicy.DESTROY (the SQS default in CDK) */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * An SQS queue with the settings every queue of this stack shares: SSE-KMS with the stack's
 * customer managed key and a queue policy denying any request not made over TLS (enforceSSL).
 */
export class SecureQueue extends Construct {
  public readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: SecureQueueProps) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.encryptionKey,
      // One data key serves a queue for an hour instead of 5 minutes: far fewer KMS calls
      // (cost, throttling) for the same key; the key itself never leaves KMS.
      dataKeyReuse: Duration.hours(1),
      enforceSSL: true,
      fifo: props.fifo ? true : undefined,
      // FIFO producers may omit a deduplication id (useful for tests and for idempotent bodies).
      contentBasedDeduplication: props.fifo ? true : undefined,
      retentionPeriod: props.retentionPeriod,
      visibilityTimeout: props.visibilityTimeout,
      deadLetterQueue: props.deadLetterQueue,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.DESTROY,
    });
  }
}
