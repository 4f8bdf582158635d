import { App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks, NagPack, ServerlessChecks } from 'cdk-nag';
import { IConstruct } from 'constructs';

/** The cdk-nag rule packs this app is held to. */
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

/**
 * How cdk-nag names a resource inside a finding id, e.g. `<QuarantineBucket1234.Arn>/*` in
 * `AwsSolutions-IAM5[Resource::<QuarantineBucket1234.Arn>/*]`: `Ref` as `<id>`, `Fn::GetAtt` as
 * `<id.attribute>`, `Fn::Join` joined. Mirrors cdk-nag's flattenCfnReference (not exported), so an
 * acknowledgment can name exactly the finding it silences.
 */
export function nagResourceName(scope: IConstruct, value: string): string {
  const flatten = (resolved: unknown): string => {
    if (typeof resolved === 'string') {
      return resolved.replace(/\$\{/g, '<').replace(/\}/g, '>');
    }
    const intrinsic = resolved as { Ref?: string; 'Fn::GetAtt'?: string[]; 'Fn::Join'?: [string, unknown[]] };
    if (intrinsic.Ref !== undefined) {
      return `<${intrinsic.Ref}>`;
    }
    if (intrinsic['Fn::GetAtt'] !== undefined) {
      return `<${intrinsic['Fn::GetAtt'].join('.')}>`;
    }
    if (intrinsic['Fn::Join'] !== undefined) {
      const [separator, parts] = intrinsic['Fn::Join'];
      return parts.map(flatten).join(separator);
    }
    return JSON.stringify(resolved);
  };
  return flatten(Stack.of(scope).resolve(value));
}
