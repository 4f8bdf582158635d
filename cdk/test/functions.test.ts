// Both functions of the full example, the router's timeouts, the code of the Rust functions
// (bundle, architecture, placeholder rule, cargo-lambda) and the stack's outputs.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Duration } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { SUCCESS_DETAIL_TYPE } from '../lib/rust-backend';
import { DeliveryMode, InvocationType, InvocationTypes, RustCode } from '../lib';
import { PLACEHOLDER_RULE_ID } from '../lib/code';
import { RECOMMENDED_INVOCATION_TYPES } from '../lib/router-config';
import { FullDeploymentProps } from '../examples/full/stack';
import { arn, backendStack, buildStack, Built, defaultStack, fakeBundle, idOf, newApp, newRouter, newStack, ref, ROUTER_CONFIG } from './helpers';

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
          // the example's 4 days: its source queues' retention (the longest retry horizon of its sources)
          BACKEND_IDEMPOTENCY_TTL_SECONDS: '345600',
          // tenant-scoped credentials: the role its guard assumes per tenant
          BACKEND_TENANT_ROLE_ARN: arn(idOf(stack.backend.tenantAccessRole!.role)),
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

  it('archives the results it sends to the bus; bus and archive are encrypted with the data key', () => {
    const { stack, template } = defaultStack();
    template.resourceCountIs('AWS::Events::EventBus', 1);
    const resources = template.toJSON().Resources;
    const bus = resources[idOf(stack.backend.resultsBus)];
    assert.deepEqual(bus.Properties.KmsKeyIdentifier, arn(idOf(stack.dataKey)));
    const archives = Object.entries<{ [key: string]: any }>(resources).filter(([, r]) => r.Type === 'AWS::Events::Archive');
    assert.equal(archives.length, 1);
    const [[, archive]] = archives;
    // The bus by its name (an ARN attribute would make key policy → bus → key circular), created before the archive.
    assert.deepEqual(archive.DependsOn, [idOf(stack.backend.resultsBus)]);
    assert.deepEqual(archive.Properties, {
      Description: 'Backend results kept for replay',
      SourceArn: {
        'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':events:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:event-bus/${bus.Properties.Name}`]],
      },
      EventPattern: { source: ['lambda'], 'detail-type': [SUCCESS_DETAIL_TYPE] },
      RetentionDays: 7,
      KmsKeyIdentifier: arn(idOf(stack.dataKey)),
    });
  });

  it('logs to a log group encrypted with the data key, like the router', () => {
    const { stack, template } = defaultStack();
    const resources = template.toJSON().Resources;
    for (const group of [stack.backend.logGroup, stack.router.logGroup]) {
      assert.deepEqual(resources[idOf(group)].Properties.KmsKeyId, arn(idOf(stack.dataKey)));
    }
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
        ROUTER_QUARANTINE_QUEUE_URL: ref(idOf(stack.router.quarantineQueue)),
        ROUTER_QUARANTINE_BUCKET: ref(idOf(stack.router.quarantineBucket)),
        // the created quarantine queue's MaximumMessageSize, set explicitly (SQS's largest, 1 MiB)
        ROUTER_QUARANTINE_MAX_MESSAGE_BYTES: '1048576',
        // the example turns the tenant registry on, with the router's defaults
        ROUTER_TENANT_REGISTRY_TABLE: ref(idOf(stack.router.tenantRegistryTable!)),
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
      buildStack({ routerConfig: { ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH, batchMaxBytes: 262_144 } }),
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
      /timeout \(5 s\) must be at least ROUTER_INVOKE_TIMEOUT_MS \(31000 ms\) \+ ROUTER_DEADLINE_MARGIN_MS \(500 ms\) \+ 5 s of headroom = 36500 ms/,
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
    assert.deepEqual(built.stack.router.config.invocationType, RECOMMENDED_INVOCATION_TYPES);
  });

  it("keeps the router's defaults when every source uses event: no invoke timeout, 60 s whatever the backend's timeout", () => {
    const { timeout, env } = routerFunction(
      buildStack({ routerConfig: { ...ROUTER_CONFIG, invocationType: { all: InvocationType.EVENT } }, backendTimeout: Duration.minutes(5) }),
    );
    assert.equal(env.ROUTER_INVOCATION_TYPE, 'event');
    assert.equal(env.ROUTER_INVOKE_TIMEOUT_MS, undefined);
    assert.equal(timeout, 60);
  });

  it('raises the default router timeout to one synchronous Invoke + ROUTER_DEADLINE_MARGIN_MS + 5 s', () => {
    const cases: [Partial<FullDeploymentProps>, string, number][] = [
      // 121 s + 0.5 s + 5 s = 126.5 s, rounded up
      [{ backendTimeout: Duration.seconds(120) }, '121000', 127],
      [{ backendTimeout: Duration.seconds(120), routerConfig: { ...ROUTER_CONFIG, deadlineMargin: Duration.seconds(2) } }, '121000', 128],
      // the standard queue alone in request-response is enough
      [{ backendTimeout: Duration.seconds(120), routerConfig: { ...ROUTER_CONFIG, invocationType: { sqs: InvocationType.REQUEST_RESPONSE } } }, '121000', 127],
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
    assert.equal(routerFunction(withInvoke(Duration.seconds(2), { all: InvocationType.EVENT })).env.ROUTER_INVOKE_TIMEOUT_MS, '2000');
  });

  it('refuses a given router timeout too short for one Invoke, and one beyond Lambda’s 900 s', () => {
    assert.throws(
      () => buildStack({ backendTimeout: Duration.seconds(60), routerTimeout: Duration.seconds(60) }),
      /timeout \(60 s\) must be at least ROUTER_INVOKE_TIMEOUT_MS \(61000 ms\) \+ ROUTER_DEADLINE_MARGIN_MS \(500 ms\) \+ 5 s of headroom = 66500 ms/,
    );
    assert.equal(routerFunction(buildStack({ backendTimeout: Duration.seconds(60), routerTimeout: Duration.seconds(67) })).timeout, 67);
    // in event mode too: the router's own 5 s invoke timeout
    assert.throws(
      () => buildStack({ routerConfig: { ...ROUTER_CONFIG, invocationType: { all: InvocationType.EVENT } }, routerTimeout: Duration.seconds(10) }),
      /timeout \(10 s\) must be at least ROUTER_INVOKE_TIMEOUT_MS \(5000 ms\) \+ ROUTER_DEADLINE_MARGIN_MS \(500 ms\) \+ 5 s of headroom = 10500 ms/,
    );
    assert.throws(() => buildStack({ routerTimeout: Duration.seconds(901) }), /timeout \(901 s\) exceeds Lambda's largest timeout \(900 s\)/);
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
    assert.throws(
      () => buildStack({ routerCode: RustCode.fromBundle(empty) }),
      new RegExp(`router: ${empty}/bootstrap not found; build the bundle with \\./scripts/build-lambda\\.sh$`),
    );
    assert.throws(
      () => buildStack({ routerCode: RustCode.fromBundle(empty), architecture: lambda.Architecture.ARM_64 }),
      /router: .*bootstrap not found; build the bundle with \.\/scripts\/build-lambda\.sh arm64$/,
    );
    // The backend's bundle also needs its tenants/ folder.
    const backend = fakeBundle(fs.mkdtempSync(path.join(os.tmpdir(), 'tenant-router-backend-')), 0x3e);
    assert.throws(() => buildStack({ backendCode: RustCode.fromBundle(backend) }), /backend: .*tenants not found; build the bundle with \.\/scripts\/build-lambda\.sh$/);
  });

  it('refuses a bundle built for the other architecture, or not an ELF executable, naming the build command', () => {
    const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `tenant-router-${name}-`));
    const aarch64 = fakeBundle(tmp('aarch64'), 0xb7);
    const x86 = fakeBundle(tmp('x86'), 0x3e);
    assert.throws(
      () => buildStack({ routerCode: RustCode.fromBundle(aarch64) }),
      /router: .*bootstrap is built for arm64, but the function's architecture is x86_64; build the bundle with \.\/scripts\/build-lambda\.sh, or set the architecture to arm64/,
    );
    assert.throws(
      () => buildStack({ routerCode: RustCode.fromBundle(x86), architecture: lambda.Architecture.ARM_64 }),
      /router: .*bootstrap is built for x86_64, but the function's architecture is arm64; build the bundle with \.\/scripts\/build-lambda\.sh arm64/,
    );
    assert.throws(
      () => buildStack({ routerCode: RustCode.fromBundle(fakeBundle(tmp('script'), undefined)) }),
      /router: .*bootstrap is not an ELF executable; build the bundle with \.\/scripts\/build-lambda\.sh/,
    );
    // Matching bundles synthesize, with no placeholder rule.
    const { template } = buildStack({ routerCode: RustCode.fromBundle(aarch64), backendCode: RustCode.placeholder(), architecture: lambda.Architecture.ARM_64 });
    template.hasResourceProperties('AWS::Lambda::Function', { Architectures: ['arm64'], TenancyConfig: Match.absent() });
    const { stack } = backendStack(newApp());
    newRouter(stack, stack.node.findChild('Backend') as lambda.Function, { code: RustCode.fromBundle(x86) });
    assert.equal(Template.fromStack(stack).toJSON().Rules?.[PLACEHOLDER_RULE_ID], undefined);
  });

  it('makes a template with placeholder code undeployable: a Rule CloudFormation checks before it touches anything, present only then', () => {
    const rules = (template: Template) => template.toJSON().Rules ?? {};
    const placeholder = rules(defaultStack().template)[PLACEHOLDER_RULE_ID];
    assert.deepEqual(placeholder, {
      Assertions: [
        {
          Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'placeholder-code-cannot-be-deployed'] },
          AssertDescription:
            'This template was synthesized with placeholder Lambda code (RustCode.placeholder(), for tests) and cannot be ' +
            'deployed. Build the bundles with ./scripts/build-lambda.sh and synthesize without placeholders.',
        },
      ],
    });
    // One rule, whether one function or both use placeholders.
    assert.equal(Object.keys(rules(defaultStack().template)).filter((id) => id === PLACEHOLDER_RULE_ID).length, 1);
    // Real bundles: no rule.
    const tmp = (name: string) => fs.mkdtempSync(path.join(os.tmpdir(), `tenant-router-${name}-`));
    const router = fakeBundle(tmp('router'), 0x3e);
    const backend = fakeBundle(tmp('backend'), 0x3e);
    fs.mkdirSync(path.join(backend, 'tenants'));
    const real = buildStack({ routerCode: RustCode.fromBundle(router), backendCode: RustCode.fromBundle(backend) });
    assert.equal(rules(real.template)[PLACEHOLDER_RULE_ID], undefined);
    // Either placeholder alone is enough for the rule.
    assert.ok(rules(buildStack({ routerCode: RustCode.fromBundle(router) }).template)[PLACEHOLDER_RULE_ID]);
  });

  it('explains what building from source with cargo-lambda-cdk needs when the package is not installed', () => {
    assert.throws(
      () => buildStack({ routerCode: RustCode.fromCargoLambda() }),
      /router: RustCode.fromCargoLambda needs the npm package cargo-lambda-cdk \(npm install cargo-lambda-cdk; in Python, pip install cargo-lambda-cdk and import cargo_lambda_cdk\), or build the bundle with \.\/scripts\/build-lambda\.sh and use RustCode.fromBundle\(\)/,
    );
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
        TenantRegistryTableName: ref(idOf(stack.router.tenantRegistryTable!)),
        QuarantineQueueUrl: ref(idOf(stack.router.quarantineQueue)),
        QuarantineBucketName: ref(idOf(stack.router.quarantineBucket)),
        StreamFailuresQueueUrl: ref(idOf(stack.router.streamFailuresQueue!)),
        BackendFailuresQueueUrl: ref(idOf(stack.backend.failureQueue)),
        ResultsBusName: ref(idOf(stack.backend.resultsBus)),
        RouterFunctionName: ref(idOf(stack.router.function)),
        BackendFunctionName: ref(idOf(stack.backend.function)),
        RouterLogGroupName: ref(idOf(stack.router.logGroup)),
        BackendLogGroupName: ref(idOf(stack.backend.logGroup)),
        DataKeyArn: arn(idOf(stack.dataKey)),
        AlarmTopicArn: ref(idOf(stack.router.node.findChild('Alarms').node.findChild('AlarmTopic'))),
        DashboardName: ref(idOf(stack.router.dashboard)),
        TenantAccessRoleArn: arn(idOf(stack.backend.tenantAccessRole!.role)),
      },
    );
  });
});
