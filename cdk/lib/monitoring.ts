// The router's alarms (`Monitoring`): the router function's own health, the security signals
// (tenant-mismatch rejections, backend guard refusals), the backend's Lambda errors, and one
// alarm per queue or stream a source or a failure path adds. Every alarm evaluates one 5-minute
// period, fires at or above its threshold, treats missing data as fine, and notifies one topic.
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
import { EVENT_SOURCE_NAMES } from './router-config';

/** The thresholds of the router's alarms. */
export interface AlarmThresholds {
  /** Stream iterator age (Kinesis GetRecords and the router's Lambda IteratorAge) that means "falling behind". @default 10 minutes */
  readonly iteratorAge?: Duration;
  /** Age of the oldest message in a source queue that means "falling behind". @default 15 minutes */
  readonly queueMessageAge?: Duration;
  /** Rejected records waiting in the quarantine queue. @default 1 */
  readonly quarantineDepth?: number;
}

/** The backend's own default for `BACKEND_METRICS_NAMESPACE`. */
export const DEFAULT_BACKEND_METRICS_NAMESPACE = 'TenantBackend';

/** The aggregation period of every alarm and graph. */
export const PERIOD = Duration.minutes(5);

export interface MonitoringProps {
  readonly router: lambda.IFunction;
  readonly backend: lambda.IFunction;
  /** The backend's unqualified function name: the `Service` dimension of its EMF metrics. */
  readonly backendName: string;
  readonly routerNamespace: string;
  readonly backendNamespace: string;
  /** @default a new topic encrypted with its own key */
  readonly alarmTopic?: sns.ITopic;
  readonly thresholds?: AlarmThresholds;
}

/** The alarms of one router, and the topic they notify (on ALARM and on OK). */
export class Monitoring extends Construct {
  public readonly alarmTopic: sns.ITopic;
  /** Every alarm, in the order it was added (the dashboard shows them in this order). */
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly thresholds: AlarmThresholds;
  private readonly router: lambda.IFunction;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.alarmTopic = props.alarmTopic ?? this.createTopic();
    this.thresholds = props.thresholds ?? {};
    this.router = props.router;
    const sum = { period: PERIOD, statistic: 'Sum' };

    this.alarm('RouterErrors', 'The router failed whole invocations (its batches are retried).',
      props.router.metricErrors(sum), 1);
    this.alarm('RouterThrottles', 'Router invocations were throttled (event source mappings fall behind).',
      props.router.metricThrottles(sum), 1);
    // One MathExpression over the four (Service, Source) series: an alarm takes no SEARCH.
    this.alarm('TenantMismatchRejections',
      "Records were rejected because their token was issued for another tenant (rejected.tenant-mismatch): a producer's credentials may have leaked.",
      new cloudwatch.MathExpression({
        expression: `SUM([${EVENT_SOURCE_NAMES.join(', ')}])`,
        usingMetrics: Object.fromEntries(EVENT_SOURCE_NAMES.map((source) => [
          source,
          new cloudwatch.Metric({
            namespace: props.routerNamespace,
            metricName: 'rejected.tenant-mismatch',
            dimensionsMap: { Service: props.router.functionName, Source: source },
            ...sum,
          }),
        ])),
        label: 'tenant-mismatch rejections',
        period: PERIOD,
      }), 1);

    this.alarm('BackendErrors', 'The tenant-isolated backend returned errors.',
      props.backend.metricErrors(sum), 1);
    this.alarm('BackendInvocationsRefused',
      "The backend's tenant guard refused invocations (no tenant, an envelope for another tenant, an environment offered a second tenant): look at its security events.",
      new cloudwatch.Metric({
        namespace: props.backendNamespace,
        metricName: 'InvocationsRefused',
        dimensionsMap: { Service: props.backendName },
        ...sum,
      }), 1);
    this.alarm('BackendAsyncEventsDropped', 'Lambda dropped async events of the backend.',
      props.backend.metric('AsyncEventsDropped', sum), 1);
    this.alarm('BackendDestinationDeliveryFailures', 'Lambda could not deliver backend results to a destination.',
      props.backend.metric('DestinationDeliveryFailures', sum), 1);
  }

  /** An alarm on the messages waiting in `queue` (quarantine, dead letters, failures). */
  public queueDepth(id: string, description: string, queue: sqs.IQueue, threshold?: number): void {
    this.alarm(id, description, queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }), threshold ?? 1);
  }

  /** An alarm on the age of the oldest message of a source queue. */
  public queueMessageAge(id: string, description: string, queue: sqs.IQueue): void {
    this.alarm(id, description, queue.metricApproximateAgeOfOldestMessage({ period: PERIOD, statistic: 'Maximum' }),
      (this.thresholds.queueMessageAge ?? Duration.minutes(15)).toSeconds());
  }

  /** The router's Lambda IteratorAge (all its stream mappings), added with the first stream source. */
  public routerIteratorAge(): void {
    if (this.node.tryFindChild('RouterIteratorAge') === undefined) {
      this.alarm('RouterIteratorAge', 'The router is falling behind a stream (Kinesis or DynamoDB).',
        this.router.metric('IteratorAge', { period: PERIOD, statistic: 'Maximum' }), this.iteratorAgeMs());
    }
  }

  /** Kinesis GetRecords.IteratorAgeMilliseconds of one stream. */
  public kinesisIteratorAge(id: string, stream: kinesis.IStream): void {
    this.alarm(id, 'Records wait too long in a Kinesis source stream (GetRecords.IteratorAgeMilliseconds).',
      stream.metricGetRecordsIteratorAgeMilliseconds({ period: PERIOD, statistic: 'Maximum' }), this.iteratorAgeMs());
  }

  private iteratorAgeMs(): number {
    return (this.thresholds.iteratorAge ?? Duration.minutes(10)).toMilliseconds();
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
