// The Python backend's deployment package, built by CDK's asset bundling at synth: the pinned
// dependencies of requirements-lambda.txt installed with pip for the function's runtime and
// architecture, and the handler's modules (src/*.py) beside them, at the root of the zip.
//
// Local bundling first: `python3 -m pip install --require-hashes --only-binary=:all: --platform
// manylinux2014_<arch> --implementation cp --python-version 3.12 --target <asset>` on the machine
// that runs `cdk synth`/`cdk deploy`, no Docker. Without python3 and pip there, the same
// command runs in the runtime's SAM build image when Docker is usable; with neither, synthesis
// fails saying what to install. CDK bundles only the stacks a command deploys or synthesizes
// (`aws:cdk:bundling-stacks`); for the others it uses the directory as it is, without pip.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { BundlingOptions, IgnoreMode, ILocalBundling } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';

/** The requirements deployed with the function: every distribution, dependencies included, pinned with its hashes. */
export const REQUIREMENTS = 'requirements-lambda.txt';
/** The directory of the handler's modules. */
export const SOURCES = 'src';

export interface PythonBackendCodeProps {
  /** The project directory: `requirements-lambda.txt` and `src/`. */
  readonly projectDir: string;
  /** The function's runtime (a `python3.x` one): pip installs for its version, Docker uses its build image. */
  readonly runtime: lambda.Runtime;
  /** The function's architecture: pip installs wheels for its platform. */
  readonly architecture: lambda.Architecture;
  /** The interpreter whose pip installs the requirements locally. @default python3 */
  readonly python?: string;
  /**
   * Variables added to the environment of local bundling (pip's `PIP_INDEX_URL`, `PIP_FIND_LINKS`,
   * `PIP_NO_INDEX`, …; `CDK_DOCKER`). Not part of the asset's hash: the hashes pin what pip installs.
   */
  readonly environment?: { readonly [key: string]: string };
}

/** pip's platform tag for a Lambda architecture (what AWS documents for pip --platform). */
export function pipPlatform(architecture: lambda.Architecture): string {
  switch (architecture.name) {
    case lambda.Architecture.X86_64.name:
      return 'manylinux2014_x86_64';
    case lambda.Architecture.ARM_64.name:
      return 'manylinux2014_aarch64';
    default:
      throw new Error(`no pip platform for the Lambda architecture ${architecture.name}`);
  }
}

/** `3.12` for `python3.12`. */
export function pythonVersion(runtime: lambda.Runtime): string {
  const match = /^python(\d+\.\d+)$/.exec(runtime.name);
  if (runtime.family !== lambda.RuntimeFamily.PYTHON || !match) {
    throw new Error(`${runtime.name} is not a Python runtime`);
  }
  return match[1];
}

/**
 * `pip install` of `requirements` into `target` for the function, wherever pip runs: wheels only
 * (pip requires `--only-binary=:all:` with `--platform` and `--python-version`; no sdist is
 * built for the wrong machine), each file checked against its hash, dependencies resolved (so
 * `--require-hashes` also fails on a dependency that is not pinned), no bytecode for the local
 * interpreter's version.
 */
export function pipInstallArgs(runtime: lambda.Runtime, architecture: lambda.Architecture, requirements: string, target: string): string[] {
  return [
    'install',
    '--require-hashes',
    '--only-binary=:all:',
    '--platform', pipPlatform(architecture),
    '--implementation', 'cp',
    '--python-version', pythonVersion(runtime),
    '--no-compile',
    '--disable-pip-version-check',
    '--no-input',
    '--target', target,
    '-r', requirements,
  ];
}

/** The last `max` characters of a process's output. */
function tail(text: string, max = 8000): string {
  const trimmed = text.trim();
  return trimmed.length > max ? `…${trimmed.slice(-max)}` : trimmed;
}

/** Installs the requirements with the local python3's pip, then copies `src/*.py`. */
export class LocalPipBundling implements ILocalBundling {
  readonly #props: PythonBackendCodeProps;

  constructor(props: PythonBackendCodeProps) {
    this.#props = props;
    // Fail at construction, not at bundling, on a runtime or architecture pip cannot target.
    pipInstallArgs(props.runtime, props.architecture, REQUIREMENTS, '.');
  }

  public tryBundle(outputDir: string): boolean {
    const { projectDir, runtime, architecture } = this.#props;
    const python = this.#props.python ?? 'python3';
    const env = { ...process.env, ...this.#props.environment };
    const probe = spawnSync(python, ['-m', 'pip', '--version'], { env, encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      const why = probe.error ? probe.error.message : tail(`${probe.stdout}${probe.stderr}`, 500);
      const docker = env.CDK_DOCKER ?? 'docker';
      const dockerProbe = spawnSync(docker, ['version', '--format', '{{.Server.Version}}'], { env, encoding: 'utf8', timeout: 30_000 });
      if (!dockerProbe.error && dockerProbe.status === 0) {
        process.stderr.write(`${python} -m pip is not available (${why}); installing ${REQUIREMENTS} in Docker (${runtime.bundlingImage.image}) instead\n`);
        return false;
      }
      throw new Error(
        `packaging the Python backend needs python3 with pip on this machine (it runs \`${python} -m pip install -r ${REQUIREMENTS}\`; ` +
          `Debian/Ubuntu: apt-get install python3-pip; another interpreter: BACKEND_PYTHON=/path/to/python) or a running Docker ` +
          `(the fallback image ${runtime.bundlingImage.image}); neither works here: ${python}: ${why}; ${docker}: ` +
          `${dockerProbe.error ? dockerProbe.error.message : tail(`${dockerProbe.stdout}${dockerProbe.stderr}`, 500)}`,
      );
    }

    const args = ['-m', 'pip', ...pipInstallArgs(runtime, architecture, path.join(projectDir, REQUIREMENTS), outputDir)];
    const pip = spawnSync(python, args, { cwd: projectDir, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    if (pip.error || pip.status !== 0) {
      throw new Error(
        `${python} ${args.join(' ')} failed (${pip.error ? pip.error.message : `exit status ${pip.status}`}):\n${tail(`${pip.stdout}${pip.stderr}`)}`,
      );
    }

    const sourceDir = path.join(projectDir, SOURCES);
    const modules = fs.readdirSync(sourceDir).filter((name) => name.endsWith('.py')).sort();
    if (modules.length === 0) {
      throw new Error(`no Python module (*.py) in ${sourceDir}`);
    }
    for (const name of modules) {
      const target = path.join(outputDir, name);
      if (fs.existsSync(target)) {
        throw new Error(`${path.join(sourceDir, name)} has the name of a module a requirement installed (${target}); rename it`);
      }
      fs.copyFileSync(path.join(sourceDir, name), target);
    }
    return true;
  }

  /**
   * What CDK hashes of this object (it hashes the bundling options as JSON): the install
   * itself, never the interpreter, the environment or an absolute path of this machine, so the
   * asset's hash is the same wherever it is synthesized.
   */
  public toJSON(): { readonly pip: string[] } {
    return { pip: pipInstallArgs(this.#props.runtime, this.#props.architecture, REQUIREMENTS, '<asset>') };
  }
}

/**
 * The bundling options: local pip first (`local`); the same install in the runtime's SAM build
 * image (`public.ecr.aws/sam/build-python3.12`) when local bundling declines.
 */
export function pythonBundling(props: PythonBackendCodeProps): BundlingOptions {
  const install = pipInstallArgs(props.runtime, props.architecture, `/asset-input/${REQUIREMENTS}`, '/asset-output');
  return {
    image: props.runtime.bundlingImage,
    command: ['bash', '-c', `set -euo pipefail; python -m pip ${install.join(' ')} --no-cache-dir; cp /asset-input/${SOURCES}/*.py /asset-output/`],
    local: new LocalPipBundling(props),
  };
}

/**
 * The function's code: the project directory bundled by `pythonBundling`. Its hash (and so its
 * S3 key, and whether CloudFormation updates the function) covers `requirements-lambda.txt`,
 * `src/*.py` and the bundling options (runtime, architecture) and nothing else of the project
 * (its tests, other requirements, READMEs).
 */
export function pythonBackendCode(props: PythonBackendCodeProps): lambda.AssetCode {
  for (const [entry, isDirectory] of [[REQUIREMENTS, false], [SOURCES, true]] as const) {
    const file = path.join(props.projectDir, entry);
    if (!fs.existsSync(file) || fs.statSync(file).isDirectory() !== isDirectory) {
      throw new Error(`the Python backend's project ${props.projectDir} has no ${entry}${isDirectory ? '/' : ''}`);
    }
  }
  return lambda.Code.fromAsset(props.projectDir, {
    ignoreMode: IgnoreMode.GIT,
    exclude: ['*', `!/${SOURCES}/`, `!/${SOURCES}/*.py`, `!/${REQUIREMENTS}`],
    bundling: pythonBundling(props),
  });
}
