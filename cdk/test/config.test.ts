// The router's configuration: every ROUTER_* variable, its checks, the per-source syntax, CDK
// tokens, and the full example's CDK context (unknown keys refused, placeholders on request only).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CfnParameter, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { defaultBundleDirectory, PLACEHOLDER_RULE_ID, repositoryRoot } from '../lib/code';
import { stackPropsFromContext } from '../examples/full/context';
import { DeliveryMode, InvocationType, JwtAlgorithm, ValidationMode } from '../lib';
import {
  ASYNC_INVOKE_PAYLOAD_LIMIT,
  INVOCATION_TYPE_KEYS,
  invocationTypeOf,
  InvocationTypes,
  invokePayloadLimit,
  JWT_ALGORITHMS,
  parseInvocationTypes,
  parsePerSource,
  RECOMMENDED_INVOCATION_TYPES,
  renderInvocationTypes,
  renderPerSource,
  routerEnvironment,
  SYNC_INVOKE_PAYLOAD_LIMIT,
  usesJwt,
  usesRequestResponse,
} from '../lib/router-config';
import { FullDeploymentStack } from '../examples/full/stack';
import * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { backendStack, JWT, newApp, newRouter, ROUTER_CONFIG } from './helpers';

const EVENT = InvocationType.EVENT;
const RR = InvocationType.REQUEST_RESPONSE;

describe('router configuration', () => {
  it('maps every typed setting to its ROUTER_* variable', () => {
    assert.deepEqual(
      routerEnvironment({
        jwt: {
          jwksUrl: 'https://issuer.example.com/.well-known/jwks.json',
          issuer: 'https://issuer.example.com,https://old-issuer.example.com',
          audience: 'tenant-router,orders',
          tenantClaim: 'tid',
          leeway: Duration.seconds(30),
          typ: 'tenant+jwt',
          algorithms: [JwtAlgorithm.RS256, JwtAlgorithm.EDDSA],
          maxTokenBytes: 4096,
          cacheSize: 0,
          jwksRefreshCooldown: Duration.minutes(2),
          jwksMaxAge: Duration.minutes(15),
        },
        tenantFrom: { all: 'payload:/tenantId', sqs: 'message-group-id', dynamodb: 'key:pk:TENANT#' },
        tokenFrom: { all: 'payload:/tenantToken', sqs: 'attribute:tenantToken' },
        validation: { all: ValidationMode.JWT, dynamodb: ValidationMode.TRUSTED },
        trustedTenants: ['acme', 'globex corp'],
        maxRecordAge: Duration.days(1),
        maxInFlight: 32,
        maxInFlightPerTenant: 8,
        invocationType: { all: InvocationType.EVENT, sqsFifo: InvocationType.REQUEST_RESPONSE, kinesis: InvocationType.REQUEST_RESPONSE },
        delivery: DeliveryMode.TENANT_BATCH,
        batchMaxBytes: 262_144,
        retryMaxAttempts: 4,
        retryBaseDelay: Duration.millis(100),
        retryMaxDelay: Duration.seconds(3),
        deadlineMargin: Duration.millis(750),
        invokeTimeout: Duration.seconds(4),
        correlationIdFrom: 'payload:/meta/correlationId',
        metricsNamespace: 'Acme/TenantRouter',
      }),
      {
        ROUTER_JWKS: 'https://issuer.example.com/.well-known/jwks.json',
        ROUTER_JWT_ISSUER: 'https://issuer.example.com,https://old-issuer.example.com',
        ROUTER_JWT_AUDIENCE: 'tenant-router,orders',
        ROUTER_TENANT_FROM: 'payload:/tenantId;sqs=message-group-id;dynamodb=key:pk:TENANT#',
        ROUTER_TOKEN_FROM: 'payload:/tenantToken;sqs=attribute:tenantToken',
        ROUTER_VALIDATION: 'jwt;dynamodb=trusted',
        ROUTER_TENANT_CLAIM: 'tid',
        ROUTER_JWT_LEEWAY_SECONDS: '30',
        ROUTER_JWT_TYP: 'tenant+jwt',
        ROUTER_JWT_ALGORITHMS: 'RS256,EdDSA',
        ROUTER_JWT_MAX_TOKEN_BYTES: '4096',
        ROUTER_JWT_CACHE_SIZE: '0',
        ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS: '120',
        ROUTER_JWKS_MAX_AGE_SECONDS: '900',
        ROUTER_TRUSTED_TENANTS: 'acme,globex corp',
        ROUTER_MAX_RECORD_AGE_SECONDS: '86400',
        ROUTER_MAX_IN_FLIGHT: '32',
        ROUTER_MAX_IN_FLIGHT_PER_TENANT: '8',
        ROUTER_INVOCATION_TYPE: 'event;sqs-fifo=request-response;kinesis=request-response',
        ROUTER_DELIVERY: 'tenant-batch',
        ROUTER_BATCH_MAX_BYTES: '262144',
        ROUTER_RETRY_MAX_ATTEMPTS: '4',
        ROUTER_RETRY_BASE_DELAY_MS: '100',
        ROUTER_RETRY_MAX_DELAY_MS: '3000',
        ROUTER_DEADLINE_MARGIN_MS: '750',
        ROUTER_INVOKE_TIMEOUT_MS: '4000',
        ROUTER_CORRELATION_ID_FROM: 'payload:/meta/correlationId',
        ROUTER_METRICS_NAMESPACE: 'Acme/TenantRouter',
      },
    );
  });

  it('leaves unset settings to the router defaults', () => {
    assert.deepEqual(routerEnvironment(ROUTER_CONFIG), {
      ROUTER_JWKS: 'https://issuer.example.com/.well-known/jwks.json',
      ROUTER_JWT_ISSUER: 'https://issuer.example.com',
      ROUTER_JWT_AUDIENCE: 'tenant-router',
    });
  });

  it('renders the delivery mode, and the batch size only with tenant-batch', () => {
    assert.equal(routerEnvironment(ROUTER_CONFIG).ROUTER_DELIVERY, undefined);
    assert.equal(routerEnvironment(ROUTER_CONFIG).ROUTER_BATCH_MAX_BYTES, undefined);
    assert.deepEqual(routerEnvironment({ ...ROUTER_CONFIG, delivery: DeliveryMode.RECORD }), {
      ...routerEnvironment(ROUTER_CONFIG),
      ROUTER_DELIVERY: 'record',
    });
    assert.deepEqual(routerEnvironment({ ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH }), {
      ...routerEnvironment(ROUTER_CONFIG),
      ROUTER_DELIVERY: 'tenant-batch',
    });
    for (const bytes of [1, 65_536, ASYNC_INVOKE_PAYLOAD_LIMIT]) {
      const env = routerEnvironment({ ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH, batchMaxBytes: bytes });
      assert.equal(env.ROUTER_DELIVERY, 'tenant-batch');
      assert.equal(env.ROUTER_BATCH_MAX_BYTES, String(bytes));
    }
    assert.equal(ASYNC_INVOKE_PAYLOAD_LIMIT, 1_048_576);
  });

  it('needs no JWKS, issuer or audience when every source is trusted', () => {
    assert.deepEqual(routerEnvironment({ validation: { all: ValidationMode.TRUSTED }, trustedTenants: ['acme'] }), {
      ROUTER_VALIDATION: ValidationMode.TRUSTED,
      ROUTER_TRUSTED_TENANTS: 'acme',
    });
    assert.equal(usesJwt({ all: ValidationMode.TRUSTED }), false);
    assert.equal(usesJwt({ all: ValidationMode.TRUSTED, kinesis: ValidationMode.JWT }), true);
    assert.equal(usesJwt(undefined), true);
  });

  it('refuses what the router would refuse, naming the variable, at synth time', () => {
    const cases: [Parameters<typeof routerEnvironment>[0], RegExp][] = [
      [{ jwt: { ...JWT, jwksUrl: '' } }, /ROUTER_JWKS: jwt.jwksUrl is required/],
      [{}, /ROUTER_JWKS: jwt.jwksUrl is required when a source uses jwt validation/],
      [{ jwt: { ...JWT, jwksUrl: 'http://issuer.example.com/jwks.json' } }, /ROUTER_JWKS: jwt.jwksUrl must be an https URL/],
      [{ jwt: { ...JWT, jwksUrl: 'file:///var/task/jwks.json' } }, /ROUTER_JWKS: jwt.jwksUrl must be an https URL/],
      [{ jwt: { ...JWT, jwksUrl: '{"keys":[]}' } }, /ROUTER_JWKS: jwt.jwksUrl must be an https URL/],
      [{ jwt: { ...JWT, jwksUrl: 'https://user:secret@issuer.example.com/jwks.json' } }, /ROUTER_JWKS: jwt.jwksUrl must not carry credentials/],
      [{ jwt: { ...JWT, issuer: '' } }, /ROUTER_JWT_ISSUER: jwt.issuer is required/],
      [{ jwt: { ...JWT, audience: '' } }, /ROUTER_JWT_AUDIENCE: jwt.audience is required/],
      [{ jwt: { ...JWT, audience: 'a, b' } }, /ROUTER_JWT_AUDIENCE: " b" in jwt.audience must be non-empty, without surrounding spaces/],
      [{ jwt: { ...JWT, issuer: 'a,,b' } }, /ROUTER_JWT_ISSUER: "" in jwt.issuer must be non-empty/],
      [{ ...ROUTER_CONFIG, validation: { all: 'none' as ValidationMode } }, /ROUTER_VALIDATION: all must be 'jwt' or 'trusted'/],
      [{ ...ROUTER_CONFIG, tenantFrom: { sqs: 'a;b' } }, /ROUTER_TENANT_FROM: a value must be non-empty and contain no ';'/],
      [{ ...ROUTER_CONFIG, tenantFrom: {} }, /ROUTER_TENANT_FROM: give a value for all sources or at least one per-source value/],
      [{ ...ROUTER_CONFIG, trustedTenants: ['acme#1'] }, /ROUTER_TRUSTED_TENANTS: "acme#1" is not a valid tenant id/],
      [{ ...ROUTER_CONFIG, trustedTenants: ['x'.repeat(257)] }, /ROUTER_TRUSTED_TENANTS/],
      [{ ...ROUTER_CONFIG, maxInFlight: 0 }, /ROUTER_MAX_IN_FLIGHT: must be an integer >= 1/],
      [{ ...ROUTER_CONFIG, maxInFlight: 1.5 }, /ROUTER_MAX_IN_FLIGHT/],
      [{ ...ROUTER_CONFIG, maxInFlightPerTenant: 0 }, /ROUTER_MAX_IN_FLIGHT_PER_TENANT: must be an integer from 1 to 64, got 0 \(at most ROUTER_MAX_IN_FLIGHT\)/],
      [{ ...ROUTER_CONFIG, maxInFlight: 16, maxInFlightPerTenant: 17 }, /ROUTER_MAX_IN_FLIGHT_PER_TENANT: must be an integer from 1 to 16, got 17/],
      [{ ...ROUTER_CONFIG, maxRecordAge: Duration.seconds(0) }, /ROUTER_MAX_RECORD_AGE_SECONDS: must be an integer >= 1/],
      [{ ...ROUTER_CONFIG, delivery: 'batch' as DeliveryMode }, /ROUTER_DELIVERY: delivery must be 'record' or 'tenant-batch', got "batch"/],
      [{ ...ROUTER_CONFIG, batchMaxBytes: 65_536 }, /ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'/],
      [{ ...ROUTER_CONFIG, delivery: DeliveryMode.RECORD, batchMaxBytes: 65_536 }, /ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'/],
      [{ ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH, batchMaxBytes: 0 }, /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576, got 0/],
      [{ ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH, batchMaxBytes: 1_048_577 }, /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576, got 1048577/],
      [{ ...ROUTER_CONFIG, invocationType: { all: 'sync' as InvocationType } }, /ROUTER_INVOCATION_TYPE: all must be 'event' or 'request-response', got "sync"/],
      [{ jwt: { ...JWT, algorithms: ['HS256' as JwtAlgorithm] } }, /ROUTER_JWT_ALGORITHMS: "HS256" is not one of/],
      [{ ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH, batchMaxBytes: 1024.5 }, /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576/],
      [{ ...ROUTER_CONFIG, metricsNamespace: '' }, /ROUTER_METRICS_NAMESPACE: "" is not a usable CloudWatch namespace/],
      [{ ...ROUTER_CONFIG, metricsNamespace: 'AWS/Lambda' }, /ROUTER_METRICS_NAMESPACE/],
      [{ ...ROUTER_CONFIG, metricsNamespace: ':Router' }, /ROUTER_METRICS_NAMESPACE/],
      [{ ...ROUTER_CONFIG, metricsNamespace: "Router'" }, /ROUTER_METRICS_NAMESPACE/],
      [{ ...ROUTER_CONFIG, metricsNamespace: 'Router"' }, /ROUTER_METRICS_NAMESPACE/],
      [{ ...ROUTER_CONFIG, metricsNamespace: 'x'.repeat(256) }, /ROUTER_METRICS_NAMESPACE/],
    ];
    for (const [config, error] of cases) {
      assert.throws(() => routerEnvironment(config), error);
    }
  });

  it('parses and renders the per-source syntax', () => {
    const text = 'payload:/tenantId;sqs=attribute:tenant;dynamodb=key:pk:TENANT#';
    const parsed = parsePerSource('ROUTER_TENANT_FROM', text);
    assert.deepEqual(parsed, { all: 'payload:/tenantId', sqs: 'attribute:tenant', dynamodb: 'key:pk:TENANT#' });
    assert.equal(renderPerSource('ROUTER_TENANT_FROM', parsed), text);
    assert.deepEqual(parsePerSource('ROUTER_TENANT_FROM', 'kinesis=partition-key'), { kinesis: 'partition-key' });
    assert.throws(() => parsePerSource('ROUTER_VALIDATION', 'jwt;;trusted'), /empty entry/);
    assert.throws(() => parsePerSource('ROUTER_VALIDATION', 'jwt;trusted'), /the value for all sources is given twice/);
  });
});

describe('invocation type (ROUTER_INVOCATION_TYPE)', () => {
  it('renders the per-source syntax, sqs-fifo right after sqs, and parses it back', () => {
    const setting: InvocationTypes = {
      all: EVENT,
      sqs: EVENT,
      sqsFifo: RR,
      kinesis: RR,
      dynamodb: RR,
      eventbridge: EVENT,
    };
    const text = 'event;sqs=event;sqs-fifo=request-response;kinesis=request-response;dynamodb=request-response;eventbridge=event';
    assert.equal(routerEnvironment({ ...ROUTER_CONFIG, invocationType: setting }).ROUTER_INVOCATION_TYPE, text);
    assert.equal(renderInvocationTypes('ROUTER_INVOCATION_TYPE', setting), text);
    assert.deepEqual(parseInvocationTypes('invocationType', text), setting);
    assert.deepEqual(parseInvocationTypes('invocationType', 'sqs-fifo=request-response'), { sqsFifo: RR });
    assert.deepEqual(routerEnvironment({ ...ROUTER_CONFIG, invocationType: { all: RR } }).ROUTER_INVOCATION_TYPE, RR);
    // sqs-fifo is a key of this variable only
    assert.throws(() => parsePerSource('ROUTER_VALIDATION', 'jwt;sqs-fifo=trusted'), /ROUTER_VALIDATION: the value for all sources is given twice/);
  });

  it('leaves the variable unset (router default event) unless given', () => {
    assert.equal(routerEnvironment(ROUTER_CONFIG).ROUTER_INVOCATION_TYPE, undefined);
    for (const key of INVOCATION_TYPE_KEYS) {
      assert.equal(invocationTypeOf(undefined, key), EVENT);
    }
    assert.equal(usesRequestResponse(undefined), false);
  });

  it('recommends request-response for the ordered sources (FIFO queue, Kinesis, DynamoDB) and event for the rest', () => {
    assert.equal(
      renderInvocationTypes('ROUTER_INVOCATION_TYPE', RECOMMENDED_INVOCATION_TYPES),
      'event;sqs-fifo=request-response;kinesis=request-response;dynamodb=request-response',
    );
    const resolved = Object.fromEntries(INVOCATION_TYPE_KEYS.map((key) => [key, invocationTypeOf(RECOMMENDED_INVOCATION_TYPES, key)]));
    assert.deepEqual(resolved, {
      sqs: EVENT,
      'sqs-fifo': RR,
      kinesis: RR,
      dynamodb: RR,
      eventbridge: EVENT,
    });
  });

  it('resolves FIFO queues through sqs-fifo, then sqs, then the default; the other sources through their own key', () => {
    const cases: [InvocationTypes, { [key: string]: InvocationType }][] = [
      [{ sqs: RR }, { sqs: RR, 'sqs-fifo': RR, kinesis: EVENT, eventbridge: EVENT }],
      [{ sqs: RR, sqsFifo: EVENT }, { sqs: RR, 'sqs-fifo': EVENT, kinesis: EVENT }],
      [{ sqsFifo: RR }, { sqs: EVENT, 'sqs-fifo': RR, dynamodb: EVENT }],
      [{ all: RR, sqsFifo: EVENT }, { sqs: RR, 'sqs-fifo': EVENT, eventbridge: RR }],
    ];
    for (const [setting, expected] of cases) {
      for (const [key, type] of Object.entries(expected)) {
        assert.equal(invocationTypeOf(setting, key as (typeof INVOCATION_TYPE_KEYS)[number]), type, `${JSON.stringify(setting)} ${key}`);
      }
      assert.equal(usesRequestResponse(setting), true);
    }
    assert.equal(usesRequestResponse({ all: EVENT, sqs: EVENT }), false);
  });

  it('refuses unknown values and malformed entries, naming the variable', () => {
    const cases: [InvocationTypes, RegExp][] = [
      [{ all: 'sync' as InvocationType }, /ROUTER_INVOCATION_TYPE: all must be 'event' or 'request-response', got "sync"/],
      [{ sqsFifo: 'RequestResponse' as InvocationType }, /ROUTER_INVOCATION_TYPE: sqs-fifo must be 'event' or 'request-response', got "RequestResponse"/],
      [{ kinesis: '' as InvocationType }, /ROUTER_INVOCATION_TYPE: kinesis must be 'event' or 'request-response', got ""/],
      [{}, /ROUTER_INVOCATION_TYPE: give a value for all sources or at least one per-source value/],
    ];
    for (const [invocationType, error] of cases) {
      assert.throws(() => routerEnvironment({ ...ROUTER_CONFIG, invocationType }), error);
    }
    assert.throws(() => parseInvocationTypes('invocationType', 'event;;kinesis=request-response'), /invocationType: empty entry/);
    assert.throws(() => parseInvocationTypes('invocationType', 'sqs-fifo=event;sqs-fifo=request-response'), /invocationType: sqs-fifo is given twice/);
    // an unknown key is read as a default value, which the router would refuse too
    assert.throws(
      () => routerEnvironment({ ...ROUTER_CONFIG, invocationType: parseInvocationTypes('invocationType', 'fifo=request-response') }),
      /ROUTER_INVOCATION_TYPE: all must be 'event' or 'request-response', got "fifo=request-response"/,
    );
  });

  it('bounds ROUTER_BATCH_MAX_BYTES by the async limit while every source uses event, by the sync limit (6 MiB) once one uses request-response', () => {
    assert.equal(SYNC_INVOKE_PAYLOAD_LIMIT, 6 * 1024 * 1024);
    assert.equal(invokePayloadLimit(undefined), ASYNC_INVOKE_PAYLOAD_LIMIT);
    assert.equal(invokePayloadLimit({ all: EVENT }), ASYNC_INVOKE_PAYLOAD_LIMIT);
    assert.equal(invokePayloadLimit({ sqsFifo: RR }), SYNC_INVOKE_PAYLOAD_LIMIT);
    const batch = (invocationType: InvocationTypes | undefined, batchMaxBytes: number) =>
      routerEnvironment({ ...ROUTER_CONFIG, delivery: DeliveryMode.TENANT_BATCH, invocationType, batchMaxBytes }).ROUTER_BATCH_MAX_BYTES;

    assert.equal(batch({ all: EVENT }, ASYNC_INVOKE_PAYLOAD_LIMIT), '1048576');
    assert.throws(
      () => batch({ all: EVENT }, ASYNC_INVOKE_PAYLOAD_LIMIT + 1),
      /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576, got 1048577 \(the async Invoke payload limit; 6291456 once a source uses request-response\)/,
    );
    for (const rr of [RECOMMENDED_INVOCATION_TYPES, { all: RR }, { sqs: RR }] as InvocationTypes[]) {
      assert.equal(batch(rr, 2_000_000), '2000000');
      assert.equal(batch(rr, SYNC_INVOKE_PAYLOAD_LIMIT), '6291456');
      assert.throws(
        () => batch(rr, SYNC_INVOKE_PAYLOAD_LIMIT + 1),
        /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 6291456, got 6291457 \(the sync Invoke payload limit, since a source uses request-response\)/,
      );
    }
  });
});

describe('JWT algorithms (ROUTER_JWT_ALGORITHMS)', () => {
  it('renders the accepted algorithms comma-separated, and leaves the router default (all of them) when unset', () => {
    assert.equal(routerEnvironment(ROUTER_CONFIG).ROUTER_JWT_ALGORITHMS, undefined);
    assert.equal(routerEnvironment({ jwt: { ...JWT, algorithms: [JwtAlgorithm.ES256] } }).ROUTER_JWT_ALGORITHMS, 'ES256');
    assert.equal(
      routerEnvironment({ jwt: { ...JWT, algorithms: [...JWT_ALGORITHMS] } }).ROUTER_JWT_ALGORITHMS,
      'RS256,RS384,RS512,PS256,PS384,PS512,ES256,ES384,EdDSA',
    );
  });

  it('refuses symmetric, none, unknown and empty entries, and an empty list', () => {
    const cases: [string[], RegExp][] = [
      [['HS256'], /ROUTER_JWT_ALGORITHMS: "HS256" is not one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA \(HS\* and none are never accepted\)/],
      [['RS256', 'none'], /ROUTER_JWT_ALGORITHMS: "none" is not one of/],
      [['rs256'], /ROUTER_JWT_ALGORITHMS: "rs256" is not one of/],
      [['ES512'], /ROUTER_JWT_ALGORITHMS: "ES512" is not one of/],
      [['RS256', ' ES256'], /ROUTER_JWT_ALGORITHMS: " ES256" is not one of/],
      [['RS256', ''], /ROUTER_JWT_ALGORITHMS: empty entry in "RS256,"/],
      [[], /ROUTER_JWT_ALGORITHMS: give at least one algorithm, or leave it unset/],
    ];
    for (const [jwtAlgorithms, error] of cases) {
      assert.throws(() => routerEnvironment({ jwt: { ...JWT, algorithms: jwtAlgorithms as JwtAlgorithm[] } }), error);
    }
  });
});

describe('CDK tokens in the router configuration', () => {
  it('passes tokens through unchecked (only the router can judge them) and counts an unknown invocation type as request-response', () => {
    const stack = new Stack();
    const bytes = new CfnParameter(stack, 'BatchMaxBytes', { type: 'Number' }).valueAsNumber;
    const type = new CfnParameter(stack, 'InvocationType').valueAsString as InvocationType;
    const algorithm = new CfnParameter(stack, 'Algorithm').valueAsString as JwtAlgorithm;
    const algorithms = new CfnParameter(stack, 'Algorithms', { type: 'CommaDelimitedList' }).valueAsList as JwtAlgorithm[];
    const env = routerEnvironment({
      ...ROUTER_CONFIG,
      delivery: DeliveryMode.TENANT_BATCH,
      batchMaxBytes: bytes,
      invocationType: { all: EVENT, kinesis: type },
      jwt: { ...JWT, algorithms: [JwtAlgorithm.RS256, algorithm] },
    });
    assert.deepEqual(stack.resolve(env.ROUTER_BATCH_MAX_BYTES), { Ref: 'BatchMaxBytes' });
    assert.deepEqual(stack.resolve(env.ROUTER_INVOCATION_TYPE), { 'Fn::Join': ['', ['event;kinesis=', { Ref: 'InvocationType' }]] });
    assert.deepEqual(stack.resolve(env.ROUTER_JWT_ALGORITHMS), { 'Fn::Join': ['', ['RS256,', { Ref: 'Algorithm' }]] });
    assert.deepEqual(stack.resolve(routerEnvironment({ jwt: { ...JWT, algorithms } }).ROUTER_JWT_ALGORITHMS), {
      'Fn::Join': [',', { Ref: 'Algorithms' }],
    });
    assert.equal(usesRequestResponse({ all: EVENT, kinesis: type }), true);
  });

  it('synthesizes a TenantRouter whose settings are SSM parameters and CfnParameters: checks that need a literal are skipped', () => {
    const { stack, backend } = backendStack(newApp());
    const number = (id: string) => new CfnParameter(stack, id, { type: 'Number' }).valueAsNumber;
    const text = (id: string) => new CfnParameter(stack, id).valueAsString;
    const queue = new sqs.Queue(stack, 'Orders', { visibilityTimeout: Duration.seconds(number('Visibility')) });
    const stream = new kinesis.Stream(stack, 'Events', { retentionPeriod: Duration.hours(number('RetentionHours')) });
    const router = newRouter(stack, backend, {
      jwt: {
        jwksUrl: ssm.StringParameter.valueForStringParameter(stack, '/platform/jwks-url'),
        issuer: text('Issuer'),
        audience: text('Audience'),
        leeway: Duration.seconds(number('Leeway')),
        maxTokenBytes: number('MaxTokenBytes'),
      },
      maxInFlight: number('MaxInFlight'),
      maxInFlightPerTenant: number('PerTenant'),
      maxRecordAge: Duration.seconds(number('MaxRecordAge')),
      trustedTenants: new CfnParameter(stack, 'Tenants', { type: 'CommaDelimitedList' }).valueAsList,
      metricsNamespace: text('Namespace'),
      invokeTimeout: Duration.millis(number('InvokeTimeout')),
      timeout: Duration.seconds(number('RouterTimeout')),
      tenantRegistry: { cacheTtl: Duration.seconds(number('RegistryTtl')), cacheSize: number('RegistrySize') },
    });
    router.addSqsSource(queue, { batchSize: number('BatchSize'), maxConcurrency: number('Concurrency') });
    router.addKinesisSource(stream, {
      startingPosition: lambda.StartingPosition.TRIM_HORIZON,
      // (CDK's own mapping check cannot take a token maxRecordAge.)
      retryAttempts: number('Retries'),
    });
    const template = Template.fromStack(stack);
    const env = template.toJSON().Resources[stack.getLogicalId(router.function.node.defaultChild as never)].Properties.Environment.Variables;
    assert.deepEqual(env.ROUTER_JWT_ISSUER, { Ref: 'Issuer' });
    assert.deepEqual(env.ROUTER_MAX_IN_FLIGHT, { Ref: 'MaxInFlight' });
    assert.deepEqual(env.ROUTER_MAX_IN_FLIGHT_PER_TENANT, { Ref: 'PerTenant' });
    assert.deepEqual(env.ROUTER_TRUSTED_TENANTS, { 'Fn::Join': [',', { Ref: 'Tenants' }] });
    assert.deepEqual(env.ROUTER_TENANT_REGISTRY_TTL_SECONDS, { Ref: 'RegistryTtl' });
    assert.match(JSON.stringify(env.ROUTER_JWKS), /SsmParameterValue/);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { BatchSize: { Ref: 'BatchSize' } });
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { MaximumRetryAttempts: { Ref: 'Retries' } });
  });
});

const contextJwt = {
  jwksUrl: 'https://issuer.example.com/jwks.json',
  jwtIssuer: 'https://issuer.example.com',
  jwtAudience: 'tenant-router',
};

describe('CDK context of the full example', () => {
  it('turns context strings (cdk deploy -c key=value) into typed stack props', () => {
    const app = newApp({
      jwksUrl: 'https://issuer.example.com/jwks.json',
      jwtIssuer: 'https://a.example.com,https://b.example.com',
      jwtAudience: 'tenant-router',
      tenantFrom: 'payload:/tenantId;dynamodb=key:pk:TENANT#',
      validation: 'jwt;dynamodb=trusted',
      maxInFlight: '16',
      maxInFlightPerTenant: '4',
      delivery: 'tenant-batch',
      batchMaxBytes: '262144',
      invocationType: 'event;sqs=event;sqs-fifo=request-response;kinesis=request-response',
      jwtAlgorithms: 'RS256,ES256',
      jwtLeewaySeconds: '30',
      maxRecordAgeSeconds: '3600',
      trustedTenants: 'acme,globex',
      metricsNamespace: 'Acme/TenantRouter',
      tenantRegistryTtlSeconds: '30',
      suspendedTenants: 'hold',
      architecture: 'arm64',
      dataRemovalPolicy: 'destroy',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
    });
    const props = stackPropsFromContext(app.node);
    assert.equal(props.routerConfig.jwt?.issuer, 'https://a.example.com,https://b.example.com');
    assert.deepEqual(props.routerConfig.tenantFrom, { all: 'payload:/tenantId', dynamodb: 'key:pk:TENANT#' });
    assert.deepEqual(props.routerConfig.validation, { all: ValidationMode.JWT, dynamodb: ValidationMode.TRUSTED });
    assert.equal(props.routerConfig.maxInFlight, 16);
    assert.equal(props.routerConfig.maxInFlightPerTenant, 4);
    assert.equal(props.routerConfig.delivery, DeliveryMode.TENANT_BATCH);
    assert.equal(props.routerConfig.batchMaxBytes, 262_144);
    assert.deepEqual(props.routerConfig.invocationType, { all: EVENT, sqs: EVENT, sqsFifo: RR, kinesis: RR });
    assert.deepEqual(props.routerConfig.jwt?.algorithms, ['RS256', 'ES256']);
    assert.equal(props.routerConfig.jwt?.leeway?.toSeconds(), 30);
    assert.equal(props.routerConfig.maxRecordAge?.toSeconds(), 3600);
    assert.deepEqual(props.routerConfig.trustedTenants, ['acme', 'globex']);
    assert.equal(props.routerConfig.metricsNamespace, 'Acme/TenantRouter');
    assert.equal(props.tenantRegistry?.cacheTtl?.toSeconds(), 30);
    assert.equal(props.tenantRegistry?.suspendedTenants, 'hold');
    assert.equal(props.architecture, lambda.Architecture.ARM_64);
    assert.equal(props.dataRemovalPolicy, RemovalPolicy.DESTROY);
    assert.equal(props.alarmTopicArn, 'arn:aws:sns:eu-west-1:123456789012:alarms');
  });

  it('accepts native JSON values from cdk.json too', () => {
    const app = newApp({ ...contextJwt, jwtAudience: ['a', 'b'], jwtAlgorithms: ['EdDSA'], maxInFlight: 8, batchMaxBytes: 65_536, placeholderAssets: false });
    const props = stackPropsFromContext(app.node);
    assert.equal(props.routerConfig.jwt?.audience, 'a,b');
    assert.deepEqual(props.routerConfig.jwt?.algorithms, ['EdDSA']);
    assert.equal(props.routerConfig.invocationType, undefined);
    assert.equal(props.routerConfig.maxInFlight, 8);
    assert.equal(props.routerConfig.batchMaxBytes, 65_536);
    assert.equal(props.routerConfig.delivery, undefined);
  });

  it('refuses a malformed algorithm list at synth, naming the variable', () => {
    const app = newApp({ placeholderAssets: 'true', ...contextJwt, jwtAlgorithms: 'RS256,,ES256' });
    assert.throws(() => new FullDeploymentStack(app, 'TenantRouter', stackPropsFromContext(app.node)), /ROUTER_JWT_ALGORITHMS: empty entry in "RS256,,ES256"/);
  });

  it('refuses malformed context values', () => {
    assert.throws(() => stackPropsFromContext(newApp({ architecture: 'x86' }).node), /context architecture: expected x86_64 or arm64/);
    assert.throws(() => stackPropsFromContext(newApp({ maxInFlight: 'many' }).node), /context maxInFlight: expected a number/);
    assert.throws(() => stackPropsFromContext(newApp({ batchMaxBytes: '1MB' }).node), /context batchMaxBytes: expected a number/);
    assert.throws(() => stackPropsFromContext(newApp({ dataRemovalPolicy: 'keep' }).node), /expected retain or destroy/);
    assert.throws(() => stackPropsFromContext(newApp({ invocationType: 'event;event' }).node), /invocationType: the value for all sources is given twice/);
    assert.throws(() => stackPropsFromContext(newApp({ placeholderAssets: 'yes' }).node), /expected true or false/);
    assert.throws(
      () => stackPropsFromContext(newApp({ placeholderAssets: 'true', routerAssetPath: '/opt/router' }).node),
      /context routerAssetPath: give either a bundle directory or placeholderAssets=true, not both/,
    );
    const app = newApp({ ...contextJwt, placeholderAssets: 'true', suspendedTenants: 'pause' });
    assert.throws(() => new FullDeploymentStack(app, 'TenantRouter', stackPropsFromContext(app.node)), /ROUTER_SUSPENDED_TENANTS: must be 'reject' or 'hold', got "pause"/);
  });

  it("refuses a context key it does not know, naming it (a typo must not deploy a default), and lets CDK's own through", () => {
    assert.throws(
      () => stackPropsFromContext(newApp({ ...contextJwt, jwksURL: 'https://typo.example.com' }).node),
      /unknown context key "jwksURL"; the full example reads jwksUrl, jwtIssuer, /,
    );
    assert.throws(() => stackPropsFromContext(newApp({ architectur: 'arm64', placeholder: 'true' }).node), /unknown context keys "architectur", "placeholder"/);
    // Feature flags (cdk.json), the CLI's keys and cached lookups are CDK's.
    stackPropsFromContext(
      newApp({
        ...contextJwt,
        'aws:cdk:enable-path-metadata': true,
        'availability-zones:account=123456789012:region=eu-west-1': ['eu-west-1a'],
        'acknowledged-issue-numbers': [32775],
      }).node,
    );
  });

  it('synthesizes placeholder code only on request (context placeholderAssets), and marks such a template undeployable', () => {
    for (const placeholderAssets of ['true', true]) {
      const app = newApp({ ...contextJwt, placeholderAssets });
      const stack = new FullDeploymentStack(app, 'TenantRouter', stackPropsFromContext(app.node));
      assert.ok(Template.fromStack(stack).toJSON().Rules[PLACEHOLDER_RULE_ID]);
    }
    // No environment variable turns placeholders on: without the context key the bundles are required.
    process.env.TENANT_ROUTER_PLACEHOLDER_ASSETS = '1';
    try {
      const app = newApp({ ...contextJwt, routerAssetPath: '/nonexistent/router', backendAssetPath: '/nonexistent/backend' });
      assert.throws(() => new FullDeploymentStack(app, 'TenantRouter', stackPropsFromContext(app.node)), /backend: \/nonexistent\/backend\/bootstrap not found/);
    } finally {
      delete process.env.TENANT_ROUTER_PLACEHOLDER_ASSETS;
    }
  });

  it('builds the same stack the app builds, with the context settings in the router environment', () => {
    const app = newApp({
      placeholderAssets: 'true',
      jwksUrl: 'https://issuer.example.com/jwks.json',
      jwtIssuer: 'https://issuer.example.com',
      jwtAudience: 'tenant-router',
      validation: 'jwt;dynamodb=trusted',
      tenantFrom: 'payload:/tenantId;dynamodb=key:pk:TENANT#',
      delivery: 'tenant-batch',
      batchMaxBytes: '4194304',
      invocationType: 'request-response;sqs=event',
      jwtAlgorithms: 'ES256,EdDSA',
      maxInFlightPerTenant: '16',
      tenantRegistryTtlSeconds: '30',
      suspendedTenants: 'hold',
    });
    const stack = new FullDeploymentStack(app, 'TenantRouter', stackPropsFromContext(app.node));
    const id = (c: { node: { defaultChild?: unknown } }) => stack.getLogicalId(c.node.defaultChild as never);
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: {
          ROUTER_JWKS: 'https://issuer.example.com/jwks.json',
          ROUTER_JWT_ISSUER: 'https://issuer.example.com',
          ROUTER_JWT_AUDIENCE: 'tenant-router',
          ROUTER_VALIDATION: 'jwt;dynamodb=trusted',
          ROUTER_TENANT_FROM: 'payload:/tenantId;dynamodb=key:pk:TENANT#',
          ROUTER_DELIVERY: 'tenant-batch',
          ROUTER_BATCH_MAX_BYTES: '4194304',
          ROUTER_INVOCATION_TYPE: 'request-response;sqs=event',
          ROUTER_INVOKE_TIMEOUT_MS: '31000',
          ROUTER_JWT_ALGORITHMS: 'ES256,EdDSA',
          ROUTER_MAX_IN_FLIGHT_PER_TENANT: '16',
          ROUTER_TENANT_REGISTRY_TABLE: { Ref: id(stack.router.tenantRegistryTable!) },
          ROUTER_TENANT_REGISTRY_TTL_SECONDS: '30',
          ROUTER_SUSPENDED_TENANTS: 'hold',
          ROUTER_QUARANTINE_BUCKET: { Ref: id(stack.router.quarantineBucket) },
          ROUTER_BACKEND_FUNCTION: { 'Fn::GetAtt': [id(stack.backend.function), 'Arn'] },
          ROUTER_QUARANTINE_QUEUE_URL: { Ref: id(stack.router.quarantineQueue) },
        },
      },
    });
  });

  it('defaults the bundles to target/lambda/<name> at the repository root', () => {
    const root = repositoryRoot();
    assert.ok(fs.existsSync(path.join(root, 'Cargo.toml')));
    assert.equal(defaultBundleDirectory('router'), path.join(root, 'target', 'lambda', 'router'));
    assert.equal(defaultBundleDirectory('backend'), path.join(root, 'target', 'lambda', 'backend'));
  });
});
