import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Node } from 'constructs';
import { stagePlaceholderAssets } from './assets';
import { checkIdempotencyTtlSeconds } from './idempotency-table';
import { DeliveryMode, JwtAlgorithm, parseInvocationTypes, parsePerSource, RouterConfig, ValidationMode } from './router-config';
import { TenantRouterStackProps } from './tenant-router-stack';

/**
 * The CDK context keys the app reads (`cdk deploy -c key=value`, or `context` in cdk.json).
 * Values given with `-c` arrive as strings; cdk.json may hold numbers, booleans and arrays.
 */
export const CONTEXT_KEYS = [
  'jwksUrl',
  'jwtIssuer',
  'jwtAudience',
  'tenantFrom',
  'tokenFrom',
  'validation',
  'tenantClaim',
  'jwtTyp',
  'jwtAlgorithms',
  'jwtLeewaySeconds',
  'maxRecordAgeSeconds',
  'maxInFlight',
  'invocationType',
  'delivery',
  'batchMaxBytes',
  'trustedTenants',
  'metricsNamespace',
  'idempotencyTtlSeconds',
  'architecture',
  'routerAssetPath',
  'backendAssetPath',
  'placeholderAssets',
  'dataRemovalPolicy',
  'alarmTopicArn',
] as const;

type ContextKey = (typeof CONTEXT_KEYS)[number];

/**
 * Reads the stack's props from CDK context. Placeholder bundles are staged when the context
 * key `placeholderAssets` is true or the environment variable `TENANT_ROUTER_PLACEHOLDER_ASSETS`
 * is `1`: synthesis then needs no Rust build (never deploy such a template).
 */
export function stackPropsFromContext(node: Node, env: NodeJS.ProcessEnv = process.env): TenantRouterStackProps {
  const get = (key: ContextKey): unknown => node.tryGetContext(key);

  const routerConfig: RouterConfig = {
    jwksUrl: str(get('jwksUrl')),
    jwtIssuers: strList(get('jwtIssuer')),
    jwtAudiences: strList(get('jwtAudience')),
    tenantFrom: perSource('tenantFrom', get('tenantFrom')),
    tokenFrom: perSource('tokenFrom', get('tokenFrom')),
    validation: perSource<ValidationMode>('validation', get('validation')),
    tenantClaim: str(get('tenantClaim')),
    jwtTyp: str(get('jwtTyp')),
    jwtAlgorithms: strList(get('jwtAlgorithms')) as JwtAlgorithm[] | undefined,
    jwtLeeway: seconds('jwtLeewaySeconds', get('jwtLeewaySeconds')),
    maxRecordAge: seconds('maxRecordAgeSeconds', get('maxRecordAgeSeconds')),
    maxInFlight: num('maxInFlight', get('maxInFlight')),
    invocationType: invocationTypes(get('invocationType')),
    delivery: str(get('delivery')) as DeliveryMode | undefined,
    batchMaxBytes: num('batchMaxBytes', get('batchMaxBytes')),
    trustedTenants: strList(get('trustedTenants')),
    metricsNamespace: str(get('metricsNamespace')),
  };

  const placeholders = bool('placeholderAssets', get('placeholderAssets')) || env.TENANT_ROUTER_PLACEHOLDER_ASSETS === '1';
  const staged = placeholders ? stagePlaceholderAssets() : undefined;

  return {
    routerConfig,
    architecture: architecture(get('architecture')),
    routerAssetPath: staged?.router ?? str(get('routerAssetPath')),
    backendAssetPath: staged?.backend ?? str(get('backendAssetPath')),
    backendIdempotencyTtl: idempotencyTtl(get('idempotencyTtlSeconds')),
    dataRemovalPolicy: removalPolicy(get('dataRemovalPolicy')),
    alarmTopicArn: str(get('alarmTopicArn')),
  };
}

function str(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') {
    return undefined;
  }
  return String(value);
}

function strList(value: unknown): string[] | undefined {
  if (Array.isArray(value)) {
    return value.map(String);
  }
  const text = str(value);
  return text === undefined ? undefined : text.split(',');
}

function num(key: string, value: unknown): number | undefined {
  const text = str(value);
  if (text === undefined) {
    return undefined;
  }
  const parsed = Number(text);
  if (!Number.isFinite(parsed)) {
    throw new Error(`context ${key}: expected a number, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

function seconds(key: string, value: unknown): Duration | undefined {
  const parsed = num(key, value);
  return parsed === undefined ? undefined : Duration.seconds(parsed);
}

/** `BACKEND_IDEMPOTENCY_TTL_SECONDS`, checked before it becomes a Duration (which refuses negatives unnamed). */
function idempotencyTtl(value: unknown): Duration | undefined {
  const parsed = num('idempotencyTtlSeconds', value);
  if (parsed === undefined) {
    return undefined;
  }
  checkIdempotencyTtlSeconds(parsed);
  return Duration.seconds(parsed);
}

function bool(key: string, value: unknown): boolean {
  if (value === undefined || value === null || value === false || value === 'false' || value === '') {
    return false;
  }
  if (value === true || value === 'true') {
    return true;
  }
  throw new Error(`context ${key}: expected true or false, got ${JSON.stringify(value)}`);
}

function perSource<T extends string>(key: string, value: unknown) {
  const text = str(value);
  return text === undefined ? undefined : parsePerSource<T>(key, text);
}

function invocationTypes(value: unknown) {
  const text = str(value);
  return text === undefined ? undefined : parseInvocationTypes('invocationType', text);
}

function architecture(value: unknown): lambda.Architecture | undefined {
  switch (str(value)) {
    case undefined:
      return undefined;
    case 'x86_64':
      return lambda.Architecture.X86_64;
    case 'arm64':
      return lambda.Architecture.ARM_64;
    default:
      throw new Error(`context architecture: expected x86_64 or arm64, got ${JSON.stringify(value)}`);
  }
}

function removalPolicy(value: unknown): RemovalPolicy | undefined {
  switch (str(value)) {
    case undefined:
      return undefined;
    case 'retain':
      return RemovalPolicy.RETAIN;
    case 'destroy':
      return RemovalPolicy.DESTROY;
    default:
      throw new Error(`context dataRemovalPolicy: expected retain or destroy, got ${JSON.stringify(value)}`);
  }
}
