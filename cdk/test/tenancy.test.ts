// Tenant isolation at synth: the backend must be PER_TENANT where CDK can see it, and no event
// source mapping may target it, under any qualifier, in any stack of the app.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CfnParameter, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { InvocationType } from '../lib';
import { backendStack, defaultStack, idOf, newApp, newRouter, newStack, ref } from './helpers';

const queueArn = 'arn:aws:sqs:us-east-1:111111111111:orders';

describe('tenant isolation and event source mappings', () => {
  it('keeps every event source mapping on the router: none targets the PER_TENANT backend', () => {
    const { stack, template } = defaultStack();
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
    assert.equal(mappings.length, 4);
    for (const mapping of mappings) {
      assert.deepEqual(mapping.Properties.FunctionName, ref(idOf(stack.router.function)));
    }
    assert.equal(JSON.stringify(mappings).includes(idOf(stack.backend.function)), false);
    // Exactly one function is tenant-isolated, and it is the backend.
    const isolated = template.findResources('AWS::Lambda::Function', {
      Properties: { TenancyConfig: { TenantIsolationMode: 'PER_TENANT' } },
    });
    assert.deepEqual(Object.keys(isolated), [idOf(stack.backend.function)]);
  });

  type Full = ReturnType<typeof newStack>;
  const newSources: ReadonlyArray<readonly [string, (stack: Full, id: string) => lambda.IEventSource]> = [
    ['SQS', (stack, id) => new sources.SqsEventSource(new sqs.Queue(stack, id))],
    [
      'Kinesis',
      (stack, id) =>
        new sources.KinesisEventSource(new kinesis.Stream(stack, id), { startingPosition: lambda.StartingPosition.TRIM_HORIZON }),
    ],
    [
      'DynamoDB',
      (stack, id) =>
        new sources.DynamoEventSource(
          new dynamodb.Table(stack, id, {
            partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
            stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
          }),
          { startingPosition: lambda.StartingPosition.TRIM_HORIZON },
        ),
    ],
  ];
  for (const [name, source] of newSources) {
    it(`makes CDK throw when someone attaches a ${name} event source to the backend`, () => {
      const stack = newStack(newApp());
      assert.throws(
        () => stack.backend.function.addEventSource(source(stack, 'Extra')),
        /EventSourceNotSupportedForTenantIsolation|is not supported for functions with tenant isolation/,
      );
      // The same kind of source attaches to the router without complaint.
      stack.router.function.addEventSource(source(stack, 'ForRouter'));
    });
  }

  it('refuses to synthesize a raw event source mapping that targets the backend (which CDK itself lets through)', () => {
    const stack = newStack(newApp());
    stack.backend.function.addEventSourceMapping('Sneaky', { eventSourceArn: stack.sources.queue.queueArn });
    assert.throws(
      () => Template.fromStack(stack),
      /Sneaky\/Resource: an event source mapping targets the tenant-isolated backend; mappings cannot pass a tenant id/,
    );
  });

  it('refuses the same mapping when it names the backend by ARN', () => {
    const stack = newStack(newApp());
    new lambda.CfnEventSourceMapping(stack, 'ByArn', {
      functionName: stack.backend.function.functionArn,
      eventSourceArn: stack.sources.queue.queueArn,
    });
    assert.throws(() => Template.fromStack(stack), /ByArn: an event source mapping targets the tenant-isolated backend/);
  });

  it('refuses a mapping on an alias, a version or $LATEST of the backend', () => {
    const qualifiers: ReadonlyArray<readonly [string, (fn: lambda.Function) => lambda.IFunction]> = [
      ['Alias', (fn) => new lambda.Alias(fn, 'Live', { aliasName: 'live', version: fn.currentVersion })],
      ['Version', (fn) => fn.currentVersion],
      ['Latest', (fn) => fn.latestVersion],
    ];
    for (const [name, qualified] of qualifiers) {
      const { stack, backend } = backendStack(newApp());
      newRouter(stack, backend);
      new lambda.EventSourceMapping(stack, `On${name}`, { target: qualified(backend), eventSourceArn: queueArn });
      assert.throws(() => Template.fromStack(stack), new RegExp(`On${name}/Resource: an event source mapping targets the tenant-isolated backend`), name);
    }
    // By the alias's ARN (its Ref), with a raw CfnEventSourceMapping.
    const { stack, backend } = backendStack(newApp());
    newRouter(stack, backend);
    const alias = new lambda.Alias(stack, 'Live', { aliasName: 'live', version: backend.currentVersion });
    new lambda.CfnEventSourceMapping(stack, 'ByAliasArn', { functionName: alias.functionArn, eventSourceArn: queueArn });
    assert.throws(() => Template.fromStack(stack), /ByAliasArn: an event source mapping targets the tenant-isolated backend/);
  });

  it('refuses a mapping on the backend from another stack of the app', () => {
    const app = newApp();
    const { stack, backend } = backendStack(app);
    newRouter(stack, backend);
    const other = new Stack(app, 'Other');
    new lambda.EventSourceMapping(other, 'Elsewhere', { target: backend, eventSourceArn: queueArn });
    assert.throws(() => app.synth({ force: true }), /Other\/Elsewhere\/Resource: an event source mapping targets the tenant-isolated backend/);
  });

  it('refuses a backend that is not in tenant isolation mode, naming the function', () => {
    const { stack } = backendStack(newApp());
    const shared = new lambda.Function(stack, 'Shared', {
      runtime: lambda.Runtime.PYTHON_3_12,
      handler: 'app.handler',
      code: lambda.Code.fromInline('def handler(e, c):\n    return {}\n'),
    });
    newRouter(stack, shared);
    assert.throws(
      () => Template.fromStack(stack),
      /backend: Consumer\/Shared is not in tenant isolation mode \(TenancyConfig unset\); give it tenancyConfig: lambda.TenancyConfig.PER_TENANT/,
    );
    // The same through an alias of it.
    const { stack: viaAlias } = backendStack(newApp(), 'ViaAlias');
    const fn = new lambda.Function(viaAlias, 'Shared', {
      runtime: lambda.Runtime.PYTHON_3_12,
      handler: 'app.handler',
      code: lambda.Code.fromInline('def handler(e, c):\n    return {}\n'),
    });
    newRouter(viaAlias, new lambda.Alias(viaAlias, 'Live', { aliasName: 'live', version: fn.currentVersion }));
    assert.throws(() => Template.fromStack(viaAlias), /backend: ViaAlias\/Shared is not in tenant isolation mode/);
  });

  it('accepts an alias of a PER_TENANT backend and lets the router invoke exactly that alias', () => {
    const { stack, backend } = backendStack(newApp());
    const alias = new lambda.Alias(stack, 'Live', { aliasName: 'live', version: backend.currentVersion });
    const router = newRouter(stack, alias);
    const template = Template.fromStack(stack);
    template.hasResourceProperties('AWS::IAM::Policy', {
      Roles: [ref(idOf(router.role))],
      PolicyDocument: { Statement: Match.arrayWith([{ Sid: 'InvokeBackend', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: ref(idOf(alias)) }]) },
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ ROUTER_BACKEND_FUNCTION: ref(idOf(alias)) }) },
    });
  });

  it('accepts an imported backend with a warning, and still refuses a mapping that names it', () => {
    const arn = 'arn:aws:lambda:us-east-1:111111111111:function:python-backend';
    const { stack } = backendStack(newApp());
    const imported = lambda.Function.fromFunctionArn(stack, 'Imported', arn);
    const router = newRouter(stack, imported, { invocationType: { all: InvocationType.EVENT } });
    Annotations.fromStack(stack).hasWarning(`/${router.node.path}`, Match.stringLikeRegexp('is imported: CDK cannot see its TenancyConfig'));
    Template.fromStack(stack); // synthesizes
    for (const name of ['python-backend:live', `${arn}:7`, '111111111111:function:python-backend']) {
      const { stack: s } = backendStack(newApp());
      newRouter(s, lambda.Function.fromFunctionArn(s, 'Imported', arn), { invocationType: { all: InvocationType.EVENT } });
      new lambda.CfnEventSourceMapping(s, 'Named', { functionName: name, eventSourceArn: queueArn });
      assert.throws(() => Template.fromStack(s), /Named: an event source mapping targets the tenant-isolated backend/, name);
    }
  });

  it('passes a tenancy given as a token through (only CloudFormation knows it)', () => {
    const { stack } = backendStack(newApp());
    const fn = new lambda.Function(stack, 'Tokenized', {
      runtime: lambda.Runtime.PYTHON_3_12,
      handler: 'app.handler',
      code: lambda.Code.fromInline('def handler(e, c):\n    return {}\n'),
    });
    const mode = new CfnParameter(stack, 'IsolationMode', { allowedValues: ['PER_TENANT'] });
    (fn.node.defaultChild as lambda.CfnFunction).tenancyConfig = { tenantIsolationMode: mode.valueAsString };
    newRouter(stack, fn);
    Template.fromStack(stack);
  });
});
