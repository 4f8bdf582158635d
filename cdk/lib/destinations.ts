import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';

/**
 * Lambda async destination (OnSuccess / OnFailure) to an SQS queue that grants nothing by
 * itself. CDK's SqsDestination calls grantSendMessages, which with a customer managed key also
 * allows kms:Encrypt, kms:ReEncrypt* and kms:GenerateDataKey*; Lambda only needs what
 * {@link grantSendOnly} gives.
 */
export class QueueDestination implements lambda.IDestination {
  constructor(private readonly queue: sqs.IQueue) {}

  public bind(): lambda.DestinationConfig {
    return { destination: this.queue.queueArn };
  }
}

/** The same for a stream event source mapping's on-failure destination (instead of SqsDlq). */
export class QueueOnFailure implements lambda.IEventSourceDlq {
  constructor(private readonly queue: sqs.IQueue) {}

  public bind(): lambda.DlqDestinationConfig {
    return { destination: this.queue.queueArn };
  }
}

/**
 * What sending to an SSE-KMS queue takes, and nothing more: sqs:SendMessage on the queue (as
 * statement `sid`), and kms:GenerateDataKey plus kms:Decrypt (to reuse a cached data key) on its key.
 */
export function grantSendOnly(grantee: iam.IGrantable, sid: string, queue: sqs.IQueue, key: kms.IKey): void {
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid, actions: ['sqs:SendMessage'], resources: [queue.queueArn] }),
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    // No Sid: the same statement for several queues under one key is then merged into one.
    new iam.PolicyStatement({
      actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
      resources: [key.keyArn],
    }),
  );
}

/**
 * What writing objects to an SSE-KMS bucket takes, and nothing more: s3:PutObject on its objects
 * (as statement `sid`) and kms:GenerateDataKey on its key. Instead of grantPut, which also allows
 * s3:PutObjectLegalHold, s3:PutObjectRetention, s3:PutObjectTagging, s3:PutObjectVersionTagging,
 * s3:Abort* and kms:Encrypt, kms:ReEncrypt*. Returns the object ARN pattern granted.
 */
export function grantPutObjectOnly(grantee: iam.IGrantable, sid: string, bucket: s3.IBucket, key: kms.IKey): string {
  const objects = bucket.arnForObjects('*');
  grantee.grantPrincipal.addToPrincipalPolicy(
    new iam.PolicyStatement({ sid, actions: ['s3:PutObject'], resources: [objects] }),
  );
  grantee.grantPrincipal.addToPrincipalPolicy(
    // No Sid, as in grantSendOnly: merged with the other statements on the same key.
    new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [key.keyArn] }),
  );
  return objects;
}
