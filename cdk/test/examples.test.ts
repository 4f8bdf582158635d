// The bring-your-own example as a new TypeScript CDK app would run it: in its own process, on
// the jsii-compiled package (lib/index.js, built by `npm run build`), never on lib/*.ts. Its
// template puts the mappings on the router only, lets the router invoke exactly the Python
// backend, reaches the backend's data through its tenant access role only, and has the quarantine
// queue and the alarms; an unknown context key is refused.
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { CDK_CONTEXT } from './helpers';

const CDK_DIR = path.join(__dirname, '..');
const APP = path.join(CDK_DIR, 'examples', 'bring-your-own', 'app.ts');

const CONTEXT = {
  placeholderAssets: 'true',
  jwksUrl: 'https://issuer.example.com/.well-known/jwks.json',
  jwtIssuer: 'https://issuer.example.com',
  jwtAudience: 'tenant-router',
  queueArn: 'arn:aws:sqs:us-east-1:111111111111:orders',
  streamArn: 'arn:aws:kinesis:us-east-1:111111111111:stream/events',
  tableName: 'accounts',
  tableStreamArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/accounts/stream/2026-01-01T00:00:00.000',
};

interface Run {
  readonly status: number | null;
  readonly stderr: string;
  readonly outdir: string;
  /** The modules of cdk/lib/ the app loaded. */
  readonly loaded: string[];
}

/** Runs the app as `cdk synth` would (CDK_OUTDIR, CDK_CONTEXT_JSON), recording which lib/ modules it loads. */
function runApp(context: { [key: string]: unknown }): Run {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-router-byo-'));
  after(() => fs.rmSync(outdir, { recursive: true, force: true }));
  const record = path.join(outdir, 'loaded.json');
  const hook = path.join(outdir, 'record-modules.js');
  fs.writeFileSync(hook, `process.on('exit', () => require('fs').writeFileSync(${JSON.stringify(record)}, JSON.stringify(Object.keys(require.cache))));\n`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CDK_OUTDIR: path.join(outdir, 'cdk.out'),
    // As for a stack `cdk synth`/`deploy` does not select: the backend's asset is its project
    // directory as it is, no pip run (test/python-code.test.ts bundles it for real).
    CDK_CONTEXT_JSON: JSON.stringify({ ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': [], ...context }),
    TS_NODE_TRANSPILE_ONLY: 'true',
  };
  // As a consumer's ts-node runs: compiled .js first for the package.
  delete env.TS_NODE_PREFER_TS_EXTS;
  const child = spawnSync(process.execPath, ['--require', hook, '--require', 'ts-node/register', APP], { cwd: CDK_DIR, env, encoding: 'utf8' });
  const libDir = path.join(CDK_DIR, 'lib') + path.sep;
  const loaded = fs.existsSync(record) ? (JSON.parse(fs.readFileSync(record, 'utf8')) as string[]).filter((f) => f.startsWith(libDir)) : [];
  return { status: child.status, stderr: child.stderr, outdir: path.join(outdir, 'cdk.out'), loaded };
}

type Resource = { Type: string; Properties: { [key: string]: any } };

describe('a new CDK app on the built package: examples/bring-your-own', () => {
  const run = runApp(CONTEXT);

  it('loads the jsii-compiled package entry (lib/index.js), none of the TypeScript sources', () => {
    assert.equal(run.status, 0, run.stderr);
    assert.ok(run.loaded.includes(path.join(CDK_DIR, 'lib', 'index.js')), run.loaded.join('\n'));
    assert.deepEqual(run.loaded.filter((f) => f.endsWith('.ts')), []);
  });

  it('puts the three mappings on the router, none on the backend, all reporting batch item failures', () => {
    const template = JSON.parse(fs.readFileSync(path.join(run.outdir, 'TenantRouterBringYourOwn.template.json'), 'utf8'));
    const resources = Object.entries<Resource>(template.Resources);
    const byType = (type: string) => resources.filter(([, r]) => r.Type === type);
    const functions = byType('AWS::Lambda::Function');
    const [[backendId, backend]] = functions.filter(([, r]) => r.Properties.TenancyConfig !== undefined);
    const [[routerId]] = functions.filter(([, r]) => r.Properties.TenancyConfig === undefined);
    assert.deepEqual(backend.Properties.TenancyConfig, { TenantIsolationMode: 'PER_TENANT' });
    assert.equal(backend.Properties.Runtime, 'python3.12');
    assert.equal(backend.Properties.Handler, 'app.handler');
    assert.deepEqual(backend.Properties.Architectures, ['x86_64']);

    // Its code: the asset of examples/python-backend, bundled with its requirements when a
    // command deploys the stack; here, not bundled (no "Bundling asset" and the directory as is).
    const assets = JSON.parse(fs.readFileSync(path.join(run.outdir, 'TenantRouterBringYourOwn.assets.json'), 'utf8'));
    const codeAsset = assets.files[String(backend.Properties.Code.S3Key).replace(/\.zip$/, '')];
    assert.deepEqual(codeAsset.source, { path: path.join(CDK_DIR, '..', 'examples', 'python-backend'), packaging: 'zip' });
    assert.doesNotMatch(run.stderr, /Bundling asset/);

    const mappings = byType('AWS::Lambda::EventSourceMapping').map(([, r]) => r.Properties);
    assert.deepEqual(mappings.map((m) => m.EventSourceArn).sort(), [CONTEXT.queueArn, CONTEXT.streamArn, CONTEXT.tableStreamArn].sort());
    for (const mapping of mappings) {
      assert.deepEqual(mapping.FunctionName, { Ref: routerId });
      assert.deepEqual(mapping.FunctionResponseTypes, ['ReportBatchItemFailures']);
    }
    assert.ok(!JSON.stringify(mappings).includes(backendId));

    // The router may invoke exactly the backend, and nothing else.
    const [[, routerPolicy]] = byType('AWS::IAM::Policy').filter(([, r]) => JSON.stringify(r.Properties.PolicyDocument).includes('InvokeBackend'));
    const invokes = routerPolicy.Properties.PolicyDocument.Statement.filter((s: { Action: string | string[] }) => ([] as string[]).concat(s.Action).some((a) => a.startsWith('lambda:')));
    assert.deepEqual(invokes, [{ Sid: 'InvokeBackend', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: { 'Fn::GetAtt': [backendId, 'Arn'] } }]);

    // The quarantine queue, and the alarms on it and on the security signals.
    const alarms = byType('AWS::CloudWatch::Alarm').map(([id]) => id);
    for (const name of ['QuarantineDepth', 'TenantMismatchRejections', 'BackendInvocationsRefused', 'OrdersMessageAge', 'EventsIteratorAge', 'BackendFailuresDepth']) {
      assert.ok(alarms.some((id) => id.includes(name)), `${name} in ${alarms.join(' ')}`);
    }
    const quarantine = resources.find(([id, r]) => r.Type === 'AWS::SQS::Queue' && id.includes('Quarantine'));
    assert.ok(quarantine);
    assert.deepEqual(routerPolicy.Properties.PolicyDocument.Statement.find((s: { Sid?: string }) => s.Sid === 'Quarantine').Resource, { 'Fn::GetAtt': [quarantine[0], 'Arn'] });

    // The backend's idempotency table (partition key id S, TTL expiration), named to it.
    const [[tableId, table]] = byType('AWS::DynamoDB::Table');
    assert.deepEqual(table.Properties.KeySchema, [{ AttributeName: 'id', KeyType: 'HASH' }]);
    assert.deepEqual(table.Properties.TimeToLiveSpecification, { AttributeName: 'expiration', Enabled: true });
    assert.deepEqual(backend.Properties.Environment.Variables.BACKEND_IDEMPOTENCY_TABLE, { Ref: tableId });

    // Reached through the tenant access role only: BACKEND_TENANT_ROLE_ARN names the role that trusts
    // the backend's execution role alone; its records are the session tenant's; the execution role has no data permission.
    const backendRole = backend.Properties.Role['Fn::GetAtt'][0];
    const [[accessId]] = byType('AWS::IAM::Role').filter(([, r]) => JSON.stringify(r.Properties.AssumeRolePolicyDocument).includes(`"${backendRole}"`));
    assert.deepEqual(backend.Properties.Environment.Variables.BACKEND_TENANT_ROLE_ARN, { 'Fn::GetAtt': [accessId, 'Arn'] });
    const policyOf = (roleId: string) => byType('AWS::IAM::Policy').find(([, r]) => JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: roleId }]))![1];
    const actions = (roleId: string): string[] => policyOf(roleId).Properties.PolicyDocument.Statement.flatMap((st: { Action: string | string[] }) => ([] as string[]).concat(st.Action));
    assert.deepEqual(actions(backendRole).filter((a) => /^(dynamodb|s3|ssm|secretsmanager|sts):/.test(a)), ['sts:AssumeRole', 'sts:TagSession']);
    const records = policyOf(accessId).Properties.PolicyDocument.Statement.find((st: { Resource: unknown }) => JSON.stringify(st.Resource) === JSON.stringify({ 'Fn::GetAtt': [tableId, 'Arn'] }));
    assert.deepEqual(records.Condition, {
      'ForAllValues:StringLike': {
        'dynamodb:LeadingKeys': [
          { 'Fn::Join': ['', [{ Ref: backendId }, '#${aws:PrincipalTag/tenant_id}']] },
          { 'Fn::Join': ['', [{ Ref: backendId }, '#${aws:PrincipalTag/tenant_id}#*']] },
        ],
      },
    });
    assert.deepEqual(actions(accessId).filter((a) => !a.startsWith('kms:')).sort(), [
      'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem',
      'secretsmanager:GetSecretValue', 'ssm:GetParameter', 'ssm:GetParameters',
    ]);
    // Synthesized with placeholder router code: undeployable.
    assert.ok(template.Rules.PlaceholderCodeCannotBeDeployed);
  });

  it('refuses an unknown context key, naming it', () => {
    const typo = runApp({ ...CONTEXT, queueARN: CONTEXT.queueArn });
    assert.notEqual(typo.status, 0);
    assert.match(typo.stderr, /unknown context key "queueARN"; the bring-your-own example reads jwksUrl, /);
  });
});
