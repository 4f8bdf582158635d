#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { stackPropsFromContext } from '../lib/context';
import { addNagChecks } from '../lib/nag';
import { TenantRouterStack } from '../lib/tenant-router-stack';

const app = new App();
new TenantRouterStack(app, 'TenantRouter', {
  ...stackPropsFromContext(app.node),
  description: 'Tenant router: SQS, Kinesis and DynamoDB Streams to a tenant-isolated (PER_TENANT) Lambda backend',
});
addNagChecks(app);
