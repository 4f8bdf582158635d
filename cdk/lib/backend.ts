import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantSendOnly, QueueDestination } from './destinations';
import { DEFAULT_IDEMPOTENCY_TTL, IdempotencyTable, idempotencyTtlSeconds } from './idempotency-table';
import { RustFunction } from './rust-function';
import { SecureQueue } from './secure-queue';

/** The `detail-type` Lambda gives async results delivered to an EventBridge destination. */
export const SUCCESS_DETAIL_TYPE = 'Lambda Function Invocation Result - Success';

export interface BackendProps {
  readonly assetPath: string;
  readonly architecture: lambda.Architecture;
  readonly encryptionKey: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  /** @default 256 */
  readonly memorySize?: number;
  /** @default 30 seconds */
  readonly timeout?: Duration;
  /** Lambda's own retries of a failed async invocation (0–2). @default 2 */
  readonly asyncRetryAttempts?: number;
  /** How long Lambda keeps an async event before dropping it (60 s – 6 h). @default 6 hours */
  readonly maxEventAge?: Duration;
  /** How long the results bus archive keeps results for replay. @default 7 days */
  readonly resultsArchiveRetention?: Duration;
  /**
   * How long a completed record stays in the idempotency table (`BACKEND_IDEMPOTENCY_TTL_SECONDS`,
   * whole seconds, at least 1): a redelivery within it gets the stored result instead of running again.
   * @default 1 hour
   */
  readonly idempotencyTtl?: Duration;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The tenant-isolated backend (`TenancyConfig: PER_TENANT`), invoked by the router with a tenant
 * id, asynchronously or, for the sources set to `request-response`, synchronously (the router then
 * receives the result or the error itself, and the async invoke config below does not apply).
 * Its async invoke config carries every outcome of an asynchronous invocation somewhere:
 * - OnSuccess: the backend's JSON result goes to the `results` EventBridge bus, where the
 *   platform attaches its own rules (detail-type `Lambda Function Invocation Result - Success`,
 *   the result under `detail.responsePayload`); an archive keeps them for replay.
 * - OnFailure: after the retries, or once the event is older than `maxEventAge`, the invocation
 *   record (request and error) goes to the `failures` queue.
 * Its idempotency records live in a DynamoDB table (`BACKEND_IDEMPOTENCY_TABLE`) that every execution
 * environment shares; the role may get, put, update and delete items of that table, nothing more.
 * Event source mappings can never feed it: Lambda cannot pass a tenant id through them.
 */
export class Backend extends Construct {
  public readonly function: lambda.Function;
  public readonly logGroup: RustFunction['logGroup'];
  public readonly role: RustFunction['role'];
  public readonly failureQueue: sqs.Queue;
  public readonly resultsBus: events.EventBus;
  /** The durable idempotency store (`BACKEND_IDEMPOTENCY_TABLE`), Powertools' table layout. */
  public readonly idempotencyTable: dynamodb.Table;
  /** The function's timeout: a synchronous Invoke of it may take this long. */
  public readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: BackendProps) {
    super(scope, id);
    this.timeout = props.timeout ?? Duration.seconds(30);
    const retryAttempts = props.asyncRetryAttempts ?? 2;
    const maxEventAge = props.maxEventAge ?? Duration.hours(6);
    if (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 2) {
      throw new Error(`backend asyncRetryAttempts must be 0, 1 or 2, got ${retryAttempts}`);
    }
    if (maxEventAge.toSeconds() < 60 || maxEventAge.toSeconds() > 6 * 3600) {
      throw new Error('backend maxEventAge must be between 60 seconds and 6 hours');
    }
    const ttlSeconds = idempotencyTtlSeconds(props.idempotencyTtl ?? DEFAULT_IDEMPOTENCY_TTL);

    const idempotency = new IdempotencyTable(this, 'Idempotency', {
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
    });
    this.idempotencyTable = idempotency.table;

    const fn = new RustFunction(this, 'Backend', {
      name: 'backend',
      assetPath: props.assetPath,
      architecture: props.architecture,
      description: 'Tenant-isolated backend (PER_TENANT), invoked by the router with a tenant id',
      memorySize: props.memorySize ?? 256,
      timeout: this.timeout,
      environment: {
        BACKEND_TENANT_CONFIG_DIR: '/var/task/tenants',
        BACKEND_IDEMPOTENCY_TABLE: this.idempotencyTable.tableName,
        BACKEND_IDEMPOTENCY_TTL_SECONDS: ttlSeconds,
      },
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      logRemovalPolicy: props.removalPolicy,
      tenancyConfig: lambda.TenancyConfig.PER_TENANT,
    });
    this.function = fn.function;
    this.role = fn.role;
    this.logGroup = fn.logGroup;
    idempotency.grantRecordAccess(this.role, 'IdempotencyRecords');

    this.failureQueue = new SecureQueue(this, 'Failures', {
      encryptionKey: props.encryptionKey,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    }).queue;
    Validations.of(this.failureQueue).acknowledge(
      {
        id: 'AwsSolutions-SQS3',
        reason:
          "Terminal store of the backend's failed async invocations (Lambda's OnFailure destination); " +
          'nothing consumes it automatically, so it has no dead-letter queue of its own. Its depth is alarmed.',
      },
      {
        id: 'Serverless-SQSRedrivePolicy',
        reason:
          "Terminal store of the backend's failed async invocations; a redrive policy would only move " +
          'them to another terminal queue. Its depth is alarmed.',
      },
    );

    this.resultsBus = new events.EventBus(this, 'Results', {
      description: "Tenant-isolated backend's async results (Lambda OnSuccess destination)",
    });
    new events.Archive(this, 'ResultsArchive', {
      sourceEventBus: this.resultsBus,
      description: 'Backend results kept for replay',
      eventPattern: { source: ['lambda'], detailType: [SUCCESS_DETAIL_TYPE] },
      retention: props.resultsArchiveRetention ?? Duration.days(7),
    });

    grantSendOnly(this.role, 'AsyncFailureDestination', this.failureQueue, props.encryptionKey);
    this.function.configureAsyncInvoke({
      retryAttempts,
      maxEventAge,
      onSuccess: new destinations.EventBridgeDestination(this.resultsBus),
      onFailure: new QueueDestination(this.failureQueue),
    });

    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing), which have no ' +
        'resource-level permissions; every other statement names its resources.',
    });
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'Failed async invocations go to the OnFailure destination of the async invoke config (the failures ' +
        'queue), which records the request and the error and supersedes a DeadLetterConfig.',
    });
  }
}
