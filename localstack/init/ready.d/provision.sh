#!/bin/bash
# LocalStack "ready" init hook: deploy infra/template.yaml (the same template as on AWS).
set -euo pipefail

TEMPLATE=/opt/clickstream/infra/template.yaml
STACK="${CLICKSTREAM_STACK_NAME:-clickstream-local}"

case "${CLICKSTREAM_GLUE:-auto}" in
  true | false) glue="${CLICKSTREAM_GLUE}" ;;
  *) if [ -n "${LOCALSTACK_AUTH_TOKEN:-}" ]; then glue=true; else glue=false; fi ;;
esac

echo "clickstream: deploying ${TEMPLATE} as stack ${STACK} (Glue catalog: ${glue})"
awslocal cloudformation deploy \
  --stack-name "${STACK}" \
  --template-file "${TEMPLATE}" \
  --parameter-overrides Environment=local CreateGlueCatalog="${glue}" \
  --no-fail-on-empty-changeset

awslocal cloudformation describe-stacks \
  --stack-name "${STACK}" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' \
  --output text
echo "clickstream: stack ${STACK} ready"
