// The rules both example apps apply to CDK context: a key that is neither the app's nor CDK's
// is an error naming it (a typo such as `-c jwksURL=…` must not silently deploy a default), and
// how `architecture` is read.
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Node } from 'constructs';

/**
 * Context keys that belong to CDK, not to an app: feature flags (`@aws-cdk/…`), the CLI's own
 * (`aws:cdk:…`), cached lookups (`availability-zones:account=…`, all with a colon), and the two
 * the CLI writes without one.
 */
function isCdkKey(key: string): boolean {
  return key.startsWith('@') || key.includes(':') || key === 'acknowledged-issue-numbers' || key === 'cli-telemetry';
}

/** Throws naming every context key that is neither in `known` nor CDK's. */
export function checkContextKeys(node: Node, known: readonly string[], app: string): void {
  const unknown = Object.keys(node.getAllContext()).filter((key) => !isCdkKey(key) && !known.includes(key));
  if (unknown.length > 0) {
    throw new Error(
      `unknown context key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; ` +
        `${app} reads ${known.join(', ')}`,
    );
  }
}

/** The `architecture` context value: `x86_64` or `arm64`; unset (or empty) is `undefined`. */
export function contextArchitecture(value: unknown): lambda.Architecture | undefined {
  if (value === undefined || value === null || value === '') {
    return undefined;
  }
  switch (String(value)) {
    case 'x86_64':
      return lambda.Architecture.X86_64;
    case 'arm64':
      return lambda.Architecture.ARM_64;
    default:
      throw new Error(`context architecture: expected x86_64 or arm64, got ${JSON.stringify(value)}`);
  }
}
