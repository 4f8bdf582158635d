// The quarantine bucket (claim check) and its access-log bucket.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as logs from 'aws-cdk-lib/aws-logs';
import { QUARANTINE_RETENTION } from '../lib/tenant-router';
import { arn, buildStack, defaultStack, idOf, ref } from './helpers';

const blockAll = {
  BlockPublicAcls: true,
  BlockPublicPolicy: true,
  IgnorePublicAcls: true,
  RestrictPublicBuckets: true,
};

/** The bucket policy's deny of every request not made over TLS (enforceSSL). */
const denyInsecure = (bucketId: string) => ({
  Action: 's3:*',
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
  Effect: 'Deny',
  Principal: { AWS: '*' },
  Resource: [arn(bucketId), { 'Fn::Join': ['', [arn(bucketId), '/*']] }],
});

function bucketPolicyOf(bucketId: string): unknown[] {
  const { template } = defaultStack();
  const policies = Object.values(template.findResources('AWS::S3::BucketPolicy', { Properties: { Bucket: ref(bucketId) } }));
  assert.equal(policies.length, 1);
  return policies[0].Properties.PolicyDocument.Statement;
}

describe('quarantine bucket (claim check for records too large for a quarantine message)', () => {
  it('is encrypted with the quarantine queue’s key, blocks public access, disables ACLs and logs access', () => {
    const { stack, template } = defaultStack();
    const accessLogs = stack.router.node.findChild('QuarantineBucket').node.findChild('AccessLogs');
    assert.deepEqual(template.toJSON().Resources[idOf(stack.router.quarantineBucket)].Properties, {
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: { SSEAlgorithm: 'aws:kms', KMSMasterKeyID: arn(idOf(stack.dataKey)) },
          },
        ],
      },
      PublicAccessBlockConfiguration: blockAll,
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LoggingConfiguration: { DestinationBucketName: ref(idOf(accessLogs)) },
      LifecycleConfiguration: { Rules: [{ Id: 'ExpireWithQuarantineQueue', Status: 'Enabled', ExpirationInDays: 14 }] },
    });
    // the same key and the same retention as the quarantine queue
    const queue = template.toJSON().Resources[idOf(stack.router.quarantineQueue)].Properties;
    assert.deepEqual(queue.KmsMasterKeyId, arn(idOf(stack.dataKey)));
    assert.equal(queue.MessageRetentionPeriod, QUARANTINE_RETENTION.toSeconds());
    assert.equal(QUARANTINE_RETENTION.toDays(), 14);
  });

  it('denies every request not made over TLS, and grants nothing in its bucket policy', () => {
    const { stack } = defaultStack();
    assert.deepEqual(bucketPolicyOf(idOf(stack.router.quarantineBucket)), [denyInsecure(idOf(stack.router.quarantineBucket))]);
  });

  it('keeps its server access logs in an SSE-S3 bucket (the only default encryption log delivery supports) for the log retention', () => {
    const { stack, template } = defaultStack();
    const accessLogs = idOf(stack.router.node.findChild('QuarantineBucket').node.findChild('AccessLogs'));
    assert.deepEqual(template.toJSON().Resources[accessLogs].Properties, {
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: blockAll,
      OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
      LifecycleConfiguration: { Rules: [{ Id: 'ExpireAccessLogs', Status: 'Enabled', ExpirationInDays: 30 }] },
    });
    assert.deepEqual(bucketPolicyOf(accessLogs), [
      denyInsecure(accessLogs),
      {
        Action: 's3:PutObject',
        Condition: {
          ArnLike: { 'aws:SourceArn': arn(idOf(stack.router.quarantineBucket)) },
          StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } },
        },
        Effect: 'Allow',
        Principal: { Service: 'logging.s3.amazonaws.com' },
        Resource: { 'Fn::Join': ['', [arn(accessLogs), '/*']] },
      },
    ]);
    const longer = buildStack({ logRetention: logs.RetentionDays.THREE_MONTHS });
    longer.template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: { Rules: [{ Id: 'ExpireAccessLogs', Status: 'Enabled', ExpirationInDays: 90 }] },
    });
  });

  it('is the only bucket besides its access logs, and is named to the router as ROUTER_QUARANTINE_BUCKET', () => {
    const { stack, template } = defaultStack();
    template.resourceCountIs('AWS::S3::Bucket', 2);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(idOf(stack.router.role)),
      Environment: { Variables: { ROUTER_QUARANTINE_BUCKET: ref(idOf(stack.router.quarantineBucket)) } },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(idOf(stack.backend.role)),
      Environment: { Variables: { ROUTER_QUARANTINE_BUCKET: Match.absent() } },
    });
  });

  it('is retained with the data by default, and deleted with dataRemovalPolicy destroy (empty it first)', () => {
    for (const bucket of Object.values(defaultStack().template.findResources('AWS::S3::Bucket'))) {
      assert.equal(bucket.DeletionPolicy, 'Retain');
    }
    for (const bucket of Object.values(buildStack({ dataRemovalPolicy: RemovalPolicy.DESTROY }).template.findResources('AWS::S3::Bucket'))) {
      assert.equal(bucket.DeletionPolicy, 'Delete');
    }
  });
});
