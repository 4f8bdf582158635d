import * as fs from 'fs';
import * as path from 'path';
import { App, CfnResource, Duration, Stack } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { Template } from 'aws-cdk-lib/assertions';
import { PlaceholderAssets, stagePlaceholderAssets } from '../lib/assets';
import { RouterConfig } from '../lib/router-config';
import { TenantRouterStack, TenantRouterStackProps } from '../lib/tenant-router-stack';

/** The feature flags of cdk.json, so tests synthesize exactly what `cdk synth` does. */
export const CDK_CONTEXT: { [key: string]: unknown } = JSON.parse(
  fs.readFileSync(path.join(__dirname, '..', 'cdk.json'), 'utf8'),
).context;

let staged: PlaceholderAssets | undefined;

/** Placeholder bundles, staged once per test process: no test compiles Rust. */
export function placeholderAssets(): PlaceholderAssets {
  staged ??= stagePlaceholderAssets();
  return staged;
}

export const ROUTER_CONFIG: RouterConfig = {
  jwksUrl: 'https://issuer.example.com/.well-known/jwks.json',
  jwtIssuers: ['https://issuer.example.com'],
  jwtAudiences: ['tenant-router'],
};

export function newApp(context: { [key: string]: unknown } = {}): App {
  return new App({ context: { ...CDK_CONTEXT, ...context } });
}

export interface Built {
  readonly app: App;
  readonly stack: TenantRouterStack;
  readonly template: Template;
}

/** A stack on placeholder bundles; `overrides` replace the default props. */
export function buildStack(overrides: Partial<TenantRouterStackProps> = {}): Built {
  const app = newApp();
  const stack = newStack(app, overrides);
  return { app, stack, template: Template.fromStack(stack) };
}

export function newStack(app: App, overrides: Partial<TenantRouterStackProps> = {}): TenantRouterStack {
  const assets = placeholderAssets();
  return new TenantRouterStack(app, 'TenantRouter', {
    routerConfig: ROUTER_CONFIG,
    routerAssetPath: assets.router,
    backendAssetPath: assets.backend,
    ...overrides,
  });
}

let defaultBuild: Built | undefined;

/** The default stack, built once per test process and shared by read-only tests. */
export function defaultStack(): Built {
  defaultBuild ??= buildStack();
  return defaultBuild;
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

export const seconds = (d: Duration) => d.toSeconds();
