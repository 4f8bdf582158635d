// TenantRouter as a library construct, in a stack of its own in front of a PER_TENANT backend:
// its defaults, what it creates only when not given, its sources and their checks, on-failure
// destinations, the EventBridge target, the tenant registry and SourceQueue.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Duration } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { nagPacks } from '../examples/nag';
import { FailureDestination, SourceQueue, SuspendedTenants } from '../lib';
import { arn, backendStack, idOf, newApp, newRouter, ref } from './helpers';

type Statement = { Sid?: string; Action: string | string[]; Resource: unknown };
const actions = (s: Statement) => ([] as string[]).concat(s.Action);

/** The statements of the router role's policy. */
function routerStatements(template: Template, roleId: string): Statement[] {
  const policies = Object.values(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(roleId)] } }));
  assert.equal(policies.length, 1);
  return policies[0].Properties.PolicyDocument.Statement;
}

function routerEnv(template: Template, fnId: string): { [name: string]: unknown } {
  return template.toJSON().Resources[fnId].Properties.Environment.Variables;
}

describe('TenantRouter: defaults', () => {
  it('creates what it needs and nothing it is given: key, quarantine queue and bucket, alarm topic, dashboard, queries', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::KMS::Key', 2); // the data key and the alarm topic's key
    template.resourceCountIs('AWS::SQS::Queue', 1); // quarantine only: no stream source, no stream-failures queue
    template.resourceCountIs('AWS::S3::Bucket', 2); // quarantine bucket and its access logs
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.resourceCountIs('AWS::Logs::QueryDefinition', 2);
    template.resourceCountIs('AWS::DynamoDB::Table', 0); // no registry unless asked
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(idOf(router.role)),
      Runtime: 'provided.al2023',
      MemorySize: 512,
      Timeout: 60,
      Architectures: ['x86_64'],
      ReservedConcurrentExecutions: Match.absent(),
      TenancyConfig: Match.absent(),
    });
    const env = routerEnv(template, idOf(router.function));
    // the construct's default invocation types, the backend's 20 s timeout + 1 s
    assert.equal(env.ROUTER_INVOCATION_TYPE, 'event;sqs-fifo=request-response;kinesis=request-response;dynamodb=request-response');
    assert.equal(env.ROUTER_INVOKE_TIMEOUT_MS, '21000');
    assert.equal(env.ROUTER_TENANT_REGISTRY_TABLE, undefined);
    // its log group: the data key, one month
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30, KmsKeyId: arn(idOf(router.encryptionKey)) });
  });

  it('uses the key, queue, bucket and topic it is given, and creates none of them', () => {
    const { stack, backend } = backendStack(newApp());
    const key = new kms.Key(stack, 'PlatformKey');
    const quarantineQueue = new sqs.Queue(stack, 'PlatformQuarantine', { encryptionMasterKey: key, encryption: sqs.QueueEncryption.KMS });
    const quarantineBucket = new s3.Bucket(stack, 'PlatformBucket', { encryptionKey: key, encryption: s3.BucketEncryption.KMS });
    const alarmTopic = new sns.Topic(stack, 'PlatformAlarms');
    const router = newRouter(stack, backend, {
      encryptionKey: key,
      quarantineQueue,
      quarantineBucket,
      alarmTopic,
      reservedConcurrentExecutions: 20,
      memorySize: 1024,
      logRetention: logs.RetentionDays.ONE_WEEK,
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::KMS::Key', 1);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    template.resourceCountIs('AWS::S3::Bucket', 1);
    template.resourceCountIs('AWS::SNS::Topic', 1);
    template.hasResourceProperties('AWS::Lambda::Function', { Role: arn(idOf(router.role)), ReservedConcurrentExecutions: 20, MemorySize: 1024 });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7, KmsKeyId: arn(idOf(key)) });
    const statements = routerStatements(template, idOf(router.role));
    assert.ok(statements.some((s) => s.Sid === 'Quarantine' && JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(quarantineQueue)))));
    assert.ok(statements.some((s) => s.Sid === 'QuarantineBucket'));
    for (const alarm of Object.values(template.findResources('AWS::CloudWatch::Alarm'))) {
      assert.deepEqual(alarm.Properties.AlarmActions, [ref(idOf(alarmTopic))]);
    }
    // the given key lets CloudWatch Logs use it (a key defined in the app)
    template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: { Statement: Match.arrayWith([Match.objectLike({ Sid: 'AllowCloudWatchLogsOfThisAccount' })]) },
    });
  });
});

describe('TenantRouter: sources', () => {
  it('puts every mapping on the router with ReportBatchItemFailures, standard and FIFO queues alike', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const standard = new sqs.Queue(stack, 'Orders', { visibilityTimeout: router.queueVisibilityTimeout(Duration.seconds(1)) });
    const fifo = new sqs.Queue(stack, 'Ledger', { fifo: true, visibilityTimeout: router.queueVisibilityTimeout() });
    router.addSqsSource(standard);
    router.addSqsSource(fifo, { batchSize: 5, maxConcurrency: 4 });
    const template = Template.fromStack(stack);
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping')).map((m) => m.Properties);
    assert.deepEqual(mappings, [
      {
        EventSourceArn: arn(idOf(standard)),
        FunctionName: ref(idOf(router.function)),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 10,
        MaximumBatchingWindowInSeconds: 1,
        ScalingConfig: { MaximumConcurrency: 10 },
      },
      {
        EventSourceArn: arn(idOf(fifo)),
        FunctionName: ref(idOf(router.function)),
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        BatchSize: 5,
        ScalingConfig: { MaximumConcurrency: 4 },
      },
    ]);
    assert.deepEqual(router.alarms.map((a) => a.node.id).filter((id) => id.endsWith('MessageAge')), ['OrdersMessageAge', 'LedgerMessageAge']);
  });

  it('reports batch item failures on every mapping it creates, for every source kind (what "no record is lost" assumes)', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const start = { startingPosition: lambda.StartingPosition.TRIM_HORIZON };
    const standard = new sqs.Queue(stack, 'Orders', { visibilityTimeout: router.queueVisibilityTimeout(Duration.seconds(1)) });
    router.addSqsSource(standard);
    const fifo = new sqs.Queue(stack, 'Ledger', { fifo: true, visibilityTimeout: router.queueVisibilityTimeout() });
    router.addSqsSource(fifo);
    const stream = new kinesis.Stream(stack, 'Events');
    router.addKinesisSource(stream, start);
    const table = new dynamodb.Table(stack, 'Accounts', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    router.addDynamoDbSource(table, start);
    // and the same kinds imported by ARN
    router.addSqsSource(sqs.Queue.fromQueueArn(stack, 'ImportedQueue', 'arn:aws:sqs:us-east-1:111111111111:orders'));
    router.addSqsSource(sqs.Queue.fromQueueArn(stack, 'ImportedFifo', 'arn:aws:sqs:us-east-1:111111111111:ledger.fifo'));
    router.addKinesisSource(kinesis.Stream.fromStreamArn(stack, 'ImportedStream', 'arn:aws:kinesis:us-east-1:111111111111:stream/events'), start);
    router.addDynamoDbSource(
      dynamodb.Table.fromTableAttributes(stack, 'ImportedTable', {
        tableName: 'accounts',
        tableStreamArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/accounts/stream/2026-01-01T00:00:00.000',
      }),
      start,
    );
    const kinds = new Map<string, string>([
      [JSON.stringify(arn(idOf(standard))), 'SQS standard'],
      [JSON.stringify(arn(idOf(fifo))), 'SQS FIFO'],
      [JSON.stringify(arn(idOf(stream))), 'Kinesis'],
      [JSON.stringify({ 'Fn::GetAtt': [idOf(table), 'StreamArn'] }), 'DynamoDB'],
      [JSON.stringify('arn:aws:sqs:us-east-1:111111111111:orders'), 'SQS standard (imported)'],
      [JSON.stringify('arn:aws:sqs:us-east-1:111111111111:ledger.fifo'), 'SQS FIFO (imported)'],
      [JSON.stringify('arn:aws:kinesis:us-east-1:111111111111:stream/events'), 'Kinesis (imported)'],
      [JSON.stringify('arn:aws:dynamodb:us-east-1:111111111111:table/accounts/stream/2026-01-01T00:00:00.000'), 'DynamoDB (imported)'],
    ]);
    const mappings = Object.values(Template.fromStack(stack).findResources('AWS::Lambda::EventSourceMapping')).map((m) => m.Properties);
    assert.deepEqual(
      mappings.map((m) => [kinds.get(JSON.stringify(m.EventSourceArn)), m.FunctionName, m.FunctionResponseTypes]),
      [...kinds.values()].map((kind) => [kind, ref(idOf(router.function)), ['ReportBatchItemFailures']]),
    );
  });

  it("checks a queue's visibility timeout against the router's timeout: an error below it, a warning below 6 × it + the window", () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    assert.throws(
      () => router.addSqsSource(new sqs.Queue(stack, 'Short')),
      /addSqsSource: Consumer\/Short hides messages for 30 s, less than the router's timeout \(60 s\), which Lambda refuses; give it visibilityTimeout: Duration.seconds\(361\)/,
    );
    router.addSqsSource(new sqs.Queue(stack, 'Low', { visibilityTimeout: Duration.seconds(120) }));
    const warnings = Annotations.fromStack(stack).findWarning(`/${router.node.path}`, Match.anyValue());
    const texts = warnings.map((w) => String(w.entry.data));
    assert.ok(texts.some((t) => /Consumer\/Low hides messages for 120 s; AWS recommends 361 s/.test(t)), texts.join('\n'));
    assert.ok(texts.some((t) => /Consumer\/Low has no dead-letter queue/.test(t)), texts.join('\n'));
    assert.throws(() => router.addSqsSource(new sqs.Queue(stack, 'Fifo', { fifo: true, visibilityTimeout: Duration.hours(1) }), {
      maxBatchingWindow: Duration.seconds(1),
    }), /addSqsSource: maxBatchingWindow: Lambda has no batching window for FIFO queues/);
    assert.throws(() => router.addSqsSource(sqs.Queue.fromQueueArn(stack, 'Low2', 'arn:aws:sqs:us-east-1:111111111111:low'), { name: 'Low' }),
      /source name "Low" is used twice on Consumer\/Router: give options.name/);
  });

  it('sends stream batches it gave up on to a bucket with exactly s3:PutObject, s3:ListBucket and the key; no stream-failures queue then', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const key = new kms.Key(stack, 'FailuresKey');
    const bucket = new s3.Bucket(stack, 'Failures', { encryption: s3.BucketEncryption.KMS, encryptionKey: key });
    const stream = new kinesis.Stream(stack, 'Events');
    router.addKinesisSource(stream, { startingPosition: lambda.StartingPosition.LATEST, onFailure: FailureDestination.toBucket(bucket) });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: arn(idOf(stream)),
      StartingPosition: 'LATEST',
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      DestinationConfig: { OnFailure: { Destination: arn(idOf(bucket)) } },
    });
    const statements = routerStatements(template, idOf(router.role));
    const onBucket = statements.filter((s) => JSON.stringify(s.Resource).includes(idOf(bucket)));
    assert.deepEqual(onBucket.map((s) => [actions(s), s.Resource]), [
      [['s3:PutObject'], { 'Fn::Join': ['', [arn(idOf(bucket)), '/*']] }],
      [['s3:ListBucket'], arn(idOf(bucket))],
    ]);
    const onKey = statements.filter((s) => JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(key))));
    assert.deepEqual(onKey.map(actions), [['kms:GenerateDataKey']]);
    assert.equal(router.streamFailuresQueue, undefined);
    template.resourceCountIs('AWS::SQS::Queue', 1);
    // The router's own objects/* grant is acknowledged: cdk-nag finds nothing under the router.
    const findings = nagPacks(stack.node.root as App).flatMap((pack) => pack.validateScope(stack).violations)
      .flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} @ ${r.constructPath}`));
    assert.deepEqual(findings.filter((f) => f.includes('/Router/')), []);
  });

  it('creates the stream-failures queue once, for every stream source without its own destination, and alarms on it', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const table = new dynamodb.Table(stack, 'Accounts', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      stream: dynamodb.StreamViewType.NEW_IMAGE,
    });
    router.addDynamoDbSource(table, { startingPosition: lambda.StartingPosition.TRIM_HORIZON });
    router.addKinesisSource(new kinesis.Stream(stack, 'Events'), { startingPosition: lambda.StartingPosition.TRIM_HORIZON });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::SQS::Queue', 2);
    const failures = idOf(router.streamFailuresQueue!);
    for (const mapping of Object.values(template.findResources('AWS::Lambda::EventSourceMapping'))) {
      assert.deepEqual(mapping.Properties.DestinationConfig, { OnFailure: { Destination: arn(failures) } });
      assert.equal(mapping.Properties.BisectBatchOnFunctionError, true);
      assert.equal(mapping.Properties.MaximumRetryAttempts, 10);
    }
    assert.deepEqual(router.alarms.map((a) => a.node.id).filter((id) => /StreamFailures|IteratorAge/.test(id)),
      ['StreamFailuresDepth', 'RouterIteratorAge', 'EventsIteratorAge']);
  });

  it('refuses a table whose stream CDK does not know, and says how to import it', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    assert.throws(
      () => router.addDynamoDbSource(dynamodb.Table.fromTableName(stack, 'Accounts', 'accounts'), { startingPosition: lambda.StartingPosition.LATEST }),
      /addDynamoDbSource: Consumer\/Accounts has no stream CDK knows of: .*Table.fromTableAttributes\(\{ tableName, tableStreamArn \}\)/,
    );
  });

  it('offers an EventBridge rule target that invokes the router (and only the router)', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const dlq = new sqs.Queue(stack, 'EventDeadLetters');
    new events.Rule(stack, 'TenantEvents', {
      eventPattern: { source: ['platform.tenants'] },
      targets: [router.eventBridgeTarget({ deadLetterQueue: dlq, retryAttempts: 2 })],
    });
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::Events::Rule', {
      Targets: [Match.objectLike({ Arn: arn(idOf(router.function)), DeadLetterConfig: { Arn: arn(idOf(dlq)) }, RetryPolicy: { MaximumRetryAttempts: 2 } })],
    });
    template.hasResourceProperties('AWS::Lambda::Permission', {
      FunctionName: arn(idOf(router.function)),
      Principal: 'events.amazonaws.com',
    });
    assert.equal(JSON.stringify(template.findResources('AWS::Lambda::Permission')).includes(idOf(backend)), false);
  });

  it('adds an operator queue: an alarm named after its label and a line on the dashboard', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    router.addOperatorQueue('backend failures', new sqs.Queue(stack, 'BackendFailures'), 'Backend async invocations failed for good.', 3);
    const alarm = router.alarms.find((a) => a.node.id === 'BackendFailuresDepth');
    assert.ok(alarm);
    Template.fromStack(stack).hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 3, MetricName: 'ApproximateNumberOfMessagesVisible' });
  });
});

describe('TenantRouter: tenant registry', () => {
  it('creates the registry table (tenantId S, the data key, PITR) and lets the router only get and batch-get it', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend, { tenantRegistry: {} });
    const template = Template.fromStack(stack);
    const table = template.toJSON().Resources[idOf(router.tenantRegistryTable!)];
    assert.deepEqual(table.Properties, {
      KeySchema: [{ AttributeName: 'tenantId', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'tenantId', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: arn(idOf(router.encryptionKey)) },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    });
    const statements = routerStatements(template, idOf(router.role));
    const dynamo = statements.filter((s) => actions(s).some((a) => a.startsWith('dynamodb:')));
    assert.deepEqual(dynamo, [
      { Sid: 'TenantRegistry', Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'], Effect: 'Allow', Resource: arn(idOf(router.tenantRegistryTable!)) },
    ]);
    const onKey = statements.filter((s) => JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(router.encryptionKey))));
    assert.ok(onKey.some((s) => actions(s).includes('kms:Decrypt')));
    assert.deepEqual(routerEnv(template, idOf(router.function)).ROUTER_TENANT_REGISTRY_TABLE, ref(idOf(router.tenantRegistryTable!)));
  });

  it('takes a given table, with the cache TTL, size and suspended-tenant handling as variables', () => {
    const { stack, backend } = backendStack(newApp());
    const key = new kms.Key(stack, 'RegistryKey');
    const table = new dynamodb.Table(stack, 'Tenants', {
      partitionKey: { name: 'tenantId', type: dynamodb.AttributeType.STRING },
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
    });
    const router = newRouter(stack, backend, {
      tenantRegistry: { table, cacheTtl: Duration.seconds(15), cacheSize: 500, suspendedTenants: SuspendedTenants.HOLD },
      maxInFlightPerTenant: 4,
    });
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    const env = routerEnv(template, idOf(router.function));
    assert.deepEqual(
      [env.ROUTER_TENANT_REGISTRY_TABLE, env.ROUTER_TENANT_REGISTRY_TTL_SECONDS, env.ROUTER_TENANT_REGISTRY_CACHE_SIZE, env.ROUTER_SUSPENDED_TENANTS, env.ROUTER_MAX_IN_FLIGHT_PER_TENANT],
      [ref(idOf(table)), '15', '500', 'hold', '4'],
    );
    const statements = routerStatements(template, idOf(router.role));
    assert.ok(statements.some((s) => s.Sid === 'TenantRegistry' && JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(table)))));
    assert.ok(statements.some((s) => JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(key))) && actions(s).includes('kms:Decrypt')));
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:Query', 'dynamodb:Scan']) {
      assert.ok(!statements.flatMap(actions).includes(action), action);
    }
  });

  it('refuses a TTL below 1 s or not whole seconds, naming the variable', () => {
    for (const [ttl, shown] of [[Duration.seconds(0), '0'], [Duration.millis(1500), '1.5']] as const) {
      const { stack, backend } = backendStack(newApp());
      assert.throws(() => newRouter(stack, backend, { tenantRegistry: { cacheTtl: ttl } }),
        new RegExp(`ROUTER_TENANT_REGISTRY_TTL_SECONDS: must be an integer >= 1, got ${shown.replace('.', '\\.')}$`));
    }
  });
});

describe('SourceQueue (and SQS fair queues)', () => {
  it('is a standard queue by default, with a dead-letter queue and the visibility timeout the router needs', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const source = new SourceQueue(stack, 'Orders', { router });
    router.addSqsSource(source.queue);
    const template = Template.fromStack(stack);
    const queue = template.toJSON().Resources[idOf(source.queue)].Properties;
    assert.equal(queue.FifoQueue, undefined);
    assert.equal(queue.ContentBasedDeduplication, undefined);
    assert.equal(queue.VisibilityTimeout, 6 * 60 + 1);
    assert.deepEqual(queue.RedrivePolicy, { deadLetterTargetArn: arn(idOf(source.deadLetterQueue)), maxReceiveCount: 5 });
    assert.deepEqual(queue.KmsMasterKeyId, arn(idOf(router.encryptionKey)));
    // Named after the SourceQueue, not its inner queue: OrdersMessageAge, OrdersDeadLettersDepth.
    assert.deepEqual(router.alarms.map((a) => a.node.id).filter((id) => id.startsWith('Orders')), ['OrdersMessageAge', 'OrdersDeadLettersDepth']);
    assert.deepEqual(Annotations.fromStack(stack).findWarning('*', Match.anyValue()), []);
  });

  it('makes content-based deduplication a FIFO option, off unless asked, and refuses it on a standard queue', () => {
    const { stack, backend } = backendStack(newApp());
    const router = newRouter(stack, backend);
    const plain = new SourceQueue(stack, 'Ledger', { router, fifo: true });
    const dedup = new SourceQueue(stack, 'Payments', { router, fifo: true, contentBasedDeduplication: true });
    const resources = Template.fromStack(stack).toJSON().Resources;
    assert.equal(resources[idOf(plain.queue)].Properties.FifoQueue, true);
    assert.equal(resources[idOf(plain.queue)].Properties.ContentBasedDeduplication, undefined);
    assert.equal(resources[idOf(plain.queue)].Properties.VisibilityTimeout, 360);
    assert.equal(resources[idOf(plain.deadLetterQueue)].Properties.FifoQueue, true);
    assert.equal(resources[idOf(dedup.queue)].Properties.ContentBasedDeduplication, true);
    assert.throws(() => new SourceQueue(stack, 'Wrong', { router, contentBasedDeduplication: true }), /contentBasedDeduplication applies to FIFO queues only/);
  });
});
