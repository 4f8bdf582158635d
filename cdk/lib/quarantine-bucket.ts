// `QuarantineBucket`: the claim-check store of the quarantine (records too large for an SQS
// message) and the bucket that keeps its server access logs.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';

export interface QuarantineBucketProps {
  /** Customer managed key encrypting the objects (SSE-KMS): the quarantine queue's key. */
  readonly encryptionKey: kms.IKey;
  /** How long a quarantined object is kept: the quarantine queue's retention. */
  readonly retention: Duration;
  /** How long the server access logs are kept. */
  readonly accessLogRetention: Duration;
  readonly removalPolicy: RemovalPolicy;
}

/**
 * The claim-check store of the quarantine: the router writes a rejected record too large for an
 * SQS quarantine message (1 MiB) to this bucket (`ROUTER_QUARANTINE_BUCKET`). The objects hold
 * whole records, tokens included, so the bucket is protected like the quarantine queue: SSE-KMS
 * with the same key, all public access blocked, TLS only, ACLs disabled, objects expiring with
 * the queue's retention, and server access logs (who read which record) in a second bucket.
 */
export class QuarantineBucket extends Construct {
  public readonly bucket: s3.Bucket;
  /** Receives the quarantine bucket's server access logs. */
  public readonly accessLogs: s3.Bucket;

  constructor(scope: Construct, id: string, props: QuarantineBucketProps) {
    super(scope, id);
    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      // S3 delivers server access logs only to a bucket whose default encryption is SSE-S3.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'ExpireAccessLogs', expiration: props.accessLogRetention }],
      removalPolicy: props.removalPolicy,
    });
    this.bucket = new s3.Bucket(this, 'Bucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: props.encryptionKey,
      // One data key per bucket and period instead of one per object: fewer KMS calls, same key.
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: this.accessLogs,
      lifecycleRules: [{ id: 'ExpireWithQuarantineQueue', expiration: props.retention }],
      removalPolicy: props.removalPolicy,
    });
  }
}
