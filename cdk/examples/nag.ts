// The cdk-nag rule packs the example apps are held to (AwsSolutions, Serverless), registered as
// policy validation plugins, and the list of acknowledgments recorded in a construct tree (for
// review and for the tests).
import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, NagPack, ServerlessChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** The cdk-nag rule packs the example apps are held to. */
export function nagPacks(app: App): NagPack[] {
  return [new AwsSolutionsChecks(app), new ServerlessChecks(app)];
}

/**
 * Registers the rule packs as policy validation plugins (cdk-nag v3): synthesis fails on any
 * finding not acknowledged with `Validations.of(construct).acknowledge({ id, reason })`.
 */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(...nagPacks(app));
}

/** One acknowledged finding: the construct it is recorded on, the rule and the reason. */
export interface AcknowledgedRule {
  readonly path: string;
  readonly id: string;
  readonly reason: string;
}

/** Every acknowledgment recorded in a construct tree (for review and for the tests). */
export function acknowledgedRules(root: IConstruct): AcknowledgedRule[] {
  const found: AcknowledgedRule[] = [];
  for (const node of root.node.findAll()) {
    for (const entry of node.node.metadata) {
      if (entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY && entry.data) {
        for (const [id, reason] of Object.entries(entry.data as { [id: string]: unknown })) {
          found.push({ path: node.node.path, id: id.replace(/^annotation::/i, ''), reason: String(reason) });
        }
      }
    }
  }
  return found;
}
