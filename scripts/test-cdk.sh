#!/usr/bin/env bash
# Offline verification of the CDK construct library in cdk/ and its example apps: no AWS account,
# no Rust build.
#
#   1. npm ci                       (versions pinned by cdk/package-lock.json)
#   2. npm run build                (jsii: compiles lib/ to the package entry lib/index.js and the
#                                    .jsii assembly, failing on any jsii warning; copies
#                                    shared/pricing.json into the package)
#   3. tsc --noEmit                 (type-check of lib/, test/, examples/; the bring-your-own
#                                    example against the built declarations)
#   4. node --test                  (assertion tests: the construct, the full example's resources and
#                                    every IAM statement, alarms, tenant isolation, configuration,
#                                    usage queries, cdk-nag; the bring-your-own app on the built package)
#   5. cdk synth                    (placeholder code, so each template carries the Rule that makes
#                                    it undeployable; the cdk-nag packs run as validation plugins, so
#                                    an unacknowledged finding fails synthesis): the full example for
#                                    x86_64 and arm64, and the bring-your-own example
#   6. cfn-lint (PyPI, pinned)      on every synthesized template, in cdk/.venv
#
# Needs node >= 20 with npm, and python3 with pip. Run from anywhere: ./scripts/test-cdk.sh
set -euo pipefail
cd "$(dirname "$0")/../cdk"
started=$SECONDS
CFN_LINT_VERSION=1.58.0

# The CLI would otherwise look for newer versions, fetch notices and send telemetry.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=true
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
# jsii prints a banner on node 20 (end of life); the requirement below is deliberate.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=1

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

step "jsii build (npm run build)"
npm run build --silent

step "type-check (tsc --noEmit)"
npx --no-install tsc --noEmit

step "assertion tests (node --test)"
npm run test:unit --silent

# Type-checked above: ts-node only transpiles from here on.
export TS_NODE_TRANSPILE_ONLY=true
rm -rf cdk.out
synth_context=(
  -c placeholderAssets=true
  -c jwksUrl=https://issuer.example.com/.well-known/jwks.json
  -c jwtIssuer=https://issuer.example.com
  -c jwtAudience=tenant-router
)
step "cdk synth, full example, x86_64 (placeholder code, cdk-nag plugins)"
npx --no-install cdk synth --quiet --no-notices --output cdk.out/x86_64 "${synth_context[@]}"
step "cdk synth, full example, arm64, DynamoDB trusted with a key-prefix tenant"
npx --no-install cdk synth --quiet --no-notices --output cdk.out/arm64 "${synth_context[@]}" \
  -c architecture=arm64 -c 'validation=jwt;dynamodb=trusted' -c 'tenantFrom=payload:/tenantId;dynamodb=key:pk:TENANT#'
step "cdk synth, bring-your-own example (imported sources, Python PER_TENANT backend, the built package)"
npx --no-install cdk synth --quiet --no-notices --output cdk.out/bring-your-own "${synth_context[@]}" \
  --app 'npx ts-node examples/bring-your-own/app.ts' \
  -c queueArn=arn:aws:sqs:us-east-1:111111111111:orders \
  -c streamArn=arn:aws:kinesis:us-east-1:111111111111:stream/events \
  -c tableName=accounts \
  -c tableStreamArn=arn:aws:dynamodb:us-east-1:111111111111:table/accounts/stream/2026-01-01T00:00:00.000
for dir in cdk.out/x86_64 cdk.out/arm64 cdk.out/bring-your-own; do
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
for template in "${templates[@]}"; do
  # Every template synthesized here uses placeholder code: each must carry the Rule that makes it undeployable.
  python3 -c 'import json,sys; sys.exit(0 if "PlaceholderCodeCannotBeDeployed" in json.load(open(sys.argv[1])).get("Rules", {}) else 1)' "$template" \
    || { echo "test-cdk: $template has placeholder code but no PlaceholderCodeCannotBeDeployed rule" >&2; exit 1; }
done
# W3005: CDK adds an explicit DependsOn on each function's role next to the GetAtt of its ARN;
# redundant, harmless, and not ours to change. Anything else, warning or error, fails the run.
"${cfn_lint[@]}" --ignore-checks W3005 -- "${templates[@]}"
echo "cfn-lint: no errors, no warnings"

printf '\n== CDK checks passed in %ss\n' "$((SECONDS - started))"
