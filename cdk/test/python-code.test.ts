// The Python backend's package (examples/bring-your-own/python-code.ts): the pip command for the
// function's runtime and architecture, the Docker fallback, the asset hash (what changes it and
// what does not), no pip outside `aws:cdk:bundling-stacks`, the errors; and one real local
// bundling through CDK, from a wheelhouse of requirements-lambda.txt kept in
// target/python-backend/lambda-wheels (downloaded from PyPI once, offline after; skipped without
// python3 and pip, or offline without the wheelhouse).
import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { App, AssetStaging, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  LocalPipBundling,
  PythonBackendCodeProps,
  REQUIREMENTS,
  pipInstallArgs,
  pythonBackendCode,
  pythonBundling,
  pythonVersion,
} from '../examples/bring-your-own/python-code';
import { CDK_CONTEXT } from './helpers';

const REPO = path.join(__dirname, '..', '..');
const PROJECT = path.join(REPO, 'examples', 'python-backend');
const WHEELS = path.join(REPO, 'target', 'python-backend', 'lambda-wheels');
const RUNTIME = lambda.Runtime.PYTHON_3_12;
/** Whatever bundling would run fails at once: neither this python nor this docker exists. */
const NO_TOOLS = { python: '/nonexistent/python3', environment: { CDK_DOCKER: '/nonexistent/docker' } };

function tempDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A python with pip: the backend's venv (scripts/fetch-python-backend.sh), else python3. */
function findPython(): string | undefined {
  for (const candidate of [path.join(REPO, 'target', 'python-backend', 'venv', 'bin', 'python'), 'python3']) {
    const probe = spawnSync(candidate, ['-m', 'pip', '--version'], { encoding: 'utf8' });
    if (!probe.error && probe.status === 0) {
      return candidate;
    }
  }
  return undefined;
}

/** requirements-lambda.txt's wheels, checked against its hashes; downloaded when the file changed. */
function wheelhouse(python: string): { dir?: string; skip?: string } {
  const requirements = path.join(PROJECT, REQUIREMENTS);
  const stamp = crypto.createHash('sha256').update(fs.readFileSync(requirements)).digest('hex');
  const stampFile = path.join(WHEELS, 'requirements.sha256');
  if (fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === stamp) {
    return { dir: WHEELS };
  }
  const partial = `${WHEELS}.partial-${process.pid}`;
  fs.rmSync(partial, { recursive: true, force: true });
  fs.mkdirSync(partial, { recursive: true });
  const download = spawnSync(
    python,
    ['-m', 'pip', 'download', '--require-hashes', '--only-binary=:all:', '--platform', 'manylinux2014_x86_64', '--implementation', 'cp',
      '--python-version', pythonVersion(RUNTIME), '--disable-pip-version-check', '--quiet', '--dest', partial, '-r', requirements],
    { encoding: 'utf8', timeout: 300_000 },
  );
  if (download.error || download.status !== 0) {
    fs.rmSync(partial, { recursive: true, force: true });
    return { skip: `no wheelhouse in ${WHEELS} and pip download failed (offline?): ${download.error?.message ?? download.stderr.trim().slice(-300)}` };
  }
  fs.writeFileSync(path.join(partial, 'requirements.sha256'), `${stamp}\n`);
  fs.rmSync(WHEELS, { recursive: true, force: true });
  fs.renameSync(partial, WHEELS);
  return { dir: WHEELS };
}

interface Synthesized {
  /** The function's S3 key: the asset's hash. */
  readonly key: string;
  /** The directory the asset manifest uploads. */
  readonly assetPath: string;
}

/** One stack with the backend on `pythonBackendCode`, bundled or not. */
function synth({ bundle, ...props }: Partial<PythonBackendCodeProps> & { bundle: boolean }): Synthesized {
  AssetStaging.clearAssetHashCache();
  const outdir = tempDir('python-code-');
  const app = new App({ outdir, context: { ...CDK_CONTEXT, 'aws:cdk:bundling-stacks': bundle ? ['**'] : [] } });
  const stack = new Stack(app, 'Backend');
  const architecture = props.architecture ?? lambda.Architecture.X86_64;
  const fn = new lambda.Function(stack, 'Fn', {
    runtime: RUNTIME,
    architecture,
    handler: 'app.handler',
    code: pythonBackendCode({ projectDir: PROJECT, runtime: RUNTIME, architecture, ...props }),
  });
  app.synth();
  const template = JSON.parse(fs.readFileSync(path.join(outdir, 'Backend.template.json'), 'utf8'));
  const key: string = template.Resources[stack.getLogicalId(fn.node.defaultChild as lambda.CfnFunction)].Properties.Code.S3Key;
  const assets = JSON.parse(fs.readFileSync(path.join(outdir, 'Backend.assets.json'), 'utf8'));
  const source = assets.files[key.replace(/\.zip$/, '')].source;
  assert.equal(source.packaging, 'zip');
  return { key, assetPath: path.resolve(outdir, source.path) };
}

const python = findPython();

describe('the Python backend package: pip for the runtime and the architecture', () => {
  it('installs the hash-pinned requirements as wheels for python3.12 on the function architecture', () => {
    const common = ['--implementation', 'cp', '--python-version', '3.12', '--no-compile', '--disable-pip-version-check', '--no-input', '--target', 'out', '-r', 'req.txt'];
    assert.deepEqual(pipInstallArgs(RUNTIME, lambda.Architecture.X86_64, 'req.txt', 'out'), [
      'install', '--require-hashes', '--only-binary=:all:', '--platform', 'manylinux2014_x86_64', ...common,
    ]);
    assert.deepEqual(pipInstallArgs(RUNTIME, lambda.Architecture.ARM_64, 'req.txt', 'out'), [
      'install', '--require-hashes', '--only-binary=:all:', '--platform', 'manylinux2014_aarch64', ...common,
    ]);
    // No --no-deps: pip resolves the dependencies, so an unpinned one fails under --require-hashes.
    assert.ok(!pipInstallArgs(RUNTIME, lambda.Architecture.X86_64, 'r', 't').includes('--no-deps'));
    assert.equal(pythonVersion(lambda.Runtime.PYTHON_3_13), '3.13');
    assert.throws(() => pythonVersion(lambda.Runtime.NODEJS_22_X), /nodejs22.x is not a Python runtime/);
    assert.throws(() => new LocalPipBundling({ projectDir: PROJECT, runtime: lambda.Runtime.NODEJS_22_X, architecture: lambda.Architecture.X86_64 }), /not a Python runtime/);
  });

  it('falls back to the same install in the runtime SAM build image', () => {
    const bundling = pythonBundling({ projectDir: PROJECT, runtime: RUNTIME, architecture: lambda.Architecture.ARM_64 });
    assert.equal(bundling.image.image, 'public.ecr.aws/sam/build-python3.12');
    assert.deepEqual(bundling.command, [
      'bash',
      '-c',
      'set -euo pipefail; python -m pip ' +
        [...pipInstallArgs(RUNTIME, lambda.Architecture.ARM_64, '/asset-input/requirements-lambda.txt', '/asset-output'), '--no-cache-dir'].join(' ') +
        '; cp /asset-input/src/*.py /asset-output/',
    ]);
    assert.ok(bundling.local instanceof LocalPipBundling);
  });

  it('refuses a project without requirements-lambda.txt or src/', () => {
    const empty = tempDir('python-project-');
    assert.throws(() => pythonBackendCode({ projectDir: empty, runtime: RUNTIME, architecture: lambda.Architecture.X86_64 }), /has no requirements-lambda\.txt/);
    fs.writeFileSync(path.join(empty, REQUIREMENTS), '');
    assert.throws(() => pythonBackendCode({ projectDir: empty, runtime: RUNTIME, architecture: lambda.Architecture.X86_64 }), /has no src\//);
  });
});

describe('the Python backend asset without bundling (stacks outside aws:cdk:bundling-stacks)', () => {
  it('runs no pip: the asset is the project directory as it is', () => {
    const { assetPath } = synth({ bundle: false, ...NO_TOOLS });
    assert.equal(assetPath, PROJECT);
  });

  it('has a hash that follows requirements-lambda.txt, src/*.py and the architecture, and nothing else', () => {
    const project = tempDir('python-project-');
    fs.cpSync(PROJECT, project, { recursive: true });
    const key = (props: Partial<PythonBackendCodeProps> = {}) => synth({ bundle: false, ...NO_TOOLS, projectDir: project, ...props }).key;
    const base = key();
    const edited = (file: string, change: () => string) => {
      const target = path.join(project, file);
      const before = fs.existsSync(target) ? fs.readFileSync(target) : undefined;
      fs.mkdirSync(path.dirname(target), { recursive: true });
      fs.appendFileSync(target, '\n# edited\n');
      try {
        return change();
      } finally {
        if (before === undefined) {
          fs.rmSync(target);
        } else {
          fs.writeFileSync(target, before);
        }
      }
    };
    for (const file of ['README.md', 'requirements.txt', 'requirements-dev.txt', 'tests/conftest.py', 'bootstrap', 'src/__pycache__/app.cpython-312.pyc', 'src/notes.txt']) {
      assert.equal(edited(file, () => key()), base, `${file} is not deployed`);
    }
    for (const file of [REQUIREMENTS, 'src/app.py', 'src/guard.py', 'src/new_module.py']) {
      assert.notEqual(edited(file, () => key()), base, `${file} is deployed`);
    }
    assert.notEqual(key({ architecture: lambda.Architecture.ARM_64 }), base, 'arm64 wheels are another asset');
    // The interpreter and pip's environment are this machine's, not the asset's.
    assert.equal(key({ python: 'python3', environment: { PIP_INDEX_URL: 'https://mirror.example.com/simple' } }), base);
    assert.equal(key(), base);
  });
});

describe('the Python backend asset bundled locally (python3 -m pip, no Docker)', () => {
  it('fails with what to install when neither python3 with pip nor Docker works', () => {
    const bundling = new LocalPipBundling({ projectDir: PROJECT, runtime: RUNTIME, architecture: lambda.Architecture.X86_64, ...NO_TOOLS });
    assert.throws(
      () => bundling.tryBundle(tempDir('python-out-')),
      /packaging the Python backend needs python3 with pip on this machine .*apt-get install python3-pip.*BACKEND_PYTHON=.*or a running Docker \(the fallback image public\.ecr\.aws\/sam\/build-python3\.12\); neither works here: \/nonexistent\/python3: spawnSync \/nonexistent\/python3 ENOENT; \/nonexistent\/docker: spawnSync \/nonexistent\/docker ENOENT/,
    );
  });

  it('leaves it to Docker when python3 with pip is missing and Docker answers', () => {
    const out = tempDir('python-out-');
    const bundling = new LocalPipBundling({ projectDir: PROJECT, runtime: RUNTIME, architecture: lambda.Architecture.X86_64, python: '/nonexistent/python3', environment: { CDK_DOCKER: 'true' } });
    assert.equal(bundling.tryBundle(out), false);
    assert.deepEqual(fs.readdirSync(out), []);
  });

  const wheels = python ? wheelhouse(python) : { skip: 'no python3 with pip' };
  const skip = wheels.skip ?? false;
  /** pip with the wheelhouse as its only index. */
  const offline = () => ({ python, environment: { PIP_NO_INDEX: '1', PIP_FIND_LINKS: wheels.dir! } });

  it('bundles Powertools, boto3 and what they need with src/*.py at the root, the hash unchanged, importable', { skip }, () => {
    const bundled = synth({ bundle: true, ...offline() });
    // The template synthesized without bundling names the same asset.
    assert.equal(bundled.key, synth({ bundle: false, ...NO_TOOLS }).key);
    const asset = bundled.assetPath;
    assert.notEqual(asset, PROJECT);
    const entries = fs.readdirSync(asset);
    const pins = [...fs.readFileSync(path.join(PROJECT, REQUIREMENTS), 'utf8').matchAll(/^([A-Za-z0-9_.-]+)==(\S+)/gm)];
    assert.ok(pins.length >= 9, pins.join(' '));
    for (const [, name, version] of pins) {
      assert.ok(entries.includes(`${name.replace(/[-.]/g, '_')}-${version}.dist-info`), `${name} ${version} in ${entries.join(' ')}`);
    }
    for (const dir of ['aws_lambda_powertools', 'boto3', 'botocore', 'jmespath', 'dateutil', 's3transfer', 'urllib3']) {
      assert.ok(fs.statSync(path.join(asset, dir)).isDirectory(), dir);
    }
    const modules = fs.readdirSync(path.join(PROJECT, 'src')).filter((f) => f.endsWith('.py'));
    assert.ok(modules.includes('app.py'));
    for (const module of modules) {
      assert.deepEqual(fs.readFileSync(path.join(asset, module)), fs.readFileSync(path.join(PROJECT, 'src', module)), module);
    }
    for (const absent of ['src', 'tests', REQUIREMENTS, 'requirements.txt', 'README.md', 'bootstrap']) {
      assert.ok(!entries.includes(absent), absent);
    }
    // --no-compile: no bytecode of the local interpreter's version.
    assert.deepEqual(fs.readdirSync(asset, { recursive: true }).filter((f) => String(f).endsWith('.pyc')), []);
    // The handler imports with nothing but the standard library and the asset on the path.
    const check = spawnSync(
      python!,
      ['-I', '-S', '-c', 'import sys; sys.path.insert(0, sys.argv[1]); import app, aws_lambda_powertools, boto3; assert callable(app.handler); print(aws_lambda_powertools.__file__)', asset],
      { cwd: tempDir('python-import-'), env: { PATH: process.env.PATH }, encoding: 'utf8' },
    );
    assert.equal(check.status, 0, check.stderr);
    // (after the app's warning on stdout: no idempotency table here)
    assert.equal(check.stdout.trim().split('\n').pop(), path.join(asset, 'aws_lambda_powertools', '__init__.py'));
  });

  /** A project of one module and the given requirements. */
  const project = (requirements: string, module = 'app.py') => {
    const dir = tempDir('python-project-');
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', module), 'def handler(event, context):\n    return event\n');
    fs.writeFileSync(path.join(dir, REQUIREMENTS), requirements);
    return dir;
  };
  const bundle = (projectDir: string) =>
    new LocalPipBundling({ projectDir, runtime: RUNTIME, architecture: lambda.Architecture.X86_64, ...offline() }).tryBundle(tempDir('python-out-'));
  const six = /^six==1\.17\.0 \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+/m.exec(fs.readFileSync(path.join(PROJECT, REQUIREMENTS), 'utf8'))![0];

  it('fails on a file whose hash is not the pinned one, with pip\'s report', { skip }, () => {
    const tampered = project('six==1.17.0 --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000\n');
    assert.throws(() => bundle(tampered), /-m pip install --require-hashes .* failed \(exit status 1\):\n[^]*THESE PACKAGES DO NOT MATCH THE HASHES[^]*six==1\.17\.0/);
  });

  it('fails on a dependency the requirements do not pin (why there is no --no-deps)', { skip }, () => {
    const dateutil = /^python-dateutil==\S+ \\\n(?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+/m.exec(fs.readFileSync(path.join(PROJECT, REQUIREMENTS), 'utf8'))![0];
    assert.throws(() => bundle(project(dateutil)), /all requirements must have their versions pinned with ==[^]*six/);
    assert.equal(bundle(project(`${dateutil}${six}`)), true);
  });

  it('refuses a module of src/ that would replace one a requirement installed', { skip }, () => {
    assert.throws(() => bundle(project(six, 'six.py')), /src\/six\.py has the name of a module a requirement installed/);
  });
});
