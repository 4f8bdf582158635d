// `IdempotencyTable`: a backend's durable idempotency store in the table layout of Powertools for
// AWS Lambda's idempotency utility (any language's backend can use it), its narrow grant, and
// the default of `BACKEND_IDEMPOTENCY_TTL_SECONDS`.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** The backend's own default for `BACKEND_IDEMPOTENCY_TTL_SECONDS` (Powertools' default too): one hour. */
export const DEFAULT_IDEMPOTENCY_TTL = Duration.hours(1);

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
