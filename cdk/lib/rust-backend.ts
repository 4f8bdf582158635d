// `RustBackend`: this repository's example tenant-isolated backend (the Rust tenant guard around a
// handler, `backend/`), with what it needs around it: the PER_TENANT function, its async
// destinations (results bus with an archive, failures queue), its idempotency table, its tenant
// access role (tenant-scoped credentials) and their narrow grants. A backend in another language brings its own function instead; TenantRouter
// only needs an `IFunction`.
import { Duration, Names, RemovalPolicy, Token, Validations } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { RustCode } from './code';
import { grantSendOnly, QueueDestination } from './destinations';
import { DEFAULT_IDEMPOTENCY_TTL, IdempotencyTable, idempotencyTtlSeconds } from './idempotency-table';
import { RustFunction } from './rust-function';
import { SecureQueue } from './secure-queue';
import { TenantAccessRole } from './tenant-access-role';

/** The SSM path under which the guard resolves `ssm:` secret references (`ssm:/tenants/<tenant>/<name>`). */
export const TENANT_PARAMETERS_PATH = '/tenants';

/** The `detail-type` Lambda gives async results delivered to an EventBridge destination. */
export const SUCCESS_DETAIL_TYPE = 'Lambda Function Invocation Result - Success';

/** Properties of a {@link RustBackend}. */
export interface RustBackendProps {
  /** Encrypts the failures queue, the results bus and its archive, the idempotency table and the log group. */
  readonly encryptionKey: kms.IKey;
  /** The backend's code. @default RustCode.fromBundle(): target/lambda/backend (with tenants/), built by ./scripts/build-lambda.sh */
  readonly code?: RustCode;
  /** The function's architecture; the bundle must be built for it. @default X86_64 */
  readonly architecture?: lambda.Architecture;
  /** What happens to the queue, table and logs when the stack is deleted (RETAIN also protects the table from deletion). @default RETAIN */
  readonly removalPolicy?: RemovalPolicy;
  /** The function's memory, in MB. @default 256 */
  readonly memorySize?: number;
  /** The function's timeout. @default 30 seconds */
  readonly timeout?: Duration;
  /** Lambda's own retries of a failed async invocation (0–2). @default 2 */
  readonly asyncRetryAttempts?: number;
  /** How long Lambda keeps an async event before dropping it (60 seconds to 6 hours). @default 6 hours */
  readonly maxEventAge?: Duration;
  /** How long the results bus archive keeps results for replay. @default 7 days */
  readonly resultsArchiveRetention?: Duration;
  /**
   * How long a completed record stays in the idempotency table (`BACKEND_IDEMPOTENCY_TTL_SECONDS`,
   * whole seconds, at least 900 (Lambda's longest timeout; the backend refuses less at start) and
   * at least the function's timeout): a redelivery within it gets the stored result instead of
   * running again; one after it runs again. Give at least the longest retry horizon of the
   * router's sources (an SQS queue's retention, a stream mapping's maximum record age), or a
   * record redelivered after the TTL may take effect twice (`TenantRouter` warns at synth).
   * @default 1 hour
   */
  readonly idempotencyTtl?: Duration;
  /** Retention of the function's log group. @default ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Tenant-scoped data access: a {@link TenantAccessRole} (`BACKEND_TENANT_ROLE_ARN`) that the
   * guard assumes for its environment's tenant, holding the idempotency records (each tenant its
   * own), the SSM parameters under `/tenants/<tenant>/` and the secrets tagged `tenant_id=<tenant>`;
   * the execution role then holds no DynamoDB, S3, SSM or Secrets Manager permission. `false`:
   * the execution role gets the idempotency records of every tenant, and the guard warns at start
   * that every tenant shares its access.
   * @default true
   */
  readonly tenantAccess?: boolean;
}

/**
 * This repository's Rust backend (`TenancyConfig: PER_TENANT`), invoked by the router with a tenant
 * id, asynchronously or, for the sources set to `request-response`, synchronously (the router then
 * receives the result or the error itself, and the async invoke config below does not apply).
 * Its async invoke config carries every outcome of an asynchronous invocation somewhere:
 * - OnSuccess: the backend's JSON result goes to the `results` EventBridge bus, where the
 *   platform attaches its own rules (detail-type `Lambda Function Invocation Result - Success`,
 *   the result under `detail.responsePayload`); an archive keeps them for replay.
 * - OnFailure: after the retries, or once the event is older than `maxEventAge`, the invocation
 *   record (request and error) goes to the `failures` queue.
 * Its idempotency records live in a DynamoDB table (`BACKEND_IDEMPOTENCY_TABLE`) that every execution
 * environment shares. With `tenantAccess` (the default) the guard reaches them, and the tenant's
 * parameters and secrets, with the credentials of its tenant's session of the tenant access role
 * (get, put, update and delete of that tenant's records only), and the execution role has no data
 * permission; without it the execution role may get, put, update and delete items of that table,
 * nothing more.
 * Event source mappings can never feed it: Lambda cannot pass a tenant id through them.
 */
export class RustBackend extends Construct {
  /** The tenant-isolated function: give it to `TenantRouter` as `backend`. */
  public readonly function: lambda.Function;
  /** The function's log group. */
  public readonly logGroup: logs.ILogGroup;
  /** The function's execution role. */
  public readonly role: iam.IRole;
  /** Where Lambda sends async invocations that failed for good (OnFailure). */
  public readonly failureQueue: sqs.IQueue;
  /** Where Lambda sends the results of async invocations (OnSuccess). */
  public readonly resultsBus: events.IEventBus;
  /** The durable idempotency store (`BACKEND_IDEMPOTENCY_TABLE`), Powertools' table layout. */
  public readonly idempotencyTable: dynamodb.ITable;
  /** The function's timeout: a synchronous Invoke of it may take this long. */
  public readonly timeout: Duration;
  /** The tenant access role (`BACKEND_TENANT_ROLE_ARN`), unless `tenantAccess` is false. */
  public readonly tenantAccessRole?: TenantAccessRole;

  constructor(scope: Construct, id: string, props: RustBackendProps) {
    super(scope, id);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.timeout = props.timeout ?? Duration.seconds(30);
    const retryAttempts = props.asyncRetryAttempts ?? 2;
    const maxEventAge = props.maxEventAge ?? Duration.hours(6);
    if (!Token.isUnresolved(retryAttempts) && (!Number.isInteger(retryAttempts) || retryAttempts < 0 || retryAttempts > 2)) {
      throw new Error(`backend asyncRetryAttempts must be 0, 1 or 2, got ${retryAttempts}`);
    }
    if (!maxEventAge.isUnresolved() && (maxEventAge.toSeconds() < 60 || maxEventAge.toSeconds() > 6 * 3600)) {
      throw new Error('backend maxEventAge must be between 60 seconds and 6 hours');
    }
    const ttlSeconds = idempotencyTtlSeconds('idempotencyTtl', props.idempotencyTtl ?? DEFAULT_IDEMPOTENCY_TTL, this.timeout);

    const idempotency = new IdempotencyTable(this, 'Idempotency', {
      encryptionKey: props.encryptionKey,
      removalPolicy: removalPolicy,
    });
    this.idempotencyTable = idempotency.table;

    const fn = new RustFunction(this, 'Backend', {
      binaryName: 'backend',
      code: props.code ?? RustCode.fromBundle(),
      requiredEntries: ['tenants'],
      architecture: props.architecture ?? lambda.Architecture.X86_64,
      description: 'Tenant-isolated backend (PER_TENANT), invoked by the router with a tenant id',
      memorySize: props.memorySize ?? 256,
      timeout: this.timeout,
      environment: {
        BACKEND_TENANT_CONFIG_DIR: '/var/task/tenants',
        BACKEND_IDEMPOTENCY_TABLE: this.idempotencyTable.tableName,
        BACKEND_IDEMPOTENCY_TTL_SECONDS: ttlSeconds,
      },
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy,
      encryptionKey: props.encryptionKey,
      tenancyConfig: lambda.TenancyConfig.PER_TENANT,
    });
    this.function = fn.function;
    this.role = fn.role;
    this.logGroup = fn.logGroup;
    if (props.tenantAccess ?? true) {
      // The guard's store uses the tenant's session: the records go to the access role, scoped by tenant.
      this.tenantAccessRole = new TenantAccessRole(this, 'TenantAccess', { backend: this.function, idempotencyTable: this.idempotencyTable });
      this.tenantAccessRole.grantParameters(TENANT_PARAMETERS_PATH);
      this.tenantAccessRole.grantSecrets();
    } else {
      idempotency.grantRecordAccess(fn.role, 'IdempotencyRecords');
    }

    const failureQueue = new SecureQueue(this, 'Failures', {
      encryptionKey: props.encryptionKey,
      retentionPeriod: Duration.days(14),
      removalPolicy: removalPolicy,
    }).queue;
    this.failureQueue = failureQueue;
    Validations.of(failureQueue).acknowledge(
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

    const resultsBusName = Names.uniqueResourceName(this, { maxLength: 200, separator: '-' }) + '-results';
    const resultsBus = new events.EventBus(this, 'Results', {
      eventBusName: resultsBusName,
      description: "Tenant-isolated backend's async results (Lambda OnSuccess destination)",
      kmsKey: props.encryptionKey,
    });
    this.resultsBus = resultsBus;
    // The bus by name: the key policy CDK adds for the archive names the bus's ARN, and the bus's
    // own ARN attribute would make key → bus → key circular.
    const archive = new events.Archive(this, 'ResultsArchive', {
      sourceEventBus: events.EventBus.fromEventBusName(this, 'ResultsByName', resultsBusName),
      kmsKey: props.encryptionKey,
      description: 'Backend results kept for replay',
      eventPattern: { source: ['lambda'], detailType: [SUCCESS_DETAIL_TYPE] },
      retention: props.resultsArchiveRetention ?? Duration.days(7),
    });
    archive.node.addDependency(resultsBus);

    grantSendOnly(fn.role, 'AsyncFailureDestination', this.failureQueue, props.encryptionKey);
    this.function.configureAsyncInvoke({
      retryAttempts,
      maxEventAge,
      onSuccess: new destinations.EventBridgeDestination(resultsBus),
      onFailure: new QueueDestination(this.failureQueue),
    });

    Validations.of(fn.role).acknowledge({
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
