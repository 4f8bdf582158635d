// Usage and cost per tenant: the Logs Insights queries take their prices from the repository's
// shared/pricing.json (copied into the package at build), the dashboard shows exactly the saved
// query definitions, and the router's own cost uses its architecture's price.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Capture, Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { lambdaPricing, routerCostQuery, tenantUsageQuery } from '../lib/usage';
import { backendStack, defaultStack, idOf, newApp, newRouter } from './helpers';

const SHARED_PRICING = path.join(__dirname, '..', '..', 'shared', 'pricing.json');
const shared = JSON.parse(fs.readFileSync(SHARED_PRICING, 'utf8'));

/** Every number written in a query, in order. */
const numbersIn = (query: string) => [...query.matchAll(/(?<![\w.])\d+(?:\.\d+)?(?![\w.])/g)].map((m) => Number(m[0]));

/** The saved query definitions of a template, by name suffix. */
function definitions(template: Template): { [suffix: string]: { query: string; groups: unknown } } {
  const found: { [suffix: string]: { query: string; groups: unknown } } = {};
  for (const resource of Object.values(template.findResources('AWS::Logs::QueryDefinition'))) {
    const name: string = resource.Properties.Name;
    found[name.slice(name.lastIndexOf('/') + 1)] = { query: resource.Properties.QueryString, groups: resource.Properties.LogGroupNames };
  }
  return found;
}

describe('usage and cost per tenant', () => {
  it("is built with the repository's prices: lib/pricing.json is shared/pricing.json", () => {
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'lib', 'pricing.json'), 'utf8')), shared);
    assert.deepEqual(lambdaPricing(), shared);
  });

  it("writes exactly the file's prices into the tenant query, one aggregation per figure", () => {
    const query = tenantUsageQuery(lambdaPricing()).toString();
    assert.deepEqual(numbersIn(query), [
      // strcontains → 1/0, ProcessingTime / 1000 * memory_mb / 1024, coalesce(…, 0)
      1, 0, 1000, 1024, 0, 0, 0,
      shared.requestsPerMillion, 1000000,
      shared.gbSecond.x86_64, shared.gbSecond.arm64,
      1024, shared.tenantEnvironmentPerGb.x86_64, shared.tenantEnvironmentPerGb.arm64,
      100,
    ]);
    for (const column of ['invocations', 'records', 'payload_bytes', 'gb_seconds', 'environments_created', 'estimated_cost_usd']) {
      assert.match(query, new RegExp(`\\) as ${column}\\b`), column);
    }
    assert.match(query, /filter ispresent\(tenant_id\) and ispresent\(Invocations\) and ispresent\(memory_mb\)/);
    assert.match(query, /by tenant_id/);
    assert.match(query, /sum\(Invocations \* 0\.2 \/ 1000000 \+ gb_s \* \(x86 \* 0\.0000166667 \+ arm \* 0\.0000133334\) \+ environments \* memory_mb \/ 1024 \* \(x86 \* 0\.000167 \+ arm \* 0\.0001336\)\) as estimated_cost_usd/);
  });

  it("prices the router's own REPORT lines at its architecture, and divides by the records it routed", () => {
    const pricing = lambdaPricing();
    for (const [architecture, gbSecond] of [[lambda.Architecture.X86_64, shared.gbSecond.x86_64], [lambda.Architecture.ARM_64, shared.gbSecond.arm64]] as const) {
      const query = routerCostQuery(pricing, architecture).toString();
      assert.ok(numbersIn(query).includes(gbSecond), `${architecture.name}: ${query}`);
      assert.ok(numbersIn(query).includes(shared.requestsPerMillion));
      assert.match(query, /coalesce\(@billedDuration, record\.metrics\.billedDurationMs\) as billed_ms/);
      assert.match(query, /sum\(cost_usd \/ records\) as cost_per_record_usd/);
    }
    assert.ok(!numbersIn(routerCostQuery(pricing, lambda.Architecture.X86_64).toString()).includes(shared.gbSecond.arm64));
  });

  it('puts both queries on the dashboard and saves them, over the backend and router log groups', () => {
    const { stack, template } = defaultStack();
    const saved = definitions(template);
    assert.deepEqual(Object.keys(saved).sort(), ['router-cost-per-record', 'usage-and-cost-per-tenant']);
    assert.deepEqual(saved['usage-and-cost-per-tenant'].groups, [{ Ref: idOf(stack.backend.logGroup) }]);
    assert.deepEqual(saved['router-cost-per-record'].groups, [{ Ref: idOf(stack.router.logGroup) }]);
    assert.equal(saved['usage-and-cost-per-tenant'].query, tenantUsageQuery(lambdaPricing()).toString());
    assert.equal(saved['router-cost-per-record'].query, routerCostQuery(lambdaPricing(), lambda.Architecture.X86_64).toString());
    const body = new Capture();
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
    // The body is an Fn::Join of JSON text and references; references become placeholders.
    const [, parts] = body.asObject()['Fn::Join'] as [string, unknown[]];
    const widgets: { properties: { query?: string } }[] = JSON.parse(parts.map((p) => (typeof p === 'string' ? p : 'REF')).join('')).widgets;
    const shown = widgets.map((w) => w.properties.query).filter((q): q is string => q !== undefined);
    for (const query of Object.values(saved).map((q) => q.query)) {
      assert.ok(shown.some((q) => q.endsWith(` | ${query}`)), 'the dashboard shows the saved query');
    }
  });

  it("reads a backend's log group from its logging config, else Lambda's default name", () => {
    const { stack, backend } = backendStack(newApp());
    newRouter(stack, backend);
    const query = Object.values(Template.fromStack(stack).findResources('AWS::Logs::QueryDefinition'))
      .find((r) => String(r.Properties.Name).endsWith('usage-and-cost-per-tenant'))!;
    // The CDK-managed log group of the function (feature flag useCdkManagedLogGroup).
    assert.match(JSON.stringify(query.Properties.LogGroupNames), /BackendLogGroup|aws\/lambda/);
  });
});
