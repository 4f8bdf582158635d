#!/usr/bin/env node
// The full example app: the stack from CDK context, and the cdk-nag packs. `cdk deploy` in cdk/
// runs it (cdk.json).
import { App } from 'aws-cdk-lib';
import { addNagChecks } from '../nag';
import { stackPropsFromContext } from './context';
import { FullDeploymentStack } from './stack';

const app = new App();
new FullDeploymentStack(app, 'TenantRouter', {
  ...stackPropsFromContext(app.node),
  description: 'Tenant router: SQS, Kinesis and DynamoDB Streams to a tenant-isolated (PER_TENANT) Lambda backend',
});
addNagChecks(app);
