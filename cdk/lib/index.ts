// The package's entry point, and its whole public API: `TenantRouter` and its options, and the
// building blocks an app around it uses (the code of the Rust functions, the example Rust
// backend, a backend's idempotency table, its tenant access role, source queues, a data key).
// Everything else in lib/ is internal.
export { CargoLambdaOptions, RustCode, RustCodeBindOptions } from './code';
export { DataKey, DataKeyProps } from './data-key';
export { FailureDestination } from './destinations';
export { IdempotencyTable, IdempotencyTableProps } from './idempotency-table';
export { AlarmThresholds } from './monitoring';
export {
  DeliveryMode,
  InvocationType,
  InvocationTypes,
  JwtAlgorithm,
  JwtOptions,
  RecordLocations,
  RouterConfig,
  ValidationMode,
  ValidationModes,
} from './router-config';
export { RustBackend, RustBackendProps } from './rust-backend';
export { SourceQueue, SourceQueueProps } from './source-queue';
export { SqsSourceOptions, StreamSourceOptions } from './sources';
export {
  TenantAccessRole,
  TenantAccessRoleProps,
  TenantBucketPrefixOptions,
  TenantKeyOptions,
  TenantTableItemsOptions,
} from './tenant-access-role';
export { SuspendedTenants, TenantRegistryOptions } from './tenant-registry';
export { TenantRouter, TenantRouterProps } from './tenant-router';
