#!/usr/bin/env bash
# The whole test suite: what .ci/run runs on a fresh machine (Go, gcc and git
# present; everything else is installed here).
set -euo pipefail
cd "$(dirname "$0")/.."
# Build and test with the toolchain go.mod names (a Go release whose standard
# library has no known vulnerability; the go command fetches it through the
# module proxy). This machine's go.env says GOTOOLCHAIN=local.
export GOTOOLCHAIN=auto

step() { printf '\n==== %s ====\n' "$*"; }

step "go vet"
go vet ./...

step "unit, emulator and end-to-end tests (go test -race -shuffle=on ./...)"
go test -race -shuffle=on -timeout 20m ./...

step "fault matrix"
go run ./cmd/faultmatrix

step "bounded fuzzing (every fuzz target, FUZZTIME=${FUZZTIME:-20s} each)"
bash scripts/fuzz.sh

step "govulncheck (vulnerability database from the golang.org/x/vulndb module, indexed locally)"
bash scripts/govulncheck.sh

step "real Ory Hydra v2.3.0 suite"
if [ -f test/realhydra/run.sh ]; then
  bash test/realhydra/run.sh
else
  HYDRA_BIN=$(bash test/hydra/build.sh)
  export HYDRA_BIN
  go test -tags realhydra -race -count=1 -timeout 15m -v ./test/realhydra/
fi

step "container build and run check (podman, as the runner runs the action)"
bash scripts/container/check.sh

step "actionlint"
go run github.com/rhysd/actionlint/cmd/actionlint@v1.7.12

step "all test steps passed"
