// `TenantAccessRole`: tenant-scoped data access for a tenant-isolated (PER_TENANT) backend. Lambda
// gives every tenant's environment the same execution role; with this construct the execution
// role may only assume the access role with a `tenant_id` session tag, and every data permission
// of the access role is scoped by `${aws:PrincipalTag/tenant_id}` (attribute-based access
// control), so the credentials a tenant's handler gets reach that tenant's items, objects,
// parameters and secrets only. The backend's guard assumes the role named by
// `BACKEND_TENANT_ROLE_ARN` once its environment is pinned to its tenant.
import { ArnFormat, Aws, Stack, Token, Validations } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct, IConstruct } from 'constructs';
import { backendFacts, tenancyProblems } from './backend-isolation';
import { IDEMPOTENCY_RECORD_ACTIONS } from './idempotency-table';
import { nagResourceName } from './nag';

/** The backend's variable naming the access role its guard assumes for each tenant. */
export const TENANT_ROLE_VARIABLE = 'BACKEND_TENANT_ROLE_ARN';

/** The session tag the guard sets to the environment's tenant id (`Tags`, `TransitiveTagKeys`). */
export const TENANT_TAG = 'tenant_id';

/** The IAM policy variable every data permission of the access role is scoped by. */
export const TENANT_TAG_VARIABLE = '${aws:PrincipalTag/tenant_id}';

/**
 * Item actions `dynamodb:LeadingKeys` scopes (each names the partition key of every item it
 * touches): `grantTableItems`'s default and the most it grants. No Scan (it reads every
 * partition), no PartiQL, no index ARN (a Query on an index is scoped by the index's own
 * partition key, not the table's).
 */
export const TENANT_TABLE_ITEM_ACTIONS = [
  'dynamodb:BatchGetItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:ConditionCheckItem',
  'dynamodb:DeleteItem',
  'dynamodb:GetItem',
  'dynamodb:PutItem',
  'dynamodb:Query',
  'dynamodb:UpdateItem',
];

/** Services whose permissions an execution role under a TenantAccessRole must not hold (the data services, and `*`). */
const DATA_SERVICES = ['dynamodb', 's3', 'ssm', 'secretsmanager'];

/** Properties of a {@link TenantAccessRole}. */
export interface TenantAccessRoleProps {
  /**
   * The tenant-isolated (PER_TENANT) function whose guard assumes the role: a `lambda.Function`
   * defined in this app, or a version or alias of one. Its execution role gets `sts:AssumeRole`
   * and `sts:TagSession` on the access role and must hold no DynamoDB, S3, SSM or Secrets Manager
   * permission of its own (a synth error otherwise); it gets `BACKEND_TENANT_ROLE_ARN`. An
   * imported function is refused: CDK can neither set its environment nor see its execution role.
   */
  readonly backend: lambda.IFunction;
  /**
   * The backend's idempotency table (`BACKEND_IDEMPOTENCY_TABLE`, Powertools' layout): the guard
   * reaches it with the tenant's credentials, so the access role gets its records, each tenant
   * its own: `IDEMPOTENCY_RECORD_ACTIONS` on the table with `dynamodb:LeadingKeys` limited to
   * `<backend function name>#${aws:PrincipalTag/tenant_id}#*` (the record id is
   * `<function>#<tenant>#<idempotencyKey>`), and kms:Decrypt on its key through DynamoDB only.
   * Do not grant the table to the execution role as well.
   * @default none: give the table with `grantTableItems` yourself, or the backend has no table
   */
  readonly idempotencyTable?: dynamodb.ITable;
  /** The role's description. @default "Tenant-scoped data access of <backend path>, assumed by its guard with a tenant_id session tag" */
  readonly description?: string;
}

/** Options of {@link TenantAccessRole.grantTableItems}. */
export interface TenantTableItemsOptions {
  /**
   * What a tenant's partition keys start with before the tenant id: keys `<keyPrefix><tenant>`
   * and `<keyPrefix><tenant>#…` are the tenant's. No `*`, `?` or `$` (they would widen the
   * match); may hold CDK tokens (a function name).
   * @default "" (the partition key is the tenant id, or starts with `<tenant>#`)
   */
  readonly keyPrefix?: string;
  /** The item actions to grant, among `TENANT_TABLE_ITEM_ACTIONS`. @default all of TENANT_TABLE_ITEM_ACTIONS */
  readonly actions?: string[];
}

/** Options of {@link TenantAccessRole.grantBucketPrefix}. */
export interface TenantBucketPrefixOptions {
  /** Only read and list (s3:GetObject, s3:ListBucket); no s3:PutObject or s3:DeleteObject. @default false */
  readonly readOnly?: boolean;
}

/** Options of {@link TenantAccessRole.grantParameters} and {@link TenantAccessRole.grantSecrets}. */
export interface TenantKeyOptions {
  /**
   * The customer managed key the parameters (SecureString) or secrets are encrypted with: the
   * role gets kms:Decrypt on it through that service only (`kms:ViaService`).
   * @default none: the AWS managed key (aws/ssm, aws/secretsmanager), which needs no grant
   */
  readonly encryptionKey?: kms.IKey;
}

/**
 * The tenant access role of a tenant-isolated backend, and the only way its tenants reach data.
 *
 * Lambda runs every tenant's environment with the function's one execution role, so without this
 * the credentials in acme's environment read and erase globex's items, objects, parameters and
 * secrets. Here:
 * - the role's trust policy admits the backend's execution role only, and only with a `tenant_id`
 *   session tag and no other (`aws:RequestTag/tenant_id` non-empty, `aws:TagKeys` and
 *   `sts:TransitiveTagKeys` limited to `tenant_id`), for `sts:AssumeRole` and `sts:TagSession`;
 * - the execution role may `sts:AssumeRole` and `sts:TagSession` on this role and nothing else of
 *   the kind, and may hold no DynamoDB, S3, SSM or Secrets Manager permission (synth error);
 * - the backend gets `BACKEND_TENANT_ROLE_ARN`: its guard assumes the role, tagging the session
 *   with the environment's tenant, and hands the handler (and its own idempotency store) those
 *   credentials only;
 * - every grant below is scoped by `${aws:PrincipalTag/tenant_id}`, the session's tag.
 *
 * The `/` collision: Lambda's tenant ids may contain `/`, and a prefix grant for tenant `acme`
 * (`tenants/acme/*`) also covers tenant `acme/x`'s objects and parameters (`tenants/acme/x/…`).
 * Every prefix grant here ends in `/${aws:PrincipalTag/tenant_id}/*`, so only a `/` in the tag
 * could cross into another tenant's space; with `BACKEND_TENANT_ROLE_ARN` set the guards refuse
 * such tenant ids (`Tenant.Invalid`, permanent) before assuming anything. Keys of
 * `grantTableItems` are delimited by `#`, which no tenant id holds.
 *
 * What IAM cannot tell apart: every environment holds the execution role's own credentials (Lambda
 * puts them in the process environment), and the trust policy cannot know which tenant's
 * environment asks. The role stops a guard or handler bug from reaching another tenant's data
 * with the credentials it was given; code that reads the execution role's credentials itself can
 * still assume the role for any tenant (docs/threat-model.md).
 *
 * ```ts
 * const access = new TenantAccessRole(this, 'TenantAccess', { backend, idempotencyTable });
 * access.grantBucketPrefix(documents, 'tenants');
 * access.grantParameters('/tenants');
 * access.grantSecrets();
 * ```
 */
export class TenantAccessRole extends Construct {
  /** The access role: grant it data only through the methods below, each scoped by the tenant tag. */
  public readonly role: iam.Role;
  /** The backend's execution role, the only principal the role trusts. */
  public readonly executionRole: iam.IRole;
  /** The backend function that gets `BACKEND_TENANT_ROLE_ARN`. */
  public readonly backend: lambda.Function;

  constructor(scope: Construct, id: string, props: TenantAccessRoleProps) {
    super(scope, id);
    const facts = backendFacts(props.backend);
    const fn = facts.function;
    if (fn === undefined) {
      throw new Error(
        `backend: ${props.backend.node.path} is imported, so TenantAccessRole can neither set ${TENANT_ROLE_VARIABLE} ` +
          'on it nor see its execution role; give the lambda.Function defined in this app (or a version or alias of it). ' +
          'For a function defined elsewhere, create the TenantAccessRole in the app that defines it',
      );
    }
    if (fn.role === undefined) {
      throw new Error(`backend: ${fn.node.path} has no execution role CDK can see; give the function a role`);
    }
    if (tenantRoleVariableOf(fn) !== undefined) {
      throw new Error(
        `backend: ${fn.node.path} already has ${TENANT_ROLE_VARIABLE} in its environment; ` +
          'one TenantAccessRole per backend, and it sets the variable itself',
      );
    }
    this.backend = fn;
    this.executionRole = fn.role;

    this.role = new iam.Role(this, 'Role', {
      description:
        props.description ??
        `Tenant-scoped data access of ${fn.node.path}, assumed by its guard with a ${TENANT_TAG} session tag`,
      assumedBy: new iam.PrincipalWithConditions(new iam.SessionTagsPrincipal(new iam.ArnPrincipal(this.executionRole.roleArn)), {
        // The tag is present and not empty …
        StringLike: { [`aws:RequestTag/${TENANT_TAG}`]: '?*' },
        // … and it is the only one, transitive or not (ForAllValues alone would admit no tag at all).
        'ForAllValues:StringEquals': { 'aws:TagKeys': [TENANT_TAG], 'sts:TransitiveTagKeys': [TENANT_TAG] },
      }),
    });

    this.executionRole.addToPrincipalPolicy(
      new iam.PolicyStatement({ sid: 'AssumeTenantAccessRole', actions: ['sts:AssumeRole', 'sts:TagSession'], resources: [this.role.roleArn] }),
    );
    fn.addEnvironment(TENANT_ROLE_VARIABLE, this.role.roleArn);

    if (props.idempotencyTable !== undefined) {
      // The guard's record id is `<function>#<tenant>#<idempotencyKey>` (AWS_LAMBDA_FUNCTION_NAME:
      // the unqualified name), so a tenant's records are the keys that start with `<function>#<tenant>#`.
      this.grantTableItems(props.idempotencyTable, { keyPrefix: `${fn.functionName}#`, actions: IDEMPOTENCY_RECORD_ACTIONS });
    }

    this.node.addValidation({
      validate: () => [...tenancyProblems(facts), ...dataPermissionsOf(this.node.root, fn, this.executionRole)],
    });
  }

  /**
   * The items of `table` whose partition key is the tenant's: `options.actions` (default
   * {@link TENANT_TABLE_ITEM_ACTIONS}) on the table's ARN, with `ForAllValues:StringLike` on
   * `dynamodb:LeadingKeys` = `<keyPrefix>${aws:PrincipalTag/tenant_id}` or
   * `<keyPrefix>${aws:PrincipalTag/tenant_id}#*`; kms:Decrypt on the table's key, when CDK knows
   * it, through DynamoDB only (`kms:ViaService`). No index, no Scan.
   */
  public grantTableItems(table: dynamodb.ITable, options: TenantTableItemsOptions = {}): iam.Grant {
    const actions = options.actions ?? TENANT_TABLE_ITEM_ACTIONS;
    const unscoped = actions.filter((action) => !TENANT_TABLE_ITEM_ACTIONS.includes(action));
    if (actions.length === 0 || unscoped.length > 0) {
      throw new Error(
        `grantTableItems: options.actions must be item actions dynamodb:LeadingKeys scopes (${TENANT_TABLE_ITEM_ACTIONS.join(', ')})` +
          (unscoped.length > 0 ? `, got ${unscoped.join(', ')}` : ', got none'),
      );
    }
    const keyPrefix = options.keyPrefix ?? '';
    checkNoWildcards(this, 'grantTableItems: options.keyPrefix', keyPrefix);
    const grant = iam.Grant.addToPrincipal({
      grantee: this.role,
      actions,
      resourceArns: [table.tableArn],
      conditions: {
        'ForAllValues:StringLike': {
          'dynamodb:LeadingKeys': [`${keyPrefix}${TENANT_TAG_VARIABLE}`, `${keyPrefix}${TENANT_TAG_VARIABLE}#*`],
        },
      },
    });
    return this.withKey(grant, table.encryptionKey, ['kms:Decrypt'], 'dynamodb');
  }

  /**
   * The tenant's objects of `bucket`: s3:GetObject, s3:PutObject and s3:DeleteObject (only
   * s3:GetObject with `readOnly`) on `<prefix>/${aws:PrincipalTag/tenant_id}/*`, and
   * s3:ListBucket on the bucket where `s3:prefix` is like `<prefix>/${aws:PrincipalTag/tenant_id}/*`;
   * on the bucket's key, when CDK knows it, kms:Decrypt (and kms:GenerateDataKey to write)
   * through S3 only (`kms:ViaService`). `prefix`: a literal without leading or trailing `/`, `*`,
   * `?` or `$`; `""` for tenant directories at the top of the bucket.
   */
  public grantBucketPrefix(bucket: s3.IBucket, prefix: string, options: TenantBucketPrefixOptions = {}): iam.Grant {
    if (Token.isUnresolved(prefix)) {
      throw new Error('grantBucketPrefix: prefix must be a literal, so CDK can check that it cannot widen the grant');
    }
    if (/[*?$]/.test(prefix) || prefix.startsWith('/') || prefix.endsWith('/') || prefix.includes('//')) {
      throw new Error(
        `grantBucketPrefix: prefix ${JSON.stringify(prefix)} must not start or end with "/", hold "//", "*", "?" or "$" ` +
          `(objects are granted under <prefix>/${TENANT_TAG_VARIABLE}/*)`,
      );
    }
    const tenantPrefix = `${prefix === '' ? '' : `${prefix}/`}${TENANT_TAG_VARIABLE}/*`;
    const objects = bucket.arnForObjects(tenantPrefix);
    const grant = iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: options.readOnly === true ? ['s3:GetObject'] : ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
      resourceArns: [objects],
    }).combine(
      iam.Grant.addToPrincipal({
        grantee: this.role,
        actions: ['s3:ListBucket'],
        resourceArns: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [tenantPrefix] } },
      }),
    );
    this.acknowledgeWildcard(
      objects,
      `The objects of one tenant: the object ARN ends in /${TENANT_TAG_VARIABLE}/* (the session's tenant_id tag), ` +
        'so each tenant session reaches its own key space under the prefix only; tenant ids with "/" are refused by the guard.',
    );
    const keyActions = options.readOnly === true ? ['kms:Decrypt'] : ['kms:Decrypt', 'kms:GenerateDataKey'];
    return this.withKey(grant, bucket.encryptionKey, keyActions, 's3');
  }

  /**
   * The tenant's SSM parameters: ssm:GetParameter and ssm:GetParameters on the parameters under
   * `<path>/${aws:PrincipalTag/tenant_id}/` (nested names included), and kms:Decrypt on
   * `options.encryptionKey` through SSM only. `path`: a literal like `/tenants` (the guard's
   * `ssm:/tenants/<tenant>/<name>` references), starting with `/`, not ending with one.
   */
  public grantParameters(path: string, options: TenantKeyOptions = {}): iam.Grant {
    if (Token.isUnresolved(path)) {
      throw new Error('grantParameters: path must be a literal, so CDK can check that it cannot widen the grant');
    }
    if (!/^(\/[A-Za-z0-9_.-]+)+$/.test(path)) {
      throw new Error(
        `grantParameters: path ${JSON.stringify(path)} must be an SSM parameter path like "/tenants": "/" and then ` +
          `segments of letters, digits, "_", "." and "-", not ending with "/" (parameters are granted under <path>/${TENANT_TAG_VARIABLE}/*)`,
      );
    }
    const parameters = Stack.of(this).formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: `${path.slice(1)}/${TENANT_TAG_VARIABLE}/*`,
    });
    const grant = iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ['ssm:GetParameter', 'ssm:GetParameters'],
      resourceArns: [parameters],
    });
    this.acknowledgeWildcard(
      parameters,
      `The parameters of one tenant: the ARN ends in ${path}/${TENANT_TAG_VARIABLE}/* (the session's tenant_id tag), so each ` +
        'tenant session reads its own parameters only (GetParameter, GetParameters); tenant ids with "/" are refused by the guard.',
    );
    return this.withKey(grant, options.encryptionKey, ['kms:Decrypt'], 'ssm');
  }

  /**
   * The tenant's secrets: secretsmanager:GetSecretValue on the secrets of this account and region
   * whose `tenant_id` tag equals the session's (`secretsmanager:ResourceTag/tenant_id` =
   * `${aws:PrincipalTag/tenant_id}`; an untagged secret is nobody's), and kms:Decrypt on
   * `options.encryptionKey` through Secrets Manager only. Whoever may tag secrets decides who reads
   * them: keep secretsmanager:TagResource away from the backend.
   */
  public grantSecrets(options: TenantKeyOptions = {}): iam.Grant {
    const secrets = Stack.of(this).formatArn({ service: 'secretsmanager', resource: 'secret', resourceName: '*', arnFormat: ArnFormat.COLON_RESOURCE_NAME });
    const grant = iam.Grant.addToPrincipal({
      grantee: this.role,
      actions: ['secretsmanager:GetSecretValue'],
      resourceArns: [secrets],
      conditions: { StringEquals: { [`secretsmanager:ResourceTag/${TENANT_TAG}`]: TENANT_TAG_VARIABLE } },
    });
    this.acknowledgeWildcard(
      secrets,
      'Secrets Manager ARNs end in a random suffix and a tenant is named by its tag, not its secret name: GetSecretValue only, ' +
        `and only where secretsmanager:ResourceTag/${TENANT_TAG} equals the session's ${TENANT_TAG} tag (ABAC).`,
    );
    return this.withKey(grant, options.encryptionKey, ['kms:Decrypt'], 'secretsmanager');
  }

  /** `grant`, plus `actions` on `key` (when there is one) through `service` only. */
  private withKey(grant: iam.Grant, key: kms.IKey | undefined, actions: string[], service: string): iam.Grant {
    if (key === undefined) {
      return grant;
    }
    return grant.combine(
      iam.Grant.addToPrincipal({
        grantee: this.role,
        actions,
        resourceArns: [key.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `${service}.${Aws.REGION}.${Aws.URL_SUFFIX}` } },
      }),
    );
  }

  private acknowledgeWildcard(resource: string, reason: string): void {
    Validations.of(this.role).acknowledge({ id: `AwsSolutions-IAM5[Resource::${nagResourceName(this, resource)}]`, reason });
  }
}

/** `BACKEND_TENANT_ROLE_ARN` in the function's environment, if it is set. */
function tenantRoleVariableOf(fn: lambda.Function): unknown {
  const cfn = fn.node.defaultChild;
  if (!(cfn instanceof lambda.CfnFunction)) {
    return undefined;
  }
  const environment = Stack.of(fn).resolve(cfn.environment) as { variables?: { [name: string]: unknown } } | undefined;
  return environment?.variables?.[TENANT_ROLE_VARIABLE];
}

/** Refuses `*`, `?` and `$` in the literal parts of `value` (tokens aside). */
function checkNoWildcards(scope: IConstruct, what: string, value: string): void {
  const literals: string[] = [];
  const collect = (resolved: unknown): void => {
    if (typeof resolved === 'string') {
      literals.push(resolved);
    } else if (Array.isArray(resolved)) {
      resolved.forEach(collect);
    } else if (resolved !== null && typeof resolved === 'object' && 'Fn::Join' in resolved) {
      collect((resolved as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1]);
    }
  };
  collect(Stack.of(scope).resolve(value));
  if (literals.some((literal) => /[*?$]/.test(literal))) {
    throw new Error(`${what}: ${JSON.stringify(value)} must not hold "*", "?" or "$": they would widen dynamodb:LeadingKeys`);
  }
}

/**
 * The statements of the app that give `role` (the backend's execution role) an action of a data
 * service, as errors: every tenant's environment holds these credentials, so with an access role
 * they would undo it. Reads the role's inline policies, the policies and customer managed policies
 * attached to it in the app, and the names of the AWS managed policies it has.
 */
function dataPermissionsOf(root: IConstruct, fn: lambda.Function, role: iam.IRole): string[] {
  const cfnRole = role.node.defaultChild;
  if (!(cfnRole instanceof iam.CfnRole)) {
    return [];
  }
  const stack = Stack.of(cfnRole);
  const roleRef = JSON.stringify({ Ref: stack.getLogicalId(cfnRole) });
  const problems: string[] = [];
  const report = (where: string, document: unknown) => {
    const actions = dataActions(stack.resolve(document));
    if (actions.length > 0) {
      problems.push(
        `backend: the execution role ${role.node.path} of ${fn.node.path} may ${actions.join(', ')} (${where}); ` +
          "every tenant's environment holds the execution role's credentials, so with a TenantAccessRole it must hold no " +
          `${DATA_SERVICES.map((s) => `${s}:`).join(', ')} permission: grant the data to the access role (grantTableItems, ` +
          'grantBucketPrefix, grantParameters, grantSecrets) instead',
      );
    }
  };
  const inline = stack.resolve(cfnRole.policies) as { policyName?: string; policyDocument?: unknown }[] | undefined;
  for (const policy of inline ?? []) {
    report(`inline policy ${policy.policyName}`, policy.policyDocument);
  }
  for (const arn of ([] as unknown[]).concat(stack.resolve(cfnRole.managedPolicyArns) ?? [])) {
    const text = JSON.stringify(arn);
    const name = /iam::aws:policy\/(?:[\w-]+\/)*([\w-]+)/.exec(text)?.[1];
    if (name !== undefined && /DynamoDB|S3|SSM|SecretsManager|^AdministratorAccess$|^PowerUserAccess$|^ReadOnlyAccess$/.test(name)) {
      problems.push(
        `backend: the execution role ${role.node.path} of ${fn.node.path} has the AWS managed policy ${name}, which reaches ` +
          "data services; every tenant's environment holds the execution role's credentials: grant data to the access role instead",
      );
    }
  }
  for (const c of root.node.findAll()) {
    if (c instanceof iam.CfnPolicy || c instanceof iam.CfnManagedPolicy) {
      if (JSON.stringify(Stack.of(c).resolve(c.roles) ?? []).includes(roleRef) && Stack.of(c) === stack) {
        report(`policy ${c.node.path}`, c.policyDocument);
      }
    }
  }
  return problems;
}

/** The allowed actions of a policy document that belong to a data service (or are `*`). */
function dataActions(document: unknown): string[] {
  const statements = ([] as unknown[]).concat((document as { Statement?: unknown } | undefined)?.Statement ?? []);
  const found: string[] = [];
  for (const statement of statements as { Effect?: string; Action?: unknown; NotAction?: unknown }[]) {
    if (statement.Effect !== 'Allow') {
      continue;
    }
    if (statement.NotAction !== undefined) {
      found.push('NotAction');
      continue;
    }
    for (const action of ([] as unknown[]).concat(statement.Action ?? [])) {
      if (typeof action !== 'string') {
        continue;
      }
      const service = action.toLowerCase().split(':')[0];
      if (action === '*' || DATA_SERVICES.includes(service)) {
        found.push(action);
      }
    }
  }
  return found;
}
