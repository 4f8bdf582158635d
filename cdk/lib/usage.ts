// Usage and cost per tenant: the Logs Insights queries over the backend's per-invocation EMF
// documents (requests, records, payload bytes, GB-seconds, tenant environments created, and
// their estimated cost) and over the router's REPORT lines (its own cost, and its cost per
// record, to be shared out by records). The prices come from `pricing.json`, copied at build
// from the repository's `shared/pricing.json`: the one place they are written down.
import * as fs from 'fs';
import * as path from 'path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';

/** Lambda list prices (USD) for one region, as `shared/pricing.json` holds them. */
export interface LambdaPricing {
  readonly asOf: string;
  readonly region: string;
  readonly currency: string;
  /** Per million requests. */
  readonly requestsPerMillion: number;
  /** Per GB-second of duration, by architecture. */
  readonly gbSecond: { readonly x86_64: number; readonly arm64: number };
  /** Per GB of configured memory, once per tenant-isolated execution environment Lambda creates, by architecture. */
  readonly tenantEnvironmentPerGb: { readonly x86_64: number; readonly arm64: number };
}

/** The prices this package was built with (`lib/pricing.json`, copied by `npm run build`). */
export function lambdaPricing(file: string = path.join(__dirname, 'pricing.json')): LambdaPricing {
  if (!fs.existsSync(file)) {
    throw new Error(`${file} not found: npm run build copies it from the repository's shared/pricing.json`);
  }
  const pricing = JSON.parse(fs.readFileSync(file, 'utf8')) as LambdaPricing;
  for (const [name, value] of Object.entries({
    requestsPerMillion: pricing.requestsPerMillion,
    'gbSecond.x86_64': pricing.gbSecond?.x86_64,
    'gbSecond.arm64': pricing.gbSecond?.arm64,
    'tenantEnvironmentPerGb.x86_64': pricing.tenantEnvironmentPerGb?.x86_64,
    'tenantEnvironmentPerGb.arm64': pricing.tenantEnvironmentPerGb?.arm64,
  })) {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new Error(`${file}: ${name} must be a price (a number >= 0), got ${JSON.stringify(value)}`);
    }
  }
  return pricing;
}

/** A price as Logs Insights reads it: plain decimal notation (no exponent). */
function price(value: number): string {
  const text = String(value);
  if (/e/i.test(text)) {
    throw new Error(`price ${text} would be written with an exponent, which Logs Insights does not read`);
  }
  return text;
}

/**
 * Per tenant, over the backend guard's one EMF document per invocation (`tenant_id`,
 * `Invocations`, `Records`, `PayloadBytes`, `ProcessingTime` in ms, `EnvironmentsCreated`,
 * `memory_mb`, `architecture`): invocations, records, payload bytes, GB-seconds
 * (ProcessingTime / 1000 × memory_mb / 1024), environments created, and the estimated cost =
 * requests × requestsPerMillion / 1e6 + GB-s × gbSecond[arch] + environments × memory_mb / 1024 ×
 * tenantEnvironmentPerGb[arch]. Every figure is one aggregation over an expression per document.
 */
export function tenantUsageQuery(pricing: LambdaPricing): logs.QueryString {
  // strcontains returns 1 or 0: it selects the architecture's price without a conditional.
  const gbSecondPrice = `(x86 * ${price(pricing.gbSecond.x86_64)} + arm * ${price(pricing.gbSecond.arm64)})`;
  const environmentPrice = `(x86 * ${price(pricing.tenantEnvironmentPerGb.x86_64)} + arm * ${price(pricing.tenantEnvironmentPerGb.arm64)})`;
  return new logs.QueryString({
    fields: [
      'strcontains(architecture, "arm64") as arm',
      '1 - strcontains(architecture, "arm64") as x86',
      'coalesce(ProcessingTime, 0) / 1000 * memory_mb / 1024 as gb_s',
      'coalesce(EnvironmentsCreated, 0) as environments',
    ],
    filterStatements: ['ispresent(tenant_id) and ispresent(Invocations) and ispresent(memory_mb)'],
    statsStatements: [
      'sum(Invocations) as invocations, sum(coalesce(Records, 0)) as records, sum(coalesce(PayloadBytes, 0)) as payload_bytes, ' +
      'sum(gb_s) as gb_seconds, sum(environments) as environments_created, ' +
      `sum(Invocations * ${price(pricing.requestsPerMillion)} / 1000000 + gb_s * ${gbSecondPrice} + ` +
      `environments * memory_mb / 1024 * ${environmentPrice}) as estimated_cost_usd by tenant_id`,
    ],
    sort: 'estimated_cost_usd desc',
    limit: 100,
  });
}

/**
 * The router's own cost over its log group: requests and GB-seconds from its REPORT lines
 * (`@billedDuration`, `@memorySize` in bytes; with JSON logs the `platform.report` record), the
 * records it routed (`RecordsReceived` of its EMF documents), the cost at the architecture's
 * prices, and the cost per record. A tenant's share = the tenant's records × the cost per record.
 */
export function routerCostQuery(pricing: LambdaPricing, architecture: lambda.Architecture): logs.QueryString {
  const gbSecond = architecture.name === lambda.Architecture.ARM_64.name ? pricing.gbSecond.arm64 : pricing.gbSecond.x86_64;
  return new logs.QueryString({
    fields: [
      'coalesce(@billedDuration, record.metrics.billedDurationMs) as billed_ms',
      'coalesce(@memorySize / 1000000, record.metrics.memorySizeMB) as memory_mb',
    ],
    filterStatements: ['@type = "REPORT" or type = "platform.report" or ispresent(RecordsReceived)'],
    statsStatements: [
      'count(billed_ms) as requests, sum(billed_ms / 1000 * memory_mb / 1024) as gb_seconds, ' +
        // Lines without billed_ms (the EMF documents) make the expression null, which sum skips.
        `sum(billed_ms / 1000 * memory_mb / 1024 * ${price(gbSecond)} + ${price(pricing.requestsPerMillion)} / 1000000) as cost_usd, ` +
        'sum(RecordsReceived) as records',
      // A second stats over the one row above: the ratio of two totals.
      'sum(requests) as requests, sum(gb_seconds) as gb_seconds, sum(cost_usd) as router_cost_usd, sum(records) as records, ' +
        'sum(cost_usd / records) as cost_per_record_usd',
    ],
  });
}
