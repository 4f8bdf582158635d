import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CfnParameter, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { defaultAssetPath, repositoryRoot } from '../lib/assets';
import { stackPropsFromContext } from '../lib/context';
import {
  ASYNC_INVOKE_PAYLOAD_LIMIT,
  INVOCATION_TYPE_KEYS,
  InvocationType,
  invocationTypeOf,
  InvocationTypes,
  invokePayloadLimit,
  JWT_ALGORITHMS,
  JwtAlgorithm,
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
import { TenantRouterStack } from '../lib/tenant-router-stack';
import { newApp, ROUTER_CONFIG } from './helpers';

describe('router configuration', () => {
  it('maps every typed setting to its ROUTER_* variable', () => {
    assert.deepEqual(
      routerEnvironment({
        jwksUrl: 'https://issuer.example.com/.well-known/jwks.json',
        jwtIssuers: ['https://issuer.example.com', 'https://old-issuer.example.com'],
        jwtAudiences: ['tenant-router', 'orders'],
        tenantFrom: { default: 'payload:/tenantId', sqs: 'message-group-id', dynamodb: 'key:pk:TENANT#' },
        tokenFrom: { default: 'payload:/tenantToken', sqs: 'attribute:tenantToken' },
        validation: { default: 'jwt', dynamodb: 'trusted' },
        tenantClaim: 'tid',
        jwtLeeway: Duration.seconds(30),
        jwtTyp: 'tenant+jwt',
        jwtAlgorithms: ['RS256', 'EdDSA'],
        jwtMaxTokenBytes: 4096,
        jwtCacheSize: 0,
        jwksRefreshCooldown: Duration.minutes(2),
        jwksMaxAge: Duration.minutes(15),
        trustedTenants: ['acme', 'globex corp'],
        maxRecordAge: Duration.days(1),
        maxInFlight: 32,
        invocationType: { default: 'event', sqsFifo: 'request-response', kinesis: 'request-response' },
        delivery: 'tenant-batch',
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
    assert.deepEqual(routerEnvironment({ ...ROUTER_CONFIG, delivery: 'record' }), {
      ...routerEnvironment(ROUTER_CONFIG),
      ROUTER_DELIVERY: 'record',
    });
    assert.deepEqual(routerEnvironment({ ...ROUTER_CONFIG, delivery: 'tenant-batch' }), {
      ...routerEnvironment(ROUTER_CONFIG),
      ROUTER_DELIVERY: 'tenant-batch',
    });
    for (const bytes of [1, 65_536, ASYNC_INVOKE_PAYLOAD_LIMIT]) {
      const env = routerEnvironment({ ...ROUTER_CONFIG, delivery: 'tenant-batch', batchMaxBytes: bytes });
      assert.equal(env.ROUTER_DELIVERY, 'tenant-batch');
      assert.equal(env.ROUTER_BATCH_MAX_BYTES, String(bytes));
    }
    assert.equal(ASYNC_INVOKE_PAYLOAD_LIMIT, 1_048_576);
  });

  it('needs no JWKS, issuer or audience when every source is trusted', () => {
    assert.deepEqual(routerEnvironment({ validation: { default: 'trusted' }, trustedTenants: ['acme'] }), {
      ROUTER_VALIDATION: 'trusted',
      ROUTER_TRUSTED_TENANTS: 'acme',
    });
    assert.equal(usesJwt({ default: 'trusted' }), false);
    assert.equal(usesJwt({ default: 'trusted', kinesis: 'jwt' }), true);
    assert.equal(usesJwt(undefined), true);
  });

  it('refuses what the router would refuse, naming the variable, at synth time', () => {
    const cases: [Parameters<typeof routerEnvironment>[0], RegExp][] = [
      [{ ...ROUTER_CONFIG, jwksUrl: undefined }, /ROUTER_JWKS: jwksUrl is required/],
      [{ ...ROUTER_CONFIG, jwksUrl: 'http://issuer.example.com/jwks.json' }, /ROUTER_JWKS: jwksUrl must be an https URL/],
      [{ ...ROUTER_CONFIG, jwksUrl: 'file:///var/task/jwks.json' }, /ROUTER_JWKS: jwksUrl must be an https URL/],
      [{ ...ROUTER_CONFIG, jwksUrl: '{"keys":[]}' }, /ROUTER_JWKS: jwksUrl must be an https URL/],
      [{ ...ROUTER_CONFIG, jwksUrl: 'https://user:secret@issuer.example.com/jwks.json' }, /ROUTER_JWKS: jwksUrl must not carry credentials/],
      [{ ...ROUTER_CONFIG, jwtIssuers: [] }, /ROUTER_JWT_ISSUER: at least one value/],
      [{ ...ROUTER_CONFIG, jwtAudiences: undefined }, /ROUTER_JWT_AUDIENCE: at least one value/],
      [{ ...ROUTER_CONFIG, jwtAudiences: ['a,b'] }, /ROUTER_JWT_AUDIENCE: "a,b" must be non-empty, without commas/],
      [{ ...ROUTER_CONFIG, validation: { default: 'none' as 'jwt' } }, /ROUTER_VALIDATION: default must be 'jwt' or 'trusted'/],
      [{ ...ROUTER_CONFIG, tenantFrom: { sqs: 'a;b' } }, /ROUTER_TENANT_FROM: a value must be non-empty and contain no ';'/],
      [{ ...ROUTER_CONFIG, tenantFrom: {} }, /ROUTER_TENANT_FROM: give a default or at least one per-source value/],
      [{ ...ROUTER_CONFIG, trustedTenants: ['acme#1'] }, /ROUTER_TRUSTED_TENANTS: "acme#1" is not a valid tenant id/],
      [{ ...ROUTER_CONFIG, trustedTenants: ['x'.repeat(257)] }, /ROUTER_TRUSTED_TENANTS/],
      [{ ...ROUTER_CONFIG, maxInFlight: 0 }, /ROUTER_MAX_IN_FLIGHT: must be an integer >= 1/],
      [{ ...ROUTER_CONFIG, maxInFlight: 1.5 }, /ROUTER_MAX_IN_FLIGHT/],
      [{ ...ROUTER_CONFIG, maxRecordAge: Duration.seconds(0) }, /ROUTER_MAX_RECORD_AGE_SECONDS: must be an integer >= 1/],
      [{ ...ROUTER_CONFIG, delivery: 'batch' as 'record' }, /ROUTER_DELIVERY: delivery must be 'record' or 'tenant-batch', got "batch"/],
      [{ ...ROUTER_CONFIG, batchMaxBytes: 65_536 }, /ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'/],
      [{ ...ROUTER_CONFIG, delivery: 'record', batchMaxBytes: 65_536 }, /ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'/],
      [{ ...ROUTER_CONFIG, delivery: 'tenant-batch', batchMaxBytes: 0 }, /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576, got 0/],
      [{ ...ROUTER_CONFIG, delivery: 'tenant-batch', batchMaxBytes: 1_048_577 }, /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576, got 1048577/],
      [{ ...ROUTER_CONFIG, invocationType: { default: 'sync' as 'event' } }, /ROUTER_INVOCATION_TYPE: default must be 'event' or 'request-response', got "sync"/],
      [{ ...ROUTER_CONFIG, jwtAlgorithms: ['HS256' as 'RS256'] }, /ROUTER_JWT_ALGORITHMS: "HS256" is not one of/],
      [{ ...ROUTER_CONFIG, delivery: 'tenant-batch', batchMaxBytes: 1024.5 }, /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576/],
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
    assert.deepEqual(parsed, { default: 'payload:/tenantId', sqs: 'attribute:tenant', dynamodb: 'key:pk:TENANT#' });
    assert.equal(renderPerSource('ROUTER_TENANT_FROM', parsed), text);
    assert.deepEqual(parsePerSource('ROUTER_TENANT_FROM', 'kinesis=partition-key'), { kinesis: 'partition-key' });
    assert.throws(() => parsePerSource('ROUTER_VALIDATION', 'jwt;;trusted'), /empty entry/);
    assert.throws(() => parsePerSource('ROUTER_VALIDATION', 'jwt;trusted'), /default is given twice/);
  });
});

describe('invocation type (ROUTER_INVOCATION_TYPE)', () => {
  it('renders the per-source syntax, sqs-fifo right after sqs, and parses it back', () => {
    const setting: InvocationTypes = {
      default: 'event',
      sqs: 'event',
      sqsFifo: 'request-response',
      kinesis: 'request-response',
      dynamodb: 'request-response',
      eventbridge: 'event',
    };
    const text = 'event;sqs=event;sqs-fifo=request-response;kinesis=request-response;dynamodb=request-response;eventbridge=event';
    assert.equal(routerEnvironment({ ...ROUTER_CONFIG, invocationType: setting }).ROUTER_INVOCATION_TYPE, text);
    assert.equal(renderInvocationTypes('ROUTER_INVOCATION_TYPE', setting), text);
    assert.deepEqual(parseInvocationTypes('invocationType', text), setting);
    assert.deepEqual(parseInvocationTypes('invocationType', 'sqs-fifo=request-response'), { sqsFifo: 'request-response' });
    assert.deepEqual(routerEnvironment({ ...ROUTER_CONFIG, invocationType: { default: 'request-response' } }).ROUTER_INVOCATION_TYPE, 'request-response');
    // sqs-fifo is a key of this variable only
    assert.throws(() => parsePerSource('ROUTER_VALIDATION', 'jwt;sqs-fifo=trusted'), /ROUTER_VALIDATION: default is given twice/);
  });

  it('leaves the variable unset (router default event) unless given', () => {
    assert.equal(routerEnvironment(ROUTER_CONFIG).ROUTER_INVOCATION_TYPE, undefined);
    for (const key of INVOCATION_TYPE_KEYS) {
      assert.equal(invocationTypeOf(undefined, key), 'event');
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
      sqs: 'event',
      'sqs-fifo': 'request-response',
      kinesis: 'request-response',
      dynamodb: 'request-response',
      eventbridge: 'event',
    });
  });

  it('resolves FIFO queues through sqs-fifo, then sqs, then the default; the other sources through their own key', () => {
    const cases: [InvocationTypes, { [key: string]: InvocationType }][] = [
      [{ sqs: 'request-response' }, { sqs: 'request-response', 'sqs-fifo': 'request-response', kinesis: 'event', eventbridge: 'event' }],
      [{ sqs: 'request-response', sqsFifo: 'event' }, { sqs: 'request-response', 'sqs-fifo': 'event', kinesis: 'event' }],
      [{ sqsFifo: 'request-response' }, { sqs: 'event', 'sqs-fifo': 'request-response', dynamodb: 'event' }],
      [{ default: 'request-response', sqsFifo: 'event' }, { sqs: 'request-response', 'sqs-fifo': 'event', eventbridge: 'request-response' }],
    ];
    for (const [setting, expected] of cases) {
      for (const [key, type] of Object.entries(expected)) {
        assert.equal(invocationTypeOf(setting, key as (typeof INVOCATION_TYPE_KEYS)[number]), type, `${JSON.stringify(setting)} ${key}`);
      }
      assert.equal(usesRequestResponse(setting), true);
    }
    assert.equal(usesRequestResponse({ default: 'event', sqs: 'event' }), false);
  });

  it('refuses unknown values and malformed entries, naming the variable', () => {
    const cases: [InvocationTypes, RegExp][] = [
      [{ default: 'sync' as 'event' }, /ROUTER_INVOCATION_TYPE: default must be 'event' or 'request-response', got "sync"/],
      [{ sqsFifo: 'RequestResponse' as 'event' }, /ROUTER_INVOCATION_TYPE: sqs-fifo must be 'event' or 'request-response', got "RequestResponse"/],
      [{ kinesis: '' as 'event' }, /ROUTER_INVOCATION_TYPE: kinesis must be 'event' or 'request-response', got ""/],
      [{}, /ROUTER_INVOCATION_TYPE: give a default or at least one per-source value/],
    ];
    for (const [invocationType, error] of cases) {
      assert.throws(() => routerEnvironment({ ...ROUTER_CONFIG, invocationType }), error);
    }
    assert.throws(() => parseInvocationTypes('invocationType', 'event;;kinesis=request-response'), /invocationType: empty entry/);
    assert.throws(() => parseInvocationTypes('invocationType', 'sqs-fifo=event;sqs-fifo=request-response'), /invocationType: sqs-fifo is given twice/);
    // an unknown key is read as a default value, which the router would refuse too
    assert.throws(
      () => routerEnvironment({ ...ROUTER_CONFIG, invocationType: parseInvocationTypes('invocationType', 'fifo=request-response') }),
      /ROUTER_INVOCATION_TYPE: default must be 'event' or 'request-response', got "fifo=request-response"/,
    );
  });

  it('bounds ROUTER_BATCH_MAX_BYTES by the async limit while every source uses event, by the sync limit (6 MiB) once one uses request-response', () => {
    assert.equal(SYNC_INVOKE_PAYLOAD_LIMIT, 6 * 1024 * 1024);
    assert.equal(invokePayloadLimit(undefined), ASYNC_INVOKE_PAYLOAD_LIMIT);
    assert.equal(invokePayloadLimit({ default: 'event' }), ASYNC_INVOKE_PAYLOAD_LIMIT);
    assert.equal(invokePayloadLimit({ sqsFifo: 'request-response' }), SYNC_INVOKE_PAYLOAD_LIMIT);
    const batch = (invocationType: InvocationTypes | undefined, batchMaxBytes: number) =>
      routerEnvironment({ ...ROUTER_CONFIG, delivery: 'tenant-batch', invocationType, batchMaxBytes }).ROUTER_BATCH_MAX_BYTES;

    assert.equal(batch({ default: 'event' }, ASYNC_INVOKE_PAYLOAD_LIMIT), '1048576');
    assert.throws(
      () => batch({ default: 'event' }, ASYNC_INVOKE_PAYLOAD_LIMIT + 1),
      /ROUTER_BATCH_MAX_BYTES: must be an integer from 1 to 1048576, got 1048577 \(the async Invoke payload limit; 6291456 once a source uses request-response\)/,
    );
    for (const rr of [RECOMMENDED_INVOCATION_TYPES, { default: 'request-response' }, { sqs: 'request-response' }] as InvocationTypes[]) {
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
    assert.equal(routerEnvironment({ ...ROUTER_CONFIG, jwtAlgorithms: ['ES256'] }).ROUTER_JWT_ALGORITHMS, 'ES256');
    assert.equal(
      routerEnvironment({ ...ROUTER_CONFIG, jwtAlgorithms: JWT_ALGORITHMS }).ROUTER_JWT_ALGORITHMS,
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
      assert.throws(() => routerEnvironment({ ...ROUTER_CONFIG, jwtAlgorithms: jwtAlgorithms as JwtAlgorithm[] }), error);
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
      delivery: 'tenant-batch',
      batchMaxBytes: bytes,
      invocationType: { default: 'event', kinesis: type },
      jwtAlgorithms: ['RS256', algorithm],
    });
    assert.deepEqual(stack.resolve(env.ROUTER_BATCH_MAX_BYTES), { Ref: 'BatchMaxBytes' });
    assert.deepEqual(stack.resolve(env.ROUTER_INVOCATION_TYPE), { 'Fn::Join': ['', ['event;kinesis=', { Ref: 'InvocationType' }]] });
    assert.deepEqual(stack.resolve(env.ROUTER_JWT_ALGORITHMS), { 'Fn::Join': ['', ['RS256,', { Ref: 'Algorithm' }]] });
    assert.deepEqual(stack.resolve(routerEnvironment({ ...ROUTER_CONFIG, jwtAlgorithms: algorithms }).ROUTER_JWT_ALGORITHMS), {
      'Fn::Join': [',', { Ref: 'Algorithms' }],
    });
    assert.equal(usesRequestResponse({ default: 'event', kinesis: type }), true);
  });
});

const contextJwt = {
  jwksUrl: 'https://issuer.example.com/jwks.json',
  jwtIssuer: 'https://issuer.example.com',
  jwtAudience: 'tenant-router',
};

describe('CDK context', () => {
  it('turns context strings (cdk deploy -c key=value) into typed stack props', () => {
    const app = newApp({
      jwksUrl: 'https://issuer.example.com/jwks.json',
      jwtIssuer: 'https://a.example.com,https://b.example.com',
      jwtAudience: 'tenant-router',
      tenantFrom: 'payload:/tenantId;dynamodb=key:pk:TENANT#',
      validation: 'jwt;dynamodb=trusted',
      maxInFlight: '16',
      delivery: 'tenant-batch',
      batchMaxBytes: '262144',
      invocationType: 'event;sqs=event;sqs-fifo=request-response;kinesis=request-response',
      jwtAlgorithms: 'RS256,ES256',
      jwtLeewaySeconds: '30',
      maxRecordAgeSeconds: '3600',
      trustedTenants: 'acme,globex',
      metricsNamespace: 'Acme/TenantRouter',
      architecture: 'arm64',
      dataRemovalPolicy: 'destroy',
      alarmTopicArn: 'arn:aws:sns:eu-west-1:123456789012:alarms',
      routerAssetPath: '/opt/router',
      backendAssetPath: '/opt/backend',
    });
    const props = stackPropsFromContext(app.node, {});
    assert.deepEqual(props.routerConfig.jwtIssuers, ['https://a.example.com', 'https://b.example.com']);
    assert.deepEqual(props.routerConfig.tenantFrom, { default: 'payload:/tenantId', dynamodb: 'key:pk:TENANT#' });
    assert.deepEqual(props.routerConfig.validation, { default: 'jwt', dynamodb: 'trusted' });
    assert.equal(props.routerConfig.maxInFlight, 16);
    assert.equal(props.routerConfig.delivery, 'tenant-batch');
    assert.equal(props.routerConfig.batchMaxBytes, 262_144);
    assert.deepEqual(props.routerConfig.invocationType, {
      default: 'event',
      sqs: 'event',
      sqsFifo: 'request-response',
      kinesis: 'request-response',
    });
    assert.deepEqual(props.routerConfig.jwtAlgorithms, ['RS256', 'ES256']);
    assert.equal(props.routerConfig.jwtLeeway?.toSeconds(), 30);
    assert.equal(props.routerConfig.maxRecordAge?.toSeconds(), 3600);
    assert.deepEqual(props.routerConfig.trustedTenants, ['acme', 'globex']);
    assert.equal(props.routerConfig.metricsNamespace, 'Acme/TenantRouter');
    assert.equal(props.architecture, lambda.Architecture.ARM_64);
    assert.equal(props.dataRemovalPolicy, RemovalPolicy.DESTROY);
    assert.equal(props.alarmTopicArn, 'arn:aws:sns:eu-west-1:123456789012:alarms');
    assert.equal(props.routerAssetPath, '/opt/router');
    assert.equal(props.backendAssetPath, '/opt/backend');
  });

  it('accepts native JSON values from cdk.json too', () => {
    const app = newApp({ jwtAudience: ['a', 'b'], jwtAlgorithms: ['EdDSA'], maxInFlight: 8, batchMaxBytes: 65_536, placeholderAssets: false });
    const props = stackPropsFromContext(app.node, {});
    assert.deepEqual(props.routerConfig.jwtAudiences, ['a', 'b']);
    assert.deepEqual(props.routerConfig.jwtAlgorithms, ['EdDSA']);
    assert.equal(props.routerConfig.invocationType, undefined);
    assert.equal(props.routerConfig.maxInFlight, 8);
    assert.equal(props.routerConfig.batchMaxBytes, 65_536);
    assert.equal(props.routerConfig.delivery, undefined);
    assert.equal(props.routerAssetPath, undefined);
  });

  it('refuses a malformed algorithm list at synth, naming the variable', () => {
    const app = newApp({ placeholderAssets: 'true', ...contextJwt, jwtAlgorithms: 'RS256,,ES256' });
    assert.throws(() => new TenantRouterStack(app, 'TenantRouter', stackPropsFromContext(app.node, {})), /ROUTER_JWT_ALGORITHMS: empty entry in "RS256,,ES256"/);
  });

  it('refuses malformed context values', () => {
    assert.throws(() => stackPropsFromContext(newApp({ architecture: 'x86' }).node, {}), /context architecture: expected x86_64 or arm64/);
    assert.throws(() => stackPropsFromContext(newApp({ maxInFlight: 'many' }).node, {}), /context maxInFlight: expected a number/);
    assert.throws(() => stackPropsFromContext(newApp({ batchMaxBytes: '1MB' }).node, {}), /context batchMaxBytes: expected a number/);
    assert.throws(() => stackPropsFromContext(newApp({ dataRemovalPolicy: 'keep' }).node, {}), /expected retain or destroy/);
    assert.throws(() => stackPropsFromContext(newApp({ invocationType: 'event;event' }).node, {}), /invocationType: default is given twice/);
    assert.throws(() => stackPropsFromContext(newApp({ placeholderAssets: 'yes' }).node, {}), /expected true or false/);
  });

  it('stages placeholder bundles on request (context flag or environment variable), so synth needs no Rust build', () => {
    for (const [context, env] of [
      [{ placeholderAssets: 'true' }, {}],
      [{}, { TENANT_ROUTER_PLACEHOLDER_ASSETS: '1' }],
    ] as const) {
      const props = stackPropsFromContext(newApp(context).node, env);
      assert.ok(props.routerAssetPath && fs.existsSync(path.join(props.routerAssetPath, 'bootstrap')));
      assert.ok(props.backendAssetPath && fs.existsSync(path.join(props.backendAssetPath, 'bootstrap')));
      assert.ok(fs.existsSync(path.join(props.backendAssetPath, 'tenants')));
      assert.match(fs.readFileSync(path.join(props.routerAssetPath, 'bootstrap'), 'utf8'), /placeholder bootstrap/);
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
    });
    const stack = new TenantRouterStack(app, 'TenantRouter', stackPropsFromContext(app.node, {}));
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
          ROUTER_QUARANTINE_BUCKET: { Ref: stack.getLogicalId(stack.quarantineBucket.node.defaultChild as never) },
          ROUTER_BACKEND_FUNCTION: { 'Fn::GetAtt': [stack.getLogicalId(stack.backend.function.node.defaultChild as never), 'Arn'] },
          ROUTER_QUARANTINE_QUEUE_URL: { Ref: stack.getLogicalId(stack.quarantine.node.defaultChild as never) },
        },
      },
    });
  });

  it('defaults the bundles to target/lambda/<name> at the repository root', () => {
    const root = repositoryRoot();
    assert.ok(fs.existsSync(path.join(root, 'Cargo.toml')));
    assert.equal(defaultAssetPath('router'), path.join(root, 'target', 'lambda', 'router'));
    assert.equal(defaultAssetPath('backend'), path.join(root, 'target', 'lambda', 'backend'));
  });
});
