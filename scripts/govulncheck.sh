#!/usr/bin/env bash
# govulncheck, offline from the vulnerability database's point of view: the
# database is not fetched from vuln.go.dev (unreachable from CI machines)
# but served as the Go module golang.org/x/vulndb through the module proxy,
# indexed locally with golang.org/x/vulndb/cmd/indexdb, and passed to
# govulncheck as a file:// database. Needs only Go, git and the module
# proxy. Fails (exit 3) when a vulnerability affects code the module calls;
# vulnerabilities in imported code that is never called are listed, not
# fatal.
#
# The standard library is checked as of GOVULNCHECK_GO: by default the
# toolchain line of go.mod, which scripts/test.sh builds and tests with (the
# Dockerfile builds with the newest golang:1.26 patch). Bump it together
# with the database pin below. With
# GOVULNCHECK_GO=local the installed Go is checked instead; when the
# installed Go is older, its own standard-library findings are listed as a
# warning (they matter for anyone building with it).
#
#   bash scripts/govulncheck.sh
#   GOVULNCHECK_GO=local bash scripts/govulncheck.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

GOVULNCHECK_VERSION=v1.9.0
VULNDB_VERSION=v0.0.0-20261105234957-e22db6528018 # 2026-11-05
# The toolchain go.mod names: what scripts/test.sh builds and tests with.
GOVULNCHECK_GO=${GOVULNCHECK_GO:-$(awk '$1 == "toolchain" {print $2}' go.mod)}
GOVULNCHECK_GO=${GOVULNCHECK_GO:-local}

tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
start=$(date +%s)

# Tools and database are fetched outside this module, so its go.mod and
# go.sum are never touched; GOTOOLCHAIN=local builds them with the
# installed Go.
cd "$tmp"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod
echo "govulncheck.sh: installing govulncheck $GOVULNCHECK_VERSION and indexdb ($VULNDB_VERSION)"
GOBIN="$tmp/bin" go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION"
GOBIN="$tmp/bin" go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"

echo "govulncheck.sh: fetching the database (golang.org/x/vulndb@$VULNDB_VERSION)"
dir=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
if [ -z "$dir" ] || [ ! -d "$dir/data/osv" ]; then
  echo "govulncheck.sh: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv directory (Dir: '$dir')" >&2
  exit 1
fi
"$tmp/bin/indexdb" -vulns "$dir/data/osv" -out "$tmp/db"
echo "govulncheck.sh: indexed $(find "$dir/data/osv" -name '*.json' | wc -l | tr -d ' ') entries"
unset GOFLAGS
cd "$root"

local_go=$(GOTOOLCHAIN=local go env GOVERSION)
if [ "$GOVULNCHECK_GO" != local ] && [ "$GOVULNCHECK_GO" != "$local_go" ]; then
  # The installed Go's own standard library, for information.
  set +e
  GOTOOLCHAIN=local "$tmp/bin/govulncheck" -db "file://$tmp/db" ./... >"$tmp/local.txt" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    echo
    echo "govulncheck.sh: WARNING: with the installed $local_go, govulncheck reports (exit $rc):"
    grep -E '^Vulnerability #|^    [A-Z].*|Found in:|Fixed in:|^Your code|^This scan' "$tmp/local.txt" | sed 's/^/  /' || cat "$tmp/local.txt"
    echo "  These are standard-library findings of $local_go; build and test with $GOVULNCHECK_GO or newer."
  fi
fi

echo
echo "govulncheck.sh: scanning ./... with $GOVULNCHECK_GO and the local database"
set +e
GOTOOLCHAIN=$GOVULNCHECK_GO "$tmp/bin/govulncheck" -db "file://$tmp/db" ./...
rc=$?
set -e
echo "govulncheck.sh: exit $rc in $(($(date +%s) - start))s"
exit "$rc"
