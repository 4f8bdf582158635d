import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantSendOnly } from './destinations';
import { RouterConfig, routerEnvironment } from './router-config';
import { RustFunction } from './rust-function';

export interface RouterProps {
  readonly assetPath: string;
  readonly architecture: lambda.Architecture;
  /** The router's settings (JWKS URL, issuer, audience, tenant and token locations, …). */
  readonly config: RouterConfig;
  /** The tenant-isolated function the router invokes (and the only one it may invoke). */
  readonly backend: lambda.IFunction;
  /** Where rejected records go (`ROUTER_QUARANTINE_QUEUE_URL`). */
  readonly quarantineQueue: sqs.IQueue;
  /** The key encrypting the quarantine queue. */
  readonly quarantineKey: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default 60 seconds */
  readonly timeout?: Duration;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The router: fed by event source mappings, it invokes the backend asynchronously with each
 * record's tenant id and writes rejected records to the quarantine queue. Its role may invoke
 * the backend and send to the quarantine queue, nothing else; event sources add their own reads.
 */
export class Router extends Construct {
  public readonly function: lambda.Function;
  public readonly logGroup: RustFunction['logGroup'];
  public readonly role: iam.Role;
  public readonly timeout: Duration;

  constructor(scope: Construct, id: string, props: RouterProps) {
    super(scope, id);
    this.timeout = props.timeout ?? Duration.seconds(60);
    const config = props.config;
    const deadlineMargin = config.deadlineMargin?.toMilliseconds() ?? 500;
    const invokeTimeout = config.invokeTimeout?.toMilliseconds() ?? 5000;
    if (deadlineMargin + invokeTimeout >= this.timeout.toMilliseconds()) {
      throw new Error(
        `router timeout (${this.timeout.toSeconds()} s) must exceed ROUTER_DEADLINE_MARGIN_MS + ROUTER_INVOKE_TIMEOUT_MS ` +
          `(${deadlineMargin + invokeTimeout} ms), or no Invoke could ever finish`,
      );
    }

    const fn = new RustFunction(this, 'Router', {
      name: 'router',
      assetPath: props.assetPath,
      architecture: props.architecture,
      description: 'Routes SQS, Kinesis and DynamoDB-stream batches to the tenant-isolated backend',
      memorySize: props.memorySize ?? 512,
      timeout: this.timeout,
      environment: {
        ...routerEnvironment(config),
        // The unqualified ARN: the one resource the role below may invoke.
        ROUTER_BACKEND_FUNCTION: props.backend.functionArn,
        ROUTER_QUARANTINE_QUEUE_URL: props.quarantineQueue.queueUrl,
      },
      logRetention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      logRemovalPolicy: props.removalPolicy,
    });
    this.function = fn.function;
    this.role = fn.role;
    this.logGroup = fn.logGroup;

    // Written out instead of grantInvoke, which would also allow every version and alias
    // (`<arn>:*`), and instead of grantSendMessages (see grantSendOnly).
    this.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeBackend',
        actions: ['lambda:InvokeFunction'],
        resources: [props.backend.functionArn],
      }),
    );
    grantSendOnly(this.role, 'Quarantine', props.quarantineQueue, props.quarantineKey);

    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only for actions that have no resource-level permissions: xray:PutTraceSegments and ' +
        'xray:PutTelemetryRecords (active tracing), and dynamodb:ListStreams (the DynamoDB event source ' +
        'mapping); every other statement names its resources.',
    });
    Validations.of(this.function).acknowledge({
      id: 'Serverless-LambdaDLQ',
      reason:
        'The router is only invoked synchronously by event source mappings, where a function DLQ never applies; ' +
        "failed records go to each source's own failure path: the SQS redrive dead-letter queues and the streams' on-failure queue.",
    });
  }
}
