import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Template } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { buildStack, defaultStack, idOf, newApp, newStack, ref } from './helpers';

describe('tenant isolation and event source mappings', () => {
  it('keeps every event source mapping on the router: none targets the PER_TENANT backend', () => {
    const { stack, template } = defaultStack();
    const mappings = Object.values(template.findResources('AWS::Lambda::EventSourceMapping'));
    assert.equal(mappings.length, 4);
    for (const mapping of mappings) {
      assert.deepEqual(mapping.Properties.FunctionName, ref(idOf(stack.router.function)));
      assert.notDeepEqual(mapping.Properties.FunctionName, ref(idOf(stack.backend.function)));
    }
    assert.equal(JSON.stringify(mappings).includes(idOf(stack.backend.function)), false);
    // Exactly one function is tenant-isolated, and it is the backend.
    const isolated = template.findResources('AWS::Lambda::Function', {
      Properties: { TenancyConfig: { TenantIsolationMode: 'PER_TENANT' } },
    });
    assert.deepEqual(Object.keys(isolated), [idOf(stack.backend.function)]);
  });

  type Built = ReturnType<typeof buildStack>['stack'];
  const newSources: ReadonlyArray<readonly [string, (stack: Built, id: string) => lambda.IEventSource]> = [
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
    const app = newApp();
    const stack = newStack(app);
    stack.backend.function.addEventSourceMapping('Sneaky', { eventSourceArn: stack.sources.queue.queueArn });
    assert.throws(
      () => Template.fromStack(stack),
      /Sneaky\/Resource: an event source mapping targets the tenant-isolated backend; mappings cannot pass a tenant id/,
    );
  });

  it('refuses the same mapping when it names the backend by ARN', () => {
    const app = newApp();
    const stack = newStack(app);
    new lambda.CfnEventSourceMapping(stack, 'ByArn', {
      functionName: stack.backend.function.functionArn,
      eventSourceArn: stack.sources.queue.queueArn,
    });
    assert.throws(() => Template.fromStack(stack), /ByArn: an event source mapping targets the tenant-isolated backend/);
  });
});
