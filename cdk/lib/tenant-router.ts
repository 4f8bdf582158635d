// `TenantRouter`: the construct a platform team adds to its own stack in front of a tenant-isolated
// (PER_TENANT) backend in any language. It creates the router function and what it needs that the
// user does not bring (a data key, the quarantine queue and bucket, the stream-failures queue, a
// tenant registry, alarms, a dashboard), puts the event source mappings of the user's queues,
// streams and tables on the router, and refuses at synth a backend that is not tenant-isolated or
// that an event source mapping targets (or whose environment sets an idempotency TTL its guard
// would refuse), and warns when the backend's idempotency TTL is shorter than a source's retry
// horizon.
import { Annotations, Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { backendFacts, BackendFacts, mappingsOnBackend, tenancyProblems } from './backend-isolation';
import { RustCode } from './code';
import { Dashboard } from './dashboard';
import { DataKey } from './data-key';
import { FailureDestination, grantPutObjectOnly, grantSendOnly } from './destinations';
import { backendIdempotencyTtl, IDEMPOTENCY_TTL_VARIABLE } from './idempotency-table';
import { AlarmThresholds, DEFAULT_BACKEND_METRICS_NAMESPACE, Monitoring } from './monitoring';
import { nagResourceName } from './nag';
import { QuarantineBucket } from './quarantine-bucket';
import {
  quarantineMaxMessageBytes,
  RECOMMENDED_INVOCATION_TYPES,
  RouterConfig,
  routerEnvironment,
  routerMetricsNamespace,
  routerTimeouts,
  SQS_MAX_MESSAGE_BYTES,
} from './router-config';
import { RustFunction } from './rust-function';
import { SecureQueue } from './secure-queue';
import {
  dynamoEventSource,
  kinesisEventSource,
  RetryHorizon,
  sqsEventSource,
  sqsRetryHorizon,
  SqsSourceOptions,
  streamRetryHorizon,
  StreamSourceOptions,
  visibilityTimeout,
} from './sources';
import { TenantRegistry, TenantRegistryOptions } from './tenant-registry';

/** How long rejected records are kept: the created quarantine queue's retention and the bucket's expiry. */
export const QUARANTINE_RETENTION = Duration.days(14);

/** Properties of a {@link TenantRouter}: the router's settings, its backend, and what it creates. */
export interface TenantRouterProps extends RouterConfig {
  /**
   * The tenant-isolated function the router invokes with each record's tenant id: a
   * `lambda.Function` with `tenancyConfig: lambda.TenancyConfig.PER_TENANT` (anything else is a
   * synth error), a version or alias of one, or an imported function (accepted with a warning,
   * since CDK cannot see its tenancy). No event source mapping may target it.
   */
  readonly backend: lambda.IFunction;
  /**
   * The backend's timeout: under `request-response` each Invoke waits for the backend, so it
   * sets `ROUTER_INVOKE_TIMEOUT_MS` and the least router timeout.
   * @default read from the backend function; required for an imported backend under request-response, unless invokeTimeout is given
   */
  readonly backendTimeout?: Duration;
  /** `BACKEND_METRICS_NAMESPACE` the backend's guard publishes under (its alarms and graphs read it). @default TenantBackend */
  readonly backendMetricsNamespace?: string;
  /**
   * The backend's log group, for the per-tenant Logs Insights queries.
   * @default the backend function's log group when CDK can see it, else /aws/lambda/<function name>
   */
  readonly backendLogGroup?: logs.ILogGroup;
  /** The router's code. @default RustCode.fromBundle(): target/lambda/router, built by ./scripts/build-lambda.sh */
  readonly code?: RustCode;
  /** The router's architecture; the bundle must be built for it. @default X86_64 */
  readonly architecture?: lambda.Architecture;
  /** The router's memory, in MB. @default 512 */
  readonly memorySize?: number;
  /**
   * The router's timeout: at least `ROUTER_INVOKE_TIMEOUT_MS` + `ROUTER_DEADLINE_MARGIN_MS` + 5 s.
   * @default 60 seconds, or that least timeout when it is longer
   */
  readonly timeout?: Duration;
  /** Concurrency reserved for the router. @default none (the account's unreserved pool) */
  readonly reservedConcurrentExecutions?: number;
  /** Retention of the router's log group (and the quarantine bucket's access logs). @default ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /** What happens to what the router creates that holds data (key, queues, bucket, registry, logs) when the stack is deleted. @default RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * The customer managed key for everything the router creates at rest (queues, bucket, log
   * group, registry table). A given key's policy must let CloudWatch Logs use it
   * (`DataKey.allowCloudWatchLogs` adds that for a key defined in the app).
   * @default a new DataKey (rotation on)
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * Where rejected records go, with their reason (`ROUTER_QUARANTINE_QUEUE_URL`). The router reads
   * a given queue's `MaximumMessageSize` once at start (the role gets `sqs:GetQueueAttributes` on
   * it) and sends larger records to the quarantine bucket.
   * @default a new encrypted standard queue, 14 days, alarmed, with a MaximumMessageSize of quarantineMaxMessageBytes
   */
  readonly quarantineQueue?: sqs.IQueue;
  /**
   * The created quarantine queue's `MaximumMessageSize`, and `ROUTER_QUARANTINE_MAX_MESSAGE_BYTES`:
   * the largest quarantine message the router sends; a larger rejected record goes to the
   * quarantine bucket (claim check). 1024 to 1048576. Not with a given `quarantineQueue`, whose
   * own size the router reads at start.
   * @default 1048576 (1 MiB, SQS's largest message)
   */
  readonly quarantineMaxMessageBytes?: number;
  /**
   * Where rejected records too large for a quarantine message go (`ROUTER_QUARANTINE_BUCKET`).
   * @default a new bucket: SSE-KMS, no public access, TLS only, objects expire after 14 days, access logs
   */
  readonly quarantineBucket?: s3.IBucket;
  /** The topic the alarms notify (on ALARM and on OK). @default a new topic encrypted with its own key */
  readonly alarmTopic?: sns.ITopic;
  /** The alarms' thresholds. @default see AlarmThresholds */
  readonly alarmThresholds?: AlarmThresholds;
  /** The dashboard's name (unique per account, across regions). @default generated by CloudFormation */
  readonly dashboardName?: string;
  /** A tenant registry: who may send, and who is suspended. @default none: every proven tenant may send */
  readonly tenantRegistry?: TenantRegistryOptions;
}

/**
 * The tenant router: event source mappings feed it batches from SQS (standard and FIFO), Kinesis
 * and DynamoDB Streams (and EventBridge rules single events); it proves each record's tenant and
 * invokes the tenant-isolated backend with that tenant id, quarantining what it must reject.
 *
 * No record is lost only when every event source mapping in front of the router reports batch
 * item failures (`FunctionResponseTypes: [ReportBatchItemFailures]`): the router answers with the
 * records to redeliver, and a mapping without it ignores that answer, so SQS deletes those
 * messages and a stream checkpoints past them. Every mapping `addSqsSource`, `addKinesisSource` and
 * `addDynamoDbSource` create has it; a mapping created any other way must set it too.
 *
 * ```ts
 * const router = new TenantRouter(this, 'Router', {
 *   backend,
 *   jwt: { jwksUrl, issuer, audience },
 * });
 * router.addSqsSource(queue);
 * router.addKinesisSource(stream, { startingPosition: lambda.StartingPosition.TRIM_HORIZON });
 * router.addDynamoDbSource(table, { startingPosition: lambda.StartingPosition.LATEST });
 * ```
 */
export class TenantRouter extends Construct {
  /** The router function. */
  public readonly function: lambda.Function;
  /** The router's execution role (also the role Lambda uses to send to on-failure destinations). */
  public readonly role: iam.Role;
  /** The router's log group. */
  public readonly logGroup: logs.ILogGroup;
  /** The router's timeout: given, or derived from the invoke timeout. A source queue must hide messages for 6 × this + its batching window. */
  public readonly timeout: Duration;
  /** The architecture of the router function. */
  public readonly architecture: lambda.Architecture;
  /** The backend the router invokes, and the only function it may invoke. */
  public readonly backend: lambda.IFunction;
  /** The router settings deployed: the given ones, with the default invocation types and the derived invoke timeout. */
  public readonly config: RouterConfig;
  /** The key encrypting what the router creates. */
  public readonly encryptionKey: kms.IKey;
  /** Where rejected records go. */
  public readonly quarantineQueue: sqs.IQueue;
  /** Where rejected records too large for a quarantine message go. */
  public readonly quarantineBucket: s3.IBucket;
  /** The topic the alarms notify. */
  public readonly alarmTopic: sns.ITopic;
  /** Every alarm, in the order it was added (sources add theirs). */
  public readonly alarms: cloudwatch.Alarm[];
  /** The operator's dashboard. */
  public readonly dashboard: cloudwatch.Dashboard;
  /** The saved Logs Insights queries (usage and cost per tenant, the router's cost per record). */
  public readonly queries: logs.QueryDefinition[];
  /** The tenant registry table, when the router has one. */
  public readonly tenantRegistryTable?: dynamodb.ITable;

  private readonly facts: BackendFacts;
  private readonly removalPolicy: RemovalPolicy;
  private readonly monitoring: Monitoring;
  private readonly operatorView: Dashboard;
  private readonly sourceNames = new Set<string>();
  private defaultStreamFailures?: FailureDestination;
  /** The backend's idempotency TTL in seconds, when CDK can read it from the backend's environment. */
  private readonly idempotencyTtl?: number;

  constructor(scope: Construct, id: string, props: TenantRouterProps) {
    super(scope, id);
    this.backend = props.backend;
    this.facts = backendFacts(props.backend);
    this.architecture = props.architecture ?? lambda.Architecture.X86_64;
    this.removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;

    const invocationType = props.invocationType ?? RECOMMENDED_INVOCATION_TYPES;
    const timeouts = routerTimeouts({ ...props, invocationType }, props.backendTimeout ?? this.facts.timeout, props.timeout);
    this.timeout = timeouts.routerTimeout;
    this.config = { ...pickRouterConfig(props), invocationType, invokeTimeout: timeouts.invokeTimeout };

    this.encryptionKey = props.encryptionKey ?? new DataKey(this, 'DataKey', { removalPolicy: this.removalPolicy }).key;

    if (props.quarantineQueue !== undefined && props.quarantineMaxMessageBytes !== undefined) {
      throw new Error(
        'ROUTER_QUARANTINE_MAX_MESSAGE_BYTES: quarantineMaxMessageBytes sets the size of the quarantine queue the router creates; ' +
          "with a given quarantineQueue the router reads that queue's MaximumMessageSize at start: leave it unset",
      );
    }
    // The created queue's size is set explicitly and given to the router; a given queue's is read by the router at start.
    const quarantineBytes = props.quarantineQueue === undefined ? (props.quarantineMaxMessageBytes ?? SQS_MAX_MESSAGE_BYTES) : undefined;
    const quarantineBytesVariable = quarantineBytes === undefined ? undefined : quarantineMaxMessageBytes(quarantineBytes);
    this.quarantineQueue = props.quarantineQueue ?? this.terminalQueue('Quarantine', 'rejected records (with their reason)', quarantineBytes);
    this.quarantineBucket =
      props.quarantineBucket ??
      new QuarantineBucket(this, 'QuarantineBucket', {
        encryptionKey: this.encryptionKey,
        retention: QUARANTINE_RETENTION,
        // RetentionDays counts days (INFINITE is 9999).
        accessLogRetention: Duration.days(logRetention),
        removalPolicy: this.removalPolicy,
      }).bucket;

    const registry =
      props.tenantRegistry === undefined
        ? undefined
        : new TenantRegistry(this, 'TenantRegistry', { ...props.tenantRegistry, encryptionKey: this.encryptionKey, removalPolicy: this.removalPolicy });
    this.tenantRegistryTable = registry?.table;

    const fn = new RustFunction(this, 'Router', {
      binaryName: 'router',
      code: props.code ?? RustCode.fromBundle(),
      architecture: this.architecture,
      description: 'Routes SQS, Kinesis, DynamoDB-stream and EventBridge records to a tenant-isolated backend',
      memorySize: props.memorySize ?? 512,
      timeout: this.timeout,
      environment: {
        ...routerEnvironment(this.config),
        ...registry?.environment,
        // The backend's own ARN (qualified for a version or alias): the one resource the role below may invoke.
        ROUTER_BACKEND_FUNCTION: props.backend.functionArn,
        ROUTER_QUARANTINE_QUEUE_URL: this.quarantineQueue.queueUrl,
        ROUTER_QUARANTINE_BUCKET: this.quarantineBucket.bucketName,
        ...(quarantineBytesVariable === undefined ? {} : { ROUTER_QUARANTINE_MAX_MESSAGE_BYTES: quarantineBytesVariable }),
      },
      logRetention,
      removalPolicy: this.removalPolicy,
      encryptionKey: this.encryptionKey,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    });
    this.function = fn.function;
    this.role = fn.role;
    this.logGroup = fn.logGroup;

    // Written out instead of grantInvoke, which would also allow every version and alias (`<arn>:*`).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'InvokeBackend', actions: ['lambda:InvokeFunction'], resources: [props.backend.functionArn] }),
    );
    grantSendOnly(this.role, 'Quarantine', this.quarantineQueue, this.quarantineQueue.encryptionMasterKey);
    if (quarantineBytesVariable === undefined) {
      // The router reads the given queue's MaximumMessageSize once at start.
      this.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ sid: 'QuarantineQueueSize', actions: ['sqs:GetQueueAttributes'], resources: [this.quarantineQueue.queueArn] }),
      );
    }
    const quarantineObjects = grantPutObjectOnly(this.role, 'QuarantineBucket', this.quarantineBucket, this.quarantineBucket.encryptionKey);
    registry?.grantRead(this.role, 'TenantRegistry');

    const routerNamespace = routerMetricsNamespace(this.config);
    const backendNamespace = props.backendMetricsNamespace ?? DEFAULT_BACKEND_METRICS_NAMESPACE;
    this.monitoring = new Monitoring(this, 'Alarms', {
      router: this.function,
      backend: props.backend,
      backendName: this.facts.functionName,
      routerNamespace,
      backendNamespace,
      alarmTopic: props.alarmTopic,
      thresholds: props.alarmThresholds,
    });
    this.alarmTopic = this.monitoring.alarmTopic;
    this.alarms = this.monitoring.alarms;

    this.operatorView = new Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
      router: this.function,
      routerArchitecture: this.architecture,
      backend: props.backend,
      backendName: this.facts.functionName,
      routerLogGroup: this.logGroup,
      backendLogGroup: props.backendLogGroup ?? this.backendLogGroup(),
      routerNamespace,
      backendNamespace,
      routerTimeout: this.timeout,
      alarms: this.alarms,
    });
    this.dashboard = this.operatorView.dashboard;
    this.queries = this.operatorView.queries;
    this.addOperatorQueue('quarantine', this.quarantineQueue, 'Rejected records wait in the quarantine queue.', props.alarmThresholds?.quarantineDepth);

    // Read once, here: the sources added later are judged against it.
    this.idempotencyTtl = this.facts.function === undefined ? undefined : backendIdempotencyTtl(this.facts.function, this.facts.timeout);

    if (this.facts.function === undefined) {
      Annotations.of(this).addWarningV2('tenant-router:backend-tenancy-unverified',
        `backend ${props.backend.node.path} is imported: CDK cannot see its TenancyConfig; make sure it is PER_TENANT ` +
          'and that no event source mapping targets it');
    }
    // Checked when the app is synthesized, over the whole app: mappings may be added later, anywhere.
    this.node.addValidation({
      validate: () => [...tenancyProblems(this.facts), ...mappingsOnBackend(this.node.root, props.backend, this.facts)],
    });

    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only for actions that have no resource-level permissions: xray:PutTraceSegments and ' +
        'xray:PutTelemetryRecords (active tracing), and dynamodb:ListStreams (a DynamoDB event source ' +
        'mapping); every other statement names its resources.',
    });
    Validations.of(this.role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResourceName(this, quarantineObjects)}]`,
      reason:
        'Only s3:PutObject on the objects of the quarantine bucket: the router writes one object per rejected record ' +
        'too large for a quarantine message, under a key chosen at run time, so the object ARN ends in /*. ' +
        'No read, list or delete, and no other bucket.',
    });
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Event source mappings invoke the router synchronously, where a function DLQ never applies; failed records ' +
        "go to each source's own failure path (the queues' redrive dead-letter queues, the streams' on-failure destination).",
    });
  }

  /**
   * Feeds the router from an SQS queue (standard or FIFO). The mapping reports batch item failures
   * (`FunctionResponseTypes: [ReportBatchItemFailures]`), which "no record is lost" needs: without
   * it SQS would delete the messages the router reports for redelivery. A failing message returns
   * after the visibility timeout and moves to the queue's dead-letter queue through its redrive
   * policy; a queue defined in the app must hide messages for at least the router's timeout (6 ×
   * it + the batching window recommended). Warns when the backend's idempotency TTL is shorter
   * than the queue's retention period. Alarms on the age of the oldest message, and on its
   * dead-letter queue's depth when CDK sees one.
   * @returns the event source mapping
   */
  public addSqsSource(queue: sqs.IQueue, options: SqsSourceOptions = {}): lambda.IEventSourceMapping {
    const name = this.sourceName(options.name, queue);
    const source = sqsEventSource(this, queue, this.timeout, options);
    this.checkIdempotencyWindow(queue.node.path, sqsRetryHorizon(queue));
    this.function.addEventSource(source);
    const mapping = this.mappingOf(source.eventSourceMappingId);
    Validations.of(mapping).acknowledge({
      id: 'Serverless-LambdaEventSourceMappingDestination',
      reason:
        'Lambda supports no on-failure destination on SQS mappings: a message whose processing keeps failing ' +
        "moves to the queue's dead-letter queue through its redrive policy (maxReceiveCount), which is alarmed.",
    });
    this.monitoring.queueMessageAge(`${name}MessageAge`, `Messages wait too long in the SQS source ${name}.`, queue);
    const deadLetters = queue instanceof sqs.Queue ? queue.deadLetterQueue?.queue : undefined;
    if (deadLetters !== undefined) {
      this.addOperatorQueue(`${name} dead letters`, deadLetters, `Messages of the SQS source ${name} reached its dead-letter queue.`);
    }
    return mapping;
  }

  /**
   * Feeds the router from a Kinesis stream. The mapping reports batch item failures
   * (`FunctionResponseTypes: [ReportBatchItemFailures]`; Lambda checkpoints at the lowest failed
   * sequence number), which "no record is lost" needs: without it Lambda would checkpoint past the
   * records the router reports for redelivery. Bisects failing batches, with finite retries, a
   * maximum record age and an on-failure destination. Warns when the backend's idempotency TTL is
   * shorter than the maximum record age. Alarms on the stream's iterator age.
   * @returns the event source mapping
   */
  public addKinesisSource(stream: kinesis.IStream, options: StreamSourceOptions): lambda.IEventSourceMapping {
    const name = this.sourceName(options.name, stream);
    const source = kinesisEventSource(stream, options, options.onFailure ?? this.streamFailures());
    this.checkIdempotencyWindow(stream.node.path, streamRetryHorizon(stream.node.path, options));
    this.function.addEventSource(source);
    this.monitoring.routerIteratorAge();
    this.monitoring.kinesisIteratorAge(`${name}IteratorAge`, stream);
    return this.mappingOf(source.eventSourceMappingId);
  }

  /**
   * Feeds the router from a DynamoDB table's stream (the table needs one, and CDK must know its
   * ARN), with the same failure handling as Kinesis: the mapping reports batch item failures
   * (`FunctionResponseTypes: [ReportBatchItemFailures]`), which "no record is lost" needs, and
   * the same warning on the backend's idempotency TTL.
   * @returns the event source mapping
   */
  public addDynamoDbSource(table: dynamodb.ITable, options: StreamSourceOptions): lambda.IEventSourceMapping {
    this.sourceName(options.name, table);
    const source = dynamoEventSource(table, options, options.onFailure ?? this.streamFailures());
    this.checkIdempotencyWindow(table.node.path, streamRetryHorizon(`the stream of ${table.node.path}`, options));
    this.function.addEventSource(source);
    this.monitoring.routerIteratorAge();
    return this.mappingOf(source.eventSourceMappingId);
  }

  /**
   * An EventBridge rule target that invokes the router with each matching event (the router's
   * `eventbridge` source; the event's `detail` is the payload). EventBridge invokes asynchronously:
   * give `deadLetterQueue` (and `retryAttempts`, `maxEventAge`) to keep events it could not deliver.
   */
  public eventBridgeTarget(props: targets.LambdaFunctionProps = {}): events.IRuleTarget {
    return new targets.LambdaFunction(this.function, props);
  }

  /**
   * Alarms on a queue whose messages wait for an operator (e.g. the backend's async failures
   * queue), and graphs it on the dashboard.
   * @param label the queue's label on the dashboard; the alarm's construct id is its words
   *   capitalized and joined, plus `Depth` (`backend failures` gives `BackendFailuresDepth`)
   * @param description the alarm's description
   * @param threshold messages at which the alarm fires, default 1
   */
  public addOperatorQueue(label: string, queue: sqs.IQueue, description: string, threshold?: number): void {
    const id = label.split(/\s+/).map((word) => word.charAt(0).toUpperCase() + word.slice(1)).join('') + 'Depth';
    this.monitoring.queueDepth(id, description, queue, threshold);
    this.operatorView.addOperatorQueue(label, queue);
  }

  /** The stream-failures queue: the default on-failure destination, created with the first stream source that has none. */
  public get streamFailuresQueue(): sqs.IQueue | undefined {
    return this.defaultStreamFailures?.queue;
  }

  /** The visibility timeout a source queue needs with this router: 6 × its timeout + the batching window. */
  public queueVisibilityTimeout(maxBatchingWindow: Duration = Duration.seconds(0)): Duration {
    return visibilityTimeout(this.timeout, maxBatchingWindow);
  }

  /** The default on-failure destination of the stream sources: one queue, created with the first. */
  private streamFailures(): FailureDestination {
    if (this.defaultStreamFailures === undefined) {
      const queue = this.terminalQueue('StreamFailures', 'descriptions of the batches the stream mappings gave up on (shard, sequence numbers)');
      this.addOperatorQueue('stream failures', queue, 'A stream mapping discarded a batch (retries or record age exhausted).');
      this.defaultStreamFailures = FailureDestination.toQueue(queue);
    }
    return this.defaultStreamFailures;
  }

  /**
   * Warns when the backend's idempotency TTL (read from its environment) is shorter than a
   * source's retry horizon, which the router's own maximum record age shortens (older records are
   * rejected, never invoked): a record redelivered after the TTL runs again. Says nothing when
   * either is unknown.
   */
  private checkIdempotencyWindow(source: string, horizon: RetryHorizon | undefined): void {
    if (this.idempotencyTtl === undefined || horizon === undefined) {
      return;
    }
    let { seconds, what } = horizon;
    const routerMaxAge = this.config.maxRecordAge;
    if (routerMaxAge !== undefined && !routerMaxAge.isUnresolved() && routerMaxAge.toSeconds() < seconds) {
      seconds = routerMaxAge.toSeconds();
      what = `${what}; the router rejects records older than ${seconds} s (maxRecordAge)`;
    }
    if (seconds <= this.idempotencyTtl) {
      return;
    }
    Annotations.of(this).addWarningV2('tenant-router:idempotency-ttl-below-retry-horizon',
      `${source}: the backend's idempotency TTL (${IDEMPOTENCY_TTL_VARIABLE}, ${this.idempotencyTtl} s) is shorter than this source's ` +
        `retry horizon (${what}): records redelivered after the TTL may take effect twice. Give the backend a TTL of at least ` +
        `${seconds} s, or shorten the horizon (the router's maxRecordAge, ROUTER_MAX_RECORD_AGE_SECONDS, bounds it for every source)`);
  }

  /** A queue that is a terminal store read by operators (quarantine, stream failures): 14 days, alarmed, no redrive. */
  private terminalQueue(id: string, holds: string, maxMessageSizeBytes?: number): sqs.Queue {
    const queue = new SecureQueue(this, id, {
      encryptionKey: this.encryptionKey,
      retentionPeriod: QUARANTINE_RETENTION,
      maxMessageSizeBytes,
      removalPolicy: this.removalPolicy,
    }).queue;
    Validations.of(queue).acknowledge(
      {
        id: 'AwsSolutions-SQS3',
        reason: `The terminal store of ${holds} for operators; nothing consumes it automatically, so it is itself the dead-letter store. Its depth is alarmed.`,
      },
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason: `The terminal store of ${holds}, read by operators; a redrive policy would only move its messages to another terminal queue. Its depth is alarmed.`,
      },
    );
    return queue;
  }

  /** A unique short name for a source's alarms and labels. */
  private sourceName(given: string | undefined, source: Construct): string {
    const name = given ?? defaultSourceName(source);
    if (!/^[A-Za-z][A-Za-z0-9]*$/.test(name)) {
      throw new Error(`source name ${JSON.stringify(name)}: give options.name, letters and digits starting with a letter`);
    }
    if (this.sourceNames.has(name)) {
      throw new Error(`source name ${JSON.stringify(name)} is used twice on ${this.node.path}: give options.name`);
    }
    this.sourceNames.add(name);
    return name;
  }

  private mappingOf(mappingId: string): lambda.EventSourceMapping {
    const mapping = this.function.node.children.find(
      (child): child is lambda.EventSourceMapping => child instanceof lambda.EventSourceMapping && child.eventSourceMappingId === mappingId,
    );
    if (mapping === undefined) {
      throw new Error('the event source mapping was not found under the router');
    }
    return mapping;
  }

  /** The backend's log group: its logging config's when CDK can see one, else Lambda's default name. */
  private backendLogGroup(): logs.ILogGroup {
    const cfn = this.facts.function?.node.defaultChild;
    const configured =
      cfn instanceof lambda.CfnFunction ? (cfn.loggingConfig as lambda.CfnFunction.LoggingConfigProperty | undefined)?.logGroup : undefined;
    return logs.LogGroup.fromLogGroupName(this, 'BackendLogs', configured ?? `/aws/lambda/${this.facts.functionName}`);
  }
}

/** Construct ids that name a construct's inner resource rather than what it is for. */
const GENERIC_IDS = new Set(['Resource', 'Default', 'Queue']);

/** A source's construct id, or its enclosing construct's when the id is generic (a SourceQueue's `Queue`). */
function defaultSourceName(source: Construct): string {
  let node: Construct = source;
  while (GENERIC_IDS.has(node.node.id) && node.node.scope !== undefined && !Stack.isStack(node.node.scope)) {
    node = node.node.scope as Construct;
  }
  return node.node.id;
}

/** The `RouterConfig` fields of the props (the rest of the props are the construct's own). */
function pickRouterConfig(props: TenantRouterProps): RouterConfig {
  return {
    jwt: props.jwt,
    validation: props.validation,
    tenantFrom: props.tenantFrom,
    tokenFrom: props.tokenFrom,
    trustedTenants: props.trustedTenants,
    maxRecordAge: props.maxRecordAge,
    maxInFlight: props.maxInFlight,
    maxInFlightPerTenant: props.maxInFlightPerTenant,
    delivery: props.delivery,
    invocationType: props.invocationType,
    batchMaxBytes: props.batchMaxBytes,
    retryMaxAttempts: props.retryMaxAttempts,
    retryBaseDelay: props.retryBaseDelay,
    retryMaxDelay: props.retryMaxDelay,
    deadlineMargin: props.deadlineMargin,
    invokeTimeout: props.invokeTimeout,
    correlationIdFrom: props.correlationIdFrom,
    metricsNamespace: props.metricsNamespace,
  };
}
