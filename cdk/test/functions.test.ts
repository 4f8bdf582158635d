import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SUCCESS_DETAIL_TYPE } from '../lib/backend';
import { InvocationTypes, RECOMMENDED_INVOCATION_TYPES } from '../lib/router-config';
import { TenantRouterStackProps } from '../lib/tenant-router-stack';
import { arn, buildStack, Built, defaultStack, idOf, newApp, newStack, ref, ROUTER_CONFIG } from './helpers';

describe('backend function', () => {
  it('is a PER_TENANT provided.al2023 function with JSON logs and active tracing', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      Architectures: ['x86_64'],
      TenancyConfig: { TenantIsolationMode: 'PER_TENANT' },
      MemorySize: 256,
      Timeout: 30,
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: {
        LogFormat: 'JSON',
        ApplicationLogLevel: 'INFO',
        SystemLogLevel: 'INFO',
        LogGroup: ref(idOf(stack.backend.logGroup)),
      },
      Environment: {
        Variables: Match.objectEquals({
          BACKEND_TENANT_CONFIG_DIR: '/var/task/tenants',
          BACKEND_IDEMPOTENCY_TABLE: ref(idOf(stack.backend.idempotencyTable)),
          BACKEND_IDEMPOTENCY_TTL_SECONDS: '3600',
        }),
      },
      Role: arn(idOf(stack.backend.role)),
    });
  });

  it('has an async invoke config: retries, maximum event age, OnSuccess to the results bus, OnFailure to the failures queue', () => {
    const { stack, template } = defaultStack();
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: ref(idOf(stack.backend.function)),
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 6 * 3600,
      DestinationConfig: {
        OnSuccess: { Destination: arn(idOf(stack.backend.resultsBus)) },
        OnFailure: { Destination: arn(idOf(stack.backend.failureQueue)) },
      },
    });
  });

  it('archives the results it sends to the bus', () => {
    const { stack, template } = defaultStack();
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.hasResourceProperties('AWS::Events::Archive', {
      SourceArn: arn(idOf(stack.backend.resultsBus)),
      EventPattern: { source: ['lambda'], 'detail-type': [SUCCESS_DETAIL_TYPE] },
      RetentionDays: 7,
    });
  });

  it('takes retries, event age, memory and timeout as props, and checks Lambda limits', () => {
    const { stack, template } = buildStack({
      backendRetryAttempts: 0,
      backendMaxEventAge: Duration.minutes(30),
      backendMemorySize: 1024,
      backendTimeout: Duration.seconds(10),
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 1800,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      TenancyConfig: Match.anyValue(),
      MemorySize: 1024,
      Timeout: 10,
    });
    assert.ok(stack.backend.function);
    assert.throws(() => buildStack({ backendRetryAttempts: 3 }), /asyncRetryAttempts must be 0, 1 or 2/);
    assert.throws(() => buildStack({ backendMaxEventAge: Duration.hours(7) }), /maxEventAge must be between/);
  });
});

describe('router function', () => {
  it('is a provided.al2023 function with JSON logs, active tracing and no tenancy config', () => {
    const { stack, template } = defaultStack();
    template.hasResourceProperties('AWS::Lambda::Function', {
      Runtime: 'provided.al2023',
      Handler: 'bootstrap',
      Architectures: ['x86_64'],
      MemorySize: 512,
      Timeout: 60,
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: {
        LogFormat: 'JSON',
        ApplicationLogLevel: 'INFO',
        SystemLogLevel: 'INFO',
        LogGroup: ref(idOf(stack.router.logGroup)),
      },
      Role: arn(idOf(stack.router.role)),
      TenancyConfig: Match.absent(),
    });
  });

  it('is configured through exactly these environment variables, no secret among them', () => {
    const { stack, template } = defaultStack();
    const fn = template.findResources('AWS::Lambda::Function', {
      Properties: { Role: arn(idOf(stack.router.role)) },
    });
    const [props] = Object.values(fn).map((r) => r.Properties);
    assert.deepEqual(props.Environment, {
      Variables: {
        ROUTER_JWKS: 'https://issuer.example.com/.well-known/jwks.json',
        ROUTER_JWT_ISSUER: 'https://issuer.example.com',
        ROUTER_JWT_AUDIENCE: 'tenant-router',
        // the stack's default: request-response for the ordered sources, invoke timeout = backend's 30 s + 1 s
        ROUTER_INVOCATION_TYPE: 'event;sqs-fifo=request-response;kinesis=request-response;dynamodb=request-response',
        ROUTER_INVOKE_TIMEOUT_MS: '31000',
        ROUTER_BACKEND_FUNCTION: arn(idOf(stack.backend.function)),
        ROUTER_QUARANTINE_QUEUE_URL: ref(idOf(stack.quarantine)),
        ROUTER_QUARANTINE_BUCKET: ref(idOf(stack.quarantineBucket)),
      },
    });
    // The router has no secret to hide: no KMS key for its environment, no secret ARNs.
    assert.equal(props.KmsKeyArn, undefined);
    assert.doesNotMatch(JSON.stringify(props.Environment), /secret|password|PRIVATE KEY|secretsmanager|ssm:/i);
  });

  it('delivers record by record unless told otherwise, and renders the tenant-batch settings when set', () => {
    const routerEnv = (built: Built) => {
      const fn = built.template.findResources('AWS::Lambda::Function', {
        Properties: { Role: arn(idOf(built.stack.router.role)) },
      });
      const [props] = Object.values(fn).map((r) => r.Properties);
      return props.Environment.Variables as { [name: string]: unknown };
    };
    const defaults = routerEnv(defaultStack());
    assert.equal(defaults.ROUTER_DELIVERY, undefined);
    assert.equal(defaults.ROUTER_BATCH_MAX_BYTES, undefined);

    const batched = routerEnv(
      buildStack({ routerConfig: { ...ROUTER_CONFIG, delivery: 'tenant-batch', batchMaxBytes: 262_144 } }),
    );
    assert.equal(batched.ROUTER_DELIVERY, 'tenant-batch');
    assert.equal(batched.ROUTER_BATCH_MAX_BYTES, '262144');

    assert.throws(
      () => buildStack({ routerConfig: { ...ROUTER_CONFIG, batchMaxBytes: 262_144 } }),
      /ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'/,
    );
  });

  it('takes memory and timeout as props and refuses a timeout shorter than one Invoke attempt', () => {
    const { template } = buildStack({ routerMemorySize: 1024, routerTimeout: Duration.seconds(120) });
    template.hasResourceProperties('AWS::Lambda::Function', {
      TenancyConfig: Match.absent(),
      MemorySize: 1024,
      Timeout: 120,
    });
    assert.throws(
      () => buildStack({ routerTimeout: Duration.seconds(5) }),
      /routerTimeout \(5 s\) must be at least ROUTER_INVOKE_TIMEOUT_MS \(31000 ms\) \+ ROUTER_DEADLINE_MARGIN_MS \(500 ms\) \+ 5 s of headroom = 36500 ms/,
    );
  });
});

/** The router function's Timeout and environment in a built stack. */
function routerFunction(built: Built): { timeout: number; env: { [name: string]: unknown } } {
  const props = built.template.toJSON().Resources[idOf(built.stack.router.function)].Properties;
  return { timeout: props.Timeout, env: props.Environment.Variables };
}

describe('router timeouts and the invocation type', () => {
  it('deploys request-response for the ordered sources by default, with the invoke timeout at the backend timeout + 1 s', () => {
    const built = defaultStack();
    const { timeout, env } = routerFunction(built);
    assert.equal(env.ROUTER_INVOCATION_TYPE, 'event;sqs-fifo=request-response;kinesis=request-response;dynamodb=request-response');
    assert.equal(env.ROUTER_INVOKE_TIMEOUT_MS, '31000');
    // 31 s + 0.5 s + 5 s fit in the default 60 s
    assert.equal(timeout, 60);
    assert.equal(built.stack.router.timeout.toSeconds(), 60);
    assert.deepEqual(built.stack.routerConfig.invocationType, RECOMMENDED_INVOCATION_TYPES);
  });

  it("keeps the router's defaults when every source uses event: no invoke timeout, 60 s whatever the backend's timeout", () => {
    const { timeout, env } = routerFunction(
      buildStack({ routerConfig: { ...ROUTER_CONFIG, invocationType: { default: 'event' } }, backendTimeout: Duration.minutes(5) }),
    );
    assert.equal(env.ROUTER_INVOCATION_TYPE, 'event');
    assert.equal(env.ROUTER_INVOKE_TIMEOUT_MS, undefined);
    assert.equal(timeout, 60);
  });

  it('raises the default router timeout to one synchronous Invoke + ROUTER_DEADLINE_MARGIN_MS + 5 s', () => {
    const cases: [Partial<TenantRouterStackProps>, string, number][] = [
      // 121 s + 0.5 s + 5 s = 126.5 s, rounded up
      [{ backendTimeout: Duration.seconds(120) }, '121000', 127],
      [{ backendTimeout: Duration.seconds(120), routerConfig: { ...ROUTER_CONFIG, deadlineMargin: Duration.seconds(2) } }, '121000', 128],
      // the standard queue alone in request-response is enough
      [{ backendTimeout: Duration.seconds(120), routerConfig: { ...ROUTER_CONFIG, invocationType: { sqs: 'request-response' } } }, '121000', 127],
      [{ backendTimeout: Duration.seconds(600) }, '601000', 607],
    ];
    for (const [props, invoke, seconds] of cases) {
      const built = buildStack(props);
      const { timeout, env } = routerFunction(built);
      assert.equal(env.ROUTER_INVOKE_TIMEOUT_MS, invoke);
      assert.equal(env.ROUTER_DEADLINE_MARGIN_MS, props.routerConfig?.deadlineMargin === undefined ? undefined : '2000');
      assert.equal(timeout, seconds);
      assert.equal(built.stack.router.timeout.toSeconds(), seconds);
      built.template.hasResourceProperties('AWS::Lambda::Function', {
        TenancyConfig: { TenantIsolationMode: 'PER_TENANT' },
        Timeout: (props.backendTimeout as Duration).toSeconds(),
      });
    }
  });

  it('keeps a given invoke timeout of at least the backend timeout, and refuses a shorter one under request-response', () => {
    const withInvoke = (invokeTimeout: Duration, invocationType?: InvocationTypes) =>
      buildStack({ routerConfig: { ...ROUTER_CONFIG, invokeTimeout, invocationType } });
    assert.equal(routerFunction(withInvoke(Duration.seconds(45))).env.ROUTER_INVOKE_TIMEOUT_MS, '45000');
    assert.equal(routerFunction(withInvoke(Duration.seconds(30))).env.ROUTER_INVOKE_TIMEOUT_MS, '30000');
    assert.throws(
      () => withInvoke(Duration.seconds(29)),
      /ROUTER_INVOKE_TIMEOUT_MS: invokeTimeout \(29000 ms\) is shorter than the backend's timeout \(30000 ms\); with request-response each Invoke waits for the backend to finish/,
    );
    // an async Invoke only queues the event: the backend's timeout does not bound it
    assert.equal(routerFunction(withInvoke(Duration.seconds(2), { default: 'event' })).env.ROUTER_INVOKE_TIMEOUT_MS, '2000');
  });

  it('refuses a given router timeout too short for one Invoke, and one beyond Lambda’s 900 s', () => {
    assert.throws(
      () => buildStack({ backendTimeout: Duration.seconds(60), routerTimeout: Duration.seconds(60) }),
      /routerTimeout \(60 s\) must be at least ROUTER_INVOKE_TIMEOUT_MS \(61000 ms\) \+ ROUTER_DEADLINE_MARGIN_MS \(500 ms\) \+ 5 s of headroom = 66500 ms/,
    );
    assert.equal(routerFunction(buildStack({ backendTimeout: Duration.seconds(60), routerTimeout: Duration.seconds(67) })).timeout, 67);
    // in event mode too: the router's own 5 s invoke timeout
    assert.throws(
      () => buildStack({ routerConfig: { ...ROUTER_CONFIG, invocationType: { default: 'event' } }, routerTimeout: Duration.seconds(10) }),
      /routerTimeout \(10 s\) must be at least ROUTER_INVOKE_TIMEOUT_MS \(5000 ms\) \+ ROUTER_DEADLINE_MARGIN_MS \(500 ms\) \+ 5 s of headroom = 10500 ms/,
    );
    assert.throws(() => buildStack({ routerTimeout: Duration.seconds(901) }), /routerTimeout \(901 s\) exceeds Lambda's largest timeout \(900 s\)/);
    assert.throws(
      () => buildStack({ backendTimeout: Duration.seconds(895) }),
      /ROUTER_INVOKE_TIMEOUT_MS: the router's timeout would have to be at least .* = 901500 ms, beyond Lambda's 900 s/,
    );
  });
});

describe('both functions', () => {
  it('log to their own log groups with a retention', () => {
    const { template } = defaultStack();
    template.resourceCountIs('AWS::Logs::LogGroup', 2);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('take the architecture as a prop (arm64 for bundles built for aarch64)', () => {
    const { template } = buildStack({ architecture: lambda.Architecture.ARM_64 });
    template.allResourcesProperties('AWS::Lambda::Function', { Architectures: ['arm64'] });
  });

  it('are the only two functions of the stack', () => {
    defaultStack().template.resourceCountIs('AWS::Lambda::Function', 2);
  });
});

describe('code assets', () => {
  it('package the bundle directories: bootstrap for both, tenants/ for the backend', () => {
    const app = newApp();
    const stack = newStack(app);
    const assembly = app.synth({ force: true });
    const template = Template.fromStack(stack).toJSON();
    const manifest = JSON.parse(fs.readFileSync(path.join(assembly.directory, 'TenantRouter.assets.json'), 'utf8'));
    for (const [construct, expected] of [
      [stack.router.function, ['bootstrap']],
      [stack.backend.function, ['bootstrap', 'tenants']],
    ] as const) {
      const key: string = template.Resources[idOf(construct)].Properties.Code.S3Key;
      const hash = key.replace(/\.zip$/, '');
      const source = manifest.files[hash].source;
      assert.equal(source.packaging, 'zip');
      const staged = fs.readdirSync(path.join(assembly.directory, source.path)).sort();
      assert.deepEqual(staged, [...expected]);
      const bootstrap = fs.statSync(path.join(assembly.directory, source.path, 'bootstrap'));
      assert.ok(bootstrap.mode & 0o100, 'bootstrap is executable');
    }
  });

  it('refuses to synthesize without a built bundle, and says how to build one', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-router-empty-'));
    assert.throws(() => buildStack({ routerAssetPath: empty }), /router: .*bootstrap not found; build the Lambda bundles with scripts\/build-lambda\.sh/);
    fs.writeFileSync(path.join(empty, 'bootstrap'), '');
    assert.throws(() => buildStack({ backendAssetPath: empty }), /backend: .*tenants not found/);
  });
});

describe('stack outputs', () => {
  it('name everything an operator needs to send test messages and watch them', () => {
    const { stack, template } = defaultStack();
    const outputs = template.toJSON().Outputs;
    assert.deepEqual(
      Object.fromEntries(Object.entries<{ Value: unknown }>(outputs).map(([name, o]) => [name, o.Value])),
      {
        QueueUrl: ref(idOf(stack.sources.queue)),
        FifoQueueUrl: ref(idOf(stack.sources.fifoQueue)),
        StreamName: ref(idOf(stack.sources.stream)),
        TableName: ref(idOf(stack.sources.table)),
        IdempotencyTableName: ref(idOf(stack.backend.idempotencyTable)),
        QuarantineQueueUrl: ref(idOf(stack.quarantine)),
        QuarantineBucketName: ref(idOf(stack.quarantineBucket)),
        StreamFailuresQueueUrl: ref(idOf(stack.sources.streamFailures)),
        BackendFailuresQueueUrl: ref(idOf(stack.backend.failureQueue)),
        ResultsBusName: ref(idOf(stack.backend.resultsBus)),
        RouterFunctionName: ref(idOf(stack.router.function)),
        BackendFunctionName: ref(idOf(stack.backend.function)),
        RouterLogGroupName: ref(idOf(stack.router.logGroup)),
        BackendLogGroupName: ref(idOf(stack.backend.logGroup)),
        DataKeyArn: arn(idOf(stack.dataKey)),
        AlarmTopicArn: ref(idOf(stack.monitoring.node.findChild('AlarmTopic'))),
        DashboardName: ref(idOf(stack.dashboard.dashboard)),
      },
    );
  });
});
