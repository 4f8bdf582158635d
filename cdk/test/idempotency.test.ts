// The backend's idempotency table in the full example: its layout, its settings (the TTL's floor),
// and who may use it; and the router's warning when the TTL is shorter than a source's retry
// horizon.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CfnParameter, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { stackPropsFromContext } from '../examples/full/context';
import { IDEMPOTENCY_RECORD_ACTIONS, IdempotencyTable, idempotencyTtlSeconds } from '../lib/idempotency-table';
import { FullDeploymentStack } from '../examples/full/stack';
import { InvocationType, RustBackend, RustCode } from '../lib';
import { arn, backendStack, buildStack, Built, defaultStack, idOf, newApp, newRouter, ref } from './helpers';

type Statement = { [key: string]: unknown };

const actionsOf = (s: Statement): string[] => ([] as string[]).concat(s.Action as string | string[]);

/** The statements of the one policy attached to `role` in a built stack. */
function statementsOf(built: Built, role: iam.IRole): Statement[] {
  const statements = new Capture();
  built.template.hasResourceProperties('AWS::IAM::Policy', {
    Roles: [ref(idOf(role))],
    PolicyDocument: { Statement: statements },
  });
  return statements.asArray();
}

/** The backend function's environment variables. */
function backendEnv(built: Built): { [name: string]: unknown } {
  return built.template.toJSON().Resources[idOf(built.stack.backend.function)].Properties.Environment.Variables;
}

describe('backend idempotency table', () => {
  it("has Powertools' layout: partition key id (S) only, TTL on expiration; on demand, SSE with the stack key, PITR", () => {
    const { stack, template } = defaultStack();
    // the source table, this one and the tenant registry
    template.resourceCountIs('AWS::DynamoDB::Table', 3);
    const table = template.toJSON().Resources[idOf(stack.backend.idempotencyTable)];
    assert.equal(table.Type, 'AWS::DynamoDB::Table');
    // Exactly these properties: no sort key, no index, no stream, no provisioned throughput, no fixed name.
    assert.deepEqual(table.Properties, {
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expiration', Enabled: true },
      SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: arn(idOf(stack.dataKey)) },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
    });
    assert.equal(stack.backend.idempotencyTable.node.path, 'TenantRouter/Backend/Idempotency/Table');
  });

  it('follows dataRemovalPolicy like the other data stores: retained and deletion-protected by default, destroyable for development', () => {
    const table = (built: Built) => built.template.toJSON().Resources[idOf(built.stack.backend.idempotencyTable)];
    const retained = table(defaultStack());
    assert.equal(retained.DeletionPolicy, 'Retain');
    assert.equal(retained.UpdateReplacePolicy, 'Retain');
    assert.equal(retained.Properties.DeletionProtectionEnabled, true);
    const dev = table(buildStack({ dataRemovalPolicy: RemovalPolicy.DESTROY }));
    assert.equal(dev.DeletionPolicy, 'Delete');
    assert.equal(dev.Properties.DeletionProtectionEnabled, false);
  });

  it('is named by the output IdempotencyTableName', () => {
    const { stack, template } = defaultStack();
    template.hasOutput('IdempotencyTableName', { Value: ref(idOf(stack.backend.idempotencyTable)) });
  });
});

describe('backend idempotency settings', () => {
  it("gives the backend the table name and the example's TTL of 4 days (its source queues' retention)", () => {
    const built = defaultStack();
    assert.deepEqual(backendEnv(built), {
      BACKEND_TENANT_CONFIG_DIR: '/var/task/tenants',
      BACKEND_IDEMPOTENCY_TABLE: ref(idOf(built.stack.backend.idempotencyTable)),
      BACKEND_IDEMPOTENCY_TTL_SECONDS: '345600',
      BACKEND_TENANT_ROLE_ARN: arn(idOf(built.stack.backend.tenantAccessRole!.role)),
    });
  });

  it("keeps RustBackend's own default of 3600 s (the guard's and Powertools')", () => {
    const stack = new Stack(newApp(), 'Backend');
    const backend = new RustBackend(stack, 'Backend', { encryptionKey: new kms.Key(stack, 'Key'), code: RustCode.placeholder() });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(idOf(backend.role)),
      Environment: { Variables: Match.objectLike({ BACKEND_IDEMPOTENCY_TTL_SECONDS: '3600' }) },
    });
  });

  it('takes the TTL as a stack prop, in whole seconds, from 900 s', () => {
    assert.equal(backendEnv(buildStack({ backendIdempotencyTtl: Duration.minutes(15) })).BACKEND_IDEMPOTENCY_TTL_SECONDS, '900');
    assert.equal(backendEnv(buildStack({ backendIdempotencyTtl: Duration.hours(1) })).BACKEND_IDEMPOTENCY_TTL_SECONDS, '3600');
    assert.equal(backendEnv(buildStack({ backendIdempotencyTtl: Duration.days(2) })).BACKEND_IDEMPOTENCY_TTL_SECONDS, '172800');
  });

  it("refuses at synth a TTL below 900 s (the guard's floor, Lambda's longest timeout) or not whole seconds, naming the variable and the prop", () => {
    const cases: [Duration, RegExp][] = [
      [Duration.seconds(0), /^Error: BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 900, got 0 \(idempotencyTtl: at least 900 s, Lambda's longest timeout/],
      [Duration.seconds(1), /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 900, got 1 \(idempotencyTtl: .*a completed record must be remembered at least as long as a run can last\)$/],
      [Duration.seconds(899), /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 900, got 899 \(idempotencyTtl: /],
      [Duration.millis(900_500), /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 900, got 900\.5 \(idempotencyTtl: /],
    ];
    for (const [backendIdempotencyTtl, error] of cases) {
      assert.throws(() => buildStack({ backendIdempotencyTtl }), (e: Error) => error.test(String(e)), String(backendIdempotencyTtl.toSeconds({ integral: false })));
    }
  });

  it("refuses a TTL shorter than the backend's timeout, naming the variable and the prop", () => {
    // Lambda's longest timeout is 900 s, but CDK does not refuse a longer one: the check holds on its own.
    const backend = (timeout: Duration, idempotencyTtl: Duration) => {
      const stack = new Stack(newApp(), 'Backend');
      const key = new kms.Key(stack, 'Key');
      return new RustBackend(stack, 'Backend', { encryptionKey: key, code: RustCode.placeholder(), timeout, idempotencyTtl });
    };
    assert.throws(
      () => backend(Duration.minutes(20), Duration.minutes(15)),
      /BACKEND_IDEMPOTENCY_TTL_SECONDS: idempotencyTtl \(900 s\) is shorter than the backend's timeout \(1200 s\): a redelivery could run a record again/,
    );
    // (such a stack would not synthesize: CloudFormation's rules refuse the timeout)
    assert.equal(idempotencyTtlSeconds('idempotencyTtl', Duration.minutes(20), Duration.minutes(20)), '1200');
  });

  it('passes a CDK token through unchecked (the backend judges it at start)', () => {
    const stack = new Stack();
    const ttl = new CfnParameter(stack, 'IdempotencyTtl', { type: 'Number' }).valueAsNumber;
    assert.deepEqual(stack.resolve(idempotencyTtlSeconds('idempotencyTtl', Duration.seconds(ttl), Duration.seconds(30))), { Ref: 'IdempotencyTtl' });
  });

  it('reads the TTL from the context key idempotencyTtlSeconds, and refuses one below 900 naming the variable', () => {
    const contextJwt = {
      placeholderAssets: 'true',
      jwksUrl: 'https://issuer.example.com/jwks.json',
      jwtIssuer: 'https://issuer.example.com',
      jwtAudience: 'tenant-router',
    };
    const app = newApp({ ...contextJwt, idempotencyTtlSeconds: '1800' });
    const props = stackPropsFromContext(app.node);
    assert.equal(props.backendIdempotencyTtl?.toSeconds(), 1800);
    const stack = new FullDeploymentStack(app, 'TenantRouter', props);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ BACKEND_IDEMPOTENCY_TTL_SECONDS: '1800' }) },
    });
    assert.equal(stackPropsFromContext(newApp({ idempotencyTtlSeconds: 7200 }).node).backendIdempotencyTtl?.toSeconds(), 7200);
    assert.equal(stackPropsFromContext(newApp().node).backendIdempotencyTtl, undefined);

    for (const value of ['0', '-5', 0, '2.5', '1', '899']) {
      assert.throws(
        () => stackPropsFromContext(newApp({ idempotencyTtlSeconds: value }).node),
        /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 900, got .* \(context idempotencyTtlSeconds: /,
        JSON.stringify(value),
      );
    }
    assert.throws(() => stackPropsFromContext(newApp({ idempotencyTtlSeconds: '1h' }).node), /context idempotencyTtlSeconds: expected a number/);
  });
});

describe('idempotency table access', () => {
  it("lets the tenant access role get, put, update and delete the session tenant's records only, on the table ARN only, in one statement", () => {
    const built = defaultStack();
    const { stack } = built;
    const access = stack.backend.tenantAccessRole!;
    const dynamo = statementsOf(built, access.role).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    const fn = ref(idOf(stack.backend.function));
    assert.deepEqual(dynamo, [
      {
        Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        // the record id is <function>#<tenant>#<idempotencyKey> (shared/src/idempotency.rs record_id)
        Condition: {
          'ForAllValues:StringLike': {
            'dynamodb:LeadingKeys': [
              { 'Fn::Join': ['', [fn, '#${aws:PrincipalTag/tenant_id}']] },
              { 'Fn::Join': ['', [fn, '#${aws:PrincipalTag/tenant_id}#*']] },
            ],
          },
        },
        Effect: 'Allow',
        // a single ARN: not a list, no `<table>/index/*`, no stream
        Resource: arn(idOf(stack.backend.idempotencyTable)),
      },
    ]);
    assert.deepEqual([...IDEMPOTENCY_RECORD_ACTIONS].sort(), dynamo.flatMap(actionsOf));
  });

  it("gives the backend's execution role no DynamoDB action at all: the guard's store uses the tenant's session", () => {
    const built = defaultStack();
    const all = statementsOf(built, built.stack.backend.role).flatMap(actionsOf);
    assert.deepEqual(all.filter((a) => /^(dynamodb|s3|ssm|secretsmanager):/.test(a)), []);
  });

  it('lets the access role use the table key with kms:Decrypt through DynamoDB only, without the extra key actions CDK grant helpers add', () => {
    const built = defaultStack();
    const { stack } = built;
    const onKey = (role: iam.IRole) =>
      statementsOf(built, role).filter((s) => JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(stack.dataKey))));
    assert.deepEqual(onKey(stack.backend.tenantAccessRole!.role), [
      {
        Action: 'kms:Decrypt',
        Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['dynamodb.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] } } },
        Effect: 'Allow',
        Resource: arn(idOf(stack.dataKey)),
      },
    ]);
    // The execution role: Decrypt and GenerateDataKey for the failures queue only.
    assert.deepEqual(onKey(stack.backend.role).map(actionsOf), [['kms:Decrypt', 'kms:GenerateDataKey']]);
    const all = [stack.backend.role, stack.backend.tenantAccessRole!.role].flatMap((role) => statementsOf(built, role).flatMap(actionsOf));
    for (const action of ['kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey', 'kms:CreateGrant']) {
      assert.ok(!all.includes(action), `backend has no ${action}`);
    }
    for (const action of all) {
      assert.doesNotMatch(action, /^dynamodb:.*\*|^dynamodb:\*$/, `no wildcard DynamoDB action (${action})`);
    }
  });

  it('keeps the records on the execution role with tenantAccess: false (no access role, no BACKEND_TENANT_ROLE_ARN)', () => {
    const stack = new Stack(newApp(), 'Backend');
    const backend = new RustBackend(stack, 'Backend', { encryptionKey: new kms.Key(stack, 'Key'), code: RustCode.placeholder(), tenantAccess: false });
    assert.equal(backend.tenantAccessRole, undefined);
    const template = Template.fromStack(stack);
    template.resourceCountIs('AWS::IAM::Role', 1);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(idOf(backend.role))],
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Sid: 'IdempotencyRecords',
            Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
            Effect: 'Allow',
            Resource: arn(idOf(backend.idempotencyTable)),
          },
        ]),
      },
    });
    const env = template.toJSON().Resources[idOf(backend.function)].Properties.Environment.Variables;
    assert.equal(env.BACKEND_TENANT_ROLE_ARN, undefined);
  });

  it('grantRecordAccess alone gives exactly the four item actions on the table and kms:Decrypt on its key', () => {
    // the app's feature flags (minimizePolicies sorts the actions)
    const stack = new Stack(newApp(), 'Store');
    const key = new kms.Key(stack, 'Key');
    const store = new IdempotencyTable(stack, 'Store', { encryptionKey: key, removalPolicy: RemovalPolicy.DESTROY });
    const role = new iam.Role(stack, 'Role', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    store.grantRecordAccess(role, 'Records');
    Template.fromStack(stack).hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: Match.objectEquals({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'Records',
            Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
            Effect: 'Allow',
            Resource: arn(stack.getLogicalId(store.table.node.defaultChild as never)),
          },
          { Action: 'kms:Decrypt', Effect: 'Allow', Resource: arn(stack.getLogicalId(key.node.defaultChild as never)) },
        ],
      }),
    });
  });

  it('gives the router no access to the table: no statement names it, no item action at all', () => {
    const built = defaultStack();
    const { stack } = built;
    const tableId = idOf(stack.backend.idempotencyTable);
    const router = statementsOf(built, stack.router.role);
    assert.doesNotMatch(JSON.stringify(router), new RegExp(tableId), 'no router statement references the idempotency table');
    // Its only DynamoDB actions: reading the tenant registry, and its DynamoDB-stream mapping's on the source table's stream.
    const dynamo = router.filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    assert.deepEqual(
      dynamo.map((s) => [actionsOf(s).filter((a) => a.startsWith('dynamodb:')), s.Resource]),
      [
        [['dynamodb:ListStreams'], '*'],
        [['dynamodb:BatchGetItem', 'dynamodb:GetItem'], arn(idOf(stack.router.tenantRegistryTable!))],
        [['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'], { 'Fn::GetAtt': [idOf(stack.sources.table), 'StreamArn'] }],
      ],
    );
    const routerEnv = built.template.toJSON().Resources[idOf(stack.router.function)].Properties.Environment;
    assert.doesNotMatch(JSON.stringify(routerEnv), new RegExp(tableId));
  });

  it("is referenced by the backend function, the tenant access role's policy and the output, by nothing else", () => {
    const built = defaultStack();
    const { stack } = built;
    const tableId = idOf(stack.backend.idempotencyTable);
    const json = built.template.toJSON();
    const referencing = Object.entries<object>(json.Resources)
      .filter(([id, resource]) => id !== tableId && JSON.stringify(resource).includes(`"${tableId}"`))
      .map(([id]) => id)
      .sort();
    const accessPolicy = Object.keys(
      built.template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(idOf(stack.backend.tenantAccessRole!.role))] } }),
    );
    assert.deepEqual(referencing, [idOf(stack.backend.function), ...accessPolicy].sort());
    const outputs = Object.entries<object>(json.Outputs).filter(([, o]) => JSON.stringify(o).includes(`"${tableId}"`));
    assert.deepEqual(outputs.map(([name]) => name), ['IdempotencyTableName']);
  });
});

const WINDOW_WARNING = 'tenant-router:idempotency-ttl-below-retry-horizon';

/** The texts of the router's warnings that the idempotency TTL is shorter than a source's retry horizon. */
function windowWarnings(stack: Stack): string[] {
  return Annotations.fromStack(stack)
    .findWarning('*', Match.stringLikeRegexp(WINDOW_WARNING))
    .map((w) => String(w.entry.data));
}

/** A PER_TENANT backend whose environment configures the guard's idempotency (by default: a table, a TTL of 3600 s). */
function guardedBackend(environment: { [name: string]: string } = { BACKEND_IDEMPOTENCY_TABLE: 'records', BACKEND_IDEMPOTENCY_TTL_SECONDS: '3600' }) {
  const { stack, backend } = backendStack(newApp());
  for (const [name, value] of Object.entries(environment)) {
    backend.addEnvironment(name, value);
  }
  return { stack, backend };
}

describe("idempotency window against the sources' retry horizons (TenantRouter's synth warning)", () => {
  it('warns when an SQS queue keeps messages longer than the TTL: the queue, both durations, the double effect, a stable id', () => {
    const { stack, backend } = guardedBackend();
    const router = newRouter(stack, backend);
    const visibilityTimeout = router.queueVisibilityTimeout(Duration.seconds(1));
    router.addSqsSource(new sqs.Queue(stack, 'Orders', { visibilityTimeout }));
    router.addSqsSource(new sqs.Queue(stack, 'Short', { visibilityTimeout, retentionPeriod: Duration.hours(1) }));
    router.addSqsSource(new sqs.Queue(stack, 'Long', { visibilityTimeout, retentionPeriod: Duration.hours(2) }));
    const days = new CfnParameter(stack, 'Retention', { type: 'Number' }).valueAsNumber;
    router.addSqsSource(new sqs.Queue(stack, 'Tokened', { visibilityTimeout, retentionPeriod: Duration.seconds(days) }));
    router.addSqsSource(sqs.Queue.fromQueueArn(stack, 'Imported', 'arn:aws:sqs:us-east-1:111111111111:imported'));
    assert.deepEqual(windowWarnings(stack), [
      "Consumer/Orders: the backend's idempotency TTL (BACKEND_IDEMPOTENCY_TTL_SECONDS, 3600 s) is shorter than this source's retry " +
        'horizon (Consumer/Orders keeps a message for 345600 s (its retention period)): records redelivered after the TTL may take ' +
        'effect twice. Give the backend a TTL of at least 345600 s, or shorten the horizon (the router\'s maxRecordAge, ' +
        `ROUTER_MAX_RECORD_AGE_SECONDS, bounds it for every source) [ack: ${WINDOW_WARNING}]`,
      "Consumer/Long: the backend's idempotency TTL (BACKEND_IDEMPOTENCY_TTL_SECONDS, 3600 s) is shorter than this source's retry " +
        'horizon (Consumer/Long keeps a message for 7200 s (its retention period)): records redelivered after the TTL may take ' +
        'effect twice. Give the backend a TTL of at least 7200 s, or shorten the horizon (the router\'s maxRecordAge, ' +
        `ROUTER_MAX_RECORD_AGE_SECONDS, bounds it for every source) [ack: ${WINDOW_WARNING}]`,
    ]);
    // on the router, like its other source warnings
    assert.equal(Annotations.fromStack(stack).findWarning(`/${router.node.path}`, Match.stringLikeRegexp(WINDOW_WARNING)).length, 2);
  });

  it("warns when a stream mapping's maximum record age exceeds the TTL", () => {
    const { stack, backend } = guardedBackend();
    const router = newRouter(stack, backend);
    const start = { startingPosition: lambda.StartingPosition.TRIM_HORIZON };
    router.addKinesisSource(new kinesis.Stream(stack, 'Events'), start);
    router.addKinesisSource(new kinesis.Stream(stack, 'Recent'), { ...start, maxRecordAge: Duration.hours(1) });
    // an imported stream's mapping is still the router's: its maximum record age is known
    router.addKinesisSource(kinesis.Stream.fromStreamArn(stack, 'Imported', 'arn:aws:kinesis:us-east-1:111111111111:stream/imported'), {
      ...start,
      maxRecordAge: Duration.days(1),
    });
    const table = new dynamodb.Table(stack, 'Accounts', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
    });
    router.addDynamoDbSource(table, { ...start, maxRecordAge: Duration.hours(2) });
    const tail = ": records redelivered after the TTL may take effect twice. Give the backend a TTL of at least";
    assert.deepEqual(windowWarnings(stack).map((w) => w.slice(0, w.indexOf(tail))), [
      "Consumer/Events: the backend's idempotency TTL (BACKEND_IDEMPOTENCY_TTL_SECONDS, 3600 s) is shorter than this source's retry " +
        'horizon (the mapping of Consumer/Events delivers a record until it is 43200 s old (maxRecordAge))',
      "Consumer/Imported: the backend's idempotency TTL (BACKEND_IDEMPOTENCY_TTL_SECONDS, 3600 s) is shorter than this source's retry " +
        'horizon (the mapping of Consumer/Imported delivers a record until it is 86400 s old (maxRecordAge))',
      "Consumer/Accounts: the backend's idempotency TTL (BACKEND_IDEMPOTENCY_TTL_SECONDS, 3600 s) is shorter than this source's retry " +
        'horizon (the mapping of the stream of Consumer/Accounts delivers a record until it is 7200 s old (maxRecordAge))',
    ]);
  });

  it("takes the guard's default TTL (3600 s) when only BACKEND_IDEMPOTENCY_TABLE is set; silent for a backend without either, or an imported one", () => {
    const start = { startingPosition: lambda.StartingPosition.LATEST };
    const tableOnly = guardedBackend({ BACKEND_IDEMPOTENCY_TABLE: 'records' });
    newRouter(tableOnly.stack, tableOnly.backend).addKinesisSource(new kinesis.Stream(tableOnly.stack, 'Events'), start);
    assert.equal(windowWarnings(tableOnly.stack).length, 1);
    assert.match(windowWarnings(tableOnly.stack)[0], /BACKEND_IDEMPOTENCY_TTL_SECONDS, 3600 s/);

    const plain = backendStack(newApp());
    newRouter(plain.stack, plain.backend).addKinesisSource(new kinesis.Stream(plain.stack, 'Events'), start);
    assert.deepEqual(windowWarnings(plain.stack), []);

    const imported = backendStack(newApp());
    const fn = lambda.Function.fromFunctionArn(imported.stack, 'Imported', 'arn:aws:lambda:us-east-1:111111111111:function:backend');
    newRouter(imported.stack, fn, { backendTimeout: Duration.seconds(30) }).addKinesisSource(new kinesis.Stream(imported.stack, 'Events'), start);
    assert.deepEqual(windowWarnings(imported.stack), []);
  });

  it("is silent once the router's own maxRecordAge bounds the horizon to the TTL, and names the bound otherwise", () => {
    const start = { startingPosition: lambda.StartingPosition.LATEST };
    const bounded = guardedBackend();
    const router = newRouter(bounded.stack, bounded.backend, { maxRecordAge: Duration.minutes(30) });
    router.addKinesisSource(new kinesis.Stream(bounded.stack, 'Events'), start);
    router.addSqsSource(new sqs.Queue(bounded.stack, 'Orders', { visibilityTimeout: router.queueVisibilityTimeout(Duration.seconds(1)) }));
    assert.deepEqual(windowWarnings(bounded.stack), []);

    const longer = guardedBackend();
    newRouter(longer.stack, longer.backend, { maxRecordAge: Duration.hours(6) }).addKinesisSource(new kinesis.Stream(longer.stack, 'Events'), start);
    const [warning, ...rest] = windowWarnings(longer.stack);
    assert.deepEqual(rest, []);
    assert.match(warning, /\(the mapping of Consumer\/Events delivers a record until it is 43200 s old \(maxRecordAge\); the router rejects records older than 21600 s \(maxRecordAge\)\).*at least 21600 s/);
  });

  it("refuses a backend whose environment sets a TTL the guard refuses at start (below 900 s, not whole seconds, below its timeout), naming the variable and the backend", () => {
    for (const value of ['60', '899', 'soon', '900.5', '-1']) {
      const { stack, backend } = guardedBackend({ BACKEND_IDEMPOTENCY_TABLE: 'records', BACKEND_IDEMPOTENCY_TTL_SECONDS: value });
      assert.throws(
        () => newRouter(stack, backend),
        new RegExp(`^Error: BACKEND_IDEMPOTENCY_TTL_SECONDS: the environment of backend Consumer/Backend sets ${JSON.stringify(value).replace(/[.]/g, '\\.')}; ` +
          "it must be whole seconds, at least 900 s, Lambda's longest timeout"),
        value,
      );
    }
    const stack = new Stack(newApp(), 'Consumer');
    const long = new lambda.Function(stack, 'Backend', {
      runtime: lambda.Runtime.PYTHON_3_12,
      handler: 'app.handler',
      code: lambda.Code.fromInline('def handler(event, context):\n    return {}\n'),
      tenancyConfig: lambda.TenancyConfig.PER_TENANT,
      timeout: Duration.minutes(20),
      environment: { BACKEND_IDEMPOTENCY_TTL_SECONDS: '900' },
    });
    // event only: the router's timeouts do not follow the (undeployable) 20-minute backend
    assert.throws(() => newRouter(stack, long, { invocationType: { all: InvocationType.EVENT } }),
      /BACKEND_IDEMPOTENCY_TTL_SECONDS: the environment of backend Consumer\/Backend \(900 s\) is shorter than the backend's timeout \(1200 s\)/);
    // a token is the backend's to judge
    const tokened = backendStack(newApp());
    tokened.backend.addEnvironment('BACKEND_IDEMPOTENCY_TTL_SECONDS', new CfnParameter(tokened.stack, 'Ttl').valueAsString);
    const router = newRouter(tokened.stack, tokened.backend);
    router.addKinesisSource(new kinesis.Stream(tokened.stack, 'Events'), { startingPosition: lambda.StartingPosition.LATEST });
    assert.deepEqual(windowWarnings(tokened.stack), []);
  });

  it('in the full example: silent with its 4-day TTL; with 1 hour, one warning for each of its four sources', () => {
    assert.deepEqual(windowWarnings(defaultStack().stack), []);
    const short = buildStack({ backendIdempotencyTtl: Duration.hours(1) });
    assert.deepEqual(windowWarnings(short.stack).map((w) => w.split(':')[0]), [
      'TenantRouter/Sources/Queue/Queue/Queue',
      'TenantRouter/Sources/Fifo/Queue/Queue',
      'TenantRouter/Sources/Stream',
      'TenantRouter/Sources/Table',
    ]);
  });
});
