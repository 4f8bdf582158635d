// Where failed work goes, with the narrowest grants that let Lambda send it there: the stream
// mappings' on-failure destination (`FailureDestination`, public), the async invoke
// destination to a queue (`QueueDestination`), and the send / put-object / key grants they and
// the quarantine share. CDK's own SqsDlq, SqsDestination and S3OnFailureDestination grant more
// (kms:Encrypt, kms:ReEncrypt*, GetQueueAttributes, s3:DeleteObject*, …).
import { Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { nagResourceName } from './nag';

/**
 * The on-failure destination of a stream event source mapping (Kinesis, DynamoDB): where Lambda
 * sends a batch it gave up on (retries exhausted, or older than the maximum record age). Lambda
 * sends it with the router's execution role, which gets exactly what that takes.
 */
export abstract class FailureDestination implements lambda.IEventSourceDlq {
  /**
   * An SQS queue: each message describes the discarded batch (stream, shard, sequence-number
   * range), not its records. Grants sqs:SendMessage on it (with kms:GenerateDataKey and
   * kms:Decrypt on its key, when CDK knows the key).
   */
  public static toQueue(queue: sqs.IQueue): FailureDestination {
    return new QueueFailureDestination(queue);
  }

  /**
   * An S3 bucket: each object holds the invocation record with the whole failed batch. Grants
   * s3:PutObject on its objects and s3:ListBucket on it (with kms:GenerateDataKey on its key,
   * when CDK knows the key).
   */
  public static toBucket(bucket: s3.IBucket): FailureDestination {
    return new BucketFailureDestination(bucket);
  }

  /** The queue, when the destination is one (its depth is alarmed). */
  public abstract readonly queue?: sqs.IQueue;

  /** Grants the router what sending to the destination takes and returns the mapping's destination. */
  public abstract bind(target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig;
}

class QueueFailureDestination extends FailureDestination {
  constructor(public readonly queue: sqs.IQueue) {
    super();
  }

  public bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    grantSendOnly(targetHandler, undefined, this.queue, this.queue.encryptionMasterKey);
    return { destination: this.queue.queueArn };
  }
}

class BucketFailureDestination extends FailureDestination {
  public readonly queue = undefined;

  constructor(private readonly bucket: s3.IBucket) {
    super();
  }

  public bind(_target: lambda.IEventSourceMapping, targetHandler: lambda.IFunction): lambda.DlqDestinationConfig {
    // https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html: s3:PutObject and s3:ListBucket.
    const objects = grantPutObjectOnly(targetHandler, undefined, this.bucket, this.bucket.encryptionKey);
    targetHandler.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
    );
    if (targetHandler.role !== undefined) {
      Validations.of(targetHandler.role).acknowledge({
        id: `AwsSolutions-IAM5[Resource::${nagResourceName(targetHandler, objects)}]`,
        reason:
          "Only s3:PutObject on the objects of a stream mapping's on-failure bucket: Lambda writes one object per " +
          'discarded batch, under a key it chooses, so the object ARN ends in /*. No read or delete.',
      });
    }
    return { destination: this.bucket.bucketArn };
  }
}

/**
 * Lambda async destination (OnSuccess / OnFailure) to an SQS queue that grants nothing by
 * itself; the function's owner grants {@link grantSendOnly}.
 */
export class QueueDestination implements lambda.IDestination {
  constructor(private readonly queue: sqs.IQueue) {}

  public bind(): lambda.DestinationConfig {
    return { destination: this.queue.queueArn };
  }
}

/**
 * What sending to an SSE-KMS queue takes, and nothing more: sqs:SendMessage on the queue (as
 * statement `sid`, when given), and kms:GenerateDataKey plus kms:Decrypt (to reuse a cached data
 * key) on its key.
 */
export function grantSendOnly(grantee: iam.IGrantable, sid: string | undefined, queue: sqs.IQueue, key: kms.IKey | undefined): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid, actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
  );
  if (key !== undefined) {
    grantee.grantPrincipal.addToPrincipalPolicy(
      // No Sid: the same statement for several queues under one key is then merged into one.
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }),
    );
  }
}

/**
 * What writing objects to an SSE-KMS bucket takes, and nothing more: s3:PutObject on its objects
 * (as statement `sid`, when given) and kms:GenerateDataKey on its key. Instead of grantPut, which
 * also allows s3:PutObjectLegalHold, s3:PutObjectRetention, s3:PutObjectTagging,
 * s3:PutObjectVersionTagging, s3:Abort* and kms:Encrypt, kms:ReEncrypt*. Returns the object ARN
 * pattern granted.
 */
export function grantPutObjectOnly(grantee: iam.IGrantable, sid: string | undefined, bucket: s3.IBucket, key: kms.IKey | undefined): string {
  const objects = bucket.arnForObjects('*');
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid, actions: ['s3:PutObject'], resources: [objects] }),
  );
  if (key !== undefined) {
    grantee.grantPrincipal.addToPrincipalPolicy(
      // No Sid, as in grantSendOnly: merged with the other statements on the same key.
      new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [key.keyArn] }),
    );
  }
  return objects;
}
