// The full example's CDK context (`cdk deploy -c key=value`, or `context` in cdk.json): the keys
// it reads, their parsing into `FullDeploymentProps`, and the refusal of any key it does not know
// (a typo must not silently deploy a default). Values given with `-c` arrive as strings;
// cdk.json may hold numbers, booleans and arrays.
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Node } from 'constructs';
import { DeliveryMode, JwtAlgorithm, JwtOptions, RouterConfig, RustCode, SuspendedTenants, ValidationModes } from '../../lib';
import { MIN_IDEMPOTENCY_TTL } from '../../lib/idempotency-table';
import { integer, parseInvocationTypes, parsePerSource } from '../../lib/router-config';
import { checkContextKeys, contextArchitecture } from '../context-keys';
import { FullDeploymentProps } from './stack';

/** The context keys the full example reads. */
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
  'maxInFlightPerTenant',
  'invocationType',
  'delivery',
  'batchMaxBytes',
  'trustedTenants',
  'metricsNamespace',
  'idempotencyTtlSeconds',
  'tenantRegistryTtlSeconds',
  'suspendedTenants',
  'architecture',
  'routerAssetPath',
  'backendAssetPath',
  'placeholderAssets',
  'dataRemovalPolicy',
  'alarmTopicArn',
] as const;

type ContextKey = (typeof CONTEXT_KEYS)[number];

/**
 * Reads the stack's props from CDK context, after refusing unknown keys. `placeholderAssets=true`
 * synthesizes placeholder bundles (no Rust build needed); such a template cannot be deployed
 * (its Rule fails every create and update).
 */
export function stackPropsFromContext(node: Node): FullDeploymentProps {
  checkContextKeys(node, CONTEXT_KEYS, 'the full example');
  const get = (key: ContextKey): unknown => node.tryGetContext(key);

  const jwtGiven = ['jwksUrl', 'jwtIssuer', 'jwtAudience', 'tenantClaim', 'jwtTyp', 'jwtAlgorithms', 'jwtLeewaySeconds'].some(
    (key) => str(get(key as ContextKey)) !== undefined,
  );
  const jwt: JwtOptions | undefined = jwtGiven
    ? {
        jwksUrl: str(get('jwksUrl')) ?? '',
        issuer: strList(get('jwtIssuer'))?.join(',') ?? '',
        audience: strList(get('jwtAudience'))?.join(',') ?? '',
        tenantClaim: str(get('tenantClaim')),
        typ: str(get('jwtTyp')),
        algorithms: strList(get('jwtAlgorithms')) as JwtAlgorithm[] | undefined,
        leeway: seconds('jwtLeewaySeconds', get('jwtLeewaySeconds')),
      }
    : undefined;

  const routerConfig: RouterConfig = {
    jwt,
    tenantFrom: perSource('tenantFrom', get('tenantFrom')),
    tokenFrom: perSource('tokenFrom', get('tokenFrom')),
    validation: perSource('validation', get('validation')) as ValidationModes | undefined,
    maxRecordAge: seconds('maxRecordAgeSeconds', get('maxRecordAgeSeconds')),
    maxInFlight: num('maxInFlight', get('maxInFlight')),
    maxInFlightPerTenant: num('maxInFlightPerTenant', get('maxInFlightPerTenant')),
    invocationType: invocationTypes(get('invocationType')),
    delivery: str(get('delivery')) as DeliveryMode | undefined,
    batchMaxBytes: num('batchMaxBytes', get('batchMaxBytes')),
    trustedTenants: strList(get('trustedTenants')),
    metricsNamespace: str(get('metricsNamespace')),
  };

  const placeholders = bool('placeholderAssets', get('placeholderAssets'));
  const bundle = (key: 'routerAssetPath' | 'backendAssetPath') => {
    const dir = str(get(key));
    if (placeholders && dir !== undefined) {
      throw new Error(`context ${key}: give either a bundle directory or placeholderAssets=true, not both`);
    }
    return placeholders ? RustCode.placeholder() : RustCode.fromBundle(dir);
  };

  return {
    routerConfig,
    architecture: contextArchitecture(get('architecture')),
    routerCode: bundle('routerAssetPath'),
    backendCode: bundle('backendAssetPath'),
    backendIdempotencyTtl: idempotencyTtl(get('idempotencyTtlSeconds')),
    tenantRegistry: {
      cacheTtl: seconds('tenantRegistryTtlSeconds', get('tenantRegistryTtlSeconds')),
      suspendedTenants: str(get('suspendedTenants')) as SuspendedTenants | undefined,
    },
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
  integer('BACKEND_IDEMPOTENCY_TTL_SECONDS', parsed, MIN_IDEMPOTENCY_TTL.toSeconds(), undefined,
    "context idempotencyTtlSeconds: at least Lambda's longest timeout, which the backend refuses less than at start");
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

function perSource(key: string, value: unknown) {
  const text = str(value);
  return text === undefined ? undefined : parsePerSource(key, text);
}

function invocationTypes(value: unknown) {
  const text = str(value);
  return text === undefined ? undefined : parseInvocationTypes('invocationType', text);
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
