import { Aws, CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { defaultAssetPath } from './assets';
import { Backend } from './backend';
import { Dashboard } from './dashboard';
import { EventSources, KinesisSourceOptions, QueueSourceOptions, StreamSourceOptions } from './event-sources';
import { AlarmThresholds, Monitoring } from './monitoring';
import { QuarantineBucket } from './quarantine-bucket';
import { Router } from './router';
import { RECOMMENDED_INVOCATION_TYPES, RouterConfig, routerMetricsNamespace } from './router-config';
import { SecureQueue } from './secure-queue';

/** How long rejected records are kept: the quarantine queue's retention and the bucket's expiry. */
export const QUARANTINE_RETENTION = Duration.days(14);

export interface TenantRouterStackProps extends StackProps {
  /**
   * The router's settings: JWKS URL, issuer, audience, tenant and token locations, … Unset
   * `invocationType` means {@link RECOMMENDED_INVOCATION_TYPES} (`request-response` for the FIFO
   * queue, Kinesis and DynamoDB, `event` otherwise); give `{ default: 'event' }` for the router's
   * own default.
   */
  readonly routerConfig: RouterConfig;
  /** The architecture both bundles were built for. @default X86_64 */
  readonly architecture?: lambda.Architecture;
  /** Directory with the router's `bootstrap`. @default <repository>/target/lambda/router */
  readonly routerAssetPath?: string;
  /** Directory with the backend's `bootstrap` and `tenants/`. @default <repository>/target/lambda/backend */
  readonly backendAssetPath?: string;
  /** What happens to queues, stream, tables, buckets, logs and key when the stack is deleted. @default RETAIN */
  readonly dataRemovalPolicy?: RemovalPolicy;
  /** @default 512 MB */
  readonly routerMemorySize?: number;
  /**
   * At least `ROUTER_INVOKE_TIMEOUT_MS` + `ROUTER_DEADLINE_MARGIN_MS` + 5 s; under
   * `request-response` the invoke timeout follows the backend's timeout (`routerTimeouts`).
   * @default 60 seconds, or that least timeout when it is longer
   */
  readonly routerTimeout?: Duration;
  /** @default 256 MB */
  readonly backendMemorySize?: number;
  /** Under `request-response` it sets `ROUTER_INVOKE_TIMEOUT_MS` (+ 1 s). @default 30 seconds */
  readonly backendTimeout?: Duration;
  /** Lambda's retries of a failed backend invocation (0–2). @default 2 */
  readonly backendRetryAttempts?: number;
  /** Age after which Lambda gives up an async backend event. @default 6 hours */
  readonly backendMaxEventAge?: Duration;
  /**
   * How long the backend remembers a completed record in its idempotency table
   * (`BACKEND_IDEMPOTENCY_TTL_SECONDS`, whole seconds, at least 1). @default 1 hour
   */
  readonly backendIdempotencyTtl?: Duration;
  readonly queue?: QueueSourceOptions;
  readonly fifoQueue?: QueueSourceOptions;
  readonly kinesis?: KinesisSourceOptions;
  readonly dynamodb?: StreamSourceOptions;
  /** ARN of an existing SNS topic the alarms notify. @default a new encrypted topic (output AlarmTopicArn) */
  readonly alarmTopicArn?: string;
  readonly alarmThresholds?: AlarmThresholds;
  /** Of both functions' log groups and the quarantine bucket's access logs. @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The whole deployment: event sources → router → tenant-isolated backend, the quarantine queue
 * and bucket, the backend's async destinations and idempotency table, one customer managed key
 * for all data at rest, and alarms.
 */
export class TenantRouterStack extends Stack {
  /** The router configuration deployed: the given one, with the stack's default invocation types. */
  public readonly routerConfig: RouterConfig;
  public readonly dataKey: kms.Key;
  public readonly backend: Backend;
  public readonly router: Router;
  public readonly sources: EventSources;
  public readonly quarantine: SecureQueue['queue'];
  /** Rejected records too large for a quarantine message (`ROUTER_QUARANTINE_BUCKET`). */
  public readonly quarantineBucket: s3.Bucket;
  public readonly monitoring: Monitoring;
  public readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, props: TenantRouterStackProps) {
    super(scope, id, props);
    const architecture = props.architecture ?? lambda.Architecture.X86_64;
    const removalPolicy = props.dataRemovalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.routerConfig = {
      ...props.routerConfig,
      invocationType: props.routerConfig.invocationType ?? RECOMMENDED_INVOCATION_TYPES,
    };

    this.dataKey = new kms.Key(this, 'DataKey', {
      description: 'Encrypts the tenant router queues, stream, table and quarantine bucket',
      enableKeyRotation: true,
      removalPolicy,
    });

    this.backend = new Backend(this, 'Backend', {
      assetPath: props.backendAssetPath ?? defaultAssetPath('backend'),
      architecture,
      encryptionKey: this.dataKey,
      removalPolicy,
      memorySize: props.backendMemorySize,
      timeout: props.backendTimeout,
      asyncRetryAttempts: props.backendRetryAttempts,
      maxEventAge: props.backendMaxEventAge,
      idempotencyTtl: props.backendIdempotencyTtl,
      logRetention,
    });

    this.quarantine = new SecureQueue(this, 'Quarantine', {
      encryptionKey: this.dataKey,
      retentionPeriod: QUARANTINE_RETENTION,
      removalPolicy,
    }).queue;
    Validations.of(this.quarantine).acknowledge(
      {
        id: 'AwsSolutions-SQS3',
        reason:
          'The quarantine queue is the terminal store of rejected records (with their reason) for operators; ' +
          'no consumer fails on them, so there is nothing to redrive. Its depth is alarmed.',
      },
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason:
          'Terminal store of rejected records, read by operators; a redrive policy would only move them to ' +
          'another terminal queue. Its depth is alarmed.',
      },
    );

    // Next to the queue, under the same key: the records too large for a message.
    this.quarantineBucket = new QuarantineBucket(this, 'QuarantineBucket', {
      encryptionKey: this.dataKey,
      retention: QUARANTINE_RETENTION,
      // RetentionDays counts days (INFINITE is 9999).
      accessLogRetention: Duration.days(logRetention),
      removalPolicy,
    }).bucket;

    this.router = new Router(this, 'Router', {
      assetPath: props.routerAssetPath ?? defaultAssetPath('router'),
      architecture,
      config: this.routerConfig,
      backend: this.backend.function,
      backendTimeout: this.backend.timeout,
      quarantineQueue: this.quarantine,
      quarantineBucket: this.quarantineBucket,
      quarantineKey: this.dataKey,
      removalPolicy,
      memorySize: props.routerMemorySize,
      timeout: props.routerTimeout,
      logRetention,
    });

    this.sources = new EventSources(this, 'Sources', {
      router: this.router.function,
      // The final timeout (given, or raised for request-response): the visibility timeouts follow it.
      routerTimeout: this.router.timeout,
      encryptionKey: this.dataKey,
      removalPolicy,
      queue: props.queue,
      fifoQueue: props.fifoQueue,
      kinesis: props.kinesis,
      dynamodb: props.dynamodb,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      router: this.router.function,
      backend: this.backend.function,
      queue: this.sources.queue,
      fifoQueue: this.sources.fifoQueue,
      queueDeadLetters: this.sources.queueDeadLetters,
      fifoDeadLetters: this.sources.fifoDeadLetters,
      streamFailures: this.sources.streamFailures,
      quarantine: this.quarantine,
      backendFailures: this.backend.failureQueue,
      stream: this.sources.stream,
      alarmTopicArn: props.alarmTopicArn,
      thresholds: props.alarmThresholds,
    });

    this.dashboard = new Dashboard(this, 'Dashboard', {
      // Dashboard names are unique per account, across regions.
      dashboardName: `${this.stackName}-${Aws.REGION}`,
      router: this.router.function,
      backend: this.backend.function,
      routerLogGroup: this.router.logGroup,
      backendLogGroup: this.backend.logGroup,
      routerNamespace: routerMetricsNamespace(this.routerConfig),
      routerTimeout: this.router.timeout,
      alarms: this.monitoring.alarms,
      operatorQueues: {
        quarantine: this.quarantine,
        'queue dead letters': this.sources.queueDeadLetters,
        'FIFO dead letters': this.sources.fifoDeadLetters,
        'stream failures': this.sources.streamFailures,
        'backend failures': this.backend.failureQueue,
      },
    });

    // Lambda cannot pass a tenant id through an event source mapping, and CDK's addEventSource
    // throws for a PER_TENANT function; a raw EventSourceMapping would slip past that, so the
    // stack refuses to synthesize with any mapping that targets the backend.
    this.node.addValidation({ validate: () => this.mappingsOnBackend() });

    const outputs: { [name: string]: [string, string] } = {
      QueueUrl: [this.sources.queue.queueUrl, 'SQS standard source queue'],
      FifoQueueUrl: [this.sources.fifoQueue.queueUrl, 'SQS FIFO source queue'],
      StreamName: [this.sources.stream.streamName, 'Kinesis source stream'],
      TableName: [this.sources.table.tableName, 'DynamoDB source table (pk, sk)'],
      IdempotencyTableName: [this.backend.idempotencyTable.tableName, "Backend's idempotency records (id; TTL expiration)"],
      QuarantineQueueUrl: [this.quarantine.queueUrl, 'Rejected records with their reason'],
      QuarantineBucketName: [this.quarantineBucket.bucketName, 'Rejected records too large for a quarantine message'],
      StreamFailuresQueueUrl: [this.sources.streamFailures.queueUrl, 'Batches the stream mappings gave up on'],
      BackendFailuresQueueUrl: [this.backend.failureQueue.queueUrl, 'Backend async invocations that failed for good'],
      ResultsBusName: [this.backend.resultsBus.eventBusName, "EventBridge bus carrying the backend's results"],
      RouterFunctionName: [this.router.function.functionName, 'Router function'],
      BackendFunctionName: [this.backend.function.functionName, 'Tenant-isolated backend function'],
      RouterLogGroupName: [this.router.logGroup.logGroupName, "Router's JSON logs"],
      BackendLogGroupName: [this.backend.logGroup.logGroupName, "Backend's JSON logs"],
      DataKeyArn: [this.dataKey.keyArn, 'Key producers need kms:GenerateDataKey on'],
      AlarmTopicArn: [this.monitoring.alarmTopic.topicArn, 'Subscribe here to receive the alarms'],
      DashboardName: [this.dashboard.dashboard.dashboardName, 'CloudWatch dashboard of the router and the backend'],
    };
    for (const [name, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value, description });
    }
  }

  private mappingsOnBackend(): string[] {
    const backendName = this.resolve(this.backend.function.functionName);
    const backendArn = this.resolve(this.backend.function.functionArn);
    const errors: string[] = [];
    for (const child of this.node.findAll()) {
      if (child instanceof lambda.CfnEventSourceMapping) {
        const target = JSON.stringify(this.resolve(child.functionName));
        if (target === JSON.stringify(backendName) || target === JSON.stringify(backendArn)) {
          errors.push(
            `${child.node.path}: an event source mapping targets the tenant-isolated backend; ` +
              'mappings cannot pass a tenant id, so they must target the router',
          );
        }
      }
    }
    return errors;
  }
}
