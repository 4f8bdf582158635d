// `IdempotencyTable`: a backend's durable idempotency store in the table layout of Powertools for
// AWS Lambda's idempotency utility (any language's backend can use it), its narrow grant, and
// the rules of `BACKEND_IDEMPOTENCY_TTL_SECONDS` (its default, its floor, reading it from a
// backend's environment).
import { Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { seconds } from './router-config';

/** The backend's own default for `BACKEND_IDEMPOTENCY_TTL_SECONDS` (Powertools' default too): one hour. */
export const DEFAULT_IDEMPOTENCY_TTL = Duration.hours(1);

/** How long the backend's guard remembers a completed record (its idempotency window). */
export const IDEMPOTENCY_TTL_VARIABLE = 'BACKEND_IDEMPOTENCY_TTL_SECONDS';

/** The backend's idempotency table, when it has one; with it or the TTL set, the guard's idempotency is configured. */
export const IDEMPOTENCY_TABLE_VARIABLE = 'BACKEND_IDEMPOTENCY_TABLE';

/**
 * The least `BACKEND_IDEMPOTENCY_TTL_SECONDS` the guard accepts at start: Lambda's longest function
 * timeout (15 minutes). A completed record must be remembered at least as long as a run can last,
 * or a redelivery of a record whose first run was still going when it was delivered again can run
 * it twice; the guard cannot learn its function's timeout at start, so it refuses any TTL below the
 * longest one. (An in-progress claim itself never expires before the run's deadline, whatever the
 * TTL.)
 */
export const MIN_IDEMPOTENCY_TTL = Duration.minutes(15);

const WHY_MIN_TTL =
  `at least ${MIN_IDEMPOTENCY_TTL.toSeconds()} s, Lambda's longest timeout, which the backend refuses less than at start: ` +
  'a completed record must be remembered at least as long as a run can last';

/**
 * `BACKEND_IDEMPOTENCY_TTL_SECONDS` rendered from `ttl`, checked as the guard checks it at start,
 * and against the function's timeout when it is known: whole seconds, at least
 * {@link MIN_IDEMPOTENCY_TTL} and at least `functionTimeout`. The errors name the variable and
 * `prop`; a CDK token is passed through.
 */
export function idempotencyTtlSeconds(prop: string, ttl: Duration, functionTimeout?: Duration): string {
  const rendered = seconds(IDEMPOTENCY_TTL_VARIABLE, ttl, MIN_IDEMPOTENCY_TTL.toSeconds(), `${prop}: ${WHY_MIN_TTL}`);
  if (!ttl.isUnresolved()) {
    checkAgainstTimeout(prop, ttl.toSeconds(), functionTimeout);
  }
  return rendered;
}

function checkAgainstTimeout(what: string, ttlSeconds: number, functionTimeout: Duration | undefined): void {
  if (functionTimeout === undefined || functionTimeout.isUnresolved()) {
    return;
  }
  const timeoutSeconds = functionTimeout.toSeconds({ integral: false });
  if (ttlSeconds < timeoutSeconds) {
    throw new Error(
      `${IDEMPOTENCY_TTL_VARIABLE}: ${what} (${ttlSeconds} s) is shorter than the backend's timeout (${timeoutSeconds} s): ` +
        'a redelivery could run a record again while its first run is still remembered for less than a run lasts',
    );
  }
}

/**
 * The idempotency TTL, in seconds, of a backend function defined in the app, read from its
 * environment: `BACKEND_IDEMPOTENCY_TTL_SECONDS`, or the guard's default when only
 * `BACKEND_IDEMPOTENCY_TABLE` is set. Undefined when neither is set (a backend that may not use
 * the guard's idempotency) or when the value is a CDK token. A literal the guard would refuse at
 * start (not whole seconds, below {@link MIN_IDEMPOTENCY_TTL}), or one below `timeout`, throws,
 * naming the variable and the function.
 */
export function backendIdempotencyTtl(fn: lambda.Function, timeout: Duration | undefined): number | undefined {
  const cfn = fn.node.defaultChild;
  if (!(cfn instanceof lambda.CfnFunction)) {
    return undefined;
  }
  const environment = Stack.of(fn).resolve(cfn.environment) as { variables?: { [name: string]: unknown } } | undefined;
  const variables = environment?.variables ?? {};
  const value = variables[IDEMPOTENCY_TTL_VARIABLE];
  if (value === undefined) {
    return IDEMPOTENCY_TABLE_VARIABLE in variables ? DEFAULT_IDEMPOTENCY_TTL.toSeconds() : undefined;
  }
  if (typeof value !== 'string' || Token.isUnresolved(value)) {
    return undefined;
  }
  const where = `the environment of backend ${fn.node.path}`;
  if (!/^[0-9]+$/.test(value) || Number(value) < MIN_IDEMPOTENCY_TTL.toSeconds()) {
    throw new Error(`${IDEMPOTENCY_TTL_VARIABLE}: ${where} sets ${JSON.stringify(value)}; it must be whole seconds, ${WHY_MIN_TTL}`);
  }
  const ttlSeconds = Number(value);
  checkAgainstTimeout(where, ttlSeconds, timeout);
  return ttlSeconds;
}

/** The partition key of an idempotency record (Powertools' layout): `<function>#<tenant>#<idempotencyKey>`. */
export const IDEMPOTENCY_KEY_ATTRIBUTE = 'id';

/** The TTL attribute of an idempotency record: epoch seconds after which DynamoDB may delete it. */
export const IDEMPOTENCY_TTL_ATTRIBUTE = 'expiration';

/**
 * What the backend does with its records, and all it may do: read one (`GetItem`), claim one with
 * a conditional write of `INPROGRESS` (`PutItem`), store the result (`UpdateItem`) and release a
 * claim after a handler error (`DeleteItem`). No query, scan, batch or transaction, no index.
 */
export const IDEMPOTENCY_RECORD_ACTIONS = ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

/** Properties of an {@link IdempotencyTable}. */
export interface IdempotencyTableProps {
  /** The customer managed key the table is encrypted with (SSE-KMS). */
  readonly encryptionKey: kms.IKey;
  /** What happens to the table when the stack is deleted; RETAIN also turns on deletion protection. @default RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * The backend's durable idempotency store (`BACKEND_IDEMPOTENCY_TABLE`), in the table layout of
 * Powertools for AWS Lambda's idempotency utility: partition key `id` (String, no sort key), items
 * with `status` (`INPROGRESS` or `COMPLETED`), `data` (the stored result), `expiration` (epoch
 * seconds, the table's TTL attribute) and `in_progress_expiration` (epoch milliseconds). Every
 * execution environment of a tenant shares it, so a redelivered record is recognised wherever it
 * lands. On demand, encrypted with the given key, with point-in-time recovery. Give the table's
 * name to the backend as `BACKEND_IDEMPOTENCY_TABLE` and its role {@link grantRecordAccess}.
 */
export class IdempotencyTable extends Construct {
  /** The table. */
  public readonly table: dynamodb.Table;
  private readonly encryptionKey: kms.IKey;

  constructor(scope: Construct, id: string, props: IdempotencyTableProps) {
    super(scope, id);
    this.encryptionKey = props.encryptionKey;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    this.table = new dynamodb.Table(this, 'Table', {
      partitionKey: { name: IDEMPOTENCY_KEY_ATTRIBUTE, type: dynamodb.AttributeType.STRING },
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: IDEMPOTENCY_TTL_ATTRIBUTE,
      encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: props.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: removalPolicy === RemovalPolicy.RETAIN,
      removalPolicy,
    });
  }

  /**
   * Lets `grantee` work on the records and nothing else: {@link IDEMPOTENCY_RECORD_ACTIONS} on the
   * table's ARN (as statement `sid`; no index ARN, the table has none), and kms:Decrypt on its key.
   * Instead of grantReadWriteData, which also allows BatchGetItem, BatchWriteItem, Query, Scan,
   * ConditionCheckItem, DescribeTable, GetRecords, GetShardIterator, on `<table>/index/*` once an
   * index exists, and kms:DescribeKey, kms:Encrypt, kms:ReEncrypt*, kms:GenerateDataKey*. DynamoDB
   * calls KMS with the caller's credentials only to decrypt the table key (cached per connection
   * for up to five minutes); it generates and encrypts the keys below it itself, so reads and
   * writes alike need kms:Decrypt alone.
   */
  public grantRecordAccess(grantee: iam.IGrantable, sid: string): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid, actions: IDEMPOTENCY_RECORD_ACTIONS, resources: [this.table.tableArn] }),
    );
    grantee.grantPrincipal.addToPrincipalPolicy(
      // No Sid, as in grantSendOnly: merged with the other statements on the same key.
      new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [this.encryptionKey.keyArn] }),
    );
  }
}
