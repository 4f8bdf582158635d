// The full example's event sources and their mappings on the router, and encryption at rest and
// in transit of every data store.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Capture, Match } from 'aws-cdk-lib/assertions';
import { FullDeploymentProps } from '../examples/full/stack';
import { InvocationType } from '../lib';
import { arn, buildStack, defaultStack, idOf, ref, ROUTER_CONFIG } from './helpers';

const fourteenDays = 14 * 24 * 3600;

describe('SQS standard source', () => {
  it('has its own dead-letter queue through a redrive policy', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: Match.absent(),
      RedrivePolicy: { deadLetterTargetArn: arn(idOf(stack.sources.queueDeadLetters)), maxReceiveCount: 5 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: Match.absent(),
      MessageRetentionPeriod: fourteenDays,
      RedrivePolicy: Match.absent(),
      KmsMasterKeyId: arn(idOf(stack.dataKey)),
    });
    const dlq = template.toJSON().Resources[idOf(stack.sources.queueDeadLetters)];
    assert.equal(dlq.Properties.MessageRetentionPeriod, fourteenDays);
  });

  it('hides messages for at least six times the router timeout (plus the batching window)', () => {
    for (const routerTimeout of [Duration.seconds(60), Duration.seconds(90)]) {
      const { stack, template } = buildStack({ routerTimeout });
      const visibility = new Capture();
      template.hasResourceProperties('AWS::SQS::Queue', {
        RedrivePolicy: { deadLetterTargetArn: arn(idOf(stack.sources.queueDeadLetters)) },
        VisibilityTimeout: visibility,
      });
      assert.ok(visibility.asNumber() >= 6 * routerTimeout.toSeconds());
      assert.equal(visibility.asNumber(), 6 * routerTimeout.toSeconds() + 1);
      template.hasResourceProperties('AWS::Lambda::Function', { Timeout: routerTimeout.toSeconds(), TenancyConfig: Match.absent() });
    }
  });

  it('follows the final router timeout: raised for a long synchronous Invoke, kept with event only', () => {
    const cases: [Partial<FullDeploymentProps>, number][] = [
      // request-response (the default for the FIFO queue and the streams): router timeout 121 + 0.5 + 5 s → 127 s
      [{ backendTimeout: Duration.seconds(120) }, 127],
      [{ backendTimeout: Duration.seconds(120), routerConfig: { ...ROUTER_CONFIG, invocationType: { all: InvocationType.EVENT } } }, 60],
    ];
    for (const [props, routerSeconds] of cases) {
      const { stack, template } = buildStack(props);
      assert.equal(stack.router.timeout.toSeconds(), routerSeconds);
      template.hasResourceProperties('AWS::Lambda::Function', { Timeout: routerSeconds, TenancyConfig: Match.absent() });
      const queues = template.toJSON().Resources;
      // standard queue: 6 × router timeout + its 1 s batching window; FIFO: no window
      assert.equal(queues[idOf(stack.sources.queue)].Properties.VisibilityTimeout, 6 * routerSeconds + 1);
      assert.equal(queues[idOf(stack.sources.fifoQueue)].Properties.VisibilityTimeout, 6 * routerSeconds);
    }
  });

  it('feeds the router with batch item failures, a batch size, a batching window and a maximum concurrency', () => {
    const { stack, template } = defaultStack();
    const esm = template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { EventSourceArn: arn(idOf(stack.sources.queue)) },
    });
    assert.deepEqual(Object.values(esm).map((r) => r.Properties), [
      {
        EventSourceArn: arn(idOf(stack.sources.queue)),
        FunctionName: ref(idOf(stack.router.function)),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 1,
        ScalingConfig: { MaximumConcurrency: 10 },
      },
    ]);
  });

  it('takes batch size, window, concurrency and receive count as props', () => {
    const { stack, template } = buildStack({
      queue: { batchSize: 500, maxBatchingWindow: Duration.seconds(5), maxConcurrency: 50, maxReceiveCount: 3 },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(idOf(stack.sources.queue)),
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 5,
      ScalingConfig: { MaximumConcurrency: 50 },
    });
    template.hasResourceProperties('AWS::SQS::Queue', {
      RedrivePolicy: { deadLetterTargetArn: arn(idOf(stack.sources.queueDeadLetters)), maxReceiveCount: 3 },
      VisibilityTimeout: 6 * 60 + 5,
    });
    assert.throws(() => buildStack({ queue: { maxConcurrency: 1 } }), /maxConcurrency must be 2–1000/);
  });
});

describe('SQS FIFO source', () => {
  it('is a FIFO queue with a FIFO dead-letter queue and a visibility timeout of six router timeouts', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::SQS::Queue', {
      FifoQueue: true,
      ContentBasedDeduplication: true,
      VisibilityTimeout: 360,
      RedrivePolicy: { deadLetterTargetArn: arn(idOf(stack.sources.fifoDeadLetters)), maxReceiveCount: 5 },
    });
    const dlq = template.toJSON().Resources[idOf(stack.sources.fifoDeadLetters)];
    assert.equal(dlq.Properties.FifoQueue, true);
    assert.equal(dlq.Properties.MessageRetentionPeriod, fourteenDays);
  });

  it('feeds the router with batch item failures and no batching window (FIFO has none)', () => {
    const { stack, template } = defaultStack();
    const esm = template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { EventSourceArn: arn(idOf(stack.sources.fifoQueue)) },
    });
    assert.deepEqual(Object.values(esm).map((r) => r.Properties), [
      {
        EventSourceArn: arn(idOf(stack.sources.fifoQueue)),
        FunctionName: ref(idOf(stack.router.function)),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 10,
        ScalingConfig: { MaximumConcurrency: 10 },
      },
    ]);
    assert.throws(() => buildStack({ fifoQueue: { maxBatchingWindow: Duration.seconds(1) } }), /no batching window for FIFO/);
    assert.throws(() => buildStack({ fifoQueue: { batchSize: 11 } }), /addSqsSource: batchSize \(FIFO\) must be 1–10, got 11/);
  });
});

describe('Kinesis source', () => {
  it('is an encrypted provisioned stream', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::Kinesis::Stream', {
      ShardCount: 1,
      RetentionPeriodHours: 24,
      StreamModeDetails: { StreamMode: 'PROVISIONED' },
      StreamEncryption: { EncryptionType: 'KMS', KeyId: arn(idOf(stack.dataKey)) },
    });
  });

  it('feeds the router with bisect, finite retries, a maximum record age, an on-failure destination and batch item failures', () => {
    const { stack, template } = defaultStack();
    const esm = template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { EventSourceArn: arn(idOf(stack.sources.stream)) },
    });
    assert.deepEqual(Object.values(esm).map((r) => r.Properties), [
      {
        EventSourceArn: arn(idOf(stack.sources.stream)),
        FunctionName: ref(idOf(stack.router.function)),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: 100,
        MaximumBatchingWindowInSeconds: 1,
        ParallelizationFactor: 1,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        MaximumRecordAgeInSeconds: 12 * 3600,
        DestinationConfig: { OnFailure: { Destination: arn(idOf(stack.router.streamFailuresQueue!)) } },
      },
    ]);
  });

  it('takes its settings as props and refuses infinite retries or ages beyond the retention', () => {
    const { stack, template } = buildStack({
      kinesis: {
        batchSize: 500,
        maxBatchingWindow: Duration.seconds(10),
        parallelizationFactor: 4,
        retryAttempts: 3,
        maxRecordAge: Duration.hours(1),
        shardCount: 4,
        retentionPeriod: Duration.hours(48),
      },
    });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(idOf(stack.sources.stream)),
      BatchSize: 500,
      MaximumBatchingWindowInSeconds: 10,
      ParallelizationFactor: 4,
      MaximumRetryAttempts: 3,
      MaximumRecordAgeInSeconds: 3600,
    });
    template.hasResourceProperties('AWS::Kinesis::Stream', { ShardCount: 4, RetentionPeriodHours: 48 });
    assert.throws(() => buildStack({ kinesis: { retryAttempts: -1 } }), /addKinesisSource: retryAttempts \(finite\) must be 0–10000, got -1/);
    assert.throws(() => buildStack({ kinesis: { maxRecordAge: Duration.hours(24) } }), /addKinesisSource: maxRecordAge \(86400 s\) must be shorter than the stream's retention \(86400 s\)/);
    assert.throws(() => buildStack({ kinesis: { maxRecordAge: Duration.days(8), retentionPeriod: Duration.days(9) } }), /between 60 seconds and 7 days/);
  });
});

describe('DynamoDB source', () => {
  it('is an encrypted table with a NEW_AND_OLD_IMAGES stream, point-in-time recovery and deletion protection', () => {
    const { stack, template } = defaultStack();
    template.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: arn(idOf(stack.dataKey)) },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
      },
    });
  });

  it('feeds the router from the table stream with bisect, finite retries, a maximum record age and an on-failure destination', () => {
    const { stack, template } = defaultStack();
    const streamArn = { 'Fn::GetAtt': [idOf(stack.sources.table), 'StreamArn'] };
    const esm = template.findResources('AWS::Lambda::EventSourceMapping', {
      Properties: { EventSourceArn: streamArn },
    });
    assert.deepEqual(Object.values(esm).map((r) => r.Properties), [
      {
        EventSourceArn: streamArn,
        FunctionName: ref(idOf(stack.router.function)),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        StartingPosition: 'TRIM_HORIZON',
        BatchSize: 100,
        MaximumBatchingWindowInSeconds: 1,
        ParallelizationFactor: 1,
        BisectBatchOnFunctionError: true,
        MaximumRetryAttempts: 10,
        MaximumRecordAgeInSeconds: 12 * 3600,
        DestinationConfig: { OnFailure: { Destination: arn(idOf(stack.router.streamFailuresQueue!)) } },
      },
    ]);
    assert.throws(() => buildStack({ dynamodb: { maxRecordAge: Duration.hours(24) } }), /addDynamoDbSource: maxRecordAge \(86400 s\) must be shorter than the stream's retention \(86400 s\)/);
  });
});

describe('every mapping', () => {
  it('reports batch item failures: all four of the example (SQS standard, SQS FIFO, Kinesis, DynamoDB), on the router', () => {
    const { stack, template } = defaultStack();
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping')).map((m) => m.Properties);
    // Without ReportBatchItemFailures a reported record would be deleted (SQS) or checkpointed past (streams).
    assert.deepEqual(
      mappings.map((m) => [m.EventSourceArn, m.FunctionName, m.FunctionResponseTypes]),
      [
        arn(idOf(stack.sources.queue)),
        arn(idOf(stack.sources.fifoQueue)),
        arn(idOf(stack.sources.stream)),
        { 'Fn::GetAtt': [idOf(stack.sources.table), 'StreamArn'] },
      ].map((source) => [source, ref(idOf(stack.router.function)), ['ReportBatchItemFailures']]),
    );
  });
});

describe('encryption at rest and in transit', () => {
  it('encrypts every queue with the stack key and denies every non-TLS request (enforceSSL)', () => {
    const { stack, template } = defaultStack();
    const queues = template.findResources('AWS::SQS::Queue');
    assert.equal(Object.keys(queues).length, 7);
    for (const queue of Object.values(queues)) {
      assert.deepEqual(queue.Properties.KmsMasterKeyId, arn(idOf(stack.dataKey)));
      assert.equal(queue.Properties.KmsDataKeyReusePeriodSeconds, 3600);
    }
    const policies = Object.values(template.findResources('AWS::SQS::QueuePolicy'));
    const covered = policies.flatMap((p) => {
      assert.deepEqual(p.Properties.PolicyDocument.Statement, [
        {
          Action: 'sqs:*',
          Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          Effect: 'Deny',
          Principal: { AWS: '*' },
          Resource: p.Properties.PolicyDocument.Statement[0].Resource,
        },
      ]);
      return p.Properties.Queues.map((q: { Ref: string }) => q.Ref);
    });
    assert.deepEqual(covered.sort(), Object.keys(queues).sort());
  });

  it('uses one customer managed key with rotation, kept when the stack is deleted', () => {
    const { stack, template } = defaultStack();
    template.hasResource('AWS::KMS::Key', {
      DeletionPolicy: 'Retain',
      Properties: { EnableKeyRotation: true, Description: Match.stringLikeRegexp('queues, stream, tables, logs, results bus and quarantine bucket') },
    });
    assert.ok(stack.dataKey);
  });

  it('retains the data stores by default and can destroy them for development stacks', () => {
    const { template } = defaultStack();
    for (const type of ['AWS::SQS::Queue', 'AWS::Kinesis::Stream', 'AWS::DynamoDB::Table', 'AWS::Logs::LogGroup', 'AWS::S3::Bucket']) {
      for (const resource of Object.values(template.findResources(type))) {
        assert.equal(resource.DeletionPolicy, 'Retain', type);
      }
    }
    const dev = buildStack({ dataRemovalPolicy: RemovalPolicy.DESTROY });
    for (const type of ['AWS::SQS::Queue', 'AWS::Kinesis::Stream', 'AWS::DynamoDB::Table', 'AWS::S3::Bucket']) {
      for (const resource of Object.values(dev.template.findResources(type))) {
        assert.equal(resource.DeletionPolicy, 'Delete', type);
      }
    }
    // the three tables: the source table, the backend's idempotency table and the tenant registry
    assert.equal(Object.keys(dev.template.findResources('AWS::DynamoDB::Table')).length, 3);
    dev.template.allResourcesProperties('AWS::DynamoDB::Table', { DeletionProtectionEnabled: false });
  });
});
