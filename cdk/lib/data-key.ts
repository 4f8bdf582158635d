// `DataKey`: the customer managed KMS key that encrypts what the router and its example backends
// keep at rest (queues, streams, tables, buckets, log groups, the results bus), and the key
// policy statement CloudWatch Logs needs to use it.
import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';

/** Properties of a {@link DataKey}. */
export interface DataKeyProps {
  /** The key's description. @default "Encrypts the tenant router's data at rest" */
  readonly description?: string;
  /** What happens to the key when the stack is deleted (data encrypted with a deleted key is lost). @default RETAIN */
  readonly removalPolicy?: RemovalPolicy;
}

/**
 * A customer managed key with yearly rotation, usable by CloudWatch Logs for this account's log
 * groups in this region. Roles get their own key permissions through grants.
 */
export class DataKey extends Construct {
  /**
   * Lets CloudWatch Logs encrypt and decrypt with `key` for the log groups of this account and
   * region (https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/encrypt-log-data-kms.html).
   * A no-op for an imported key: its key policy must then allow it already.
   */
  public static allowCloudWatchLogs(key: kms.IKey): void {
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchLogsOfThisAccount',
        principals: [new iam.ServicePrincipal(`logs.${Aws.REGION}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:${Aws.PARTITION}:logs:${Aws.REGION}:${Aws.ACCOUNT_ID}:log-group:*` },
        },
      }),
      false,
    );
  }

  /** The key. */
  public readonly key: kms.Key;

  constructor(scope: Construct, id: string, props: DataKeyProps = {}) {
    super(scope, id);
    this.key = new kms.Key(this, 'Key', {
      description: props.description ?? "Encrypts the tenant router's data at rest",
      enableKeyRotation: true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
    DataKey.allowCloudWatchLogs(this.key);
  }
}
