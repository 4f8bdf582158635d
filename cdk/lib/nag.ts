// How cdk-nag names a resource inside a finding id, so the constructs of this library can
// acknowledge (`Validations.of(x).acknowledge`) exactly the findings they cause. The rule packs
// themselves are the apps' choice (examples/nag.ts); the library does not depend on cdk-nag.
import { Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';

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
