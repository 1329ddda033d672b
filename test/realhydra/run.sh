#!/usr/bin/env bash
# Runs the real-Hydra suite (build tag realhydra): the behaviour probes and
# the scenario suite of issue 3 (the action binary and the bootstrap CLI as
# processes, against a real Ory Hydra v2.3.0 and the GitHub API emulator,
# everything on 127.0.0.1).
#
#   bash test/realhydra/run.sh [extra go test flags, e.g. -run TestScenarios]
#
# Builds Hydra once (cached by test/hydra/build.sh; a cold build takes a few
# minutes), exports HYDRA_BIN, and exits non-zero if anything fails. With
# CI=true a scenario that cannot run is a failure, not a skip.
#
# Env:
#   HYDRA_BIN                     use this hydra binary instead of building one
#   REALHYDRA_ROUNDS              rounds per concurrency arm (default 10)
#   REALHYDRA_OBSERVATIONS_JSON   also write the observations as JSON here
#   REALHYDRA_LOG_DIR             keep Hydra's debug logs here
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [[ -z "${HYDRA_BIN:-}" ]]; then
  HYDRA_BIN="$(bash "$root/test/hydra/build.sh")"
fi
if [[ ! -x "$HYDRA_BIN" ]]; then
  echo "realhydra/run.sh: HYDRA_BIN=$HYDRA_BIN is not an executable" >&2
  exit 1
fi
export HYDRA_BIN
echo "realhydra/run.sh: $("$HYDRA_BIN" version 2>/dev/null | head -1 | tr -s ' ') ($HYDRA_BIN)" >&2

cd "$root"
start=$SECONDS
set +e
go test -tags realhydra -race -count=1 -v -timeout 15m "$@" ./test/realhydra/
rc=$?
set -e
echo "realhydra/run.sh: go test exited $rc after $((SECONDS - start))s" >&2
exit "$rc"
