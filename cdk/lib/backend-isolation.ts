// What the router knows about the user's backend, and the two rules that keep it tenant-isolated:
// it runs in tenant isolation mode (`PER_TENANT`, checked wherever CDK can see the function) and
// no event source mapping targets it, under any qualifier ($LATEST, a version, an alias), since
// a mapping cannot pass a tenant id. Both are checked at synth, over the whole app.
import { Duration, Stack, Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';

/** The backend as far as CDK can see it. */
export interface BackendFacts {
  /** The function behind the backend (itself, a version's or an alias's), when it is defined in this app. */
  readonly function?: lambda.Function;
  /** The backend's timeout, when CDK can see the function. */
  readonly timeout?: Duration;
  /** The unqualified function name: the `Service` dimension of the backend's metrics. */
  readonly functionName: string;
}

/** Reads the backend: a `Function`, a `Version` or `Alias` of one, or an imported function (nothing visible). */
export function backendFacts(backend: lambda.IFunction): BackendFacts {
  const fn = underlyingFunction(backend);
  return {
    function: fn,
    // Lambda's default timeout is 3 seconds.
    timeout: fn === undefined ? undefined : (fn.timeout ?? Duration.seconds(3)),
    functionName: (fn ?? backend).functionName,
  };
}

function underlyingFunction(backend: lambda.IFunction): lambda.Function | undefined {
  if (backend instanceof lambda.Function) {
    return backend;
  }
  if (backend instanceof lambda.Version) {
    return underlyingFunction(backend.lambda);
  }
  if (backend instanceof lambda.Alias) {
    return underlyingFunction(backend.version.lambda);
  }
  return undefined;
}

/** Why the backend's tenancy is wrong, if it is: anything but `PER_TENANT` that CDK can see. */
export function tenancyProblems(facts: BackendFacts): string[] {
  const cfn = facts.function?.node.defaultChild;
  if (!(cfn instanceof lambda.CfnFunction)) {
    return [];
  }
  const tenancy = cfn.tenancyConfig;
  if (Token.isUnresolved(tenancy)) {
    return [];
  }
  const mode = (tenancy as lambda.CfnFunction.TenancyConfigProperty | undefined)?.tenantIsolationMode;
  if (mode !== undefined && Token.isUnresolved(mode)) {
    return [];
  }
  if (mode === 'PER_TENANT') {
    return [];
  }
  return [
    `backend: ${facts.function!.node.path} is not in tenant isolation mode (TenancyConfig ${mode ?? 'unset'}); ` +
      'give it tenancyConfig: lambda.TenancyConfig.PER_TENANT, or the router has nothing to isolate',
  ];
}

/**
 * Every event source mapping of the app that targets the backend, as errors. A mapping targets it
 * when its FunctionName refers to the backend's function, or to a version or alias of it; for an
 * imported backend, when the literal name (plain, partial ARN, ARN, with any qualifier) matches.
 */
export function mappingsOnBackend(root: IConstruct, backend: lambda.IFunction, facts: BackendFacts): string[] {
  const all = root.node.findAll();
  const matches = facts.function === undefined ? literalMatcher(backend) : referenceMatcher(facts.function, all);
  if (matches === undefined) {
    return [];
  }
  return all
    .filter((c): c is lambda.CfnEventSourceMapping => c instanceof lambda.CfnEventSourceMapping && matches(c.functionName))
    .map(
      (mapping) =>
        `${mapping.node.path}: an event source mapping targets the tenant-isolated backend; ` +
        'mappings cannot pass a tenant id, so they must target the router (TenantRouter.addSqsSource and friends)',
    );
}

/** Matches FunctionNames that reference the function's resource, or a version or alias of it. */
function referenceMatcher(fn: lambda.Function, all: IConstruct[]): (name: string) => boolean {
  const stack = Stack.of(fn);
  const ids = new Set([stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)]);
  // Resolved in the function's own stack: a reference from another stack resolves to the
  // producing resource there, not to an import.
  const refersTo = (value: unknown) => {
    const text = JSON.stringify(stack.resolve(value));
    return [...ids].some((id) => text.includes(`{"Ref":"${id}"}`) || text.includes(`{"Fn::GetAtt":["${id}",`));
  };
  // Versions first: an alias names a version of the function (by its Version attribute).
  for (const type of [lambda.CfnVersion, lambda.CfnAlias]) {
    for (const c of all) {
      if (c instanceof type && refersTo(c.functionName)) {
        ids.add(Stack.of(c).getLogicalId(c));
      }
    }
  }
  return refersTo;
}

/** For an imported backend: compares literal function names, qualifiers and ARN forms aside. */
function literalMatcher(backend: lambda.IFunction): ((name: string) => boolean) | undefined {
  if (Token.isUnresolved(backend.functionArn)) {
    return undefined;
  }
  const name = functionNameOf(backend.functionArn);
  return (value) => !Token.isUnresolved(value) && functionNameOf(value) === name;
}

/** The function name in a Lambda FunctionName value: a name, a partial ARN or an ARN, qualified or not. */
function functionNameOf(value: string): string {
  const arn = /^arn:[^:]+:lambda:[^:]*:[^:]*:function:([^:]+)/.exec(value);
  if (arn !== null) {
    return arn[1];
  }
  const partial = /^\d{12}:function:([^:]+)/.exec(value);
  return partial !== null ? partial[1] : value.split(':')[0];
}
