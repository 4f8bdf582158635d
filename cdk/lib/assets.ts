import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

/** The two Lambda bundles the project builds (`scripts/build-lambda.sh`). */
export type FunctionName = 'router' | 'backend';

/**
 * The repository root: the nearest directory above this file holding both `Cargo.toml` and
 * `cdk/`. Found by walking up, so it is right whether this file runs from `lib/` (ts-node) or
 * from a compiled output directory.
 */
export function repositoryRoot(start: string = __dirname): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'Cargo.toml')) && fs.existsSync(path.join(dir, 'cdk'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(`no repository root (a directory with Cargo.toml and cdk/) above ${start}`);
    }
    dir = parent;
  }
}

/** `target/lambda/<name>` at the repository root: where scripts/build-lambda.sh puts the bundle. */
export function defaultAssetPath(name: FunctionName): string {
  return path.join(repositoryRoot(), 'target', 'lambda', name);
}

/**
 * Checks that a bundle directory is deployable before CDK hashes it: a `bootstrap` file (and,
 * for the backend, a `tenants/` folder). The error says how to build one.
 */
export function checkAssetDirectory(name: FunctionName, dir: string): void {
  const hint =
    'build the Lambda bundles with scripts/build-lambda.sh, or synthesize with placeholders: ' +
    '`cdk synth -c placeholderAssets=true`';
  if (!fs.existsSync(path.join(dir, 'bootstrap'))) {
    throw new Error(`${name}: ${path.join(dir, 'bootstrap')} not found; ${hint}`);
  }
  if (name === 'backend' && !fs.existsSync(path.join(dir, 'tenants'))) {
    throw new Error(`backend: ${path.join(dir, 'tenants')} not found; ${hint}`);
  }
}

/** The bundle directories staged by {@link stagePlaceholderAssets}. */
export interface PlaceholderAssets {
  readonly router: string;
  readonly backend: string;
}

const PLACEHOLDER_BOOTSTRAP =
  '#!/bin/sh\n' +
  '# Placeholder written by the CDK app for synthesis and tests; it is not the router or the backend.\n' +
  'echo "placeholder bootstrap: build the real bundles with scripts/build-lambda.sh" >&2\n' +
  'exit 1\n';

/**
 * Writes placeholder bundles (a `bootstrap` that exits 1, and a backend `tenants/` folder) into
 * a fresh temporary directory, so templates can be synthesized and tested without compiling
 * Rust. The contents are fixed, so the asset hashes are stable. Never deploy them: the functions
 * would fail every invocation.
 */
export function stagePlaceholderAssets(parent: string = os.tmpdir()): PlaceholderAssets {
  const root = fs.mkdtempSync(path.join(parent, 'tenant-router-placeholder-'));
  const router = path.join(root, 'router');
  const backend = path.join(root, 'backend');
  for (const dir of [router, backend]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'bootstrap'), PLACEHOLDER_BOOTSTRAP, { mode: 0o755 });
  }
  fs.mkdirSync(path.join(backend, 'tenants'));
  fs.writeFileSync(path.join(backend, 'tenants', 'placeholder.json'), '{"displayName": "placeholder"}\n');
  return { router, backend };
}
