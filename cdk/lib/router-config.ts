// The router's configuration: the typed settings a `TenantRouter` takes (`RouterConfig` and its
// parts), their rendering into the router's `ROUTER_*` environment variables, the checks the
// router itself would make at start (so a bad deployment fails at synth, naming the variable),
// and the timeout rules that keep the router, the backend and the source queues consistent.
// CDK tokens (parameters, imports) are passed through unchecked: only the router can judge them.
import { Duration, Fn, Token } from 'aws-cdk-lib';

/** How a source's records prove their tenant (`ROUTER_VALIDATION`). */
export enum ValidationMode {
  /** A JWT signed by the platform (JWKS at `jwt.jwksUrl`) whose tenant claim matches the record's tenant. */
  JWT = 'jwt',
  /**
   * No proof: the tenant id is taken as found (for a source only the platform writes to, such as
   * its own DynamoDB table). The tenant id pattern and `trustedTenants` still apply.
   */
  TRUSTED = 'trusted',
}

/** How the router delivers records to the backend (`ROUTER_DELIVERY`). */
export enum DeliveryMode {
  /** One Invoke per record; the payload is one envelope. */
  RECORD = 'record',
  /**
   * The records of one tenant within one event source batch in as few Invokes as
   * `batchMaxBytes` allows; the payload is `{version, tenantId, records: [envelope…]}`.
   */
  TENANT_BATCH = 'tenant-batch',
}

/** How the router invokes the backend (`ROUTER_INVOCATION_TYPE`). */
export enum InvocationType {
  /**
   * Asynchronous: Lambda queues the event and answers 202; the backend's async retries and
   * destinations apply, and Lambda may run a lane's records out of order.
   */
  EVENT = 'event',
  /**
   * Synchronous: the Invoke returns when the backend has finished, with its result or error,
   * which decides the record's outcome; a lane's records reach the backend in order.
   */
  REQUEST_RESPONSE = 'request-response',
}

/** The JWS algorithms the router verifies (`ROUTER_JWT_ALGORITHMS`): asymmetric only, never `HS*` or `none`. */
export enum JwtAlgorithm {
  /** RSASSA-PKCS1-v1_5 with SHA-256. */
  RS256 = 'RS256',
  /** RSASSA-PKCS1-v1_5 with SHA-384. */
  RS384 = 'RS384',
  /** RSASSA-PKCS1-v1_5 with SHA-512. */
  RS512 = 'RS512',
  /** RSASSA-PSS with SHA-256. */
  PS256 = 'PS256',
  /** RSASSA-PSS with SHA-384. */
  PS384 = 'PS384',
  /** RSASSA-PSS with SHA-512. */
  PS512 = 'PS512',
  /** ECDSA on P-256 with SHA-256. */
  ES256 = 'ES256',
  /** ECDSA on P-384 with SHA-384. */
  ES384 = 'ES384',
  /** Ed25519. */
  EDDSA = 'EdDSA',
}

/** The event sources the router recognises; per-source settings are keyed by them. */
export const EVENT_SOURCE_NAMES = ['sqs', 'kinesis', 'dynamodb', 'eventbridge'] as const;

/**
 * A setting with one value for every source and optional per-source overrides, rendered in the
 * router's `<all>;sqs=…;dynamodb=…` syntax (README, "Per-source settings"). The public structs
 * below are its instances.
 */
export interface PerSource<T extends string> {
  readonly all?: T;
  readonly sqs?: T;
  readonly kinesis?: T;
  readonly dynamodb?: T;
  readonly eventbridge?: T;
}

/** `ROUTER_VALIDATION` per source. Unset entries follow `all`, then the router's default `jwt`. */
export interface ValidationModes {
  /** Every source without its own entry. @default jwt */
  readonly all?: ValidationMode;
  /** SQS queues (standard and FIFO). @default all */
  readonly sqs?: ValidationMode;
  /** Kinesis streams. @default all */
  readonly kinesis?: ValidationMode;
  /** DynamoDB streams. @default all */
  readonly dynamodb?: ValidationMode;
  /** Events EventBridge delivers directly. @default all */
  readonly eventbridge?: ValidationMode;
}

/**
 * A location in a record, per source, in the router's syntax: `payload:<json-pointer>`,
 * `attribute:<name>` and `message-group-id` (SQS), `partition-key` (Kinesis),
 * `key:<attribute>[:<prefix>]` (DynamoDB). Used by `tenantFrom` and `tokenFrom`.
 */
export interface RecordLocations {
  /** Every source without its own entry. @default the router's default */
  readonly all?: string;
  /** SQS queues. @default all */
  readonly sqs?: string;
  /** Kinesis streams. @default all */
  readonly kinesis?: string;
  /** DynamoDB streams. @default all */
  readonly dynamodb?: string;
  /** Events EventBridge delivers directly. @default all */
  readonly eventbridge?: string;
}

/**
 * `ROUTER_INVOCATION_TYPE` per source, plus `sqsFifo` (rendered `sqs-fifo=`), which FIFO queues
 * take instead of `sqs`. A FIFO queue without `sqsFifo` follows `sqs`, then `all`; unset
 * everywhere, the router's default is `event`.
 */
export interface InvocationTypes {
  /** Every source without its own entry. @default event */
  readonly all?: InvocationType;
  /** SQS queues (FIFO queues too, unless `sqsFifo` is set). @default all */
  readonly sqs?: InvocationType;
  /** FIFO queues only; overrides `sqs` for them. @default sqs */
  readonly sqsFifo?: InvocationType;
  /** Kinesis streams. @default all */
  readonly kinesis?: InvocationType;
  /** DynamoDB streams. @default all */
  readonly dynamodb?: InvocationType;
  /** Events EventBridge delivers directly. @default all */
  readonly eventbridge?: InvocationType;
}

/** How the router proves each record's tenant with a JWT the platform signed. Nothing here is a secret. */
export interface JwtOptions {
  /** `ROUTER_JWKS`: the https URL of the platform's public JWKS. */
  readonly jwksUrl: string;
  /** `ROUTER_JWT_ISSUER`: the accepted `iss`; several may be given separated by commas. */
  readonly issuer: string;
  /** `ROUTER_JWT_AUDIENCE`: the accepted `aud`; several may be given separated by commas. */
  readonly audience: string;
  /** `ROUTER_TENANT_CLAIM`: the claim holding the tenant id. @default tenant_id */
  readonly tenantClaim?: string;
  /** `ROUTER_JWT_LEEWAY_SECONDS`: leeway for `exp` and `nbf`, whole seconds. @default 60 seconds */
  readonly leeway?: Duration;
  /** `ROUTER_JWT_TYP`: the required `typ` header, e.g. `tenant+jwt`. @default not checked */
  readonly typ?: string;
  /** `ROUTER_JWT_ALGORITHMS`: the accepted algorithms. @default every JwtAlgorithm */
  readonly algorithms?: JwtAlgorithm[];
  /** `ROUTER_JWT_MAX_TOKEN_BYTES`: larger tokens are refused before decoding. @default 8192 */
  readonly maxTokenBytes?: number;
  /** `ROUTER_JWT_CACHE_SIZE`: verified tokens remembered; 0 turns the cache off. @default 10000 */
  readonly cacheSize?: number;
  /** `ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS`: least time between refreshes for unknown `kid`s. @default 60 seconds */
  readonly jwksRefreshCooldown?: Duration;
  /** `ROUTER_JWKS_MAX_AGE_SECONDS`: key set age after which the next lookup refreshes it. @default 10 minutes */
  readonly jwksMaxAge?: Duration;
}

/**
 * The router's settings, each mapped to its `ROUTER_*` variable (repository README,
 * "Configuration reference"). `ROUTER_BACKEND_FUNCTION`, the quarantine and the tenant registry
 * are wired by `TenantRouter` itself.
 */
export interface RouterConfig {
  /** JWT validation. Required while a source uses `jwt` validation (the router's default). @default none: every source must be `trusted` */
  readonly jwt?: JwtOptions;
  /** `ROUTER_VALIDATION`, per source. @default jwt for every source */
  readonly validation?: ValidationModes;
  /** `ROUTER_TENANT_FROM`: where each source's tenant id is. @default payload:/tenantId */
  readonly tenantFrom?: RecordLocations;
  /** `ROUTER_TOKEN_FROM`: where each source's token is. @default payload:/tenantToken */
  readonly tokenFrom?: RecordLocations;
  /** `ROUTER_TRUSTED_TENANTS`: the allow-list for `trusted` sources. @default any tenant id */
  readonly trustedTenants?: string[];
  /** `ROUTER_MAX_RECORD_AGE_SECONDS`: older records are rejected as `record-too-old`. @default no limit */
  readonly maxRecordAge?: Duration;
  /** `ROUTER_MAX_IN_FLIGHT`: most Invokes in flight at once. @default 64 */
  readonly maxInFlight?: number;
  /**
   * `ROUTER_MAX_IN_FLIGHT_PER_TENANT`: most Invokes in flight at once for one tenant, so a
   * tenant with many records in a batch cannot take every slot; at most `maxInFlight`.
   * @default a quarter of maxInFlight, at least 1
   */
  readonly maxInFlightPerTenant?: number;
  /** `ROUTER_DELIVERY`. @default RECORD */
  readonly delivery?: DeliveryMode;
  /**
   * `ROUTER_INVOCATION_TYPE`, per source. With `request-response` for any source the invoke
   * and router timeouts follow the backend's timeout.
   * @default event; request-response for FIFO queues, Kinesis and DynamoDB (RECOMMENDED_INVOCATION_TYPES)
   */
  readonly invocationType?: InvocationTypes;
  /**
   * `ROUTER_BATCH_MAX_BYTES`: most bytes in one envelope batch; `tenant-batch` delivery only. At
   * most 1048576 (async) while every source uses `event`, 6291456 (sync) once one uses `request-response`.
   * @default the invocation type's payload limit
   */
  readonly batchMaxBytes?: number;
  /** `ROUTER_RETRY_MAX_ATTEMPTS`: Invoke attempts per record, the first included. @default 5 */
  readonly retryMaxAttempts?: number;
  /** `ROUTER_RETRY_BASE_DELAY_MS`: cap of the first backoff. @default 50 milliseconds */
  readonly retryBaseDelay?: Duration;
  /** `ROUTER_RETRY_MAX_DELAY_MS`: largest backoff cap. @default 2 seconds */
  readonly retryMaxDelay?: Duration;
  /** `ROUTER_DEADLINE_MARGIN_MS`: time kept free before the invocation's deadline. @default 500 milliseconds */
  readonly deadlineMargin?: Duration;
  /**
   * `ROUTER_INVOKE_TIMEOUT_MS`: time limit of one Invoke attempt. Once a source uses
   * `request-response` it must be at least the backend's timeout.
   * @default 5 seconds; the backend's timeout + 1 second once a source uses request-response
   */
  readonly invokeTimeout?: Duration;
  /** `ROUTER_CORRELATION_ID_FROM`: JSON pointer of the correlation id. @default payload:/correlationId */
  readonly correlationIdFrom?: string;
  /** `ROUTER_METRICS_NAMESPACE`: the namespace of the router's metrics (the dashboard and alarms read it). @default TenantRouter */
  readonly metricsNamespace?: string;
}

/**
 * The keys of `ROUTER_INVOCATION_TYPE` after its default, in the order they are rendered: the
 * event sources, plus `sqs-fifo`, which applies to FIFO queues only and overrides `sqs` for them.
 */
export const INVOCATION_TYPE_KEYS = ['sqs', 'sqs-fifo', 'kinesis', 'dynamodb', 'eventbridge'] as const;
export type InvocationTypeKey = (typeof INVOCATION_TYPE_KEYS)[number];

/**
 * The invocation types `TenantRouter` deploys unless told otherwise: `request-response` for the
 * ordered sources (FIFO queues, Kinesis, DynamoDB), because only when each Invoke waits for the
 * backend does the backend see a lane's records in order (an async Invoke only queues the event,
 * and Lambda runs queued events in any order and retries them later); `event` for the rest.
 */
export const RECOMMENDED_INVOCATION_TYPES: InvocationTypes = {
  all: InvocationType.EVENT,
  sqsFifo: InvocationType.REQUEST_RESPONSE,
  kinesis: InvocationType.REQUEST_RESPONSE,
  dynamodb: InvocationType.REQUEST_RESPONSE,
};

/** The async Invoke payload limit (1 MB): the router's default, and the maximum `ROUTER_BATCH_MAX_BYTES` while every source uses `event`. */
export const ASYNC_INVOKE_PAYLOAD_LIMIT = 1_048_576;

/** The sync Invoke payload limit (6 MiB): the maximum `ROUTER_BATCH_MAX_BYTES` once a source uses `request-response`. */
export const SYNC_INVOKE_PAYLOAD_LIMIT = 6_291_456;

/** SQS's largest message (1 MiB since 2025): the default MaximumMessageSize of the quarantine queue the router creates. */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;

/** SQS's least MaximumMessageSize (1 KiB). */
export const SQS_MIN_MESSAGE_BYTES = 1024;

/**
 * `ROUTER_QUARANTINE_MAX_MESSAGE_BYTES`: the largest quarantine message the router may send (a
 * record above it goes to the quarantine bucket), which is the created quarantine queue's
 * MaximumMessageSize. Checked like the router checks it at start; a CDK token is passed through.
 */
export function quarantineMaxMessageBytes(value: number): string {
  return integer('ROUTER_QUARANTINE_MAX_MESSAGE_BYTES', value, SQS_MIN_MESSAGE_BYTES, SQS_MAX_MESSAGE_BYTES,
    "quarantineMaxMessageBytes: the quarantine queue's MaximumMessageSize, which SQS allows from 1 KiB to 1 MiB");
}

/** Every JWS algorithm the router accepts, in its documentation's order. */
export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = Object.values(JwtAlgorithm);

/** The router's own default for `ROUTER_METRICS_NAMESPACE`. */
export const DEFAULT_ROUTER_METRICS_NAMESPACE = 'TenantRouter';

/** The router's own default for `ROUTER_MAX_IN_FLIGHT`. */
const ROUTER_DEFAULT_MAX_IN_FLIGHT = 64;

/**
 * The CloudWatch namespaces accepted for the router's metrics: what PutMetricData and EMF accept
 * (1–255 characters, not `AWS/…`, not starting with `:`), narrowed to characters that need no
 * escaping inside a dashboard's SEARCH expression.
 */
const METRICS_NAMESPACE_PATTERN = /^[A-Za-z0-9._\-/#][A-Za-z0-9._\-/#: ]{0,254}$/;

/** The namespace the router publishes its metrics under, with this configuration. */
export function routerMetricsNamespace(config: RouterConfig): string {
  return config.metricsNamespace ?? DEFAULT_ROUTER_METRICS_NAMESPACE;
}

/** Lambda's tenant id pattern (API_Invoke.html). */
export const TENANT_ID_PATTERN = /^[a-zA-Z0-9._:/=+\-@ ]{1,256}$/;

/** Renders a per-source setting in the router's syntax: the value for all sources first, then overrides. */
export function renderPerSource(name: string, setting: PerSource<string>): string {
  return renderEntries(name, setting.all, EVENT_SOURCE_NAMES.map((source) => [source, setting[source]] as const));
}

/** Renders `ROUTER_INVOCATION_TYPE`: the value for all sources first, then `sqs`, `sqs-fifo`, `kinesis`, `dynamodb`, `eventbridge`. */
export function renderInvocationTypes(name: string, setting: InvocationTypes): string {
  return renderEntries(name, setting.all, INVOCATION_TYPE_KEYS.map((key) => [key, invocationTypeField(setting, key)] as const));
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
    throw new Error(`${name}: give a value for all sources or at least one per-source value`);
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

/** Parses the router's `<all>;sqs=…` syntax (used for CDK context strings). */
export function parsePerSource(name: string, text: string): PerSource<string> {
  return parseEntries(name, text, EVENT_SOURCE_NAMES);
}

/** Parses `ROUTER_INVOCATION_TYPE`'s syntax, `<all>;sqs=…;sqs-fifo=…` (used for CDK context strings). */
export function parseInvocationTypes(name: string, text: string): InvocationTypes {
  const { 'sqs-fifo': sqsFifo, ...rest } = parseEntries(name, text, INVOCATION_TYPE_KEYS);
  const result: { [key: string]: string } = { ...rest };
  if (sqsFifo !== undefined) {
    result.sqsFifo = sqsFifo;
  }
  // Unknown values stay strings: routerEnvironment refuses them, naming the variable.
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
    const key = keys.includes(prefix) ? prefix : 'all';
    const value = key === 'all' ? entry : entry.slice(eq + 1);
    if (result[key] !== undefined) {
      throw new Error(`${name}: ${key === 'all' ? 'the value for all sources' : key} is given twice in ${JSON.stringify(text)}`);
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
 * `sqs-fifo`, then `sqs`, then `all`; the other sources their own key, then `all`; `event` when
 * nothing is set (the router's default).
 */
export function invocationTypeOf(setting: InvocationTypes | undefined, key: InvocationTypeKey): InvocationType {
  const own = setting === undefined ? undefined : invocationTypeField(setting, key);
  const sqs = key === 'sqs-fifo' ? setting?.sqs : undefined;
  return own ?? sqs ?? setting?.all ?? InvocationType.EVENT;
}

/**
 * Whether any source is invoked `request-response`. A CDK token counts as one: the timeouts a
 * synchronous Invoke needs are then kept, the safe side when the value is not known yet.
 */
export function usesRequestResponse(setting: InvocationTypes | undefined): boolean {
  return INVOCATION_TYPE_KEYS.some((key) => {
    const type = invocationTypeOf(setting, key);
    return type === InvocationType.REQUEST_RESPONSE || Token.isUnresolved(type);
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
export function usesJwt(validation: ValidationModes | undefined): boolean {
  const fallback = validation?.all ?? ValidationMode.JWT;
  return EVENT_SOURCE_NAMES.some((source) => (validation?.[source] ?? fallback) === ValidationMode.JWT);
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
export function routerTimeouts(config: RouterConfig, backendTimeout: Duration | undefined, routerTimeout?: Duration): RouterTimeouts {
  const backendMs = backendTimeout === undefined ? undefined : literalMillis(backendTimeout);
  let invokeTimeout = config.invokeTimeout;
  if (usesRequestResponse(config.invocationType)) {
    if (invokeTimeout === undefined) {
      if (backendMs === undefined) {
        throw new Error(
          'ROUTER_INVOKE_TIMEOUT_MS: the backend timeout is unknown (an imported function, or a token); ' +
            'give backendTimeout, or invokeTimeout (at least the backend timeout), for request-response',
        );
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
    throw new Error(`timeout (${routerMs / 1000} s) must be at least ${parts}, or no Invoke could finish within one invocation`);
  }
  if (routerMs !== undefined && routerMs > maxMs) {
    throw new Error(`timeout (${routerMs / 1000} s) exceeds Lambda's largest timeout (${maxMs / 1000} s)`);
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
    for (const source of ['all', ...EVENT_SOURCE_NAMES] as const) {
      const mode = config.validation[source];
      if (mode !== undefined && !Token.isUnresolved(mode) && !Object.values(ValidationMode).includes(mode)) {
        throw new Error(`ROUTER_VALIDATION: ${source} must be 'jwt' or 'trusted', got ${JSON.stringify(mode)}`);
      }
    }
    env.ROUTER_VALIDATION = renderPerSource('ROUTER_VALIDATION', config.validation);
  }

  const jwt = config.jwt;
  if (jwt !== undefined || usesJwt(config.validation)) {
    env.ROUTER_JWKS = checkJwksUrl(jwt?.jwksUrl);
    env.ROUTER_JWT_ISSUER = list('ROUTER_JWT_ISSUER', 'jwt.issuer', jwt?.issuer);
    env.ROUTER_JWT_AUDIENCE = list('ROUTER_JWT_AUDIENCE', 'jwt.audience', jwt?.audience);
  }
  if (jwt?.tenantClaim !== undefined) {
    env.ROUTER_TENANT_CLAIM = nonEmpty('ROUTER_TENANT_CLAIM', jwt.tenantClaim);
  }
  if (jwt?.leeway !== undefined) {
    env.ROUTER_JWT_LEEWAY_SECONDS = seconds('ROUTER_JWT_LEEWAY_SECONDS', jwt.leeway, 0);
  }
  if (jwt?.typ !== undefined) {
    env.ROUTER_JWT_TYP = nonEmpty('ROUTER_JWT_TYP', jwt.typ);
  }
  if (jwt?.algorithms !== undefined) {
    env.ROUTER_JWT_ALGORITHMS = checkJwtAlgorithms(jwt.algorithms);
  }
  if (jwt?.maxTokenBytes !== undefined) {
    env.ROUTER_JWT_MAX_TOKEN_BYTES = integer('ROUTER_JWT_MAX_TOKEN_BYTES', jwt.maxTokenBytes, 1);
  }
  if (jwt?.cacheSize !== undefined) {
    env.ROUTER_JWT_CACHE_SIZE = integer('ROUTER_JWT_CACHE_SIZE', jwt.cacheSize, 0);
  }
  if (jwt?.jwksRefreshCooldown !== undefined) {
    env.ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS = seconds('ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS', jwt.jwksRefreshCooldown, 0);
  }
  if (jwt?.jwksMaxAge !== undefined) {
    env.ROUTER_JWKS_MAX_AGE_SECONDS = seconds('ROUTER_JWKS_MAX_AGE_SECONDS', jwt.jwksMaxAge, 1);
  }
  if (config.tenantFrom !== undefined) {
    env.ROUTER_TENANT_FROM = renderPerSource('ROUTER_TENANT_FROM', config.tenantFrom);
  }
  if (config.tokenFrom !== undefined) {
    env.ROUTER_TOKEN_FROM = renderPerSource('ROUTER_TOKEN_FROM', config.tokenFrom);
  }
  if (config.trustedTenants !== undefined) {
    env.ROUTER_TRUSTED_TENANTS = checkTrustedTenants(config.trustedTenants);
  }
  if (config.maxRecordAge !== undefined) {
    env.ROUTER_MAX_RECORD_AGE_SECONDS = seconds('ROUTER_MAX_RECORD_AGE_SECONDS', config.maxRecordAge, 1);
  }
  if (config.maxInFlight !== undefined) {
    env.ROUTER_MAX_IN_FLIGHT = integer('ROUTER_MAX_IN_FLIGHT', config.maxInFlight, 1);
  }
  if (config.maxInFlightPerTenant !== undefined) {
    const maxInFlight = config.maxInFlight ?? ROUTER_DEFAULT_MAX_IN_FLIGHT;
    const bound = Token.isUnresolved(maxInFlight) ? undefined : maxInFlight;
    env.ROUTER_MAX_IN_FLIGHT_PER_TENANT = integer(
      'ROUTER_MAX_IN_FLIGHT_PER_TENANT', config.maxInFlightPerTenant, 1, bound, bound === undefined ? undefined : 'at most ROUTER_MAX_IN_FLIGHT');
  }
  if (config.invocationType !== undefined) {
    for (const key of ['all', ...INVOCATION_TYPE_KEYS] as const) {
      const type = key === 'all' ? config.invocationType.all : invocationTypeField(config.invocationType, key);
      if (type !== undefined && !Token.isUnresolved(type) && !Object.values(InvocationType).includes(type)) {
        throw new Error(`ROUTER_INVOCATION_TYPE: ${key} must be 'event' or 'request-response', got ${JSON.stringify(type)}`);
      }
    }
    env.ROUTER_INVOCATION_TYPE = renderInvocationTypes('ROUTER_INVOCATION_TYPE', config.invocationType);
  }
  if (config.delivery !== undefined) {
    if (!Token.isUnresolved(config.delivery) && !Object.values(DeliveryMode).includes(config.delivery)) {
      throw new Error(`ROUTER_DELIVERY: delivery must be 'record' or 'tenant-batch', got ${JSON.stringify(config.delivery)}`);
    }
    env.ROUTER_DELIVERY = config.delivery;
  }
  if (config.batchMaxBytes !== undefined) {
    if (config.delivery !== DeliveryMode.TENANT_BATCH) {
      throw new Error("ROUTER_BATCH_MAX_BYTES: batchMaxBytes only applies to delivery 'tenant-batch'; set delivery: TENANT_BATCH or leave it unset");
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
    throw new Error('ROUTER_JWKS: jwt.jwksUrl is required when a source uses jwt validation');
  }
  if (Token.isUnresolved(url)) {
    return url;
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`ROUTER_JWKS: jwt.jwksUrl must be an https URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'https:') {
    throw new Error(`ROUTER_JWKS: jwt.jwksUrl must be an https URL, got ${JSON.stringify(url)}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new Error('ROUTER_JWKS: jwt.jwksUrl must not carry credentials (the JWKS is public; no secret belongs in the environment)');
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

function checkTrustedTenants(tenants: readonly string[]): string {
  if (Token.isUnresolved(tenants)) {
    return Fn.join(',', [...tenants]);
  }
  if (tenants.length === 0) {
    throw new Error('ROUTER_TRUSTED_TENANTS: give at least one tenant id, or leave it unset');
  }
  for (const tenant of tenants) {
    if (!Token.isUnresolved(tenant) && (!TENANT_ID_PATTERN.test(tenant) || tenant.includes(','))) {
      throw new Error(`ROUTER_TRUSTED_TENANTS: ${JSON.stringify(tenant)} is not a valid tenant id`);
    }
  }
  return tenants.join(',');
}

function checkMetricsNamespace(namespace: string): string {
  if (Token.isUnresolved(namespace)) {
    return namespace;
  }
  if (!METRICS_NAMESPACE_PATTERN.test(namespace) || /^aws\//i.test(namespace) || namespace !== namespace.trim()) {
    throw new Error(
      `ROUTER_METRICS_NAMESPACE: ${JSON.stringify(namespace)} is not a usable CloudWatch namespace ` +
        "(1-255 of A-Z a-z 0-9 . _ - / # : and inner spaces, not starting with ':' or 'AWS/')",
    );
  }
  return namespace;
}

/** A comma-separated list the router splits: each entry non-empty, without surrounding spaces. */
function list(name: string, prop: string, value: string | undefined): string {
  if (value === undefined || value.length === 0) {
    throw new Error(`${name}: ${prop} is required when a source uses jwt validation`);
  }
  if (Token.isUnresolved(value)) {
    return value;
  }
  for (const entry of value.split(',')) {
    if (entry.trim().length === 0 || entry !== entry.trim()) {
      throw new Error(`${name}: ${JSON.stringify(entry)} in ${prop} must be non-empty, without surrounding spaces`);
    }
  }
  return value;
}

function nonEmpty(name: string, value: string): string {
  if (value.length === 0) {
    throw new Error(`${name}: must not be empty`);
  }
  return value;
}

/** A whole number in range, rendered; a CDK token is passed through. */
export function integer(name: string, value: number, min: number, max?: number, why?: string): string {
  if (Token.isUnresolved(value)) {
    return Token.asString(value);
  }
  if (!Number.isSafeInteger(value) || value < min || (max !== undefined && value > max)) {
    const range = max === undefined ? `>= ${min}` : `from ${min} to ${max}`;
    throw new Error(`${name}: must be an integer ${range}, got ${value}${why === undefined ? '' : ` (${why})`}`);
  }
  return String(value);
}

/** Whole seconds of a duration, at least `min`, rendered; a CDK token is passed through. */
export function seconds(name: string, value: Duration, min: number, why?: string): string {
  if (value.isUnresolved()) {
    return Token.asString(value.toSeconds());
  }
  return integer(name, value.toSeconds({ integral: false }), min, undefined, why);
}

function millis(name: string, value: Duration): string {
  if (value.isUnresolved()) {
    return Token.asString(value.toMilliseconds());
  }
  return integer(name, value.toMilliseconds({ integral: false }), 0);
}
