// The router's alarms in the full example: each one's metric, statistic, threshold and actions.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Duration } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { EVENT_SOURCE_NAMES } from '../lib/router-config';
import { arn, buildStack, defaultStack, idOf, ref } from './helpers';

type Expected = {
  readonly namespace: string;
  readonly metric: string;
  readonly dimensions: { Name: string; Value: unknown }[];
  readonly statistic: 'Sum' | 'Maximum';
  readonly threshold: number;
};

/** The tenant-mismatch alarm: one expression summing the router's `rejected.tenant-mismatch` over the four sources. */
function tenantMismatchMetrics(routerId: string, namespace = 'TenantRouter'): unknown[] {
  return [
    { Id: 'expr_1', Label: 'tenant-mismatch rejections', Expression: 'SUM([sqs, kinesis, dynamodb, eventbridge])', ReturnData: true },
    ...EVENT_SOURCE_NAMES.map((source) => ({
      Id: source,
      MetricStat: {
        Metric: {
          Namespace: namespace,
          MetricName: 'rejected.tenant-mismatch',
          Dimensions: [
            { Name: 'Service', Value: ref(routerId) },
            { Name: 'Source', Value: source },
          ],
        },
        Period: 300,
        Stat: 'Sum',
      },
      ReturnData: false,
    })),
  ];
}

function expectedAlarms(): { [id: string]: Expected } {
  const { stack } = defaultStack();
  const fn = (c: Parameters<typeof idOf>[0]) => [{ Name: 'FunctionName', Value: ref(idOf(c)) }];
  const queue = (c: Parameters<typeof idOf>[0]) => [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [idOf(c), 'QueueName'] } }];
  const lambda = (c: Parameters<typeof idOf>[0], metric: string, statistic: 'Sum' | 'Maximum', threshold: number): Expected => ({
    namespace: 'AWS/Lambda',
    metric,
    dimensions: fn(c),
    statistic,
    threshold,
  });
  const sqs = (c: Parameters<typeof idOf>[0], metric: string, threshold: number): Expected => ({
    namespace: 'AWS/SQS',
    metric,
    dimensions: queue(c),
    statistic: 'Maximum',
    threshold,
  });
  const depth = 'ApproximateNumberOfMessagesVisible';
  return {
    RouterErrors: lambda(stack.router.function, 'Errors', 'Sum', 1),
    RouterThrottles: lambda(stack.router.function, 'Throttles', 'Sum', 1),
    RouterIteratorAge: lambda(stack.router.function, 'IteratorAge', 'Maximum', 600_000),
    KinesisIteratorAge: {
      namespace: 'AWS/Kinesis',
      metric: 'GetRecords.IteratorAgeMilliseconds',
      dimensions: [{ Name: 'StreamName', Value: ref(idOf(stack.sources.stream)) }],
      statistic: 'Maximum',
      threshold: 600_000,
    },
    QueueMessageAge: sqs(stack.sources.queue, 'ApproximateAgeOfOldestMessage', 900),
    FifoMessageAge: sqs(stack.sources.fifoQueue, 'ApproximateAgeOfOldestMessage', 900),
    QueueDeadLettersDepth: sqs(stack.sources.queueDeadLetters, depth, 1),
    FifoDeadLettersDepth: sqs(stack.sources.fifoDeadLetters, depth, 1),
    StreamFailuresDepth: sqs(stack.router.streamFailuresQueue!, depth, 1),
    QuarantineDepth: sqs(stack.router.quarantineQueue, depth, 1),
    BackendErrors: lambda(stack.backend.function, 'Errors', 'Sum', 1),
    // the backend guard's refusals: its EMF namespace (BACKEND_METRICS_NAMESPACE), dimension Service = the function's name
    BackendInvocationsRefused: {
      namespace: 'TenantBackend',
      metric: 'InvocationsRefused',
      dimensions: [{ Name: 'Service', Value: ref(idOf(stack.backend.function)) }],
      statistic: 'Sum',
      threshold: 1,
    },
    BackendAsyncEventsDropped: lambda(stack.backend.function, 'AsyncEventsDropped', 'Sum', 1),
    BackendDestinationDeliveryFailures: lambda(stack.backend.function, 'DestinationDeliveryFailures', 'Sum', 1),
    BackendFailuresDepth: sqs(stack.backend.failureQueue, depth, 1),
  };
}

describe('alarms', () => {
  it('has exactly the alarms a production team expects, on the right metrics', () => {
    const { stack, template } = defaultStack();
    const expected = expectedAlarms();
    const alarms = template.findResources('AWS::CloudWatch::Alarm');
    assert.equal(Object.keys(alarms).length, Object.keys(expected).length + 1);
    const topic = ref(idOf(stack.router.alarmTopic as sns.Topic));
    const mismatch = { ...alarms[idOf(stack.router.node.findChild('Alarms').node.findChild('TenantMismatchRejections'))].Properties };
    assert.match(mismatch.AlarmDescription, /token was issued for another tenant/);
    delete mismatch.AlarmDescription;
    assert.deepEqual(mismatch, {
      Metrics: tenantMismatchMetrics(idOf(stack.router.function)),
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [topic],
      OKActions: [topic],
    });
    for (const [id, e] of Object.entries(expected)) {
      const alarm = alarms[idOf(stack.router.node.findChild('Alarms').node.findChild(id))];
      assert.ok(alarm, `alarm ${id}`);
      const props = { ...alarm.Properties };
      assert.equal(typeof props.AlarmDescription, 'string');
      delete props.AlarmDescription;
      assert.deepEqual(
        props,
        {
          Namespace: e.namespace,
          MetricName: e.metric,
          Dimensions: e.dimensions,
          Statistic: e.statistic,
          Period: 300,
          EvaluationPeriods: 1,
          Threshold: e.threshold,
          ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          TreatMissingData: 'notBreaching',
          AlarmActions: [topic],
          OKActions: [topic],
        },
        id,
      );
    }
  });

  it('notifies an encrypted topic that only accepts TLS', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: arn(idOf(stack.router.node.findChild('Alarms').node.findChild('AlarmTopicKey'))),
    });
    template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: [
          {
            Sid: 'AllowPublishThroughSSLOnly',
            Action: 'sns:Publish',
            Effect: 'Deny',
            Principal: '*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            Resource: ref(idOf(stack.router.alarmTopic as sns.Topic)),
          },
        ],
      },
    });
  });

  it('takes thresholds and an existing topic as props', () => {
    const topicArn = 'arn:aws:sns:eu-west-1:123456789012:platform-alarms';
    const { stack, template } = buildStack({
      alarmThresholds: { iteratorAge: Duration.minutes(1), queueMessageAge: Duration.minutes(2), quarantineDepth: 25 },
      alarmTopicArn: topicArn,
    });
    const alarms = template.toJSON().Resources;
    const props = (id: string) => alarms[idOf(stack.router.node.findChild('Alarms').node.findChild(id))].Properties;
    assert.equal(props('RouterIteratorAge').Threshold, 60_000);
    assert.equal(props('KinesisIteratorAge').Threshold, 60_000);
    assert.equal(props('QueueMessageAge').Threshold, 120);
    assert.equal(props('FifoMessageAge').Threshold, 120);
    assert.equal(props('QuarantineDepth').Threshold, 25);
    assert.deepEqual(props('RouterErrors').AlarmActions, [topicArn]);
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.resourceCountIs('AWS::KMS::Key', 1);
  });
});
