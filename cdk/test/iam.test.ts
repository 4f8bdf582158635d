// Least privilege in the full example: every statement of both roles, and every key policy.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Capture, Match } from 'aws-cdk-lib/assertions';
import { arn, defaultStack, idOf, ref } from './helpers';

type Statement = { [key: string]: unknown };

const lambdaTrust = {
  Version: '2012-10-17',
  Statement: [{ Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } }],
};

/** The statements of the one policy attached to `roleId`, captured from the template. */
function statementsOf(roleId: string): Statement[] {
  const { template } = defaultStack();
  const statements = new Capture();
  template.hasResourceProperties('AWS::IAM::Policy', {
    Roles: [ref(roleId)],
    PolicyDocument: { Version: '2012-10-17', Statement: statements },
  });
  const policies = template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(roleId)] } });
  assert.equal(Object.keys(policies).length, 1, 'one policy per role');
  return statements.asArray();
}

const actionsOf = (s: Statement): string[] => ([] as string[]).concat(s.Action as string | string[]);
const resourcesOf = (s: Statement): unknown[] => ([] as unknown[]).concat(s.Resource);

describe('IAM: least privilege', () => {
  it("has exactly three roles: the two functions' for Lambda, and the backend's tenant access role, without managed or inline policies", () => {
    const { stack, template } = defaultStack();
    template.resourceCountIs('AWS::IAM::Role', 3);
    template.resourceCountIs('AWS::IAM::Policy', 3);
    template.resourceCountIs('AWS::IAM::ManagedPolicy', 0);
    for (const role of [stack.router.role, stack.backend.role]) {
      const props = template.toJSON().Resources[idOf(role)].Properties;
      assert.deepEqual(Object.keys(props).sort(), ['AssumeRolePolicyDocument', 'Description']);
      assert.deepEqual(props.AssumeRolePolicyDocument, lambdaTrust);
    }
    const access = template.toJSON().Resources[idOf(stack.backend.tenantAccessRole!.role)].Properties;
    assert.deepEqual(Object.keys(access).sort(), ['AssumeRolePolicyDocument', 'Description']);
    // the backend's execution role only, with exactly one session tag: tenant_id
    assert.deepEqual(access.AssumeRolePolicyDocument, {
      Version: '2012-10-17',
      Statement: [
        {
          Action: ['sts:AssumeRole', 'sts:TagSession'],
          Condition: {
            StringLike: { 'aws:RequestTag/tenant_id': '?*' },
            'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenant_id'], 'sts:TransitiveTagKeys': ['tenant_id'] },
          },
          Effect: 'Allow',
          Principal: { AWS: arn(idOf(stack.backend.role)) },
        },
      ],
    });
  });

  it("gives the tenant access role exactly these statements, each scoped by the session's tenant_id tag", () => {
    const { stack, template } = defaultStack();
    const tag = '${aws:PrincipalTag/tenant_id}';
    const fn = ref(idOf(stack.backend.function));
    const pseudo = (name: string) => ({ Ref: `AWS::${name}` });
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(idOf(stack.backend.tenantAccessRole!.role))],
      PolicyDocument: Match.objectEquals({
        Version: '2012-10-17',
        Statement: [
          // the idempotency records of the session's tenant: <function>#<tenant>#<key>
          {
            Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
            Condition: {
              'ForAllValues:StringLike': {
                'dynamodb:LeadingKeys': [{ 'Fn::Join': ['', [fn, `#${tag}`]] }, { 'Fn::Join': ['', [fn, `#${tag}#*`]] }],
              },
            },
            Effect: 'Allow',
            Resource: arn(idOf(stack.backend.idempotencyTable)),
          },
          // the table's key, through DynamoDB only
          {
            Action: 'kms:Decrypt',
            Condition: { StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', ['dynamodb.', pseudo('Region'), '.', pseudo('URLSuffix')]] } } },
            Effect: 'Allow',
            Resource: arn(idOf(stack.dataKey)),
          },
          // ssm:/tenants/<tenant>/<name> references
          {
            Action: ['ssm:GetParameter', 'ssm:GetParameters'],
            Effect: 'Allow',
            Resource: {
              'Fn::Join': ['', ['arn:', pseudo('Partition'), ':ssm:', pseudo('Region'), ':', pseudo('AccountId'), `:parameter/tenants/${tag}/*`]],
            },
          },
          // secretsmanager: references, to secrets tagged with the session's tenant
          {
            Action: 'secretsmanager:GetSecretValue',
            Condition: { StringEquals: { 'secretsmanager:ResourceTag/tenant_id': tag } },
            Effect: 'Allow',
            Resource: {
              'Fn::Join': ['', ['arn:', pseudo('Partition'), ':secretsmanager:', pseudo('Region'), ':', pseudo('AccountId'), ':secret:*']],
            },
          },
        ],
      }),
    });
  });

  it("gives the router exactly these statements: invoke the backend, send to the quarantine queue, its event sources' needs", () => {
    const { stack, template } = defaultStack();
    const key = arn(idOf(stack.dataKey));
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(idOf(stack.router.role))],
      PolicyDocument: Match.objectEquals({
        Version: '2012-10-17',
        Statement: [
          // its own log group only (instead of AWSLambdaBasicExecutionRole)
          {
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            Effect: 'Allow',
            Resource: arn(idOf(stack.router.logGroup)),
          },
          // no resource-level permissions exist for these (acknowledged AwsSolutions-IAM5)
          {
            Action: ['dynamodb:ListStreams', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments'],
            Effect: 'Allow',
            Resource: '*',
          },
          { Sid: 'InvokeBackend', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: arn(idOf(stack.backend.function)) },
          { Sid: 'Quarantine', Action: 'sqs:SendMessage', Effect: 'Allow', Resource: arn(idOf(stack.router.quarantineQueue)) },
          // the stack key: read the encrypted sources, write the quarantine and stream-failure queues
          { Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: key },
          // records too large for a quarantine message: put objects into the quarantine bucket, nothing else
          {
            Sid: 'QuarantineBucket',
            Action: 's3:PutObject',
            Effect: 'Allow',
            Resource: { 'Fn::Join': ['', [arn(idOf(stack.router.quarantineBucket)), '/*']] },
          },
          // the tenant registry: read tenants, nothing else (its key: kms:Decrypt above)
          {
            Sid: 'TenantRegistry',
            Action: ['dynamodb:BatchGetItem', 'dynamodb:GetItem'],
            Effect: 'Allow',
            Resource: arn(idOf(stack.router.tenantRegistryTable!)),
          },
          // the two SQS mappings
          {
            Action: [
              'sqs:ChangeMessageVisibility',
              'sqs:DeleteMessage',
              'sqs:GetQueueAttributes',
              'sqs:GetQueueUrl',
              'sqs:ReceiveMessage',
            ],
            Effect: 'Allow',
            Resource: [arn(idOf(stack.sources.fifoQueue)), arn(idOf(stack.sources.queue))],
          },
          // the stream mappings' on-failure destination (Lambda sends with the router's role)
          { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: arn(idOf(stack.router.streamFailuresQueue!)) },
          // the Kinesis mapping
          {
            Action: [
              'kinesis:DescribeStream',
              'kinesis:DescribeStreamConsumer',
              'kinesis:DescribeStreamSummary',
              'kinesis:GetRecords',
              'kinesis:GetShardIterator',
              'kinesis:ListShards',
              'kinesis:ListStreams',
              'kinesis:SubscribeToShard',
            ],
            Effect: 'Allow',
            Resource: arn(idOf(stack.sources.stream)),
          },
          // the DynamoDB mapping
          {
            Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'],
            Effect: 'Allow',
            Resource: { 'Fn::GetAtt': [idOf(stack.sources.table), 'StreamArn'] },
          },
        ],
      }),
    });
  });

  it('lets the router invoke the backend and nothing else, and send only to the quarantine queue and the stream-failure queue', () => {
    const { stack } = defaultStack();
    const statements = statementsOf(idOf(stack.router.role));
    const lambdaStatements = statements.filter((s) => actionsOf(s).some((a) => a.startsWith('lambda:')));
    assert.deepEqual(lambdaStatements.map(actionsOf), [['lambda:InvokeFunction']]);
    assert.deepEqual(lambdaStatements.flatMap(resourcesOf), [arn(idOf(stack.backend.function))]);
    const sends = statements.filter((s) => actionsOf(s).includes('sqs:SendMessage'));
    assert.deepEqual(sends.flatMap(resourcesOf), [arn(idOf(stack.router.quarantineQueue)), arn(idOf(stack.router.streamFailuresQueue!))]);
    for (const s of sends) {
      assert.deepEqual(actionsOf(s), ['sqs:SendMessage'], 'no GetQueueAttributes / GetQueueUrl with the sends');
    }
    // Nothing is Deny-free wildcarded except the actions that have no resource-level permissions.
    for (const s of statements) {
      assert.equal(s.Effect, 'Allow');
      for (const action of actionsOf(s)) {
        assert.doesNotMatch(action, /\*/, `no wildcard action (${action})`);
      }
      if (resourcesOf(s).includes('*')) {
        assert.deepEqual(actionsOf(s), ['dynamodb:ListStreams', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments']);
      }
    }
  });

  it('lets the router put objects into the quarantine bucket and do nothing else in S3; nobody else touches S3', () => {
    const { stack } = defaultStack();
    const s3Statements = statementsOf(idOf(stack.router.role)).filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    assert.deepEqual(s3Statements, [
      {
        Sid: 'QuarantineBucket',
        Action: 's3:PutObject',
        Effect: 'Allow',
        Resource: { 'Fn::Join': ['', [arn(idOf(stack.router.quarantineBucket)), '/*']] },
      },
    ]);
    // encrypting with the bucket's key (SSE-KMS) takes kms:GenerateDataKey on it
    const keyStatement = statementsOf(idOf(stack.router.role)).find((s) => JSON.stringify(s.Resource) === JSON.stringify(arn(idOf(stack.dataKey))));
    assert.ok(keyStatement && actionsOf(keyStatement).includes('kms:GenerateDataKey'));
    const backend = statementsOf(idOf(stack.backend.role));
    assert.equal(backend.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:'))).length, 0);
  });

  it('gives the backend nothing beyond its logs, tracing, assuming its tenant access role and its two destinations', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(idOf(stack.backend.role))],
      PolicyDocument: Match.objectEquals({
        Version: '2012-10-17',
        Statement: [
          {
            Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            Effect: 'Allow',
            Resource: arn(idOf(stack.backend.logGroup)),
          },
          { Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Effect: 'Allow', Resource: '*' },
          // the tenant access role, and nothing of the data itself (the idempotency records are the access role's)
          {
            Sid: 'AssumeTenantAccessRole',
            Action: ['sts:AssumeRole', 'sts:TagSession'],
            Effect: 'Allow',
            Resource: arn(idOf(stack.backend.tenantAccessRole!.role)),
          },
          // OnFailure destination
          {
            Sid: 'AsyncFailureDestination',
            Action: 'sqs:SendMessage',
            Effect: 'Allow',
            Resource: arn(idOf(stack.backend.failureQueue)),
          },
          // the stack key: the failures queue (GenerateDataKey, Decrypt)
          { Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Effect: 'Allow', Resource: arn(idOf(stack.dataKey)) },
          // OnSuccess destination
          { Action: 'events:PutEvents', Effect: 'Allow', Resource: arn(idOf(stack.backend.resultsBus)) },
        ],
      }),
    });
  });

  it('grants no resource-based invoke permission: nobody but the router role may invoke the backend', () => {
    const { template } = defaultStack();
    template.resourceCountIs('AWS::Lambda::Permission', 0);
    template.resourceCountIs('AWS::Lambda::Url', 0);
  });

  it('keeps key policies to the account, plus the services that encrypt with them: CloudWatch Logs and EventBridge on the data key, CloudWatch on the alarm topic key', () => {
    const { stack, template } = defaultStack();
    const accountRoot = {
      Action: 'kms:*',
      Effect: 'Allow',
      Principal: { AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'AWS::AccountId' }, ':root']] } },
      Resource: '*',
    };
    const keys = template.toJSON().Resources;
    const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
    const busArn = join('arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' },
      `:event-bus/${keys[idOf(stack.backend.resultsBus)].Properties.Name}`);
    assert.deepEqual(keys[idOf(stack.dataKey)].Properties.KeyPolicy.Statement, [
      accountRoot,
      // the log groups of this account and region only
      {
        Sid: 'AllowCloudWatchLogsOfThisAccount',
        Action: ['kms:Decrypt*', 'kms:Describe*', 'kms:Encrypt*', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'],
        Condition: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': join('arn:', { Ref: 'AWS::Partition' }, ':logs:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':log-group:*'),
          },
        },
        Effect: 'Allow',
        Principal: { Service: join('logs.', { Ref: 'AWS::Region' }, '.amazonaws.com') },
        Resource: '*',
      },
      // the results bus and its archive, that bus only (what CDK adds for them)
      {
        Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:GenerateDataKey'],
        Condition: {
          StringEquals: {
            'aws:SourceAccount': { Ref: 'AWS::AccountId' },
            'aws:SourceArn': busArn,
            'kms:EncryptionContext:aws:events:event-bus:arn': busArn,
          },
        },
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Resource: '*',
      },
      {
        Sid: 'Allow EventBridge to use kms operations',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey', 'kms:ReEncrypt*'],
        Condition: { StringEquals: { 'kms:EncryptionContext:aws:events:event-bus:arn': busArn } },
        Effect: 'Allow',
        Principal: { Service: 'events.amazonaws.com' },
        Resource: '*',
      },
      { Sid: 'Allow EventBridge to call kms:DescribeKey', Action: 'kms:DescribeKey', Effect: 'Allow', Principal: { Service: 'events.amazonaws.com' }, Resource: '*' },
    ]);
    template.hasResourceProperties('AWS::KMS::Key', {
      Description: 'Encrypts the tenant router alarm topic',
      EnableKeyRotation: true,
      KeyPolicy: {
        Version: '2012-10-17',
        Statement: [
          accountRoot,
          {
            Sid: 'AllowCloudWatchAlarmsToPublish',
            Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          },
        ],
      },
    });
  });
});
