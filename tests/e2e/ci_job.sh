#!/usr/bin/env bash
# Acts as a real CI/CD job against a running Releasegate: only the management commands (to
# create a token and integrations, as an operator would) and curl/openssl. No project code.
#
#   BASE_URL=http://127.0.0.1:8000 SERVICE=payments-api tests/e2e/ci_job.sh
#
# Needs: the service SERVICE and an environment "production" to exist. Exits non-zero on the
# first behaviour that differs from the contract in docs/ingestion.md.
set -Eeuo pipefail

BASE_URL=${BASE_URL:?set BASE_URL, e.g. http://127.0.0.1:8000}
SERVICE=${SERVICE:-payments-api}
MANAGE=${MANAGE:-.venv/bin/python manage.py}
FIXTURES=${FIXTURES:-pipelines/tests/fixtures}
RUN_ID="e2e-$(date +%s)-$$"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0

fail() { echo "FAIL: $*" >&2; echo "--- last body:" >&2; cat "$WORK/body" >&2 || true; exit 1; }

# post PATH EXPECTED_STATUS DATA_FILE [curl header args...]
post() {
  local path=$1 expected=$2 data=$3
  shift 3
  local status
  status=$(curl -sS -o "$WORK/body" -w '%{http_code}' -X POST "$BASE_URL$path" \
    -H 'Content-Type: application/json' "$@" --data-binary "@$data")
  [[ $status == "$expected" ]] || fail "POST $path: expected $expected, got $status"
  passed=$((passed + 1))
}

body_has() { grep -q -- "$1" "$WORK/body" || fail "response lacks $1"; }

json() { printf '%s' "$1" >"$WORK/req.json"; echo "$WORK/req.json"; }

run_json() { # status extra-json
  json "{\"service\": \"$SERVICE\", \"provider\": \"github_actions\", \"external_id\": \"$RUN_ID\",
    \"attempt\": 1, \"status\": \"$1\", \"commit_sha\": \"3f1c0d9e8b7a6f5e4d3c2b1a09f8e7d6c5b4a392\",
    \"ref\": \"refs/heads/main\", \"version\": \"9.9.$$\", \"url\": \"https://ci.example/run/$RUN_ID\",
    \"started_at\": \"2026-11-20T10:00:00Z\" $2}"
}

echo "== token from the management command (last line of its output)"
TOKEN=$($MANAGE create_api_token --name "ci-$RUN_ID" --service "$SERVICE" | tail -n 1)
[[ $TOKEN == rg_* ]] || fail "no token on the last line"
AUTH=(-H "Authorization: Bearer $TOKEN")
CD_ONLY=$($MANAGE create_api_token --name "cd-$RUN_ID" --service "$SERVICE" \
  --scope deployments:write | tail -n 1)

echo "== runs: create, replay, update, out-of-order"
post /api/v1/pipeline-runs/ 201 "$(run_json running '')" "${AUTH[@]}"
body_has '"created":true'
post /api/v1/pipeline-runs/ 200 "$(run_json running '')" "${AUTH[@]}"
body_has '"changed":false'
FINISHED=", \"finished_at\": \"2026-11-20T10:07:12Z\", \"checks\": [
  {\"kind\": \"tests\", \"status\": \"passed\", \"passed\": 812, \"failed\": 0, \"skipped\": 4},
  {\"kind\": \"coverage\", \"status\": \"passed\", \"percent\": 87.5}],
  \"artefacts\": [{\"name\": \"$SERVICE\", \"version\": \"9.9.$$\",
  \"digest\": \"sha256:$(printf '%s' "$RUN_ID" | sha256sum | cut -c1-64)\"}]"
post /api/v1/pipeline-runs/ 200 "$(run_json succeeded "$FINISHED")" "${AUTH[@]}"
body_has '"status":"succeeded"'
post /api/v1/pipeline-runs/ 200 "$(run_json succeeded "$FINISHED")" "${AUTH[@]}"
body_has '"changed":false'
post /api/v1/pipeline-runs/ 200 "$(run_json running '')" "${AUTH[@]}"
body_has '"status":"succeeded"'

echo "== artefacts are immutable"
TAMPERED=${FINISHED/sha256:/sha256:ff}
post /api/v1/pipeline-runs/ 409 "$(run_json succeeded "$TAMPERED")" "${AUTH[@]}"
body_has 'immutable'

echo "== bad input: each a JSON 4xx"
post /api/v1/pipeline-runs/ 400 "$(json '{"service": ')" "${AUTH[@]}"
body_has '"detail"'
post /api/v1/pipeline-runs/ 400 "$(run_json done '')" "${AUTH[@]}"
post /api/v1/pipeline-runs/ 400 "$(run_json running ', "attempt": "one"')" "${AUTH[@]}"
post /api/v1/pipeline-runs/ 400 "$(run_json running ', "ref": "a\u0000b"')" "${AUTH[@]}"
post /api/v1/pipeline-runs/ 400 "$(run_json running ", \"name\": \"$(head -c 300 /dev/zero | tr '\0' x)\"")" "${AUTH[@]}"
post /api/v1/pipeline-runs/ 400 "$(json '{"service": "no-such-service", "provider": "generic", "external_id": "1", "status": "queued"}')" "${AUTH[@]}"
post /api/v1/pipeline-runs/ 401 "$(run_json running '')"
post /api/v1/pipeline-runs/ 401 "$(run_json running '')" -H "Authorization: Bearer rg_wrong"
post /api/v1/pipeline-runs/ 403 "$(run_json running '')" -H "Authorization: Bearer $CD_ONLY"
head -c 400000 /dev/zero | tr '\0' ' ' >"$WORK/big.json"
post /api/v1/pipeline-runs/ 413 "$WORK/big.json" "${AUTH[@]}"

echo "== deployments"
DEPLOY=$(json "{\"service\": \"$SERVICE\", \"environment\": \"production\", \"version\": \"9.9.$$\",
  \"status\": \"in_progress\", \"provider\": \"argo-cd\", \"external_id\": \"$RUN_ID\"}")
post /api/v1/deployments/ 201 "$DEPLOY" "${AUTH[@]}"
post /api/v1/deployments/ 200 "$DEPLOY" "${AUTH[@]}"
body_has '"changed":false'

echo "== GitHub webhook, signed (X-Hub-Signature-256)"
GH_SECRET="gh-$RUN_ID"
$MANAGE create_integration --provider github --name "gh-$RUN_ID" --service "$SERVICE" \
  --secret "$GH_SECRET" >/dev/null
sed "s/11223344556/5$$/g" "$FIXTURES/github_workflow_run_completed.json" >"$WORK/gh.json"
SIG="sha256=$(openssl dgst -sha256 -hmac "$GH_SECRET" <"$WORK/gh.json" | sed 's/^.* //')"
GH=(-H "X-GitHub-Event: workflow_run" -H "X-GitHub-Delivery: $RUN_ID")
post /api/v1/webhooks/github/ 200 "$WORK/gh.json" "${GH[@]}" -H "X-Hub-Signature-256: $SIG"
body_has '"run":'
post /api/v1/webhooks/github/ 200 "$WORK/gh.json" "${GH[@]}" -H "X-Hub-Signature-256: $SIG"
body_has '"duplicate":true'
post /api/v1/webhooks/github/ 401 "$WORK/gh.json" "${GH[@]}" -H "X-Hub-Signature-256: sha256=00"

echo "== GitLab webhook (X-Gitlab-Token)"
$MANAGE create_integration --provider gitlab --name "gl-$RUN_ID" --service "$SERVICE" \
  --secret "gl-$RUN_ID" >/dev/null
sed "s/987654/6$$/g" "$FIXTURES/gitlab_pipeline_success.json" >"$WORK/gl.json"
post /api/v1/webhooks/gitlab/ 200 "$WORK/gl.json" -H "X-Gitlab-Token: gl-$RUN_ID" \
  -H "X-Gitlab-Event: Pipeline Hook"
post /api/v1/webhooks/gitlab/ 401 "$WORK/gl.json" -H "X-Gitlab-Token: wrong"

echo "== too many requests for one token: 429 with Retry-After"
for i in $(seq 1 ${RATE_LIMIT_PROBE:-700}); do
  status=$(curl -sS -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' -X POST \
    "$BASE_URL/api/v1/pipeline-runs/" "${AUTH[@]}" -H 'Content-Type: application/json' \
    --data-binary "@$(run_json running '')")
  if [[ $status == 429 ]]; then
    grep -qi '^retry-after: [0-9]' "$WORK/headers" || fail "429 without Retry-After"
    passed=$((passed + 1))
    break
  fi
done
[[ $status == 429 ]] || fail "no 429 after $i requests"

echo "OK: $passed checks passed"
