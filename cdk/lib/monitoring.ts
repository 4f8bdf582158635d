import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

export interface MonitoringProps {
  readonly router: lambda.IFunction;
  readonly backend: lambda.IFunction;
  readonly queue: sqs.IQueue;
  readonly fifoQueue: sqs.IQueue;
  readonly queueDeadLetters: sqs.IQueue;
  readonly fifoDeadLetters: sqs.IQueue;
  readonly streamFailures: sqs.IQueue;
  readonly quarantine: sqs.IQueue;
  readonly backendFailures: sqs.IQueue;
  readonly stream: kinesis.IStream;
  /** ARN of an existing topic the alarms notify. @default a new topic encrypted with its own key */
  readonly alarmTopicArn?: string;
  readonly thresholds?: AlarmThresholds;
}

export interface AlarmThresholds {
  /** Stream iterator age (Kinesis GetRecords and Lambda IteratorAge) that means "falling behind". @default 10 minutes */
  readonly iteratorAge?: Duration;
  /** Age of the oldest message in a source queue that means "falling behind". @default 15 minutes */
  readonly queueMessageAge?: Duration;
  /** Rejected records waiting in the quarantine queue. @default 1 */
  readonly quarantineDepth?: number;
}

/**
 * The alarms an operator of this stack needs, each notifying the alarm topic: router errors and
 * throttles; dead-letter, stream-failure and quarantine depth; source queue message age; stream
 * iterator age (Kinesis GetRecords.IteratorAgeMilliseconds and the router's Lambda IteratorAge,
 * which covers both streams); backend errors and async failures (AsyncEventsDropped,
 * DestinationDeliveryFailures, failures queue depth). Missing data is not breaching: idle is fine.
 */
export class Monitoring extends Construct {
  public readonly alarmTopic: sns.ITopic;
  public readonly alarms: cloudwatch.Alarm[] = [];

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.alarmTopic =
      props.alarmTopicArn !== undefined ? sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : this.createTopic();
    const t = props.thresholds ?? {};
    const iteratorAgeMs = (t.iteratorAge ?? Duration.minutes(10)).toMilliseconds();
    const queueAgeSeconds = (t.queueMessageAge ?? Duration.minutes(15)).toSeconds();
    const period = Duration.minutes(5);

    // Router
    this.alarm('RouterErrors', 'The router failed whole invocations (its batches are retried).',
      props.router.metricErrors({ period, statistic: 'Sum' }), 1);
    this.alarm('RouterThrottles', 'Router invocations were throttled (event source mappings fall behind).',
      props.router.metricThrottles({ period, statistic: 'Sum' }), 1);
    this.alarm('RouterIteratorAge', 'The router is falling behind a stream (Kinesis or DynamoDB).',
      props.router.metric('IteratorAge', { period, statistic: 'Maximum' }), iteratorAgeMs);
    this.alarm('KinesisIteratorAge', 'Records wait too long in the Kinesis stream (GetRecords.IteratorAgeMilliseconds).',
      props.stream.metricGetRecordsIteratorAgeMilliseconds({ period, statistic: 'Maximum' }), iteratorAgeMs);

    // Queues
    this.alarm('QueueMessageAge', 'Messages wait too long in the SQS standard source queue.',
      props.queue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }), queueAgeSeconds);
    this.alarm('FifoMessageAge', 'Messages wait too long in the SQS FIFO source queue.',
      props.fifoQueue.metricApproximateAgeOfOldestMessage({ period, statistic: 'Maximum' }), queueAgeSeconds);
    this.depthAlarm('QueueDeadLettersDepth', 'Messages of the SQS standard source reached its dead-letter queue.',
      props.queueDeadLetters, 1);
    this.depthAlarm('FifoDeadLettersDepth', 'Messages of the SQS FIFO source reached its dead-letter queue.',
      props.fifoDeadLetters, 1);
    this.depthAlarm('StreamFailuresDepth', 'A stream mapping discarded a batch (retries or record age exhausted).',
      props.streamFailures, 1);
    this.depthAlarm('QuarantineDepth', 'Rejected records wait in the quarantine queue.',
      props.quarantine, t.quarantineDepth ?? 1);

    // Backend
    this.alarm('BackendErrors', 'The tenant-isolated backend returned errors (retried by Lambda, then sent to the failures queue).',
      props.backend.metricErrors({ period, statistic: 'Sum' }), 1);
    this.alarm('BackendAsyncEventsDropped', 'Lambda dropped async events of the backend.',
      props.backend.metric('AsyncEventsDropped', { period, statistic: 'Sum' }), 1);
    this.alarm('BackendDestinationDeliveryFailures', 'Lambda could not deliver backend results to a destination.',
      props.backend.metric('DestinationDeliveryFailures', { period, statistic: 'Sum' }), 1);
    this.depthAlarm('BackendFailuresDepth', 'Backend async invocations failed for good (OnFailure destination).',
      props.backendFailures, 1);
  }

  private depthAlarm(id: string, description: string, queue: sqs.IQueue, threshold: number): void {
    this.alarm(id, description,
      queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }), threshold);
  }

  private alarm(id: string, description: string, metric: cloudwatch.IMetric, threshold: number): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmDescription: description,
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new actions.SnsAction(this.alarmTopic));
    alarm.addOkAction(new actions.SnsAction(this.alarmTopic));
    this.alarms.push(alarm);
  }

  /**
   * An SNS topic encrypted with its own key. CloudWatch alarms cannot publish to a topic under
   * the AWS managed SNS key, so this key lets the CloudWatch service principal use it, for
   * alarms of this account only.
   */
  private createTopic(): sns.Topic {
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: 'Encrypts the tenant router alarm topic',
      enableKeyRotation: true,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarmsToPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': key.stack.account } },
      }),
    );
    return new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Tenant router alarms',
      masterKey: key,
      enforceSSL: true,
    });
  }
}
