import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { grantPutObjectOnly, grantSendOnly } from './destinations';
import { nagResourceName } from './nag';
import { RouterConfig, routerEnvironment, routerTimeouts } from './router-config';
import { RustFunction } from './rust-function';

export interface RouterProps {
  readonly assetPath: string;
  readonly architecture: lambda.Architecture;
  /** The router's settings (JWKS URL, issuer, audience, tenant and token locations, …). */
  readonly config: RouterConfig;
  /** The tenant-isolated function the router invokes (and the only one it may invoke). */
  readonly backend: lambda.IFunction;
  /**
   * The backend's timeout. Under `request-response` each Invoke waits for the backend, so it sets
   * the default `ROUTER_INVOKE_TIMEOUT_MS` and, through it, the least router timeout.
   */
  readonly backendTimeout: Duration;
  /** Where rejected records go (`ROUTER_QUARANTINE_QUEUE_URL`). */
  readonly quarantineQueue: sqs.IQueue;
  /** Where rejected records too large for a quarantine message go (`ROUTER_QUARANTINE_BUCKET`). */
  readonly quarantineBucket: s3.IBucket;
  /** The key encrypting the quarantine queue and the quarantine bucket. */
  readonly quarantineKey: kms.IKey;
  readonly removalPolicy: RemovalPolicy;
  /** @default 512 */
  readonly memorySize?: number;
  /**
   * At least `ROUTER_INVOKE_TIMEOUT_MS` + `ROUTER_DEADLINE_MARGIN_MS` + 5 s (see `routerTimeouts`).
   * @default 60 seconds, or that least timeout when it is longer
   */
  readonly timeout?: Duration;
  /** @default one month */
  readonly logRetention?: logs.RetentionDays;
}

/**
 * The router: fed by event source mappings, it invokes the backend with each record's tenant id
 * (per source `event` or `request-response`, `ROUTER_INVOCATION_TYPE`) and writes rejected
 * records to the quarantine queue, or, when too large for a message, to the quarantine bucket.
 * Its role may invoke the backend, send to the quarantine queue and put objects into the
 * quarantine bucket, nothing else; event sources add their own reads.
 */
export class Router extends Construct {
  public readonly function: lambda.Function;
  public readonly logGroup: RustFunction['logGroup'];
  public readonly role: iam.Role;
  /** The router's final timeout: given, or derived from the invoke timeout (the queues follow it). */
  public readonly timeout: Duration;
  /** `ROUTER_INVOKE_TIMEOUT_MS` as rendered; undefined when the router's default (5000 ms) applies. */
  public readonly invokeTimeout?: Duration;

  constructor(scope: Construct, id: string, props: RouterProps) {
    super(scope, id);
    const timeouts = routerTimeouts(props.config, props.backendTimeout, props.timeout);
    this.timeout = timeouts.routerTimeout;
    this.invokeTimeout = timeouts.invokeTimeout;
    const config: RouterConfig = { ...props.config, invokeTimeout: timeouts.invokeTimeout };

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
        ROUTER_QUARANTINE_BUCKET: props.quarantineBucket.bucketName,
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
    const quarantineObjects = grantPutObjectOnly(this.role, 'QuarantineBucket', props.quarantineBucket, props.quarantineKey);

    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'Only for actions that have no resource-level permissions: xray:PutTraceSegments and ' +
        'xray:PutTelemetryRecords (active tracing), and dynamodb:ListStreams (the DynamoDB event source ' +
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
        'The router is only invoked synchronously by event source mappings, where a function DLQ never applies; ' +
        "failed records go to each source's own failure path: the SQS redrive dead-letter queues and the streams' on-failure queue.",
    });
  }
}
