import { Duration } from 'aws-cdk-lib';

/** The event sources the router recognises; per-source settings are keyed by them. */
export const EVENT_SOURCE_NAMES = ['sqs', 'kinesis', 'dynamodb', 'eventbridge'] as const;
export type EventSourceName = (typeof EVENT_SOURCE_NAMES)[number];

/** How a source's records prove their tenant (`ROUTER_VALIDATION`). */
export type ValidationMode = 'jwt' | 'trusted';

/** How the router delivers records to the backend (`ROUTER_DELIVERY`). */
export type DeliveryMode = 'record' | 'tenant-batch';

/** The async Invoke payload limit (1 MB): the router's default and maximum `ROUTER_BATCH_MAX_BYTES`. */
export const ASYNC_INVOKE_PAYLOAD_LIMIT = 1_048_576;

/**
 * A setting with one default and optional per-source overrides, rendered in the router's
 * `default;sqs=…;dynamodb=…` syntax (README, "Per-source settings").
 */
export interface PerSource<T extends string> {
  readonly default?: T;
  readonly sqs?: T;
  readonly kinesis?: T;
  readonly dynamodb?: T;
  readonly eventbridge?: T;
}

/**
 * The router's configuration, typed. Every field maps to one `ROUTER_*` variable of the
 * README's configuration reference; `ROUTER_BACKEND_FUNCTION` and `ROUTER_QUARANTINE_QUEUE_URL`
 * are wired by the stack itself. Nothing here is a secret: the JWKS is a set of public keys
 * fetched from an https URL, so the router's environment holds no credential.
 */
export interface RouterConfig {
  /** `ROUTER_JWKS`: https URL of the platform's public JWKS. Required when a source uses `jwt`. */
  readonly jwksUrl?: string;
  /** `ROUTER_JWT_ISSUER`: accepted `iss` values. Required when a source uses `jwt`. */
  readonly jwtIssuers?: readonly string[];
  /** `ROUTER_JWT_AUDIENCE`: accepted `aud` values. Required when a source uses `jwt`. */
  readonly jwtAudiences?: readonly string[];
  /** `ROUTER_TENANT_FROM` (router default `payload:/tenantId`). */
  readonly tenantFrom?: PerSource<string>;
  /** `ROUTER_TOKEN_FROM` (router default `payload:/tenantToken`). */
  readonly tokenFrom?: PerSource<string>;
  /** `ROUTER_VALIDATION` (router default `jwt`). */
  readonly validation?: PerSource<ValidationMode>;
  /** `ROUTER_TENANT_CLAIM` (router default `tenant_id`). */
  readonly tenantClaim?: string;
  /** `ROUTER_JWT_LEEWAY_SECONDS` (router default 60 s). */
  readonly jwtLeeway?: Duration;
  /** `ROUTER_JWT_TYP`: required `typ` header, e.g. `tenant+jwt`. */
  readonly jwtTyp?: string;
  /** `ROUTER_JWT_MAX_TOKEN_BYTES` (router default 8192). */
  readonly jwtMaxTokenBytes?: number;
  /** `ROUTER_JWT_CACHE_SIZE` (router default 10000; 0 turns the cache off). */
  readonly jwtCacheSize?: number;
  /** `ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS` (router default 60 s). */
  readonly jwksRefreshCooldown?: Duration;
  /** `ROUTER_JWKS_MAX_AGE_SECONDS` (router default 600 s). */
  readonly jwksMaxAge?: Duration;
  /** `ROUTER_TRUSTED_TENANTS`: allow-list for `trusted` sources. */
  readonly trustedTenants?: readonly string[];
  /** `ROUTER_MAX_RECORD_AGE_SECONDS`: older records are rejected as `record-too-old`. */
  readonly maxRecordAge?: Duration;
  /** `ROUTER_MAX_IN_FLIGHT` (router default 64). */
  readonly maxInFlight?: number;
  /**
   * `ROUTER_DELIVERY` (router default `record`): `record` sends one Invoke per record, its payload
   * one envelope; `tenant-batch` sends the records of one tenant within one event source batch in
   * as few Invokes as `batchMaxBytes` allows, each payload `{version, tenantId, records: [envelope…]}`.
   */
  readonly delivery?: DeliveryMode;
  /**
   * `ROUTER_BATCH_MAX_BYTES` (router default 1048576, the async Invoke payload limit, which is also
   * the maximum): most bytes in one envelope batch. Only with `delivery: 'tenant-batch'`.
   */
  readonly batchMaxBytes?: number;
  /** `ROUTER_RETRY_MAX_ATTEMPTS` (router default 5). */
  readonly retryMaxAttempts?: number;
  /** `ROUTER_RETRY_BASE_DELAY_MS` (router default 50 ms). */
  readonly retryBaseDelay?: Duration;
  /** `ROUTER_RETRY_MAX_DELAY_MS` (router default 2000 ms). */
  readonly retryMaxDelay?: Duration;
  /** `ROUTER_DEADLINE_MARGIN_MS` (router default 500 ms). */
  readonly deadlineMargin?: Duration;
  /** `ROUTER_INVOKE_TIMEOUT_MS` (router default 5000 ms). */
  readonly invokeTimeout?: Duration;
  /** `ROUTER_CORRELATION_ID_FROM` (router default `payload:/correlationId`). */
  readonly correlationIdFrom?: string;
  /**
   * `ROUTER_METRICS_NAMESPACE`: the CloudWatch namespace of the router's EMF metrics (router
   * default `TenantRouter`). The stack's dashboard reads its metrics from the same namespace.
   */
  readonly metricsNamespace?: string;
}

/** The router's own default for `ROUTER_METRICS_NAMESPACE`. */
export const DEFAULT_ROUTER_METRICS_NAMESPACE = 'TenantRouter';

/**
 * The CloudWatch namespaces this stack accepts for the router's metrics: what PutMetricData and
 * EMF accept (1–255 characters, not `AWS/…`, not starting with `:`), narrowed to characters that
 * need no escaping inside a dashboard's SEARCH expression.
 */
const METRICS_NAMESPACE_PATTERN = /^[A-Za-z0-9._\-/#][A-Za-z0-9._\-/#: ]{0,254}$/;

/** The namespace the router publishes its metrics under, with this configuration. */
export function routerMetricsNamespace(config: RouterConfig): string {
  return config.metricsNamespace ?? DEFAULT_ROUTER_METRICS_NAMESPACE;
}

/** Lambda's tenant id pattern (API_Invoke.html). */
export const TENANT_ID_PATTERN = /^[a-zA-Z0-9._:/=+\-@ ]{1,256}$/;

/** Renders a per-source setting in the router's syntax: default first, then overrides. */
export function renderPerSource<T extends string>(name: string, setting: PerSource<T>): string {
  const parts: string[] = [];
  if (setting.default !== undefined) {
    parts.push(checkedValue(name, setting.default));
  }
  for (const source of EVENT_SOURCE_NAMES) {
    const value = setting[source];
    if (value !== undefined) {
      parts.push(`${source}=${checkedValue(name, value)}`);
    }
  }
  if (parts.length === 0) {
    throw new Error(`${name}: give a default or at least one per-source value`);
  }
  return parts.join(';');
}

function checkedValue(name: string, value: string): string {
  if (value.length === 0 || value.includes(';')) {
    throw new Error(`${name}: a value must be non-empty and contain no ';' (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Parses the router's `default;sqs=…` syntax (used for CDK context strings). */
export function parsePerSource<T extends string = string>(name: string, text: string): PerSource<T> {
  const result: { [key: string]: string } = {};
  for (const raw of text.split(';')) {
    const entry = raw.trim();
    if (entry.length === 0) {
      throw new Error(`${name}: empty entry in ${JSON.stringify(text)}`);
    }
    const eq = entry.indexOf('=');
    const prefix = eq > 0 ? entry.slice(0, eq) : '';
    const key = (EVENT_SOURCE_NAMES as readonly string[]).includes(prefix) ? prefix : 'default';
    const value = key === 'default' ? entry : entry.slice(eq + 1);
    if (result[key] !== undefined) {
      throw new Error(`${name}: ${key} is given twice in ${JSON.stringify(text)}`);
    }
    result[key] = value;
  }
  return result as PerSource<T>;
}

/** Whether any source ends up validated by JWT (the router's own default is `jwt`). */
export function usesJwt(validation: PerSource<ValidationMode> | undefined): boolean {
  const fallback = validation?.default ?? 'jwt';
  return EVENT_SOURCE_NAMES.some((source) => (validation?.[source] ?? fallback) === 'jwt');
}

/**
 * Validates the configuration and returns the router's environment variables. Throws with an
 * error naming the variable, like the router does at start, so a bad deployment fails at synth.
 */
export function routerEnvironment(config: RouterConfig): { [name: string]: string } {
  const env: { [name: string]: string } = {};

  if (config.validation !== undefined) {
    for (const source of ['default', ...EVENT_SOURCE_NAMES] as const) {
      const mode = config.validation[source];
      if (mode !== undefined && mode !== 'jwt' && mode !== 'trusted') {
        throw new Error(`ROUTER_VALIDATION: ${source} must be 'jwt' or 'trusted', got ${JSON.stringify(mode)}`);
      }
    }
    env.ROUTER_VALIDATION = renderPerSource('ROUTER_VALIDATION', config.validation);
  }

  const jwt = usesJwt(config.validation);
  if (config.jwksUrl !== undefined || jwt) {
    env.ROUTER_JWKS = checkJwksUrl(config.jwksUrl);
  }
  if (config.jwtIssuers !== undefined || jwt) {
    env.ROUTER_JWT_ISSUER = list('ROUTER_JWT_ISSUER', config.jwtIssuers);
  }
  if (config.jwtAudiences !== undefined || jwt) {
    env.ROUTER_JWT_AUDIENCE = list('ROUTER_JWT_AUDIENCE', config.jwtAudiences);
  }
  if (config.tenantFrom !== undefined) {
    env.ROUTER_TENANT_FROM = renderPerSource('ROUTER_TENANT_FROM', config.tenantFrom);
  }
  if (config.tokenFrom !== undefined) {
    env.ROUTER_TOKEN_FROM = renderPerSource('ROUTER_TOKEN_FROM', config.tokenFrom);
  }
  if (config.tenantClaim !== undefined) {
    env.ROUTER_TENANT_CLAIM = nonEmpty('ROUTER_TENANT_CLAIM', config.tenantClaim);
  }
  if (config.jwtLeeway !== undefined) {
    env.ROUTER_JWT_LEEWAY_SECONDS = seconds('ROUTER_JWT_LEEWAY_SECONDS', config.jwtLeeway, 0);
  }
  if (config.jwtTyp !== undefined) {
    env.ROUTER_JWT_TYP = nonEmpty('ROUTER_JWT_TYP', config.jwtTyp);
  }
  if (config.jwtMaxTokenBytes !== undefined) {
    env.ROUTER_JWT_MAX_TOKEN_BYTES = integer('ROUTER_JWT_MAX_TOKEN_BYTES', config.jwtMaxTokenBytes, 1);
  }
  if (config.jwtCacheSize !== undefined) {
    env.ROUTER_JWT_CACHE_SIZE = integer('ROUTER_JWT_CACHE_SIZE', config.jwtCacheSize, 0);
  }
  if (config.jwksRefreshCooldown !== undefined) {
    env.ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS = seconds('ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS', config.jwksRefreshCooldown, 0);
  }
  if (config.jwksMaxAge !== undefined) {
    env.ROUTER_JWKS_MAX_AGE_SECONDS = seconds('ROUTER_JWKS_MAX_AGE_SECONDS', config.jwksMaxAge, 1);
  }
  if (config.trustedTenants !== undefined) {
    if (config.trustedTenants.length === 0) {
      throw new Error('ROUTER_TRUSTED_TENANTS: give at least one tenant id, or leave it unset');
    }
    for (const tenant of config.trustedTenants) {
      if (!TENANT_ID_PATTERN.test(tenant) || tenant.includes(',')) {
        throw new Error(`ROUTER_TRUSTED_TENANTS: ${JSON.stringify(tenant)} is not a valid tenant id`);
      }
    }
    env.ROUTER_TRUSTED_TENANTS = config.trustedTenants.join(',');
  }
  if (config.maxRecordAge !== undefined) {
    env.ROUTER_MAX_RECORD_AGE_SECONDS = seconds('ROUTER_MAX_RECORD_AGE_SECONDS', config.maxRecordAge, 1);
  }
  if (config.maxInFlight !== undefined) {
    env.ROUTER_MAX_IN_FLIGHT = integer('ROUTER_MAX_IN_FLIGHT', config.maxInFlight, 1);
  }
  if (config.delivery !== undefined) {
    if (config.delivery !== 'record' && config.delivery !== 'tenant-batch') {
      throw new Error(`ROUTER_DELIVERY: delivery must be 'record' or 'tenant-batch', got ${JSON.stringify(config.delivery)}`);
    }
    env.ROUTER_DELIVERY = config.delivery;
  }
  if (config.batchMaxBytes !== undefined) {
    if (config.delivery !== 'tenant-batch') {
      throw new Error("ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'; set delivery: 'tenant-batch' or leave it unset");
    }
    env.ROUTER_BATCH_MAX_BYTES = integer('ROUTER_BATCH_MAX_BYTES', config.batchMaxBytes, 1, ASYNC_INVOKE_PAYLOAD_LIMIT);
  }
  if (config.retryMaxAttempts !== undefined) {
    env.ROUTER_RETRY_MAX_ATTEMPTS = integer('ROUTER_RETRY_MAX_ATTEMPTS', config.retryMaxAttempts, 1);
  }
  if (config.retryBaseDelay !== undefined) {
    env.ROUTER_RETRY_BASE_DELAY_MS = millis('ROUTER_RETRY_BASE_DELAY_MS', config.retryBaseDelay);
  }
  if (config.retryMaxDelay !== undefined) {
    env.ROUTER_RETRY_MAX_DELAY_MS = millis('ROUTER_RETRY_MAX_DELAY_MS', config.retryMaxDelay);
  }
  if (config.deadlineMargin !== undefined) {
    env.ROUTER_DEADLINE_MARGIN_MS = millis('ROUTER_DEADLINE_MARGIN_MS', config.deadlineMargin);
  }
  if (config.invokeTimeout !== undefined) {
    env.ROUTER_INVOKE_TIMEOUT_MS = millis('ROUTER_INVOKE_TIMEOUT_MS', config.invokeTimeout);
  }
  if (config.correlationIdFrom !== undefined) {
    env.ROUTER_CORRELATION_ID_FROM = nonEmpty('ROUTER_CORRELATION_ID_FROM', config.correlationIdFrom);
  }
  if (config.metricsNamespace !== undefined) {
    env.ROUTER_METRICS_NAMESPACE = checkMetricsNamespace(config.metricsNamespace);
  }
  return env;
}

/**
 * The deployed router takes its JWKS from an https URL only: `file://` has no file to read in
 * Lambda, and inline JSON would put key material into the function's configuration, where a
 * private key pasted by mistake would be readable by anyone with lambda:GetFunctionConfiguration.
 */
function checkJwksUrl(url: string | undefined): string {
  if (url === undefined || url.length === 0) {
    throw new Error('ROUTER_JWKS: jwksUrl is required when a source uses jwt validation');
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`ROUTER_JWKS: jwksUrl must be an https URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'https:') {
    throw new Error(`ROUTER_JWKS: jwksUrl must be an https URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new Error('ROUTER_JWKS: jwksUrl must not carry credentials (the JWKS is public; no secret belongs in the environment)');
  }
  return parsed.toString();
}

function checkMetricsNamespace(namespace: string): string {
  if (!METRICS_NAMESPACE_PATTERN.test(namespace) || /^aws\//i.test(namespace) || namespace !== namespace.trim()) {
    throw new Error(
      `ROUTER_METRICS_NAMESPACE: ${JSON.stringify(namespace)} is not a usable CloudWatch namespace ` +
        "(1-255 of A-Z a-z 0-9 . _ - / # : and inner spaces, not starting with ':' or 'AWS/')",
    );
  }
  return namespace;
}

function list(name: string, values: readonly string[] | undefined): string {
  if (values === undefined || values.length === 0) {
    throw new Error(`${name}: at least one value is required when a source uses jwt validation`);
  }
  for (const value of values) {
    if (value.trim().length === 0 || value.includes(',') || value !== value.trim()) {
      throw new Error(`${name}: ${JSON.stringify(value)} must be non-empty, without commas or surrounding spaces`);
    }
  }
  return values.join(',');
}

function nonEmpty(name: string, value: string): string {
  if (value.length === 0) {
    throw new Error(`${name}: must not be empty`);
  }
  return value;
}

function integer(name: string, value: number, min: number, max?: number): string {
  if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    throw new Error(`${name}: must be an integer ${range}, got ${value}`);
  }
  return String(value);
}

function seconds(name: string, value: Duration, min: number): string {
  return integer(name, value.toSeconds(), min);
}

function millis(name: string, value: Duration): string {
  return integer(name, value.toMilliseconds(), 0);
}
