// Shared test helpers: apps with the feature flags of cdk.json, the full example's stack on
// placeholder code (no test compiles Rust), a small stack with a PER_TENANT backend for the
// construct's own tests, and the shapes CloudFormation references take.
import * as fs from 'fs';
import * as path from 'path';
import { App, CfnResource, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { IConstruct } from 'constructs';
import { FullDeploymentProps, FullDeploymentStack } from '../examples/full/stack';
import { RouterConfig, RustCode, TenantRouter, TenantRouterProps } from '../lib';

/** The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does. */
export const CDK_CONTEXT: { [key: string]: unknown } = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

export const JWT = {
  jwksUrl: 'https://issuer.example.com/.well-known/jwks.json',
  issuer: 'https://issuer.example.com',
  audience: 'tenant-router',
};

export const ROUTER_CONFIG: RouterConfig = { jwt: JWT };

export function newApp(context: { [key: string]: unknown } = {}): App {
  return new App({ context: { ...CDK_CONTEXT, ...context } });
}

export interface Built {
  readonly app: App;
  readonly stack: FullDeploymentStack;
  readonly template: Template;
}

/** The full example's stack on placeholder code; `overrides` replace the default props. */
export function buildStack(overrides: Partial<FullDeploymentProps> = {}): Built {
  const app = newApp();
  const stack = newStack(app, overrides);
  return { app, stack, template: Template.fromStack(stack) };
}

export function newStack(app: App, overrides: Partial<FullDeploymentProps> = {}): FullDeploymentStack {
  return new FullDeploymentStack(app, 'TenantRouter', {
    routerConfig: ROUTER_CONFIG,
    routerCode: RustCode.placeholder(),
    backendCode: RustCode.placeholder(),
    ...overrides,
  });
}

let defaultBuild: Built | undefined;

/** The default full stack, built once per test process and shared by read-only tests. */
export function defaultStack(): Built {
  defaultBuild ??= buildStack();
  return defaultBuild;
}

/** A stack with a PER_TENANT Python-style backend, for the construct's own tests. */
export function backendStack(app: App = newApp(), id = 'Consumer'): { stack: Stack; backend: lambda.Function } {
  const stack = new Stack(app, id);
  const backend = new lambda.Function(stack, 'Backend', {
    runtime: lambda.Runtime.PYTHON_3_12,
    handler: 'app.handler',
    code: lambda.Code.fromInline('def handler(event, context):\n    return {}\n'),
    tenancyConfig: lambda.TenancyConfig.PER_TENANT,
    timeout: Duration.seconds(20),
  });
  return { stack, backend };
}

/** A TenantRouter on placeholder code in front of `backend`. */
export function newRouter(scope: Stack, backend: lambda.IFunction, props: Partial<TenantRouterProps> = {}): TenantRouter {
  return new TenantRouter(scope, 'Router', { backend, jwt: JWT, code: RustCode.placeholder(), ...props });
}

/** Logical id of a construct's CloudFormation resource (itself, or its default child). */
export function idOf(construct: IConstruct): string {
  const cfn = CfnResource.isCfnResource(construct) ? construct : construct.node.defaultChild;
  if (cfn === undefined || !CfnResource.isCfnResource(cfn)) {
    throw new Error(`${construct.node.path} has no CloudFormation resource`);
  }
  return Stack.of(construct).getLogicalId(cfn);
}

/** `{ "Fn::GetAtt": [id, "Arn"] }` and `{ Ref: id }`, the shapes references take. */
export const arn = (logicalId: string) => ({ 'Fn::GetAtt': [logicalId, 'Arn'] });
export const ref = (logicalId: string) => ({ Ref: logicalId });

/** A bundle directory whose `bootstrap` has an ELF header for `machine` (e_machine at byte 18), or is a shell script. */
export function fakeBundle(dir: string, machine: number | undefined): string {
  fs.mkdirSync(dir, { recursive: true });
  const header = Buffer.alloc(64);
  if (machine === undefined) {
    header.write('#!/bin/sh\necho not an ELF\n');
  } else {
    header.writeUInt32BE(0x7f454c46, 0);
    header.writeUInt16LE(machine, 18);
  }
  fs.writeFileSync(path.join(dir, 'bootstrap'), header, { mode: 0o755 });
  return dir;
}
