#!/usr/bin/env node
// "Bring your own": a platform team's app that imports the built package (the package's entry,
// not lib/*.ts) and puts a TenantRouter in front of sources and a backend it already owns: an SQS
// queue, a Kinesis stream and a DynamoDB table imported by ARN and name, and a Python function in
// tenant isolation mode (examples/python-backend) with its idempotency table, reached only through
// its tenant access role (each tenant's session its own records, parameters and secrets). The function's
// package is built at synth by CDK's asset bundling (./python-code.ts): requirements-lambda.txt
// installed with the local python3's pip for python3.12 and the function's architecture, then
// src/*.py; Docker (the SAM build image) only when python3 with pip is missing.
//
//   npx cdk synth --app 'npx ts-node --prefer-ts-exts examples/bring-your-own/app.ts' \
//     -c jwksUrl=… -c jwtIssuer=… -c jwtAudience=… -c queueArn=… -c streamArn=… -c tableName=… -c tableStreamArn=…
//     [-c architecture=arm64] [-c backendCodePath=DIR]        (BACKEND_PYTHON=…: the python whose pip packages)
import * as path from 'path';
import { App, Duration, Stack, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
// The package's entry point, as an installed `tenant-router-cdk` would be imported.
import { DataKey, IdempotencyTable, RustCode, TenantAccessRole, TenantRouter } from '../..';
import { checkContextKeys, contextArchitecture } from '../context-keys';
import { addNagChecks } from '../nag';
import { pythonBackendCode } from './python-code';

/** The context keys this app reads; everything else that is not CDK's is refused. */
const CONTEXT_KEYS = [
  'jwksUrl',
  'jwtIssuer',
  'jwtAudience',
  'queueArn',
  'streamArn',
  'tableName',
  'tableStreamArn',
  'backendCodePath',
  'architecture',
  'placeholderAssets',
] as const;

const app = new App();
checkContextKeys(app.node, CONTEXT_KEYS, 'the bring-your-own example');
const context = (key: (typeof CONTEXT_KEYS)[number]): string => {
  const value = app.node.tryGetContext(key);
  if (value === undefined || value === '') {
    throw new Error(`context ${key} is required`);
  }
  return String(value);
};
// Both functions' architecture; the router's bundle and the backend's wheels follow it.
const architecture = contextArchitecture(app.node.tryGetContext('architecture')) ?? lambda.Architecture.X86_64;

const stack = new Stack(app, 'TenantRouterBringYourOwn', {
  description: 'Tenant router in front of an existing queue, stream and table, and a Python PER_TENANT backend',
});
const key = new DataKey(stack, 'DataKey').key;

// What the platform team already has.
const queue = sqs.Queue.fromQueueArn(stack, 'Orders', context('queueArn'));
const stream = kinesis.Stream.fromStreamArn(stack, 'Events', context('streamArn'));
const table = dynamodb.Table.fromTableAttributes(stack, 'Accounts', {
  tableName: context('tableName'),
  tableStreamArn: context('tableStreamArn'),
});

// The Python backend in tenant isolation mode, with its idempotency table (Powertools' layout).
const idempotency = new IdempotencyTable(stack, 'Idempotency', { encryptionKey: key });
const backendLogs = new logs.LogGroup(stack, 'BackendLogs', { retention: logs.RetentionDays.ONE_MONTH, encryptionKey: key });
// Its own role: writes to its log group only (no AWSLambdaBasicExecutionRole), plus its grants below.
const backendRole = new iam.Role(stack, 'BackendRole', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
backendLogs.grantWrite(backendRole);
// Where Lambda puts the router's asynchronous Invokes that failed for good.
const backendFailures = new sqs.Queue(stack, 'BackendFailures', {
  encryption: sqs.QueueEncryption.KMS,
  encryptionMasterKey: key,
  enforceSSL: true,
  retentionPeriod: Duration.days(14),
});
const runtime = lambda.Runtime.PYTHON_3_12;
const backendCodePath = app.node.tryGetContext('backendCodePath');
const backend = new lambda.Function(stack, 'Backend', {
  runtime,
  architecture,
  handler: 'app.handler',
  // src/*.py with what they import (aws-lambda-powertools, boto3 and their dependencies, pinned
  // with hashes in requirements-lambda.txt), installed by pip at synth for this runtime and
  // architecture. backendCodePath: a directory packaged some other way, deployed as it is.
  code: backendCodePath
    ? lambda.Code.fromAsset(String(backendCodePath))
    : pythonBackendCode({
        projectDir: path.join(__dirname, '..', '..', '..', 'examples', 'python-backend'),
        runtime,
        architecture,
        python: process.env.BACKEND_PYTHON || undefined,
      }),
  tenancyConfig: lambda.TenancyConfig.PER_TENANT,
  memorySize: 256,
  timeout: Duration.seconds(30),
  environment: {
    BACKEND_IDEMPOTENCY_TABLE: idempotency.table.tableName,
    // 4 days: at least the sources' longest retry horizon (the streams' mappings deliver records up
    // to 12 hours old; SQS keeps a message 4 days by default), so a redelivery is recognised.
    BACKEND_IDEMPOTENCY_TTL_SECONDS: String(Duration.days(4).toSeconds()),
  },
  role: backendRole,
  logGroup: backendLogs,
  loggingFormat: lambda.LoggingFormat.JSON,
  tracing: lambda.Tracing.ACTIVE,
  // The destination alone (CDK's SqsDestination would also grant kms:Encrypt, kms:ReEncrypt*, …).
  onFailure: { bind: () => ({ destination: backendFailures.queueArn }) },
});
backendRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [backendFailures.queueArn] }));
backendRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['kms:GenerateDataKey', 'kms:Decrypt'], resources: [key.keyArn] }));
// Tenant-scoped data access (BACKEND_TENANT_ROLE_ARN): the guard assumes this role for its
// environment's tenant; the idempotency records, the parameters under /tenants/<tenant>/ and the
// secrets tagged tenant_id=<tenant> are reached with that session only. The execution role above
// holds no DynamoDB, SSM or Secrets Manager permission (TenantAccessRole refuses one at synth).
const tenantAccess = new TenantAccessRole(stack, 'TenantAccess', { backend, idempotencyTable: idempotency.table });
tenantAccess.grantParameters('/tenants');
tenantAccess.grantSecrets();
Validations.of(backendRole).acknowledge({
  id: 'AwsSolutions-IAM5[Resource::*]',
  reason: 'Only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing), which have no resource-level permissions.',
});
Validations.of(backend).acknowledge({
  id: 'Serverless-LambdaDLQ',
  reason: 'Failed async invocations go to the OnFailure destination (the backend failures queue), which records the request and the error and supersedes a DeadLetterConfig.',
});
for (const id of ['AwsSolutions-L1', 'Serverless-LambdaLatestVersion']) {
  Validations.of(backend).acknowledge({
    id,
    reason: "python3.12 is the runtime examples/python-backend is written and its requirements are compiled for; move with it.",
  });
}
Validations.of(backendFailures).acknowledge(
  { id: 'AwsSolutions-SQS3', reason: "Terminal store of the backend's failed async invocations for operators; it is itself the dead-letter store, and its depth is alarmed." },
  { id: 'Serverless-SQSRedrivePolicy', reason: "Terminal store of the backend's failed async invocations; a redrive policy would only move them to another terminal queue." },
);

// The four lines.
const router = new TenantRouter(stack, 'Router', {
  backend,
  jwt: { jwksUrl: context('jwksUrl'), issuer: context('jwtIssuer'), audience: context('jwtAudience') },
  encryptionKey: key,
  architecture,
  code: String(app.node.tryGetContext('placeholderAssets')) === 'true' ? RustCode.placeholder() : RustCode.fromBundle(),
});
router.addSqsSource(queue);
router.addKinesisSource(stream, { startingPosition: lambda.StartingPosition.TRIM_HORIZON });
router.addDynamoDbSource(table, { startingPosition: lambda.StartingPosition.LATEST });
router.addOperatorQueue('backend failures', backendFailures, 'Asynchronous Invokes of the backend failed for good.');

addNagChecks(app);
