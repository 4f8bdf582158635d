// The one rule both example apps apply to CDK context: a key that is neither the app's nor CDK's
// is an error naming it (a typo such as `-c jwksURL=…` must not silently deploy a default).
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
