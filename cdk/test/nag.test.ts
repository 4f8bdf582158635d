// cdk-nag on the full example: no finding left, and each acknowledgment needed and explained.
import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { NagPack } from 'cdk-nag';
import { acknowledgedRules, addNagChecks, nagPacks } from '../examples/nag';
import { newApp, newStack } from './helpers';

/** The app exactly as bin/ builds it: the stack plus the cdk-nag packs as validation plugins. */
function nagApp(): App {
  const app = newApp();
  newStack(app);
  addNagChecks(app);
  return app;
}

interface Finding {
  readonly rule: string;
  readonly path: string;
}

function findings(app: App, packs: NagPack[], ignoreAcknowledgments: boolean): Finding[] {
  return packs.flatMap((pack) => {
    if (ignoreAcknowledgments) {
      // Test-only: see every finding as if nothing were acknowledged (isAcknowledged is private in cdk-nag 3).
      const target = pack as unknown as { isAcknowledged?: unknown };
      assert.equal(typeof target.isAcknowledged, 'function', 'cdk-nag NagPack.isAcknowledged exists');
      target.isAcknowledged = () => false;
    }
    return pack.validateScope(app).violations.flatMap((v) =>
      v.violatingResources.map((r) => ({ rule: v.ruleName, path: r.constructPath ?? r.resourceLogicalId ?? '(unknown)' })),
    );
  });
}

/**
 * Every acknowledgment, as `<rule> @ <construct path>`. Changing this list is a review decision:
 * each entry carries its reason in the code (lib/), and the test below proves each one is needed.
 */
const EXPECTED_ACKNOWLEDGMENTS = [
  'AwsSolutions-IAM5[Resource::*] @ TenantRouter/Backend/Backend/Role',
  // the tenant access role: one tenant's parameters (<path>/<tag>/*), and the secrets tagged with its tenant (ABAC)
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/tenants/<aws:PrincipalTag/tenant_id>/*] @ TenantRouter/Backend/TenantAccess/Role',
  'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:secretsmanager:<AWS::Region>:<AWS::AccountId>:secret:*] @ TenantRouter/Backend/TenantAccess/Role',
  'Serverless-LambdaDLQ @ TenantRouter/Backend/Backend/Function',
  'AwsSolutions-SQS3 @ TenantRouter/Backend/Failures/Queue',
  'Serverless-SQSRedrivePolicy @ TenantRouter/Backend/Failures/Queue',
  'AwsSolutions-SQS3 @ TenantRouter/Router/Quarantine/Queue',
  'Serverless-SQSRedrivePolicy @ TenantRouter/Router/Quarantine/Queue',
  'AwsSolutions-IAM5[Resource::*] @ TenantRouter/Router/Router/Role',
  'AwsSolutions-IAM5[Resource::<RouterQuarantineBucketF2D034CA.Arn>/*] @ TenantRouter/Router/Router/Role',
  'Serverless-LambdaDLQ @ TenantRouter/Router/Router/Function',
  'Serverless-SQSRedrivePolicy @ TenantRouter/Sources/Queue/DeadLetters/Queue',
  'Serverless-LambdaEventSourceMappingDestination @ TenantRouter/Router/Router/Function/SqsEventSource:TenantRouterSourcesQueue219C3FF3',
  'Serverless-SQSRedrivePolicy @ TenantRouter/Sources/Fifo/DeadLetters/Queue',
  'Serverless-LambdaEventSourceMappingDestination @ TenantRouter/Router/Router/Function/SqsEventSource:TenantRouterSourcesFifoQueueB8429F2D',
  'AwsSolutions-SQS3 @ TenantRouter/Router/StreamFailures/Queue',
  'Serverless-SQSRedrivePolicy @ TenantRouter/Router/StreamFailures/Queue',
  'AwsSolutions-KDS3 @ TenantRouter/Sources/Stream',
].sort();

describe('cdk-nag (v3, policy validation plugins): AwsSolutions and Serverless packs', () => {
  it('finds nothing unacknowledged in the stack', () => {
    const app = nagApp();
    assert.deepEqual(findings(app, nagPacks(app), false), []);
  });

  it('leaves no CDK warning or error annotation either', () => {
    const app = newApp();
    const stack = newStack(app);
    const annotations = Annotations.fromStack(stack);
    assert.deepEqual(annotations.findWarning('*', Match.anyValue()), []);
    assert.deepEqual(annotations.findError('*', Match.anyValue()), []);
  });

  it('lets the app synthesize through the registered plugins (what cdk synth runs)', () => {
    const assembly = nagApp().synth({ force: true });
    assert.ok(assembly.getStackByName('TenantRouter').template.Resources);
  });

  it('fails synthesis on a new unacknowledged finding (the packs are live)', () => {
    const app = newApp();
    const stack = newStack(app);
    new sqs.Queue(stack, 'PlainQueue');
    addNagChecks(app);
    assert.deepEqual(
      findings(app, nagPacks(app), false).sort((a, b) => a.rule.localeCompare(b.rule)),
      [
        { rule: 'AwsSolutions-SQS3', path: 'TenantRouter/PlainQueue/Resource' },
        { rule: 'AwsSolutions-SQS4', path: 'TenantRouter/PlainQueue/Resource' },
        { rule: 'Serverless-SQSRedrivePolicy', path: 'TenantRouter/PlainQueue/Resource' },
      ],
    );
    // CDK prints the validation report while failing; keep it out of the test output.
    const { error, log } = console;
    console.error = console.log = () => undefined;
    try {
      assert.throws(() => app.synth({ force: true }), /Validation failed/);
    } finally {
      Object.assign(console, { error, log });
    }
  });

  it('acknowledges exactly these findings, each with a written reason', () => {
    const app = nagApp();
    const acks = acknowledgedRules(app);
    assert.deepEqual(acks.map((a) => `${a.id} @ ${a.path}`).sort(), EXPECTED_ACKNOWLEDGMENTS);
    for (const ack of acks) {
      assert.ok(ack.reason.length >= 80, `${ack.id} @ ${ack.path}: the reason must explain itself`);
    }
  });

  it('needs every acknowledgment: each one silences a real finding, and every finding has one', () => {
    const app = nagApp();
    const raw = findings(app, nagPacks(app), true);
    const acks = acknowledgedRules(app);
    for (const finding of raw) {
      const covering = acks.filter((a) => a.id === finding.rule && (finding.path === a.path || finding.path.startsWith(`${a.path}/`)));
      assert.equal(covering.length, 1, `${finding.rule} @ ${finding.path} is acknowledged exactly once`);
    }
    for (const ack of acks) {
      const silenced = raw.filter((f) => f.rule === ack.id && (f.path === ack.path || f.path.startsWith(`${ack.path}/`)));
      assert.ok(silenced.length > 0, `${ack.id} @ ${ack.path} silences a finding`);
    }
  });
});
