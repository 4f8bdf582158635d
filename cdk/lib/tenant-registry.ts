// The tenant registry (`TenantRegistry`): the DynamoDB table that says who may send
// (partition key `tenantId` S, attribute `status` S `active` | `suspended`), created or given,
// the router's read-only grant on it, and its `ROUTER_TENANT_REGISTRY_*` /
// `ROUTER_SUSPENDED_TENANTS` variables.
import { Duration, RemovalPolicy, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { integer, seconds } from './router-config';

/** What the router does with the records of a suspended tenant (`ROUTER_SUSPENDED_TENANTS`). */
export enum SuspendedTenants {
  /** Rejected (`tenant-suspended`) and quarantined: the source deletes or checkpoints them. */
  REJECT = 'reject',
  /**
   * Failed (`tenant-suspended`) and reported: the source keeps them (SQS redelivers them, a
   * stream retries from them, holding its shard) until the tenant is reinstated or the source's
   * own limits (receive count, retries, record age, retention) give them up.
   */
  HOLD = 'hold',
}

/** The tenant registry of a `TenantRouter`. */
export interface TenantRegistryOptions {
  /**
   * The registry table: partition key `tenantId` (String), attribute `status` (String, `active`
   * or `suspended`). A tenant missing from it is refused.
   * @default a new table (on demand, encrypted with the router's key, point-in-time recovery)
   */
  readonly table?: dynamodb.ITable;
  /**
   * `ROUTER_TENANT_REGISTRY_TTL_SECONDS`: how long the router believes a tenant's standing; a
   * suspension takes effect within it. Whole seconds, at least 1.
   * @default 60 seconds (the router's default)
   */
  readonly cacheTtl?: Duration;
  /** `ROUTER_TENANT_REGISTRY_CACHE_SIZE`: most tenants remembered. @default 10000 (the router's default) */
  readonly cacheSize?: number;
  /** `ROUTER_SUSPENDED_TENANTS`. @default REJECT (the router's default) */
  readonly suspendedTenants?: SuspendedTenants;
}

/** The registry's partition key. */
export const TENANT_ID_ATTRIBUTE = 'tenantId';

/** What the router does with the registry, and all it may do: read tenants one by one or in batches. */
export const REGISTRY_ACTIONS = ['dynamodb:BatchGetItem', 'dynamodb:GetItem'];

export interface TenantRegistryProps extends TenantRegistryOptions {
  /** Encrypts a created table. */
  readonly encryptionKey: kms.IKey;
  /** Of a created table; RETAIN also turns on deletion protection. */
  readonly removalPolicy: RemovalPolicy;
}

/** The registry table (created or given) and what the router needs to read it. */
export class TenantRegistry extends Construct {
  public readonly table: dynamodb.ITable;
  /** The router's `ROUTER_TENANT_REGISTRY_*` and `ROUTER_SUSPENDED_TENANTS` variables. */
  public readonly environment: { [name: string]: string };
  private readonly key?: kms.IKey;

  constructor(scope: Construct, id: string, props: TenantRegistryProps) {
    super(scope, id);
    if (props.table !== undefined) {
      this.table = props.table;
      this.key = props.table.encryptionKey;
    } else {
      this.table = new dynamodb.Table(this, 'Table', {
        partitionKey: { name: TENANT_ID_ATTRIBUTE, type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: props.encryptionKey,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
        removalPolicy: props.removalPolicy,
      });
      this.key = props.encryptionKey;
    }

    const env: { [name: string]: string } = { ROUTER_TENANT_REGISTRY_TABLE: this.table.tableName };
    if (props.cacheTtl !== undefined) {
      env.ROUTER_TENANT_REGISTRY_TTL_SECONDS = seconds('ROUTER_TENANT_REGISTRY_TTL_SECONDS', props.cacheTtl, 1);
    }
    if (props.cacheSize !== undefined) {
      env.ROUTER_TENANT_REGISTRY_CACHE_SIZE = integer('ROUTER_TENANT_REGISTRY_CACHE_SIZE', props.cacheSize, 1);
    }
    if (props.suspendedTenants !== undefined) {
      const mode = props.suspendedTenants;
      if (!Token.isUnresolved(mode) && !Object.values(SuspendedTenants).includes(mode)) {
        throw new Error(`ROUTER_SUSPENDED_TENANTS: must be 'reject' or 'hold', got ${JSON.stringify(mode)}`);
      }
      env.ROUTER_SUSPENDED_TENANTS = mode;
    }
    this.environment = env;
  }

  /**
   * Read-only access: {@link REGISTRY_ACTIONS} on the table's ARN (as statement `sid`), and
   * kms:Decrypt on its key when it is encrypted with one CDK knows. No write, query or scan.
   */
  public grantRead(grantee: iam.IGrantable, sid: string): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid, actions: REGISTRY_ACTIONS, resources: [this.table.tableArn] }),
    );
    if (this.key !== undefined) {
      grantee.grantPrincipal.addToPrincipalPolicy(
        // No Sid: merged with the router's other statements on the same key.
        new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [this.key.keyArn] }),
      );
    }
  }
}
