// The full deployment, built on the library: this repository's Rust backend (`RustBackend`), a
// `TenantRouter` in front of it with a tenant registry, and the four event sources it creates
// itself (an SQS standard and an SQS FIFO queue with dead-letter queues, a Kinesis stream, a
// DynamoDB table with a stream), one data key for everything at rest, and the outputs an
// operator needs. examples/full/app.ts instantiates it from CDK context.
import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  AlarmThresholds,
  DataKey,
  RouterConfig,
  RustBackend,
  RustCode,
  SourceQueue,
  SqsSourceOptions,
  StreamSourceOptions,
  TenantRegistryOptions,
  TenantRouter,
} from '../../lib';

/** The example backend's idempotency TTL: the source queues' retention (SQS's default, 4 days), its sources' longest retry horizon. */
export const EXAMPLE_IDEMPOTENCY_TTL = Duration.days(4);

/** Settings of one of the example's SQS queues and its mapping. */
export interface QueueSourceOptions extends Omit<SqsSourceOptions, 'name' | 'filters'> {
  /** Receives before a message moves to the dead-letter queue. @default 5 */
  readonly maxReceiveCount?: number;
}

/** Settings of the example's Kinesis stream and its mapping. */
export interface KinesisSourceOptions extends Omit<StreamSourceOptions, 'name' | 'startingPosition' | 'onFailure' | 'filters'> {
  /** Provisioned shards. @default 1 */
  readonly shardCount?: number;
  /** Stream retention; must exceed maxRecordAge. @default 24 hours */
  readonly retentionPeriod?: Duration;
}

export interface FullDeploymentProps extends StackProps {
  /** The router's settings (JWT, tenant and token locations, invocation types, …). */
  readonly routerConfig: RouterConfig;
  /** The architecture both bundles were built for. @default X86_64 */
  readonly architecture?: lambda.Architecture;
  /** @default RustCode.fromBundle(): target/lambda/router */
  readonly routerCode?: RustCode;
  /** @default RustCode.fromBundle(): target/lambda/backend */
  readonly backendCode?: RustCode;
  /** What happens to queues, stream, tables, buckets, logs and key when the stack is deleted. @default RETAIN */
  readonly dataRemovalPolicy?: RemovalPolicy;
  /** @default 512 MB */
  readonly routerMemorySize?: number;
  /** @default 60 seconds, or what a long backend timeout needs */
  readonly routerTimeout?: Duration;
  /** @default 256 MB */
  readonly backendMemorySize?: number;
  /** @default 30 seconds */
  readonly backendTimeout?: Duration;
  /** @default 2 */
  readonly backendRetryAttempts?: number;
  /** @default 6 hours */
  readonly backendMaxEventAge?: Duration;
  /**
   * `BACKEND_IDEMPOTENCY_TTL_SECONDS`: at least 900 s and the backend's timeout.
   * @default 4 days: the source queues' retention, the longest retry horizon of the example's sources (so a redelivery is always recognised)
   */
  readonly backendIdempotencyTtl?: Duration;
  readonly queue?: QueueSourceOptions;
  readonly fifoQueue?: QueueSourceOptions;
  readonly kinesis?: KinesisSourceOptions;
  readonly dynamodb?: Omit<StreamSourceOptions, 'name' | 'startingPosition' | 'onFailure' | 'filters'>;
  /** ARN of an existing SNS topic the alarms notify. @default a new encrypted topic (output AlarmTopicArn) */
  readonly alarmTopicArn?: string;
  readonly alarmThresholds?: AlarmThresholds;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
  /** The tenant registry's settings. @default a new registry table, the router's defaults */
  readonly tenantRegistry?: TenantRegistryOptions;
}

/** The example's event sources: what `TenantRouter` does not create, because a user brings them. */
export class Sources extends Construct {
  public readonly queue: sqs.Queue;
  public readonly queueDeadLetters: sqs.Queue;
  public readonly fifoQueue: sqs.Queue;
  public readonly fifoDeadLetters: sqs.Queue;
  public readonly stream: kinesis.Stream;
  public readonly table: dynamodb.Table;

  constructor(scope: Construct, id: string, router: TenantRouter, key: kms.IKey, props: FullDeploymentProps, removalPolicy: RemovalPolicy) {
    super(scope, id);
    // A standard and a FIFO queue, each with its dead-letter queue, mapped to the router.
    const sourceQueue = (id: string, options: QueueSourceOptions = {}, fifo = false): SourceQueue => {
      const queue = new SourceQueue(this, id, {
        router,
        fifo,
        // The test messages of cdk/README.md give no deduplication id.
        contentBasedDeduplication: fifo || undefined,
        maxBatchingWindow: options.maxBatchingWindow,
        maxReceiveCount: options.maxReceiveCount,
        encryptionKey: key,
        removalPolicy,
      });
      router.addSqsSource(queue.queue, { ...mappingOptions(options), name: id });
      return queue;
    };
    const queue = sourceQueue('Queue', props.queue);
    this.queue = queue.queue;
    this.queueDeadLetters = queue.deadLetterQueue;
    const fifo = sourceQueue('Fifo', props.fifoQueue, true);
    this.fifoQueue = fifo.queue;
    this.fifoDeadLetters = fifo.deadLetterQueue;

    const { shardCount, retentionPeriod, ...kinesisMapping } = props.kinesis ?? {};
    this.stream = new kinesis.Stream(this, 'Stream', {
      shardCount: shardCount ?? 1,
      streamMode: kinesis.StreamMode.PROVISIONED,
      retentionPeriod: retentionPeriod ?? Duration.hours(24),
      encryption: kinesis.StreamEncryption.KMS,
      encryptionKey: key,
      removalPolicy,
    });
    Validations.of(this.stream).acknowledge({
      id: 'AwsSolutions-KDS3',
      reason:
        'The stream is encrypted with the data key (customer managed, rotated yearly), like the queues and the ' +
        'tables. Under aws/kinesis any principal of the account allowed kinesis:GetRecords reads the records; ' +
        'under this key it also needs kms:Decrypt on it, granted per role, and the key policy is ours to tighten.',
    });
    router.addKinesisSource(this.stream, { ...kinesisMapping, name: 'Kinesis', startingPosition: lambda.StartingPosition.TRIM_HORIZON });

    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: key,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
    router.addDynamoDbSource(this.table, { ...props.dynamodb, name: 'DynamoDb', startingPosition: lambda.StartingPosition.TRIM_HORIZON });
  }
}

function mappingOptions(options: QueueSourceOptions): SqsSourceOptions {
  const { maxReceiveCount: _receives, ...mapping } = options;
  return mapping;
}

/** The whole deployment: event sources → router → tenant-isolated Rust backend. */
export class FullDeploymentStack extends Stack {
  public readonly dataKey: kms.IKey;
  public readonly backend: RustBackend;
  public readonly router: TenantRouter;
  public readonly sources: Sources;

  constructor(scope: Construct, id: string, props: FullDeploymentProps) {
    super(scope, id, props);
    const removalPolicy = props.dataRemovalPolicy ?? RemovalPolicy.RETAIN;
    const architecture = props.architecture ?? lambda.Architecture.X86_64;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    this.dataKey = new DataKey(this, 'DataKey', {
      description: 'Encrypts the tenant router queues, stream, tables, logs, results bus and quarantine bucket',
      removalPolicy,
    }).key;

    this.backend = new RustBackend(this, 'Backend', {
      code: props.backendCode,
      architecture,
      encryptionKey: this.dataKey,
      removalPolicy,
      memorySize: props.backendMemorySize,
      timeout: props.backendTimeout,
      asyncRetryAttempts: props.backendRetryAttempts,
      maxEventAge: props.backendMaxEventAge,
      // The longest retry horizon of the sources below (the queues keep messages 4 days; the streams
      // deliver records up to 12 hours old): a record redelivered within it is always recognised.
      idempotencyTtl: props.backendIdempotencyTtl ?? EXAMPLE_IDEMPOTENCY_TTL,
      logRetention,
    });

    this.router = new TenantRouter(this, 'Router', {
      ...props.routerConfig,
      backend: this.backend.function,
      backendLogGroup: this.backend.logGroup,
      code: props.routerCode,
      architecture,
      encryptionKey: this.dataKey,
      removalPolicy,
      memorySize: props.routerMemorySize,
      timeout: props.routerTimeout,
      logRetention,
      alarmTopic: props.alarmTopicArn === undefined ? undefined : sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn),
      alarmThresholds: props.alarmThresholds,
      // Dashboard names are unique per account, across regions.
      dashboardName: `${this.stackName}-${this.region}`,
      tenantRegistry: props.tenantRegistry ?? {},
    });

    this.sources = new Sources(this, 'Sources', this.router, this.dataKey, props, removalPolicy);
    this.router.addOperatorQueue('backend failures', this.backend.failureQueue,
      'Backend async invocations failed for good (OnFailure destination).');

    const outputs: { [name: string]: [string, string] } = {
      QueueUrl: [this.sources.queue.queueUrl, 'SQS standard source queue'],
      FifoQueueUrl: [this.sources.fifoQueue.queueUrl, 'SQS FIFO source queue'],
      StreamName: [this.sources.stream.streamName, 'Kinesis source stream'],
      TableName: [this.sources.table.tableName, 'DynamoDB source table (pk, sk)'],
      IdempotencyTableName: [this.backend.idempotencyTable.tableName, "Backend's idempotency records (id; TTL expiration)"],
      TenantRegistryTableName: [this.router.tenantRegistryTable!.tableName, 'Tenant registry (tenantId; status active | suspended)'],
      QuarantineQueueUrl: [this.router.quarantineQueue.queueUrl, 'Rejected records with their reason'],
      QuarantineBucketName: [this.router.quarantineBucket.bucketName, 'Rejected records too large for a quarantine message'],
      StreamFailuresQueueUrl: [this.router.streamFailuresQueue!.queueUrl, 'Batches the stream mappings gave up on'],
      BackendFailuresQueueUrl: [this.backend.failureQueue.queueUrl, 'Backend async invocations that failed for good'],
      ResultsBusName: [this.backend.resultsBus.eventBusName, "EventBridge bus carrying the backend's results"],
      RouterFunctionName: [this.router.function.functionName, 'Router function'],
      BackendFunctionName: [this.backend.function.functionName, 'Tenant-isolated backend function'],
      RouterLogGroupName: [this.router.logGroup.logGroupName, "Router's JSON logs"],
      BackendLogGroupName: [this.backend.logGroup.logGroupName, "Backend's JSON logs"],
      DataKeyArn: [this.dataKey.keyArn, 'Key producers need kms:GenerateDataKey on'],
      AlarmTopicArn: [this.router.alarmTopic.topicArn, 'Subscribe here to receive the alarms'],
      DashboardName: [this.router.dashboard.dashboardName, 'CloudWatch dashboard of the router and the backend'],
    };
    if (this.backend.tenantAccessRole !== undefined) {
      outputs.TenantAccessRoleArn = [this.backend.tenantAccessRole.role.roleArn, "Role the backend's guard assumes per tenant (BACKEND_TENANT_ROLE_ARN)"];
    }
    for (const [name, [value, description]] of Object.entries(outputs)) {
      new CfnOutput(this, name, { value, description });
    }
  }
}
