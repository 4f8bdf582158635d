// `RustFunction`: what the router and the example Rust backend share as Lambda functions: the
// `provided.al2023` runtime, an own role without managed policies, an encrypted log group with a
// retention, JSON logs and active X-Ray tracing.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { RustCode } from './code';
import { DataKey } from './data-key';

export interface RustFunctionProps {
  /** The binary (`router`, `backend`): the bundle's name and the role's description. */
  readonly binaryName: string;
  readonly code: RustCode;
  /** Entries the bundle must hold besides `bootstrap`. @default none */
  readonly requiredEntries?: string[];
  readonly architecture: lambda.Architecture;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: { readonly [name: string]: string };
  readonly logRetention: logs.RetentionDays;
  readonly removalPolicy: RemovalPolicy;
  /** Encrypts the log group. */
  readonly encryptionKey: kms.IKey;
  readonly tenancyConfig?: lambda.TenancyConfig;
  readonly reservedConcurrentExecutions?: number;
}

/**
 * A Rust function on the `provided.al2023` custom runtime (handler `bootstrap`): its own role
 * holding no managed policy (only the log group below, X-Ray, and whatever the owner grants), a
 * log group encrypted with the given key and kept for a retention, JSON logs and active tracing.
 */
export class RustFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    const code = props.code.bind(this, {
      binaryName: props.binaryName,
      architecture: props.architecture,
      requiredEntries: props.requiredEntries,
    });

    DataKey.allowCloudWatchLogs(props.encryptionKey);
    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      encryptionKey: props.encryptionKey,
      removalPolicy: props.removalPolicy,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the ${props.binaryName} function`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): write to this one only.
    this.logGroup.grantWrite(this.role);

    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      handler: 'bootstrap',
      code,
      architecture: props.architecture,
      memorySize: props.memorySize,
      timeout: props.timeout,
      environment: props.environment,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.INFO,
      tracing: lambda.Tracing.ACTIVE,
      tenancyConfig: props.tenancyConfig,
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
    });
  }
}
