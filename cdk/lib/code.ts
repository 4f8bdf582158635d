// Where a Rust function's code comes from (`RustCode`): the bundle `scripts/build-lambda.sh`
// builds (checked for presence and architecture at synth), a build from source with the optional
// `cargo-lambda-cdk` package, or a placeholder for offline synthesis whose template CloudFormation
// refuses to deploy (a template Rule that always fails).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Aws, CfnRule, Fn, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';

/** What `RustCode.bind` needs to know about the function the code is for. */
export interface RustCodeBindOptions {
  /** The binary: `router` or `backend` (the bundle's directory name and the cargo binary). */
  readonly binaryName: string;
  /** The function's architecture; a bundle must have been built for it. */
  readonly architecture: lambda.Architecture;
  /** Entries besides `bootstrap` the bundle must hold, e.g. `tenants` for the example backend. @default none */
  readonly requiredEntries?: string[];
}

/** Options of {@link RustCode.fromCargoLambda}. */
export interface CargoLambdaOptions {
  /** The workspace's `Cargo.toml`. @default Cargo.toml at the root of this repository */
  readonly manifestPath?: string;
  /** Build in cargo-lambda's Docker image even when `cargo lambda` is installed. @default false */
  readonly forcedDockerBundling?: boolean;
  /** Environment variables for the build. @default none */
  readonly environment?: { [name: string]: string };
}

/**
 * The code of a Rust function of this project (the router, or the example backend). A bundle is
 * a directory holding the `bootstrap` executable for `provided.al2023`.
 */
export abstract class RustCode {
  /**
   * The bundle `scripts/build-lambda.sh` builds: `<directory>/bootstrap`. Synthesis fails, naming
   * the build command, when it is missing or built for another architecture than the function's.
   * @param directory the bundle's directory; default `target/lambda/<binary>` of this repository
   */
  public static fromBundle(directory?: string): RustCode {
    return new BundleCode(directory);
  }

  /**
   * Builds the binary from source at synth with `cargo-lambda-cdk` (an npm package to install
   * next to this one; it runs `cargo lambda build`, or Docker without cargo-lambda).
   */
  public static fromCargoLambda(options: CargoLambdaOptions = {}): RustCode {
    return new CargoLambdaCode(options);
  }

  /**
   * A placeholder `bootstrap` that fails every invocation, so templates can be synthesized and
   * tested without building Rust. The stack gets a template Rule that always fails: CloudFormation
   * refuses to create or update it, before touching any resource.
   */
  public static placeholder(): RustCode {
    return new PlaceholderCode();
  }

  /** The Lambda code for the function described by `options`; throws when it cannot be deployed. */
  public abstract bind(scope: Construct, options: RustCodeBindOptions): lambda.Code;
}

/** The build command for an architecture, as the errors name it. */
function buildCommand(architecture: lambda.Architecture): string {
  return architecture.name === lambda.Architecture.ARM_64.name ? './scripts/build-lambda.sh arm64' : './scripts/build-lambda.sh';
}

/** ELF `e_machine` values (System V ABI) of the two Lambda architectures. */
const ELF_MACHINES: { readonly [machine: number]: string } = { 0x3e: 'x86_64', 0xb7: 'arm64' };

/** The architecture an ELF executable was built for, read from its header (`e_machine`, byte 18, little-endian). */
function elfArchitecture(file: string): string | undefined {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  try {
    if (fs.readSync(fd, header, 0, header.length, 0) < header.length) {
      return undefined;
    }
  } finally {
    fs.closeSync(fd);
  }
  if (header.readUInt32BE(0) !== 0x7f454c46) {
    return undefined;
  }
  return ELF_MACHINES[header.readUInt16LE(18)] ?? `machine 0x${header.readUInt16LE(18).toString(16)}`;
}

class BundleCode extends RustCode {
  constructor(private readonly directory?: string) {
    super();
  }

  public bind(_scope: Construct, options: RustCodeBindOptions): lambda.Code {
    const dir = this.directory ?? defaultBundleDirectory(options.binaryName);
    const build = buildCommand(options.architecture);
    const bootstrap = path.join(dir, 'bootstrap');
    if (!fs.existsSync(bootstrap)) {
      throw new Error(`${options.binaryName}: ${bootstrap} not found; build the bundle with ${build}`);
    }
    const built = elfArchitecture(bootstrap);
    if (built === undefined) {
      throw new Error(`${options.binaryName}: ${bootstrap} is not an ELF executable; build the bundle with ${build}`);
    }
    if (built !== options.architecture.name) {
      throw new Error(
        `${options.binaryName}: ${bootstrap} is built for ${built}, but the function's architecture is ` +
          `${options.architecture.name}; build the bundle with ${build}, or set the architecture to ${built}`,
      );
    }
    for (const entry of options.requiredEntries ?? []) {
      if (!fs.existsSync(path.join(dir, entry))) {
        throw new Error(`${options.binaryName}: ${path.join(dir, entry)} not found; build the bundle with ${build}`);
      }
    }
    return lambda.Code.fromAsset(dir);
  }
}

/** The part of cargo-lambda-cdk's API this module uses. */
interface CargoLambdaCdk {
  readonly Bundling: {
    bundle(props: {
      readonly manifestPath: string;
      readonly binaryName?: string;
      readonly architecture?: lambda.Architecture;
      readonly forcedDockerBundling?: boolean;
      readonly environment?: { [name: string]: string };
    }): lambda.Code;
  };
}

class CargoLambdaCode extends RustCode {
  constructor(private readonly options: CargoLambdaOptions) {
    super();
  }

  public bind(_scope: Construct, options: RustCodeBindOptions): lambda.Code {
    let cargoLambda: CargoLambdaCdk;
    try {
      // Loaded on use only: the package is optional, and most users deploy prebuilt bundles.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      cargoLambda = require('cargo-lambda-cdk') as CargoLambdaCdk;
    } catch {
      throw new Error(
        `${options.binaryName}: RustCode.fromCargoLambda needs the npm package cargo-lambda-cdk ` +
          '(npm install cargo-lambda-cdk; in Python, pip install cargo-lambda-cdk and import cargo_lambda_cdk), ' +
          `or build the bundle with ${buildCommand(options.architecture)} and use RustCode.fromBundle()`,
      );
    }
    return cargoLambda.Bundling.bundle({
      manifestPath: this.options.manifestPath ?? path.join(repositoryRoot(), 'Cargo.toml'),
      binaryName: options.binaryName,
      architecture: options.architecture,
      forcedDockerBundling: this.options.forcedDockerBundling,
      environment: this.options.environment,
    });
  }
}

/** The construct id of the Rule that makes a template with placeholder code undeployable. */
export const PLACEHOLDER_RULE_ID = 'PlaceholderCodeCannotBeDeployed';

const PLACEHOLDER_BOOTSTRAP =
  '#!/bin/sh\n' +
  '# Placeholder written by tenant-router-cdk for synthesis and tests; it is not a real function.\n' +
  'echo "placeholder bootstrap: build the real bundles with scripts/build-lambda.sh" >&2\n' +
  'exit 1\n';

/** Staged placeholder bundles of this process, by binary and entries (their contents are fixed, so the asset hashes are stable). */
const stagedPlaceholders = new Map<string, string>();

class PlaceholderCode extends RustCode {
  public bind(scope: Construct, options: RustCodeBindOptions): lambda.Code {
    markUndeployable(Stack.of(scope));
    const entries = options.requiredEntries ?? [];
    const key = [options.binaryName, ...entries].join('\0');
    let dir = stagedPlaceholders.get(key);
    if (dir === undefined) {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), `tenant-router-placeholder-${options.binaryName}-`));
      fs.writeFileSync(path.join(dir, 'bootstrap'), PLACEHOLDER_BOOTSTRAP, { mode: 0o755 });
      for (const entry of entries) {
        fs.mkdirSync(path.join(dir, entry));
        fs.writeFileSync(path.join(dir, entry, 'placeholder.json'), '{"placeholder": true}\n');
      }
      stagedPlaceholders.set(key, dir);
    }
    return lambda.Code.fromAsset(dir);
  }
}

/**
 * Adds (once per stack) a template Rule whose assertion can never hold: CloudFormation evaluates
 * rules before it creates or updates anything, so the stack cannot be deployed at all, while
 * synthesis, tests and linters work. Nothing outside the template (no environment variable) can
 * turn it off.
 */
function markUndeployable(stack: Stack): void {
  if (stack.node.tryFindChild(PLACEHOLDER_RULE_ID) !== undefined) {
    return;
  }
  new CfnRule(stack, PLACEHOLDER_RULE_ID, {
    assertions: [
      {
        assert: Fn.conditionEquals(Aws.REGION, 'placeholder-code-cannot-be-deployed'),
        assertDescription:
          'This template was synthesized with placeholder Lambda code (RustCode.placeholder(), for tests) and cannot be ' +
          'deployed. Build the bundles with ./scripts/build-lambda.sh and synthesize without placeholders.',
      },
    ],
  });
}

/**
 * The repository root: the nearest directory above `start` holding both `Cargo.toml` and
 * `cdk/`. Found by walking up, so it is right from `lib/` (sources and compiled alike).
 */
export function repositoryRoot(start: string = __dirname): string {
  let dir = path.resolve(start);
  for (;;) {
    if (fs.existsSync(path.join(dir, 'Cargo.toml')) && fs.existsSync(path.join(dir, 'cdk'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new Error(
        `no repository root (a directory with Cargo.toml and cdk/) above ${start}: give the bundle's directory, ` +
          'RustCode.fromBundle(directory)',
      );
    }
    dir = parent;
  }
}

/** `target/lambda/<binary>` at the repository root: where scripts/build-lambda.sh puts the bundle. */
export function defaultBundleDirectory(binaryName: string): string {
  return path.join(repositoryRoot(), 'target', 'lambda', binaryName);
}
