// The operator's dashboard of the full example: its widgets, their metrics and Logs Insights
// queries, and the rule that tenants are never metric dimensions.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Capture, Template } from 'aws-cdk-lib/assertions';
import { EVENT_SOURCE_NAMES } from '../lib/router-config';
import { buildStack, defaultStack, idOf, ROUTER_CONFIG } from './helpers';

/** A widget of the dashboard body, as CloudWatch reads it. */
interface Widget {
  readonly type: 'metric' | 'log' | 'text' | 'alarm';
  readonly x: number;
  readonly y: number;
  readonly width: number;
  readonly height: number;
  readonly properties: {
    readonly title?: string;
    readonly metrics?: unknown[][];
    readonly query?: string;
    readonly alarms?: string[];
    readonly annotations?: { horizontal?: { value: number; label: string }[] };
    readonly markdown?: string;
  };
}

/** One entry of a graph's `metrics`: a metric (namespace, name, dimensions, options) or an expression. */
interface MetricEntry {
  readonly namespace?: string;
  readonly metricName?: string;
  readonly dimensions: { [name: string]: string };
  readonly expression?: string;
  readonly options: { [key: string]: unknown };
}

/**
 * The DashboardBody is an Fn::Join of JSON text and references. Each reference becomes a
 * placeholder (`${Ref:Id}`, `${GetAtt:Id.Attr}`) inside the JSON strings, which then parse.
 */
function dashboardBody(template: Template): { widgets: Widget[] } {
  const body = new Capture();
  template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
  const join = body.asObject()['Fn::Join'] as [string, unknown[]];
  assert.equal(join[0], '');
  const text = join[1]
    .map((part) => {
      if (typeof part === 'string') {
        return part;
      }
      const p = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
      if (p.Ref !== undefined) {
        return `\${Ref:${p.Ref}}`;
      }
      if (p['Fn::GetAtt'] !== undefined) {
        return `\${GetAtt:${p['Fn::GetAtt'].join('.')}}`;
      }
      throw new Error(`unexpected part in the dashboard body: ${JSON.stringify(part)}`);
    })
    .join('');
  return JSON.parse(text);
}

function entries(widget: Widget): MetricEntry[] {
  return (widget.properties.metrics ?? []).map((row) => {
    const last = row[row.length - 1];
    const options = (typeof last === 'object' && last !== null ? last : {}) as { [key: string]: unknown };
    if (typeof row[0] === 'object') {
      return { expression: String(options.expression), dimensions: {}, options };
    }
    const fields = (row.filter((v) => typeof v === 'string') as string[]).slice();
    const [namespace, metricName, ...dims] = fields;
    const dimensions: { [name: string]: string } = {};
    for (let i = 0; i < dims.length; i += 2) {
      dimensions[dims[i]] = dims[i + 1];
    }
    return { namespace, metricName, dimensions, options };
  });
}

function widget(widgets: Widget[], title: string): Widget {
  const found = widgets.filter((w) => w.properties.title === title);
  assert.equal(found.length, 1, `one widget titled ${JSON.stringify(title)}`);
  return found[0];
}

const EXPECTED_TITLES = [
  'Alarms',
  'Router outcomes (records, all sources)',
  'Records received per source',
  'Rejected records by reason (rejected.*)',
  'Failed records by reason (failed.*)',
  'Invoke latency (ms, p50 / p99)',
  'Invoke attempts vs retries',
  'Batch duration (ms)',
  'Router function (AWS/Lambda)',
  'Backend errors',
  'Backend records and processing time',
  'Messages waiting for an operator (visible, maximum)',
  'Router: records per tenant and outcome',
  'Router: rejected and failed records by tenant and reason',
  'Backend: processing per tenant (from its EMF documents)',
  'Security events (backend) and cross-tenant rejections (router)',
  'Usage and estimated cost per tenant (USD, us-east-1 list prices of 2026-12-01)',
  "Router's own cost, and its cost per record (tenant share = tenant's records × cost per record)",
];

describe('dashboard', () => {
  const built = () => {
    const { stack, template } = defaultStack();
    return {
      stack,
      template,
      widgets: dashboardBody(template).widgets,
      router: `\${Ref:${idOf(stack.router.function)}}`,
      backend: `\${Ref:${idOf(stack.backend.function)}}`,
    };
  };

  it('is one dashboard, named after the stack and region (names are unique per account), with an output', () => {
    const { stack, template } = built();
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', {
      DashboardName: { 'Fn::Join': ['', ['TenantRouter-', { Ref: 'AWS::Region' }]] },
    });
    assert.deepEqual(template.toJSON().Outputs.DashboardName.Value, { Ref: idOf(stack.router.dashboard) });
  });

  it('has exactly the expected widgets, on the 24-column grid without overlap', () => {
    const { widgets } = built();
    assert.deepEqual(widgets.filter((w) => w.type !== 'text').map((w) => w.properties.title), EXPECTED_TITLES);
    assert.match(widgets[0].properties.markdown ?? '', /never metric dimensions/);
    for (const w of widgets) {
      assert.ok(w.x >= 0 && w.x + w.width <= 24, `${w.properties.title} fits in 24 columns`);
    }
    for (const [i, a] of widgets.entries()) {
      for (const b of widgets.slice(i + 1)) {
        const apart = a.x + a.width <= b.x || b.x + b.width <= a.x || a.y + a.height <= b.y || b.y + b.height <= a.y;
        assert.ok(apart, `${a.properties.title} and ${b.properties.title} do not overlap`);
      }
    }
  });

  it('shows every alarm of the stack', () => {
    const { stack, widgets } = built();
    assert.deepEqual(
      widget(widgets, 'Alarms').properties.alarms,
      stack.router.alarms.map((a) => `\${GetAtt:${idOf(a)}.Arn}`),
    );
  });

  it("sums each router outcome over every source, from this router's (Service, Source) metrics", () => {
    const { widgets, router } = built();
    const rows = entries(widget(widgets, 'Router outcomes (records, all sources)'));
    const expressions = rows.filter((r) => r.expression !== undefined);
    assert.deepEqual(
      expressions.map((e) => [e.options.label, e.expression]),
      ['Invoked', 'Rejected', 'Quarantined', 'Failed', 'Reported'].map((label) => {
        const id = `records${label}`;
        return [label, `SUM([${EVENT_SOURCE_NAMES.map((s) => `${id}_${s}`).join(', ')}])`];
      }),
    );
    const metrics = rows.filter((r) => r.expression === undefined);
    assert.equal(metrics.length, 5 * EVENT_SOURCE_NAMES.length);
    for (const m of metrics) {
      assert.equal(m.namespace, 'TenantRouter');
      assert.deepEqual(Object.keys(m.dimensions), ['Service', 'Source']);
      assert.equal(m.dimensions.Service, router);
      assert.ok((EVENT_SOURCE_NAMES as readonly string[]).includes(m.dimensions.Source));
      assert.equal(m.options.stat, 'Sum');
      assert.equal(m.options.visible, false);
      assert.equal(m.options.id, `${m.metricName!.charAt(0).toLowerCase()}${m.metricName!.slice(1)}_${m.dimensions.Source}`);
    }
    assert.deepEqual(
      [...new Set(metrics.map((m) => m.metricName))],
      ['RecordsInvoked', 'RecordsRejected', 'RecordsQuarantined', 'RecordsFailed', 'RecordsReported'],
    );
    const received = entries(widget(widgets, 'Records received per source'));
    assert.deepEqual(received.map((m) => [m.metricName, m.dimensions.Source, m.options.stat]), EVENT_SOURCE_NAMES.map((s) => ['RecordsReceived', s, 'Sum']));
  });

  it("breaks rejections and failures down by reason with a SEARCH over this router's metrics", () => {
    const { widgets, router } = built();
    for (const [title, outcome, total] of [
      ['Rejected records by reason (rejected.*)', 'rejected', 'RecordsRejected'],
      ['Failed records by reason (failed.*)', 'failed', 'RecordsFailed'],
    ]) {
      const rows = entries(widget(widgets, title));
      assert.equal(rows.length, 1);
      assert.equal(
        rows[0].expression,
        `SEARCH('{TenantRouter,Service,Source} Service="${router}" MetricName=${outcome} NOT MetricName="${total}"', 'Sum', 300)`,
      );
      // No expression label (CDK drops the empty one): each series is labelled by its own metric name and source.
      assert.equal(rows[0].options.label, undefined);
    }
  });

  it('graphs invoke latency p50/p99, attempts vs retries, and batch duration against the router timeout', () => {
    const { widgets, router } = built();
    const latency = entries(widget(widgets, 'Invoke latency (ms, p50 / p99)'));
    assert.deepEqual(
      latency.map((m) => [m.metricName, m.dimensions.Service, m.dimensions.Source, m.options.stat]),
      EVENT_SOURCE_NAMES.flatMap((s) => [['InvokeLatency', router, s, 'p50'], ['InvokeLatency', router, s, 'p99']]),
    );
    const attempts = entries(widget(widgets, 'Invoke attempts vs retries'));
    assert.deepEqual(
      attempts.filter((r) => r.expression !== undefined).map((e) => e.options.label),
      ['attempts', 'retries'],
    );
    assert.deepEqual(
      [...new Set(attempts.filter((r) => r.expression === undefined).map((m) => m.metricName))],
      ['InvokeAttempts', 'InvokeRetries'],
    );
    const batch = widget(widgets, 'Batch duration (ms)');
    assert.deepEqual(
      entries(batch).map((m) => [m.metricName, m.dimensions.Source, m.options.stat ?? 'Average']),
      EVENT_SOURCE_NAMES.flatMap((s) => [['BatchDuration', s, 'Average'], ['BatchDuration', s, 'Maximum']]),
    );
    assert.deepEqual(
      batch.properties.annotations?.horizontal?.map((a) => [a.label, a.value]),
      [['router timeout', 60_000]],
    );
  });

  it("graphs the backend's errors: Lambda Errors and AsyncEventsDropped, TenantBackend HandlerErrors and InvocationsRefused", () => {
    const { widgets, backend } = built();
    const rows = entries(widget(widgets, 'Backend errors'));
    assert.deepEqual(
      rows.map((m) => [m.namespace, m.metricName, m.dimensions, m.options.stat]),
      [
        ['AWS/Lambda', 'Errors', { FunctionName: backend }, 'Sum'],
        ['AWS/Lambda', 'Throttles', { FunctionName: backend }, 'Sum'],
        ['AWS/Lambda', 'AsyncEventsDropped', { FunctionName: backend }, 'Sum'],
        ['AWS/Lambda', 'DestinationDeliveryFailures', { FunctionName: backend }, 'Sum'],
        ['TenantBackend', 'HandlerErrors', { Service: backend }, 'Sum'],
        ['TenantBackend', 'InvocationsRefused', { Service: backend }, 'Sum'],
      ],
    );
    const records = entries(widget(widgets, 'Backend records and processing time'));
    assert.deepEqual(
      records.map((m) => [m.metricName, m.dimensions, m.options.stat]),
      [
        ['RecordsProcessed', { Service: backend }, 'Sum'],
        ['RecordsDuplicate', { Service: backend }, 'Sum'],
        ['ProcessingTime', { Service: backend }, 'p50'],
        ['ProcessingTime', { Service: backend }, 'p99'],
      ],
    );
  });

  it('graphs the depth of every queue an operator has to empty', () => {
    const { stack, widgets } = built();
    const rows = entries(widget(widgets, 'Messages waiting for an operator (visible, maximum)'));
    assert.deepEqual(
      rows.map((m) => [m.options.label, m.metricName, m.dimensions.QueueName]),
      (
        [
          ['quarantine', stack.router.quarantineQueue],
          ['Queue dead letters', stack.sources.queueDeadLetters],
          ['Fifo dead letters', stack.sources.fifoDeadLetters],
          ['stream failures', stack.router.streamFailuresQueue!],
          ['backend failures', stack.backend.failureQueue],
        ] as const
      ).map(([label, q]) => [label, 'ApproximateNumberOfMessagesVisible', `\${GetAtt:${idOf(q)}.QueueName}`]),
    );
  });

  it('builds the per-tenant views on Logs Insights queries over the router and backend log groups', () => {
    const { stack, widgets } = built();
    const routerLogs = `SOURCE '\${Ref:${idOf(stack.router.logGroup)}}'`;
    const backendLogs = `SOURCE '\${Ref:${idOf(stack.backend.logGroup)}}'`;
    const query = (title: string) => {
      const w = widget(widgets, title);
      assert.equal(w.type, 'log');
      return w.properties.query ?? '';
    };
    assert.equal(
      query('Router: records per tenant and outcome'),
      `${routerLogs} | filter ispresent(tenant_id) and ispresent(outcome)\n| stats count(*) as records by tenant_id, outcome\n| sort records desc\n| limit 100`,
    );
    const rejected = query('Router: rejected and failed records by tenant and reason');
    assert.ok(rejected.startsWith(`${routerLogs} | filter outcome = "rejected" or outcome = "failed"\n`));
    assert.match(rejected, /\| stats count\(\*\) as records, latest\(detail\) as last_detail by tenant_id, outcome, reason, source\n/);
    const backend = query('Backend: processing per tenant (from its EMF documents)');
    assert.ok(backend.startsWith(`${backendLogs} | filter ispresent(ProcessingTime) and ispresent(tenant_id)\n`));
    assert.match(backend, /sum\(RecordsProcessed\) as processed, .*sum\(HandlerErrors\) as handler_errors, sum\(InvocationsRefused\) as refused, .* by tenant_id\n/);
    const security = query('Security events (backend) and cross-tenant rejections (router)');
    assert.ok(security.startsWith(`${routerLogs} | ${backendLogs} | filter ispresent(security_event) or reason = "tenant-mismatch"`));
    assert.match(security, /\| fields @timestamp, @log, security_event, reason, tenant_id, .*correlation_id\n\| sort @timestamp desc/);
  });

  it('never uses a tenant as a metric dimension or in a SEARCH schema', () => {
    const { widgets } = built();
    const graphs = widgets.filter((w) => w.type === 'metric');
    assert.ok(graphs.length >= 10);
    let searches = 0;
    for (const w of graphs) {
      for (const row of entries(w)) {
        for (const name of Object.keys(row.dimensions)) {
          assert.doesNotMatch(name, /tenant/i, `${w.properties.title}: dimension ${name}`);
        }
        if (row.expression !== undefined) {
          for (const [, schema] of row.expression.matchAll(/SEARCH\('\{([^}]*)\}/g)) {
            const [, ...dimensions] = schema.split(',');
            assert.deepEqual(dimensions, ['Service', 'Source'], `${w.properties.title}: ${row.expression}`);
            searches += 1;
          }
          assert.doesNotMatch(row.expression, /tenant_id|tenantId/i, `${w.properties.title}: ${row.expression}`);
        }
      }
    }
    assert.equal(searches, 2);
    // Only these dimension sets exist: the router's (Service, Source), the backend's (Service), AWS's own.
    const sets = new Set(graphs.flatMap((w) => entries(w).filter((r) => r.namespace).map((r) => `${r.namespace}: ${Object.keys(r.dimensions).join(',')}`)));
    assert.deepEqual([...sets].sort(), [
      'AWS/Lambda: FunctionName',
      'AWS/SQS: QueueName',
      'TenantBackend: Service',
      'TenantRouter: Service,Source',
    ]);
  });

  it('follows ROUTER_METRICS_NAMESPACE when the router configuration sets one', () => {
    const { stack, template } = buildStack({ routerConfig: { ...ROUTER_CONFIG, metricsNamespace: 'Acme/TenantRouter' } });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: { ROUTER_METRICS_NAMESPACE: 'Acme/TenantRouter' } },
    });
    const widgets = dashboardBody(template).widgets;
    const router = `\${Ref:${idOf(stack.router.function)}}`;
    const namespaces = new Set(
      widgets.flatMap((w) => entries(w).filter((r) => r.dimensions.Source !== undefined).map((r) => r.namespace)),
    );
    assert.deepEqual([...namespaces], ['Acme/TenantRouter']);
    assert.equal(
      entries(widget(widgets, 'Rejected records by reason (rejected.*)'))[0].expression,
      `SEARCH('{"Acme/TenantRouter",Service,Source} Service="${router}" MetricName=rejected NOT MetricName="RecordsRejected"', 'Sum', 300)`,
    );
  });
});
