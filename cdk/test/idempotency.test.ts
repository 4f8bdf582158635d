// The backend's idempotency table in the full example: its layout, its settings, and who may use it.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CfnParameter, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { stackPropsFromContext } from '../examples/full/context';
import { IDEMPOTENCY_RECORD_ACTIONS, IdempotencyTable } from '../lib/idempotency-table';
import { seconds } from '../lib/router-config';
import { FullDeploymentStack } from '../examples/full/stack';
import { arn, buildStack, Built, defaultStack, idOf, newApp, ref } from './helpers';

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
  it('gives the backend the table name and the default TTL of 3600 s', () => {
    const built = defaultStack();
    assert.deepEqual(backendEnv(built), {
      BACKEND_TENANT_CONFIG_DIR: '/var/task/tenants',
      BACKEND_IDEMPOTENCY_TABLE: ref(idOf(built.stack.backend.idempotencyTable)),
      BACKEND_IDEMPOTENCY_TTL_SECONDS: '3600',
    });
  });

  it('takes the TTL as a stack prop, in whole seconds', () => {
    assert.equal(backendEnv(buildStack({ backendIdempotencyTtl: Duration.minutes(15) })).BACKEND_IDEMPOTENCY_TTL_SECONDS, '900');
    assert.equal(backendEnv(buildStack({ backendIdempotencyTtl: Duration.seconds(1) })).BACKEND_IDEMPOTENCY_TTL_SECONDS, '1');
    assert.equal(backendEnv(buildStack({ backendIdempotencyTtl: Duration.days(2) })).BACKEND_IDEMPOTENCY_TTL_SECONDS, '172800');
  });

  it('refuses a TTL below 1 s, or not whole seconds, at synth, naming the variable', () => {
    const cases: [Duration, RegExp][] = [
      [Duration.seconds(0), /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 1, got 0$/],
      [Duration.millis(500), /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 1, got 0\.5$/],
      [Duration.millis(1500), /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 1, got 1\.5$/],
    ];
    for (const [backendIdempotencyTtl, error] of cases) {
      assert.throws(() => buildStack({ backendIdempotencyTtl }), error);
    }
  });

  it('passes a CDK token through unchecked (the backend judges it at start)', () => {
    const stack = new Stack();
    const ttl = new CfnParameter(stack, 'IdempotencyTtl', { type: 'Number' }).valueAsNumber;
    assert.deepEqual(stack.resolve(seconds('BACKEND_IDEMPOTENCY_TTL_SECONDS', Duration.seconds(ttl), 1)), { Ref: 'IdempotencyTtl' });
  });

  it('reads the TTL from the context key idempotencyTtlSeconds, and refuses one below 1 naming the variable', () => {
    const contextJwt = {
      placeholderAssets: 'true',
      jwksUrl: 'https://issuer.example.com/jwks.json',
      jwtIssuer: 'https://issuer.example.com',
      jwtAudience: 'tenant-router',
    };
    const app = newApp({ ...contextJwt, idempotencyTtlSeconds: '600' });
    const props = stackPropsFromContext(app.node);
    assert.equal(props.backendIdempotencyTtl?.toSeconds(), 600);
    const stack = new FullDeploymentStack(app, 'TenantRouter', props);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ BACKEND_IDEMPOTENCY_TTL_SECONDS: '600' }) },
    });
    assert.equal(stackPropsFromContext(newApp({ idempotencyTtlSeconds: 7200 }).node).backendIdempotencyTtl?.toSeconds(), 7200);
    assert.equal(stackPropsFromContext(newApp().node).backendIdempotencyTtl, undefined);

    for (const value of ['0', '-5', 0, '2.5']) {
      assert.throws(
        () => stackPropsFromContext(newApp({ idempotencyTtlSeconds: value }).node),
        /BACKEND_IDEMPOTENCY_TTL_SECONDS: must be an integer >= 1/,
        JSON.stringify(value),
      );
    }
    assert.throws(() => stackPropsFromContext(newApp({ idempotencyTtlSeconds: '1h' }).node), /context idempotencyTtlSeconds: expected a number/);
  });
});

describe('idempotency table access', () => {
  it('lets the backend get, put, update and delete items on the table ARN only, in one statement', () => {
    const built = defaultStack();
    const { stack } = built;
    const dynamo = statementsOf(built, stack.backend.role).filter((s) => actionsOf(s).some((a) => a.startsWith('dynamodb:')));
    assert.deepEqual(dynamo, [
      {
        Sid: 'IdempotencyRecords',
        Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Effect: 'Allow',
        // a single ARN: not a list, no `<table>/index/*`, no stream
        Resource: arn(idOf(stack.backend.idempotencyTable)),
      },
    ]);
    assert.deepEqual([...IDEMPOTENCY_RECORD_ACTIONS].sort(), dynamo.flatMap(actionsOf));
  });

  it('lets the backend use the table key with kms:Decrypt, without the extra key actions CDK grant helpers add', () => {
    const built = defaultStack();
    const { stack } = built;
    const onKey = statementsOf(built, stack.backend.role).filter((s) => JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(stack.dataKey))));
    // Decrypt for the table key (and the failures queue), GenerateDataKey for the failures queue only.
    assert.deepEqual(onKey.map(actionsOf), [['kms:Decrypt', 'kms:GenerateDataKey']]);
    const all = statementsOf(built, stack.backend.role).flatMap(actionsOf);
    for (const action of ['kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:DescribeKey', 'kms:CreateGrant']) {
      assert.ok(!all.includes(action), `backend has no ${action}`);
    }
    for (const action of all) {
      assert.doesNotMatch(action, /^dynamodb:.*\*|^dynamodb:\*$/, `no wildcard DynamoDB action (${action})`);
    }
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

  it('is referenced by the backend function, the backend policy and the output, by nothing else', () => {
    const built = defaultStack();
    const { stack } = built;
    const tableId = idOf(stack.backend.idempotencyTable);
    const json = built.template.toJSON();
    const referencing = Object.entries<object>(json.Resources)
      .filter(([id, resource]) => id !== tableId && JSON.stringify(resource).includes(`"${tableId}"`))
      .map(([id]) => id)
      .sort();
    const backendPolicy = Object.keys(built.template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(idOf(stack.backend.role))] } }));
    assert.deepEqual(referencing, [idOf(stack.backend.function), ...backendPolicy].sort());
    const outputs = Object.entries<object>(json.Outputs).filter(([, o]) => JSON.stringify(o).includes(`"${tableId}"`));
    assert.deepEqual(outputs.map(([name]) => name), ['IdempotencyTableName']);
  });
});
