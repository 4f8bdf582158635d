import { Duration, Fn, Token } from 'aws-cdk-lib';

/** The event sources the router recognises; per-source settings are keyed by them. */
export const EVENT_SOURCE_NAMES = ['sqs', 'kinesis', 'dynamodb', 'eventbridge'] as const;
export type EventSourceName = (typeof EVENT_SOURCE_NAMES)[number];

/** How a source's records prove their tenant (`ROUTER_VALIDATION`). */
export type ValidationMode = 'jwt' | 'trusted';

/** How the router delivers records to the backend (`ROUTER_DELIVERY`). */
export type DeliveryMode = 'record' | 'tenant-batch';

/**
 * How the router invokes the backend (`ROUTER_INVOCATION_TYPE`): `event` (asynchronous: Lambda
 * queues the event and answers 202; its retries and destinations apply) or `request-response`
 * (synchronous: the Invoke returns when the backend has finished, with its result or error).
 */
export type InvocationType = 'event' | 'request-response';

/** Every value `ROUTER_INVOCATION_TYPE` accepts. */
export const INVOCATION_TYPES: readonly InvocationType[] = ['event', 'request-response'];

/**
 * The keys of `ROUTER_INVOCATION_TYPE` after its default, in the order they are rendered: the
 * event sources, plus `sqs-fifo`, which applies to FIFO queues only and overrides `sqs` for them.
 */
export const INVOCATION_TYPE_KEYS = ['sqs', 'sqs-fifo', 'kinesis', 'dynamodb', 'eventbridge'] as const;
export type InvocationTypeKey = (typeof INVOCATION_TYPE_KEYS)[number];

/**
 * `ROUTER_INVOCATION_TYPE`, per source: the per-source setting plus `sqsFifo` (rendered
 * `sqs-fifo=`), which FIFO queues take instead of `sqs`. A FIFO queue without `sqsFifo` follows
 * `sqs`, then the default; unset everywhere, the router's default is `event`.
 */
export interface InvocationTypes extends PerSource<InvocationType> {
  /** FIFO queues only; overrides `sqs` for them. */
  readonly sqsFifo?: InvocationType;
}

/**
 * The invocation types this app deploys unless told otherwise: `request-response` for the
 * ordered sources (FIFO queue, Kinesis, DynamoDB), because only when each Invoke waits for the
 * backend does the backend see a lane's records in order (an async Invoke only queues the event,
 * and Lambda runs queued events in any order and retries them later); `event` for the rest.
 */
export const RECOMMENDED_INVOCATION_TYPES: InvocationTypes = {
  default: 'event',
  sqsFifo: 'request-response',
  kinesis: 'request-response',
  dynamodb: 'request-response',
};

/** The async Invoke payload limit (1 MB): the router's default, and the maximum `ROUTER_BATCH_MAX_BYTES` while every source uses `event`. */
export const ASYNC_INVOKE_PAYLOAD_LIMIT = 1_048_576;

/** The sync Invoke payload limit (6 MiB): the maximum `ROUTER_BATCH_MAX_BYTES` once a source uses `request-response`. */
export const SYNC_INVOKE_PAYLOAD_LIMIT = 6_291_456;

/**
 * The JWS algorithms `ROUTER_JWT_ALGORITHMS` may list: the asymmetric ones the router verifies.
 * No `HS*` (the router holds no shared secret) and never `none` (RFC 8725).
 */
export const JWT_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const;
export type JwtAlgorithm = (typeof JWT_ALGORITHMS)[number];

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
 * README's configuration reference; `ROUTER_BACKEND_FUNCTION`, `ROUTER_QUARANTINE_QUEUE_URL` and
 * `ROUTER_QUARANTINE_BUCKET` are wired by the stack itself. Literal values are checked at synth;
 * CDK tokens (parameters, imports) are passed through unchecked, since only the router can judge them. Nothing here is a secret: the JWKS is a set of public keys
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
  /**
   * `ROUTER_JWT_ALGORITHMS`: the JWS algorithms accepted, a subset of {@link JWT_ALGORITHMS}
   * (router default: all of them). A token signed with another one is rejected.
   */
  readonly jwtAlgorithms?: readonly JwtAlgorithm[];
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
   * `ROUTER_INVOCATION_TYPE` (router default `event` for every source): per source, whether an
   * Invoke only queues the event or waits for the backend's result. With `request-response` for
   * any source, the stack also derives the invoke and router timeouts from the backend's timeout
   * ({@link routerTimeouts}). `TenantRouterStack` deploys {@link RECOMMENDED_INVOCATION_TYPES}
   * when this is unset.
   */
  readonly invocationType?: InvocationTypes;
  /**
   * `ROUTER_BATCH_MAX_BYTES` (router default 1048576): most bytes in one envelope batch. Only with
   * `delivery: 'tenant-batch'`. At most the Invoke payload limit: 1048576 (async) while every
   * source uses `event`, 6291456 (sync) once one uses `request-response`.
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
  /**
   * `ROUTER_INVOKE_TIMEOUT_MS`: time limit of one Invoke attempt (router default 5000 ms). Once a
   * source uses `request-response` it must be at least the backend's timeout; unset, the stack
   * then sets it to the backend's timeout + {@link INVOKE_TIMEOUT_MARGIN}.
   */
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
  return renderEntries(name, setting.default, EVENT_SOURCE_NAMES.map((source) => [source, setting[source]] as const));
}

/** Renders `ROUTER_INVOCATION_TYPE`: default first, then `sqs`, `sqs-fifo`, `kinesis`, `dynamodb`, `eventbridge`. */
export function renderInvocationTypes(name: string, setting: InvocationTypes): string {
  return renderEntries(name, setting.default, INVOCATION_TYPE_KEYS.map((key) => [key, invocationTypeField(setting, key)] as const));
}

function renderEntries(name: string, fallback: string | undefined, overrides: ReadonlyArray<readonly [string, string | undefined]>): string {
  const parts: string[] = [];
  if (fallback !== undefined) {
    parts.push(checkedValue(name, fallback));
  }
  for (const [key, value] of overrides) {
    if (value !== undefined) {
      parts.push(`${key}=${checkedValue(name, value)}`);
    }
  }
  if (parts.length === 0) {
    throw new Error(`${name}: give a default or at least one per-source value`);
  }
  return parts.join(';');
}

function checkedValue(name: string, value: string): string {
  if (Token.isUnresolved(value)) {
    return value;
  }
  if (value.length === 0 || value.includes(';')) {
    throw new Error(`${name}: a value must be non-empty and contain no ';' (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Parses the router's `default;sqs=…` syntax (used for CDK context strings). */
export function parsePerSource<T extends string = string>(name: string, text: string): PerSource<T> {
  return parseEntries(name, text, EVENT_SOURCE_NAMES) as PerSource<T>;
}

/** Parses `ROUTER_INVOCATION_TYPE`'s syntax, `default;sqs=…;sqs-fifo=…` (used for CDK context strings). */
export function parseInvocationTypes(name: string, text: string): InvocationTypes {
  const { 'sqs-fifo': sqsFifo, ...rest } = parseEntries(name, text, INVOCATION_TYPE_KEYS);
  const result: { [key: string]: string } = { ...rest };
  if (sqsFifo !== undefined) {
    result.sqsFifo = sqsFifo;
  }
  return result as InvocationTypes;
}

function parseEntries(name: string, text: string, keys: readonly string[]): { [key: string]: string } {
  const result: { [key: string]: string } = {};
  for (const raw of text.split(';')) {
    const entry = raw.trim();
    if (entry.length === 0) {
      throw new Error(`${name}: empty entry in ${JSON.stringify(text)}`);
    }
    const eq = entry.indexOf('=');
    const prefix = eq > 0 ? entry.slice(0, eq) : '';
    const key = keys.includes(prefix) ? prefix : 'default';
    const value = key === 'default' ? entry : entry.slice(eq + 1);
    if (result[key] !== undefined) {
      throw new Error(`${name}: ${key} is given twice in ${JSON.stringify(text)}`);
    }
    result[key] = value;
  }
  return result;
}

function invocationTypeField(setting: InvocationTypes, key: InvocationTypeKey): InvocationType | undefined {
  return key === 'sqs-fifo' ? setting.sqsFifo : setting[key];
}

/**
 * The invocation type the router uses for one key of `ROUTER_INVOCATION_TYPE`: FIFO queues take
 * `sqs-fifo`, then `sqs`, then the default; the other sources their own key, then the default;
 * `event` when nothing is set (the router's default).
 */
export function invocationTypeOf(setting: InvocationTypes | undefined, key: InvocationTypeKey): InvocationType {
  const own = setting === undefined ? undefined : invocationTypeField(setting, key);
  const sqs = key === 'sqs-fifo' ? setting?.sqs : undefined;
  return own ?? sqs ?? setting?.default ?? 'event';
}

/**
 * Whether any source is invoked `request-response`. A CDK token counts as one: the stack then
 * keeps the timeouts a synchronous Invoke needs, the safe side when the value is not known yet.
 */
export function usesRequestResponse(setting: InvocationTypes | undefined): boolean {
  return INVOCATION_TYPE_KEYS.some((key) => {
    const type = invocationTypeOf(setting, key);
    return type === 'request-response' || Token.isUnresolved(type);
  });
}

/**
 * The Invoke payload limit that bounds `ROUTER_BATCH_MAX_BYTES`: the sync limit once a source
 * uses `request-response`, else the async limit.
 */
export function invokePayloadLimit(setting: InvocationTypes | undefined): number {
  return usesRequestResponse(setting) ? SYNC_INVOKE_PAYLOAD_LIMIT : ASYNC_INVOKE_PAYLOAD_LIMIT;
}

/** Whether any source ends up validated by JWT (the router's own default is `jwt`). */
export function usesJwt(validation: PerSource<ValidationMode> | undefined): boolean {
  const fallback = validation?.default ?? 'jwt';
  return EVENT_SOURCE_NAMES.some((source) => (validation?.[source] ?? fallback) === 'jwt');
}

/** Lambda's largest function timeout (15 minutes). */
export const LAMBDA_MAX_TIMEOUT = Duration.minutes(15);

/** The router's timeout unless a longer one is needed ({@link routerTimeouts}). */
export const DEFAULT_ROUTER_TIMEOUT = Duration.seconds(60);

/**
 * What `request-response` adds to the backend's timeout for the default `ROUTER_INVOKE_TIMEOUT_MS`:
 * the Invoke's round trip and the backend's start, so a backend that uses its whole timeout still
 * answers within one attempt.
 */
export const INVOKE_TIMEOUT_MARGIN = Duration.seconds(1);

/**
 * Time the router's invocation needs besides one Invoke attempt and `ROUTER_DEADLINE_MARGIN_MS`:
 * reading the batch, verifying tokens (a JWKS fetch), quarantine writes and the response.
 */
export const ROUTER_TIMEOUT_HEADROOM = Duration.seconds(5);

/** The router's own defaults, which the timeout rules count with when a setting is unset. */
const ROUTER_DEFAULT_INVOKE_TIMEOUT_MS = 5000;
const ROUTER_DEFAULT_DEADLINE_MARGIN_MS = 500;

/** The timeouts that keep the router, the backend and the queues consistent. */
export interface RouterTimeouts {
  /** `ROUTER_INVOKE_TIMEOUT_MS` to render; undefined leaves the router's default (5000 ms). */
  readonly invokeTimeout?: Duration;
  /** The router function's timeout (the source queues' visibility timeouts follow it). */
  readonly routerTimeout: Duration;
}

/**
 * One rule for both invocation types: the router's timeout is at least one Invoke attempt
 * (`ROUTER_INVOKE_TIMEOUT_MS`) + `ROUTER_DEADLINE_MARGIN_MS` + {@link ROUTER_TIMEOUT_HEADROOM}.
 * Under `request-response` (any source) each Invoke waits for the backend, so the invoke timeout
 * is at least the backend's timeout: unset, it becomes the backend's timeout +
 * {@link INVOKE_TIMEOUT_MARGIN}; a shorter given one is an error. Without a given router timeout
 * the result is {@link DEFAULT_ROUTER_TIMEOUT}, or the least timeout (whole seconds) when that is
 * longer. Throws naming the variable or prop. Durations that are CDK tokens are not checked.
 */
export function routerTimeouts(config: RouterConfig, backendTimeout: Duration, routerTimeout?: Duration): RouterTimeouts {
  const backendMs = literalMillis(backendTimeout);
  let invokeTimeout = config.invokeTimeout;
  if (usesRequestResponse(config.invocationType)) {
    if (invokeTimeout === undefined) {
      if (backendMs === undefined) {
        throw new Error('ROUTER_INVOKE_TIMEOUT_MS: the backend timeout is a token; give invokeTimeout (at least the backend timeout) for request-response');
      }
      invokeTimeout = Duration.millis(backendMs + INVOKE_TIMEOUT_MARGIN.toMilliseconds());
    } else {
      const givenMs = literalMillis(invokeTimeout);
      if (givenMs !== undefined && backendMs !== undefined && givenMs < backendMs) {
        throw new Error(
          `ROUTER_INVOKE_TIMEOUT_MS: invokeTimeout (${givenMs} ms) is shorter than the backend's timeout (${backendMs} ms); ` +
            'with request-response each Invoke waits for the backend to finish. Leave it unset for ' +
            `${backendMs + INVOKE_TIMEOUT_MARGIN.toMilliseconds()} ms`,
        );
      }
    }
  }

  const invokeMs = invokeTimeout === undefined ? ROUTER_DEFAULT_INVOKE_TIMEOUT_MS : literalMillis(invokeTimeout);
  const marginMs = config.deadlineMargin === undefined ? ROUTER_DEFAULT_DEADLINE_MARGIN_MS : literalMillis(config.deadlineMargin);
  if (invokeMs === undefined || marginMs === undefined) {
    return { invokeTimeout, routerTimeout: routerTimeout ?? DEFAULT_ROUTER_TIMEOUT };
  }
  const headroomMs = ROUTER_TIMEOUT_HEADROOM.toMilliseconds();
  const leastMs = invokeMs + marginMs + headroomMs;
  const parts =
    `ROUTER_INVOKE_TIMEOUT_MS (${invokeMs} ms) + ROUTER_DEADLINE_MARGIN_MS (${marginMs} ms) + ` +
    `${headroomMs / 1000} s of headroom = ${leastMs} ms`;
  const maxMs = LAMBDA_MAX_TIMEOUT.toMilliseconds();
  if (leastMs > maxMs) {
    throw new Error(
      `ROUTER_INVOKE_TIMEOUT_MS: the router's timeout would have to be at least ${parts}, ` +
        `beyond Lambda's ${maxMs / 1000} s; shorten the backend's timeout (backendTimeout) or invokeTimeout`,
    );
  }
  if (routerTimeout === undefined) {
    const seconds = Math.max(DEFAULT_ROUTER_TIMEOUT.toSeconds(), Math.ceil(leastMs / 1000));
    return { invokeTimeout, routerTimeout: Duration.seconds(seconds) };
  }
  const routerMs = literalMillis(routerTimeout);
  if (routerMs !== undefined && routerMs < leastMs) {
    throw new Error(`routerTimeout (${routerMs / 1000} s) must be at least ${parts}, or no Invoke could finish within one invocation`);
  }
  if (routerMs !== undefined && routerMs > maxMs) {
    throw new Error(`routerTimeout (${routerMs / 1000} s) exceeds Lambda's largest timeout (${maxMs / 1000} s)`);
  }
  return { invokeTimeout, routerTimeout };
}

function literalMillis(duration: Duration): number | undefined {
  return duration.isUnresolved() ? undefined : duration.toMilliseconds();
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
  if (config.jwtAlgorithms !== undefined) {
    env.ROUTER_JWT_ALGORITHMS = checkJwtAlgorithms(config.jwtAlgorithms);
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
  if (config.invocationType !== undefined) {
    for (const key of ['default', ...INVOCATION_TYPE_KEYS] as const) {
      const type = key === 'default' ? config.invocationType.default : invocationTypeField(config.invocationType, key);
      if (type !== undefined && !Token.isUnresolved(type) && !INVOCATION_TYPES.includes(type)) {
        throw new Error(`ROUTER_INVOCATION_TYPE: ${key} must be 'event' or 'request-response', got ${JSON.stringify(type)}`);
      }
    }
    env.ROUTER_INVOCATION_TYPE = renderInvocationTypes('ROUTER_INVOCATION_TYPE', config.invocationType);
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
    const limit = invokePayloadLimit(config.invocationType);
    const why =
      limit === SYNC_INVOKE_PAYLOAD_LIMIT
        ? 'the sync Invoke payload limit, since a source uses request-response'
        : `the async Invoke payload limit; ${SYNC_INVOKE_PAYLOAD_LIMIT} once a source uses request-response`;
    env.ROUTER_BATCH_MAX_BYTES = integer('ROUTER_BATCH_MAX_BYTES', config.batchMaxBytes, 1, limit, why);
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

function checkJwtAlgorithms(algorithms: readonly string[]): string {
  if (Token.isUnresolved(algorithms)) {
    return Fn.join(',', [...algorithms]);
  }
  if (algorithms.length === 0) {
    throw new Error('ROUTER_JWT_ALGORITHMS: give at least one algorithm, or leave it unset (the router then accepts all it supports)');
  }
  for (const algorithm of algorithms) {
    if (Token.isUnresolved(algorithm)) {
      continue;
    }
    if (algorithm.length === 0) {
      throw new Error(`ROUTER_JWT_ALGORITHMS: empty entry in ${JSON.stringify(algorithms.join(','))}`);
    }
    if (!(JWT_ALGORITHMS as readonly string[]).includes(algorithm)) {
      throw new Error(
        `ROUTER_JWT_ALGORITHMS: ${JSON.stringify(algorithm)} is not one of ${JWT_ALGORITHMS.join(' ')} ` +
          '(HS* and none are never accepted)',
      );
    }
  }
  return algorithms.join(',');
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

function integer(name: string, value: number, min: number, max?: number, why?: string): string {
  if (Token.isUnresolved(value)) {
    return Token.asString(value);
  }
  if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    throw new Error(`${name}: must be an integer ${range}, got ${value}${why === undefined ? '' : ` (${why})`}`);
  }
  return String(value);
}

function seconds(name: string, value: Duration, min: number): string {
  return integer(name, value.toSeconds(), min);
}

function millis(name: string, value: Duration): string {
  return integer(name, value.toMilliseconds(), 0);
}
