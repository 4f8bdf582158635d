import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { checkAssetDirectory, FunctionName } from './assets';

export interface RustFunctionProps {
  /** Which bundle this is (names the error when the bundle is missing). */
  readonly name: FunctionName;
  /** Directory holding `bootstrap` (and, for the backend, `tenants/`). */
  readonly assetPath: string;
  /** Must match the target the bundle was built for. */
  readonly architecture: lambda.Architecture;
  readonly description: string;
  readonly memorySize: number;
  readonly timeout: Duration;
  readonly environment: { readonly [name: string]: string };
  readonly logRetention: logs.RetentionDays;
  readonly logRemovalPolicy: RemovalPolicy;
  readonly tenancyConfig?: lambda.TenancyConfig;
}

/**
 * A Rust function on the `provided.al2023` custom runtime (handler `bootstrap`), with what both
 * functions of this stack share: its own role holding no managed policy (only the log group
 * below, X-Ray, and whatever the owner grants), a log group with a retention, JSON logs and
 * active X-Ray tracing.
 */
export class RustFunction extends Construct {
  public readonly function: lambda.Function;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: RustFunctionProps) {
    super(scope, id);
    checkAssetDirectory(props.name, props.assetPath);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: props.logRemovalPolicy,
    });
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the ${props.name} function`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): write to this one only.
    this.logGroup.grantWrite(this.role);

    this.function = new lambda.Function(this, 'Function', {
      description: props.description,
      runtime: lambda.Runtime.PROVIDED_AL2023,
      handler: 'bootstrap',
      code: lambda.Code.fromAsset(props.assetPath),
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
    });
  }
}
