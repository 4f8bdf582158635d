#!/usr/bin/env bash
# Offline verification of the CDK app in cdk/: no AWS account, no Rust build.
#
#   1. npm ci                       (versions pinned by cdk/package-lock.json)
#   2. tsc --noEmit                 (type-check)
#   3. node --test                  (assertion tests: resources, every IAM statement, alarms,
#                                    tenant isolation, configuration, cdk-nag AwsSolutions + Serverless)
#   4. cdk synth                    (placeholder bundles; the cdk-nag packs run as validation plugins,
#                                    so an unacknowledged finding fails synthesis) for x86_64 and arm64
#   5. cfn-lint (PyPI, pinned)      on every synthesized template, in cdk/.venv
#
# Needs node >= 20 with npm, and python3 with pip. Run from anywhere: ./scripts/test-cdk.sh
set -euo pipefail
cd "$(dirname "$0")/../cdk"
started=$SECONDS
CFN_LINT_VERSION=1.58.0

# The CLI would otherwise look for newer versions, fetch notices and send telemetry.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

step() { printf '\n== %s (%ss)\n' "$1" "$((SECONDS - started))"; }

for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "test-cdk: $tool is required" >&2; exit 1; }
done
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
  echo "test-cdk: node >= 20 is required (found $(node --version))" >&2
  exit 1
fi

step "npm ci"
npm ci --no-audit --no-fund --loglevel=error

step "type-check (tsc --noEmit)"
npx --no-install tsc --noEmit

step "assertion tests (node --test)"
npm test --silent

# Type-checked above: ts-node only transpiles from here on.
export TS_NODE_TRANSPILE_ONLY=true
rm -rf cdk.out
synth_context=(
  -c placeholderAssets=true
  -c jwksUrl=https://issuer.example.com/.well-known/jwks.json
  -c jwtIssuer=https://issuer.example.com
  -c jwtAudience=tenant-router
)
step "cdk synth, x86_64 (placeholder bundles, cdk-nag plugins)"
npx --no-install cdk synth --quiet --no-notices --output cdk.out/x86_64 "${synth_context[@]}"
step "cdk synth, arm64, DynamoDB trusted with a key-prefix tenant"
npx --no-install cdk synth --quiet --no-notices --output cdk.out/arm64 "${synth_context[@]}" \
  -c architecture=arm64 -c 'validation=jwt;dynamodb=trusted' -c 'tenantFrom=payload:/tenantId;dynamodb=key:pk:TENANT#'
for dir in cdk.out/x86_64 cdk.out/arm64; do
  report="$dir/validation-report.json"
  if [ -f "$report" ] && ! python3 -c 'import json,sys; sys.exit(1 if json.load(open(sys.argv[1])).get("pluginReports") else 0)' "$report"; then
    echo "test-cdk: $report lists policy validation findings" >&2
    exit 1
  fi
done

step "cfn-lint $CFN_LINT_VERSION (PyPI)"
# A virtual environment when python3 can make one; otherwise a plain --target install.
cfn_lint=()
if [ -x .venv/bin/python3 ] || python3 -m venv .venv >/dev/null 2>&1; then
  if [ "$(.venv/bin/python3 -m pip show cfn-lint 2>/dev/null | sed -n 's/^Version: //p')" != "$CFN_LINT_VERSION" ]; then
    .venv/bin/python3 -m pip install --quiet --disable-pip-version-check "cfn-lint==$CFN_LINT_VERSION"
  fi
  cfn_lint=(.venv/bin/python3 .venv/bin/cfn-lint)
else
  # No venv module (Debian without python3-venv): install into a directory of our own. Some
  # distributions' pip refuses even that as "externally managed"; it touches no system package,
  # so say so.
  rm -rf .venv
  pip_target=(python3 -m pip install --quiet --disable-pip-version-check --target .venv/site "cfn-lint==$CFN_LINT_VERSION")
  "${pip_target[@]}" || "${pip_target[@]}" --break-system-packages
  cfn_lint=(env PYTHONPATH="$PWD/.venv/site" python3 -c 'import sys; sys.argv[0] = "cfn-lint"; from cfnlint.runner import main; sys.exit(main())')
fi
templates=(cdk.out/*/*.template.json)
echo "templates: ${templates[*]}"
# W3005: CDK adds an explicit DependsOn on each function's role next to the GetAtt of its ARN;
# redundant, harmless, and not ours to change. Anything else, warning or error, fails the run.
"${cfn_lint[@]}" --ignore-checks W3005 -- "${templates[@]}"
echo "cfn-lint: no errors, no warnings"

printf '\n== CDK checks passed in %ss\n' "$((SECONDS - started))"
