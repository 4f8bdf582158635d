// TenantAccessRole: the trust policy (the backend's execution role only, only with a tenant_id
// session tag), the execution role's one permission on it, BACKEND_TENANT_ROLE_ARN, every statement
// and condition of the four grants, the `/` collision (every prefix grant ends in
// `/${aws:PrincipalTag/tenant_id}/*`, so only a `/` in the tag could cross), the idempotency
// table's key layout, TenantRouter in front of such a backend, and cdk-nag.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { App, CfnParameter, Stack } from 'aws-cdk-lib';
import { Capture, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { NagPack } from 'cdk-nag';
import { acknowledgedRules, nagPacks } from '../examples/nag';
import { IdempotencyTable, TenantAccessRole } from '../lib';
import { TENANT_TABLE_ITEM_ACTIONS } from '../lib/tenant-access-role';
import { arn, backendStack, idOf, newApp, newRouter, ref } from './helpers';

const TAG = '${aws:PrincipalTag/tenant_id}';
const pseudo = (name: string) => ({ Ref: `AWS::${name}` });
const join = (...parts: unknown[]) => ({ 'Fn::Join': ['', parts] });
const viaService = (service: string) => ({ StringEquals: { 'kms:ViaService': join(`${service}.`, pseudo('Region'), '.', pseudo('URLSuffix')) } });

type Statement = { [key: string]: any };

interface Fixture {
  readonly app: App;
  readonly stack: Stack;
  readonly backend: lambda.Function;
  readonly access: TenantAccessRole;
}

/** A PER_TENANT backend (the app's feature flags) with a TenantAccessRole. */
function fixture(props: { idempotencyTable?: (stack: Stack) => dynamodb.ITable } = {}): Fixture {
  const app = newApp();
  const { stack, backend } = backendStack(app);
  const access = new TenantAccessRole(stack, 'Access', { backend, idempotencyTable: props.idempotencyTable?.(stack) });
  return { app, stack, backend, access };
}

/** The statements of the one policy attached to `role`. */
function statementsOf(template: Template, role: iam.IRole): Statement[] {
  const statements = new Capture();
  template.hasResourceProperties('AWS::IAM::Policy', { Roles: [ref(idOf(role))], PolicyDocument: { Statement: statements } });
  assert.equal(Object.keys(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(idOf(role))] } })).length, 1);
  return statements.asArray();
}

const actionsOf = (s: Statement): string[] => ([] as string[]).concat(s.Action);

function encryptedTable(stack: Stack, id: string, key?: kms.IKey): dynamodb.Table {
  return new dynamodb.Table(stack, id, {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    ...(key === undefined ? {} : { encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED, encryptionKey: key }),
  });
}

describe('TenantAccessRole: the role, its trust policy and the execution role', () => {
  it("trusts the backend's execution role only, for sts:AssumeRole and sts:TagSession, only with a non-empty tenant_id tag and no other", () => {
    const { stack, backend, access } = fixture();
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: Match.objectEquals({
        Version: '2012-10-17',
        Statement: [
          {
            Action: ['sts:AssumeRole', 'sts:TagSession'],
            Condition: {
              // present and not empty ("?*": at least one character)
              StringLike: { 'aws:RequestTag/tenant_id': '?*' },
              // the only key, transitive or not
              'ForAllValues:StringEquals': { 'aws:TagKeys': ['tenant_id'], 'sts:TransitiveTagKeys': ['tenant_id'] },
            },
            Effect: 'Allow',
            Principal: { AWS: arn(idOf(backend.role!)) },
          },
        ],
      }),
      Description: Match.stringLikeRegexp('^Tenant-scoped data access of Consumer/Backend, assumed by its guard with a tenant_id session tag$'),
    });
    const role = template.toJSON().Resources[idOf(access.role)];
    assert.deepEqual(Object.keys(role.Properties).sort(), ['AssumeRolePolicyDocument', 'Description'], 'no managed or inline policy');
    assert.equal(access.executionRole, backend.role);
  });

  it('lets the execution role assume and tag a session of the access role, on that role only, and nothing else of STS', () => {
    const { stack, backend, access } = fixture();
    const statements = statementsOf(Template.fromStack(stack), backend.role!);
    assert.deepEqual(
      statements.filter((s) => actionsOf(s).some((a) => a.startsWith('sts:'))),
      [{ Sid: 'AssumeTenantAccessRole', Action: ['sts:AssumeRole', 'sts:TagSession'], Effect: 'Allow', Resource: arn(idOf(access.role)) }],
    );
  });

  it('sets BACKEND_TENANT_ROLE_ARN on the backend to the access role, on the function behind a version or an alias too', () => {
    const { stack, backend, access } = fixture();
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(idOf(backend.role!)),
      Environment: { Variables: { BACKEND_TENANT_ROLE_ARN: arn(idOf(access.role)) } },
    });
    const other = backendStack(newApp());
    const alias = new lambda.Alias(other.stack, 'Live', { aliasName: 'live', version: other.backend.currentVersion });
    const viaAlias = new TenantAccessRole(other.stack, 'Access', { backend: alias });
    assert.equal(viaAlias.backend, other.backend);
    Template.fromStack(other.stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { BACKEND_TENANT_ROLE_ARN: arn(idOf(viaAlias.role)) } },
    });
  });

  it('refuses an imported backend at synth, saying what it cannot do and what to give instead', () => {
    const { stack } = backendStack(newApp());
    const imported = lambda.Function.fromFunctionArn(stack, 'Imported', 'arn:aws:lambda:us-east-1:111111111111:function:backend');
    assert.throws(
      () => new TenantAccessRole(stack, 'Access', { backend: imported }),
      /^Error: backend: Consumer\/Imported is imported, so TenantAccessRole can neither set BACKEND_TENANT_ROLE_ARN on it nor see its execution role; give the lambda\.Function defined in this app \(or a version or alias of it\)\. For a function defined elsewhere, create the TenantAccessRole in the app that defines it$/,
    );
  });

  it('refuses a second access role on one backend (BACKEND_TENANT_ROLE_ARN already set)', () => {
    const { stack, backend } = fixture();
    assert.throws(() => new TenantAccessRole(stack, 'Again', { backend }), /backend: Consumer\/Backend already has BACKEND_TENANT_ROLE_ARN in its environment/);
  });

  it('refuses at synth a backend that is not PER_TENANT', () => {
    const stack = new Stack(newApp(), 'Shared');
    const shared = new lambda.Function(stack, 'Fn', { runtime: lambda.Runtime.PYTHON_3_12, handler: 'a.h', code: lambda.Code.fromInline('x') });
    new TenantAccessRole(stack, 'Access', { backend: shared });
    assert.throws(() => Template.fromStack(stack), /backend: Shared\/Fn is not in tenant isolation mode/);
  });

  it('refuses at synth an execution role that holds a DynamoDB, S3, SSM or Secrets Manager permission of its own, however it got it', () => {
    const cases: [string, (f: Fixture) => void, RegExp][] = [
      ['a CDK grant', (f) => encryptedTable(f.stack, 'Data').grantReadData(f.backend), /may dynamodb:BatchGetItem, .*dynamodb:Query.* \(policy Consumer\/Backend\/ServiceRole\/DefaultPolicy\/Resource\)/],
      ['a statement', (f) => f.backend.addToRolePolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] })), /may s3:GetObject \(policy /],
      ['a wildcard', (f) => f.backend.addToRolePolicy(new iam.PolicyStatement({ actions: ['*'], resources: ['*'] })), /may \* \(policy /],
      [
        'an attached policy',
        (f) => new iam.Policy(f.stack, 'Extra', { roles: [f.backend.role!], statements: [new iam.PolicyStatement({ actions: ['secretsmanager:GetSecretValue'], resources: ['*'] })] }),
        /may secretsmanager:GetSecretValue \(policy Consumer\/Extra\/Resource\)/,
      ],
      [
        'a customer managed policy',
        (f) => new iam.ManagedPolicy(f.stack, 'Managed', { roles: [f.backend.role!], statements: [new iam.PolicyStatement({ actions: ['ssm:GetParameter'], resources: ['*'] })] }),
        /may ssm:GetParameter \(policy Consumer\/Managed\/Resource\)/,
      ],
      ['an AWS managed policy', (f) => f.backend.role!.addManagedPolicy(iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonS3ReadOnlyAccess')), /has the AWS managed policy AmazonS3ReadOnlyAccess/],
    ];
    for (const [name, add, error] of cases) {
      const f = fixture();
      add(f);
      assert.throws(
        () => Template.fromStack(f.stack),
        (e: Error) => error.test(e.message) && /backend: the execution role Consumer\/Backend\/ServiceRole of Consumer\/Backend /.test(e.message) &&
          /grant the data to the access role|grant data to the access role/.test(e.message),
        name,
      );
    }
    // Logs (AWSLambdaBasicExecutionRole), X-Ray, SQS destinations: not data services, accepted.
    const f = fixture();
    f.backend.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage', 'xray:PutTraceSegments'], resources: ['*'] }));
    Template.fromStack(f.stack);
  });
});

describe('TenantAccessRole.grantTableItems', () => {
  it("grants the item actions LeadingKeys scopes, on the table's ARN only, where every partition key is the tag or starts with tag#", () => {
    const { stack, access } = fixture();
    const key = new kms.Key(stack, 'Key');
    const table = encryptedTable(stack, 'Data', key);
    const grant = access.grantTableItems(table);
    assert.ok(grant instanceof iam.Grant);
    assert.ok(grant.success);
    assert.equal(grant.principalStatements.length, 2, 'the items, and the key');
    assert.deepEqual(statementsOf(Template.fromStack(stack), access.role), [
      {
        Action: [...TENANT_TABLE_ITEM_ACTIONS].sort(),
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [TAG, `${TAG}#*`] } },
        Effect: 'Allow',
        // no <table>/index/*: a Query on an index would be scoped by the index's own key
        Resource: arn(idOf(table)),
      },
      { Action: 'kms:Decrypt', Condition: viaService('dynamodb'), Effect: 'Allow', Resource: arn(idOf(key)) },
    ]);
    assert.ok(!TENANT_TABLE_ITEM_ACTIONS.includes('dynamodb:Scan'), 'no Scan: it reads every partition');
  });

  it('narrows the actions, takes a key prefix (tokens too), and adds no key statement for a table without a customer managed key', () => {
    const { stack, access, backend } = fixture();
    const table = encryptedTable(stack, 'Plain');
    access.grantTableItems(table, { actions: ['dynamodb:GetItem', 'dynamodb:Query'], keyPrefix: 'TENANT#' });
    access.grantTableItems(encryptedTable(stack, 'ByFunction'), { actions: ['dynamodb:GetItem'], keyPrefix: `${backend.functionName}#` });
    const statements = statementsOf(Template.fromStack(stack), access.role);
    assert.deepEqual(statements[0], {
      Action: ['dynamodb:GetItem', 'dynamodb:Query'],
      Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`TENANT#${TAG}`, `TENANT#${TAG}#*`] } },
      Effect: 'Allow',
      Resource: arn(idOf(table)),
    });
    assert.deepEqual(statements[1].Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys'], [
      join(ref(idOf(backend)), `#${TAG}`),
      join(ref(idOf(backend)), `#${TAG}#*`),
    ]);
    assert.equal(statements.length, 2, 'no kms statement');
  });

  it('refuses actions LeadingKeys cannot scope and key prefixes that would widen the match, naming the option', () => {
    const { stack, access } = fixture();
    const table = encryptedTable(stack, 'Data');
    assert.throws(() => access.grantTableItems(table, { actions: ['dynamodb:GetItem', 'dynamodb:Scan'] }), /^Error: grantTableItems: options\.actions must be item actions dynamodb:LeadingKeys scopes \(.*\), got dynamodb:Scan$/);
    assert.throws(() => access.grantTableItems(table, { actions: ['dynamodb:*'] }), /options\.actions .* got dynamodb:\*$/);
    assert.throws(() => access.grantTableItems(table, { actions: [] }), /options\.actions .* got none$/);
    for (const keyPrefix of ['*', 'T?#', '${aws:username}#']) {
      assert.throws(() => access.grantTableItems(table, { keyPrefix }), /^Error: grantTableItems: options\.keyPrefix: .* must not hold "\*", "\?" or "\$"/, keyPrefix);
    }
  });
});

describe('TenantAccessRole.grantBucketPrefix', () => {
  it("grants the tenant's objects under <prefix>/<tag>/*, ListBucket only with that s3:prefix, and the bucket key through S3 only", () => {
    const { stack, access } = fixture();
    const key = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Documents', { encryption: s3.BucketEncryption.KMS, encryptionKey: key });
    const grant = access.grantBucketPrefix(bucket, 'tenants/docs');
    assert.ok(grant instanceof iam.Grant);
    assert.equal(grant.principalStatements.length, 3);
    assert.deepEqual(statementsOf(Template.fromStack(stack), access.role), [
      {
        Action: ['s3:DeleteObject', 's3:GetObject', 's3:PutObject'],
        Effect: 'Allow',
        Resource: join(arn(idOf(bucket)), `/tenants/docs/${TAG}/*`),
      },
      {
        Action: 's3:ListBucket',
        Condition: { StringLike: { 's3:prefix': [`tenants/docs/${TAG}/*`] } },
        Effect: 'Allow',
        Resource: arn(idOf(bucket)),
      },
      { Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Condition: viaService('s3'), Effect: 'Allow', Resource: arn(idOf(key)) },
    ]);
  });

  it('reads only with readOnly (GetObject, ListBucket, kms:Decrypt), and takes "" for tenant directories at the top', () => {
    const { stack, access } = fixture();
    const key = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Documents', { encryption: s3.BucketEncryption.KMS, encryptionKey: key });
    access.grantBucketPrefix(bucket, '', { readOnly: true });
    assert.deepEqual(statementsOf(Template.fromStack(stack), access.role), [
      { Action: 's3:GetObject', Effect: 'Allow', Resource: join(arn(idOf(bucket)), `/${TAG}/*`) },
      { Action: 's3:ListBucket', Condition: { StringLike: { 's3:prefix': [`${TAG}/*`] } }, Effect: 'Allow', Resource: arn(idOf(bucket)) },
      { Action: 'kms:Decrypt', Condition: viaService('s3'), Effect: 'Allow', Resource: arn(idOf(key)) },
    ]);
  });

  it('refuses a prefix that could widen the grant: a leading or trailing "/", "//", wildcards, a policy variable, a token', () => {
    const { stack, access } = fixture();
    const bucket = new s3.Bucket(stack, 'Documents');
    for (const prefix of ['/tenants', 'tenants/', 'a//b', 'tenants*', 'ten?nts', '${aws:username}']) {
      assert.throws(() => access.grantBucketPrefix(bucket, prefix), /^Error: grantBucketPrefix: prefix .* must not start or end with "\/", hold "\/\/", "\*", "\?" or "\$"/, prefix);
    }
    const token = new CfnParameter(stack, 'Prefix').valueAsString;
    assert.throws(() => access.grantBucketPrefix(bucket, token), /grantBucketPrefix: prefix must be a literal/);
  });
});

describe('TenantAccessRole.grantParameters and grantSecrets', () => {
  it("grants GetParameter(s) on <path>/<tag>/* only, and the parameters' key through SSM only", () => {
    const { stack, access } = fixture();
    const key = new kms.Key(stack, 'Key');
    const grant = access.grantParameters('/tenants', { encryptionKey: key });
    assert.ok(grant instanceof iam.Grant);
    assert.deepEqual(statementsOf(Template.fromStack(stack), access.role), [
      {
        Action: ['ssm:GetParameter', 'ssm:GetParameters'],
        Effect: 'Allow',
        Resource: join('arn:', pseudo('Partition'), ':ssm:', pseudo('Region'), ':', pseudo('AccountId'), `:parameter/tenants/${TAG}/*`),
      },
      { Action: 'kms:Decrypt', Condition: viaService('ssm'), Effect: 'Allow', Resource: arn(idOf(key)) },
    ]);
  });

  it('refuses a path that is not an SSM path, or ends with "/", or holds wildcards, or is a token', () => {
    const { stack, access } = fixture();
    for (const p of ['tenants', '/tenants/', '/', '/ten*', '/a//b', '/${aws:username}']) {
      assert.throws(() => access.grantParameters(p), /^Error: grantParameters: path .* must be an SSM parameter path like "\/tenants"/, p);
    }
    assert.throws(() => access.grantParameters(new CfnParameter(stack, 'Path').valueAsString), /grantParameters: path must be a literal/);
  });

  it("grants GetSecretValue where the secret's tenant_id tag equals the session's, and the secrets' key through Secrets Manager only", () => {
    const { stack, access } = fixture();
    const key = new kms.Key(stack, 'Key');
    const grant = access.grantSecrets({ encryptionKey: key });
    assert.ok(grant instanceof iam.Grant);
    assert.deepEqual(statementsOf(Template.fromStack(stack), access.role), [
      {
        Action: 'secretsmanager:GetSecretValue',
        Condition: { StringEquals: { 'secretsmanager:ResourceTag/tenant_id': TAG } },
        Effect: 'Allow',
        Resource: join('arn:', pseudo('Partition'), ':secretsmanager:', pseudo('Region'), ':', pseudo('AccountId'), ':secret:*'),
      },
      { Action: 'kms:Decrypt', Condition: viaService('secretsmanager'), Effect: 'Allow', Resource: arn(idOf(key)) },
    ]);
  });

  it('adds no key statement without a key (the AWS managed keys need none)', () => {
    const { stack, access } = fixture();
    access.grantParameters('/tenants');
    access.grantSecrets();
    const statements = statementsOf(Template.fromStack(stack), access.role);
    assert.deepEqual(statements.flatMap(actionsOf), ['ssm:GetParameter', 'ssm:GetParameters', 'secretsmanager:GetSecretValue']);
  });
});

/** IAM's StringLike: `*` any run of characters, `?` one; the policy variable replaced by the session's tag. */
function like(pattern: string, tenant: string, value: string): boolean {
  const withTag = pattern.split(TAG).join('\u0000');
  const regex = withTag
    .split('')
    .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c === '\u0000' ? tenant.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${regex}$`, 's').test(value);
}

/** A resolved template value as one string: references as `<id>` / `<id.Attr>`, joins joined. */
function flatten(value: unknown): string {
  if (typeof value === 'string') {
    return value;
  }
  const v = value as { Ref?: string; 'Fn::GetAtt'?: string[]; 'Fn::Join'?: [string, unknown[]] };
  if (v.Ref !== undefined) {
    return `<${v.Ref}>`;
  }
  if (v['Fn::GetAtt'] !== undefined) {
    return `<${v['Fn::GetAtt'].join('.')}>`;
  }
  return v['Fn::Join']![1].map(flatten).join(v['Fn::Join']![0]);
}

describe('TenantAccessRole: the "/" collision', () => {
  /** Every value of every statement of the access role that holds the tag, flattened: resources and condition values. */
  function tagged(statements: Statement[]): { where: string; pattern: string }[] {
    const found: { where: string; pattern: string }[] = [];
    for (const s of statements) {
      for (const resource of ([] as unknown[]).concat(s.Resource)) {
        found.push({ where: `Resource of ${actionsOf(s).join(',')}`, pattern: flatten(resource) });
      }
      for (const [operator, keys] of Object.entries<{ [key: string]: unknown }>(s.Condition ?? {})) {
        for (const [key, values] of Object.entries(keys)) {
          for (const value of ([] as unknown[]).concat(values)) {
            found.push({ where: `${operator} ${key}`, pattern: flatten(value) });
          }
        }
      }
    }
    return found.filter((f) => f.pattern.includes(TAG));
  }

  function everyGrant(): { statements: Statement[]; bucketArn: string } {
    const { stack, access } = fixture({ idempotencyTable: (s) => new IdempotencyTable(s, 'Idempotency', { encryptionKey: new kms.Key(s, 'Key') }).table });
    const bucket = new s3.Bucket(stack, 'Documents');
    access.grantTableItems(encryptedTable(stack, 'Data'));
    access.grantBucketPrefix(bucket, 'tenants');
    access.grantBucketPrefix(new s3.Bucket(stack, 'Top'), '');
    access.grantParameters('/tenants');
    access.grantParameters('/config/tenants');
    access.grantSecrets();
    return { statements: statementsOf(Template.fromStack(stack), access.role), bucketArn: `<${idOf(bucket)}.Arn>` };
  }

  it('ends every prefix grant (objects, s3:prefix, parameters) in /<tag>/*, so only a "/" in the tag could cross into another tenant', () => {
    const { statements } = everyGrant();
    const values = tagged(statements);
    const prefixGrants = values.filter((v) => !/dynamodb:LeadingKeys|ResourceTag/.test(v.where));
    assert.deepEqual(prefixGrants.map((v) => v.where).sort(), [
      'Resource of s3:DeleteObject,s3:GetObject,s3:PutObject',
      'Resource of s3:DeleteObject,s3:GetObject,s3:PutObject',
      'Resource of ssm:GetParameter,ssm:GetParameters',
      'Resource of ssm:GetParameter,ssm:GetParameters',
      'StringLike s3:prefix',
      'StringLike s3:prefix',
    ]);
    for (const { where, pattern } of prefixGrants) {
      // the tag is a whole path segment and the last one before the wildcard
      assert.match(pattern, /(^|\/)\$\{aws:PrincipalTag\/tenant_id\}\/\*$/, `${where}: ${pattern}`);
      assert.equal(pattern.split(TAG).length, 2, `${where}: the tag once`);
      assert.doesNotMatch(pattern.slice(0, pattern.indexOf(TAG)), /[*?]/, `${where}: no wildcard before the tag`);
    }
    // Table keys are delimited by "#", which no tenant id holds; the secrets by an exact tag match.
    for (const { where, pattern } of values.filter((v) => /dynamodb:LeadingKeys/.test(v.where))) {
      assert.match(pattern, /(^|#)\$\{aws:PrincipalTag\/tenant_id\}(#\*)?$/, `${where}: ${pattern}`);
    }
    assert.deepEqual(values.filter((v) => /ResourceTag/.test(v.where)).map((v) => v.pattern), [TAG]);
  });

  it("never lets one tenant's session match another tenant's keys, records, objects or parameters, unless a tenant id holds \"/\" (which the guards refuse)", () => {
    const { statements, bucketArn } = everyGrant();
    const values = tagged(statements);
    const parameterArn = (name: string) => `arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter${name}`;
    // Each grant: the patterns one of which a value must match (ForAllValues over a list), and what a tenant owns there.
    const grants: { what: string; patterns: string[]; owned: (tenant: string) => string[] }[] = [];
    for (const v of values.filter((x) => x.where.startsWith('Resource of s3:'))) {
      const base = v.pattern.slice(0, v.pattern.indexOf(TAG));
      grants.push({ what: v.pattern, patterns: [v.pattern], owned: (t) => [`${base}${t}/report.pdf`, `${base}${t}/a/b.txt`] });
    }
    for (const v of values.filter((x) => x.where === 'StringLike s3:prefix')) {
      const base = v.pattern.slice(0, v.pattern.indexOf(TAG));
      grants.push({ what: v.pattern, patterns: [v.pattern], owned: (t) => [`${base}${t}/`, `${base}${t}/2026/`] });
    }
    for (const v of values.filter((x) => x.where.startsWith('Resource of ssm:'))) {
      const base = v.pattern.slice(0, v.pattern.indexOf(TAG));
      grants.push({ what: v.pattern, patterns: [v.pattern], owned: (t) => [`${base}${t}/db-password`, `${base}${t}/api/key`] });
    }
    for (const s of statements.filter((x) => x.Condition?.['ForAllValues:StringLike']?.['dynamodb:LeadingKeys'] !== undefined)) {
      const patterns = ([] as unknown[]).concat(s.Condition['ForAllValues:StringLike']['dynamodb:LeadingKeys']).map(flatten);
      const base = patterns[0].slice(0, patterns[0].indexOf(TAG));
      grants.push({ what: patterns.join(' | '), patterns, owned: (t) => [`${base}${t}`, `${base}${t}#order#1`, `${base}${t}#arn:aws:sqs:us-east-1:1:q#m1`] });
    }
    assert.equal(grants.length, 2 + 2 + 2 + 2, 'two of each: objects, listings, parameters, tables (the idempotency records among them)');
    assert.ok(grants.some((g) => g.what.startsWith(`${bucketArn}/tenants/`)));
    assert.ok(grants.some((g) => g.what === parameterArn(`/tenants/${TAG}/*`)));
    const reaches = (patterns: string[], session: string, value: string) => patterns.some((p) => like(p, session, value));
    // Lambda's tenant-id characters around one id: prefixes, suffixes, case, every separator but "/".
    const tenants = ['acme', 'acm', 'acme-x', 'acme.x', 'acme:x', 'acme x', 'acme@x', 'acme=x', 'acme+x', 'acme_x', 'ACME', 'x-acme', 'a'];
    for (const { what, patterns, owned } of grants) {
      for (const session of tenants) {
        for (const other of tenants) {
          for (const value of owned(other)) {
            assert.equal(reaches(patterns, session, value), session === other, `session ${session}, ${other}'s ${value}, through ${what}`);
          }
        }
      }
    }
    // The collision the guards close: a session for "acme" would reach tenant "acme/x"'s objects, listings and parameters …
    for (const { what, patterns, owned } of grants.filter((g) => !g.what.includes('|'))) {
      assert.ok(owned('acme/x').every((value) => reaches(patterns, 'acme', value)), what);
    }
    // … but not its table keys: "#" delimits them, and no tenant id holds "#".
    for (const { what, patterns, owned } of grants.filter((g) => g.what.includes('|'))) {
      assert.ok(owned('acme/x').every((value) => !reaches(patterns, 'acme', value)), what);
    }
  });
});

describe('TenantAccessRole and the idempotency table', () => {
  it("matches the guards' record id, <function>#<tenant>#<idempotencyKey> (Rust and Python), which these policies depend on", () => {
    const repo = path.join(__dirname, '..', '..');
    const rust = fs.readFileSync(path.join(repo, 'shared', 'src', 'idempotency.rs'), 'utf8');
    assert.match(rust, /pub fn record_id\(function: &str, tenant: &TenantId, idempotency_key: &str\) -> String \{\s*format!\("\{function\}#\{\}#\{idempotency_key\}", tenant\.as_str\(\)\)/);
    const python = fs.readFileSync(path.join(repo, 'examples', 'python-backend', 'src', 'idempotency_store.py'), 'utf8');
    assert.match(python, /return f"\{function\}#\{tenant\}#\{idempotency_key\}"/);
  });

  it("gives the access role the backend's records by the function name and the tenant, the four record actions, and the table key through DynamoDB", () => {
    let table: dynamodb.ITable | undefined;
    let key: kms.IKey | undefined;
    const { stack, backend, access } = fixture({
      idempotencyTable: (s) => {
        key = new kms.Key(s, 'Key');
        table = new IdempotencyTable(s, 'Idempotency', { encryptionKey: key }).table;
        return table;
      },
    });
    assert.deepEqual(statementsOf(Template.fromStack(stack), access.role), [
      {
        Action: ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        Condition: {
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [join(ref(idOf(backend)), `#${TAG}`), join(ref(idOf(backend)), `#${TAG}#*`)] },
        },
        Effect: 'Allow',
        Resource: arn(idOf(table!)),
      },
      { Action: 'kms:Decrypt', Condition: viaService('dynamodb'), Effect: 'Allow', Resource: arn(idOf(key!)) },
    ]);
  });

  it("puts a TenantRouter in front of it with nothing on the table or the access role, and leaves the execution role no data permission", () => {
    const app = newApp();
    const { stack, backend } = backendStack(app);
    const store = new IdempotencyTable(stack, 'Idempotency', { encryptionKey: new kms.Key(stack, 'Key') });
    backend.addEnvironment('BACKEND_IDEMPOTENCY_TABLE', store.table.tableName);
    const access = new TenantAccessRole(stack, 'Access', { backend, idempotencyTable: store.table });
    const router = newRouter(stack, backend);
    const template = Template.fromStack(stack);
    const routerStatements = JSON.stringify(statementsOf(template, router.role));
    assert.doesNotMatch(routerStatements, new RegExp(`${idOf(store.table)}|${idOf(access.role)}`));
    assert.doesNotMatch(routerStatements, /sts:/);
    const execution = statementsOf(template, backend.role!);
    assert.deepEqual(execution, [{ Sid: 'AssumeTenantAccessRole', Action: ['sts:AssumeRole', 'sts:TagSession'], Effect: 'Allow', Resource: arn(idOf(access.role)) }]);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Role: arn(idOf(backend.role!)),
      Environment: { Variables: { BACKEND_IDEMPOTENCY_TABLE: ref(idOf(store.table)), BACKEND_TENANT_ROLE_ARN: arn(idOf(access.role)) } },
    });
    // the table is referenced by the access role's policy and the backend's environment, nothing else
    const referencing = Object.entries<object>(template.toJSON().Resources)
      .filter(([id, r]) => id !== idOf(store.table) && JSON.stringify(r).includes(`"${idOf(store.table)}"`))
      .map(([id]) => id)
      .sort();
    const accessPolicy = Object.keys(template.findResources('AWS::IAM::Policy', { Properties: { Roles: [ref(idOf(access.role))] } }));
    assert.deepEqual(referencing, [idOf(backend), ...accessPolicy].sort());
  });
});

describe('TenantAccessRole and cdk-nag', () => {
  /** The findings of the packs on the access role (its policy included). */
  function findings(app: App, ignoreAcknowledgments: boolean): string[] {
    return nagPacks(app).flatMap((pack: NagPack) => {
      if (ignoreAcknowledgments) {
        // Test-only, as in nag.test.ts: see every finding as if nothing were acknowledged.
        (pack as unknown as { isAcknowledged: unknown }).isAcknowledged = () => false;
      }
      return pack.validateScope(app).violations.flatMap((v) =>
        v.violatingResources.filter((r) => (r.constructPath ?? '').startsWith('Consumer/Access/')).map((r) => `${v.ruleName} @ ${r.constructPath}`),
      );
    });
  }

  function withEveryGrant(): { app: App; bucketId: string } {
    const { app, stack, access } = fixture();
    const key = new kms.Key(stack, 'Key');
    const bucket = new s3.Bucket(stack, 'Documents', { encryption: s3.BucketEncryption.KMS, encryptionKey: key });
    access.grantTableItems(encryptedTable(stack, 'Data', key));
    access.grantBucketPrefix(bucket, 'tenants');
    access.grantParameters('/tenants', { encryptionKey: key });
    access.grantSecrets({ encryptionKey: key });
    return { app, bucketId: idOf(bucket) };
  }

  it('leaves no finding on the access role with every grant, acknowledging exactly its three wildcard resources, each with a reason', () => {
    const { app, bucketId } = withEveryGrant();
    assert.deepEqual(findings(app, false), []);
    const wildcards = [
      `AwsSolutions-IAM5[Resource::<${bucketId}.Arn>/tenants/<aws:PrincipalTag/tenant_id>/*]`,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/tenants/<aws:PrincipalTag/tenant_id>/*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:*]',
    ].sort();
    // Each acknowledgment silences a real finding: without them, exactly these three (no trust-policy or key finding).
    const raw = withEveryGrant().app;
    assert.deepEqual(findings(raw, true).sort(), wildcards.map((id) => `${id} @ Consumer/Access/Role/DefaultPolicy/Resource`));
    const acks = acknowledgedRules(app).filter((a) => a.path.startsWith('Consumer/Access/'));
    assert.deepEqual(acks.map((a) => `${a.id} @ ${a.path}`).sort(), wildcards.map((id) => `${id} @ Consumer/Access/Role`));
    for (const ack of acks) {
      assert.ok(ack.reason.length >= 80, `${ack.id}: the reason must explain itself`);
    }
  });
});
