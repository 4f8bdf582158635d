// The quarantine queue's message size (ROUTER_QUARANTINE_MAX_MESSAGE_BYTES), the quarantine
// bucket (claim check) and its access-log bucket.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CfnParameter, RemovalPolicy } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { QUARANTINE_RETENTION, TenantRouter } from '../lib/tenant-router';
import { arn, backendStack, buildStack, defaultStack, idOf, newApp, newRouter, ref } from './helpers';

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown };

/** The router's environment and the statements of its role's policy. */
function routerFacts(template: Template, router: TenantRouter) {
  const resources = template.toJSON().Resources;
  const env = resources[idOf(router.function)].Properties.Environment.Variables as { [name: string]: unknown };
  const policies = Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(idOf(router.role))] } }));
  assert.equal(policies.length, 1);
  return { env, statements: policies[0].Properties.PolicyDocument.Statement as Statement[] };
}

const actionsOf = (s: Statement) => ([] as string[]).concat(s.Action);

describe('quarantine queue: the message size (ROUTER_QUARANTINE_MAX_MESSAGE_BYTES)', () => {
  it("sets the created queue's MaximumMessageSize explicitly, to SQS's largest (1 MiB), and gives the router the same value", () => {
    const { stack, template } = defaultStack();
    const queue = template.toJSON().Resources[idOf(stack.router.quarantineQueue)].Properties;
    assert.equal(queue.MaximumMessageSize, 1_048_576);
    const { env, statements } = routerFacts(template, stack.router);
    assert.equal(env.ROUTER_QUARANTINE_MAX_MESSAGE_BYTES, '1048576');
    // the router needs no GetQueueAttributes on a queue whose size it is told
    for (const s of statements.filter((s) => JSON.stringify(s.Resource).includes(idOf(stack.router.quarantineQueue)))) {
      assert.deepEqual(actionsOf(s), ['sqs:SendMessage']);
    }
    // only the quarantine queue: the stream-failures queue keeps SQS's default
    assert.equal(template.toJSON().Resources[idOf(stack.router.streamFailuresQueue!)].Properties.MaximumMessageSize, undefined);
  });

  it('takes the size as quarantineMaxMessageBytes: the queue and the variable alike', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend, { quarantineMaxMessageBytes: 262_144 });
    router.addKinesisSource(new kinesis.Stream(stack, 'Events'), { startingPosition: lambda.StartingPosition.LATEST });
    const template = Template.fromStack(stack);
    assert.equal(template.toJSON().Resources[idOf(router.quarantineQueue)].Properties.MaximumMessageSize, 262_144);
    assert.equal(routerFacts(template, router).env.ROUTER_QUARANTINE_MAX_MESSAGE_BYTES, '262144');
    assert.equal(template.toJSON().Resources[idOf(router.streamFailuresQueue!)].Properties.MaximumMessageSize, undefined);
  });

  it('refuses a size SQS refuses (below 1 KiB, above 1 MiB, not whole), naming the variable and the prop; passes a token through', () => {
    for (const size of [0, 1023, 1_048_577, 2048.5]) {
      const { stack, backend } = backendStack(newApp());
      assert.throws(
        () => newRouter(stack, backend, { quarantineMaxMessageBytes: size }),
        new RegExp(`ROUTER_QUARANTINE_MAX_MESSAGE_BYTES: must be an integer from 1024 to 1048576, got ${String(size).replace('.', '\\.')} ` +
          "\\(quarantineMaxMessageBytes: the quarantine queue's MaximumMessageSize, which SQS allows from 1 KiB to 1 MiB\\)$"),
        String(size),
      );
    }
    for (const size of [1024, 1_048_576]) {
      const { stack, backend } = backendStack(newApp());
      assert.doesNotThrow(() => newRouter(stack, backend, { quarantineMaxMessageBytes: size }));
    }
    const { stack, backend } = backendStack(newApp());
    const size = new CfnParameter(stack, 'QuarantineSize', { type: 'Number' }).valueAsNumber;
    const router = newRouter(stack, backend, { quarantineMaxMessageBytes: size });
    const template = Template.fromStack(stack);
    assert.deepEqual(template.toJSON().Resources[idOf(router.quarantineQueue)].Properties.MaximumMessageSize, { Ref: 'QuarantineSize' });
    assert.deepEqual(routerFacts(template, router).env.ROUTER_QUARANTINE_MAX_MESSAGE_BYTES, { Ref: 'QuarantineSize' });
  });

  it("with a given queue: no variable (the router reads the queue's MaximumMessageSize at start) and sqs:GetQueueAttributes on that queue only", () => {
    const { stack, backend } = backendStack(newApp());
    const given = new sqs.Queue(stack, 'PlatformQuarantine', { maxMessageSizeBytes: 65_536 });
    const router = newRouter(stack, backend, { quarantineQueue: given });
    const template = Template.fromStack(stack);
    const { env, statements } = routerFacts(template, router);
    assert.equal(env.ROUTER_QUARANTINE_MAX_MESSAGE_BYTES, undefined);
    assert.equal(env.ROUTER_QUARANTINE_QUEUE_URL !== undefined, true);
    assert.deepEqual(
      statements.filter((s) => actionsOf(s).includes('sqs:GetQueueAttributes')),
      [{ Sid: 'QuarantineQueueSize', Action: 'sqs:GetQueueAttributes', Effect: 'Allow', Resource: arn(idOf(given)) }],
    );
    // an imported queue alike
    const other = backendStack(newApp());
    const imported = sqs.Queue.fromQueueArn(other.stack, 'Imported', 'arn:aws:sqs:us-east-1:111111111111:quarantine');
    const importedRouter = newRouter(other.stack, other.backend, { quarantineQueue: imported });
    const facts = routerFacts(Template.fromStack(other.stack), importedRouter);
    assert.equal(facts.env.ROUTER_QUARANTINE_MAX_MESSAGE_BYTES, undefined);
    assert.deepEqual(
      facts.statements.filter((s) => actionsOf(s).includes('sqs:GetQueueAttributes')),
      [{ Sid: 'QuarantineQueueSize', Action: 'sqs:GetQueueAttributes', Effect: 'Allow', Resource: 'arn:aws:sqs:us-east-1:111111111111:quarantine' }],
    );
  });

  it('refuses quarantineMaxMessageBytes with a given queue (the router reads that queue\'s own size)', () => {
    const { stack, backend } = backendStack(newApp());
    assert.throws(
      () => newRouter(stack, backend, { quarantineQueue: new sqs.Queue(stack, 'Given'), quarantineMaxMessageBytes: 65_536 }),
      /ROUTER_QUARANTINE_MAX_MESSAGE_BYTES: quarantineMaxMessageBytes sets the size of the quarantine queue the router creates; with a given quarantineQueue the router reads that queue's MaximumMessageSize at start/,
    );
  });
});

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
