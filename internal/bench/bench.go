// Package benchkit measures one run of the action binary against the
// loopback emulators: wall time, the requests it made, and how many
// sequential round trips ("waves") they form on the critical path. It is
// shared by the bench command (cmd/bench) and the root package's
// BenchmarkRun and TestCriticalPathIsThreeRoundTrips, so the command, the
// benchmark and the test count the same way.
//
// # Waves
//
// Both emulators log every request with the time their handler started and
// finished. The stack injects its latency in front of the handlers, so a
// request's logged Start is its arrival plus the injected latency L; its
// interval on the server is [Start-L, End]. Requests sorted by arrival are
// swept once: a request that arrives after every earlier request has ended
// could have waited for their answers, so it starts a new wave; a request
// that arrives while an earlier one is still open joins the current wave
// (it was sent without waiting for that answer). The number of waves is
// the number of sequential round trips on the critical path.
//
// The sweep can only over-count: two requests the client sent together
// are split into two waves when the second arrives after the first was
// already answered. The injected latency keeps every request open for at
// least L, so with L = 50 ms a split needs the client to issue two
// concurrent requests more than 50 ms apart; with L = 0 a request is open
// only for its handling time (tens of microseconds) and the count is an
// upper bound that scheduling noise can raise.
package bench

import (
	"cmp"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
)

// Kind classifies a request for the counts.
type Kind string

// Request kinds.
const (
	KindKey   Kind = "key GET"    // the target's Actions public key
	KindMeta  Kind = "secret GET" // a secret's metadata (stale-secret guard)
	KindRun   Kind = "run GET"    // the workflow run's start (stale-secret guard)
	KindPut   Kind = "PUT"        // a secret write
	KindToken Kind = "token POST" // the token exchange at Hydra
	KindOther Kind = "other"      // anything else, on either emulator
)

const (
	serverGH    = "github"
	serverHydra = "hydra"
)

// Request is one logged request, with its interval on the server.
type Request struct {
	Server string // "github" or "hydra"
	Kind   Kind
	Desc   string    // route or endpoint, plus the secret name if any
	Arrive time.Time // logged Start minus the injected latency
	End    time.Time
	Status int
}

// Requests merges both emulators' logs, sorted by arrival. latency is the
// stack's injected latency (stack.Options.Latency).
func Requests(s *stack.Stack, latency time.Duration) []Request {
	var out []Request
	for _, r := range s.GitHub.Requests() {
		k := KindOther
		switch r.Route {
		case githubemu.RouteGetRepoPublicKey, githubemu.RouteGetEnvPublicKey, githubemu.RouteGetOrgPublicKey:
			k = KindKey
		case githubemu.RouteGetRepoSecret, githubemu.RouteGetEnvSecret, githubemu.RouteGetOrgSecret:
			k = KindMeta
		case githubemu.RouteGetRun:
			k = KindRun
		case githubemu.RoutePutRepoSecret, githubemu.RoutePutEnvSecret, githubemu.RoutePutOrgSecret:
			k = KindPut
		}
		desc := r.Route
		if r.Name != "" {
			desc += " " + r.Name
		}
		out = append(out, Request{Server: serverGH, Kind: k, Desc: desc, Arrive: r.Start.Add(-latency), End: r.End, Status: r.Status})
	}
	for _, r := range s.Hydra.Requests() {
		k := KindOther
		if r.Method == "POST" && r.Endpoint == hydraemu.PathToken {
			k = KindToken
		}
		desc := r.Method + " " + r.Endpoint
		if r.GrantType != "" {
			desc += " (" + r.GrantType + ")"
		}
		out = append(out, Request{Server: serverHydra, Kind: k, Desc: desc, Arrive: r.Start.Add(-latency), End: r.End, Status: r.Status})
	}
	slices.SortStableFunc(out, func(a, b Request) int { return a.Arrive.Compare(b.Arrive) })
	return out
}

// Waves groups requests (sorted by arrival, as Requests returns them) into
// sequential round trips: a request that arrives after every earlier one
// has ended starts a new wave.
func Waves(reqs []Request) [][]Request {
	var waves [][]Request
	var open time.Time // latest End so far
	for _, r := range reqs {
		if len(waves) == 0 || r.Arrive.After(open) {
			waves = append(waves, nil)
		}
		waves[len(waves)-1] = append(waves[len(waves)-1], r)
		if r.End.After(open) {
			open = r.End
		}
	}
	return waves
}

// Counts are the requests of one run by kind.
type Counts struct {
	Key, Meta, Run, Put, Token, Other int
}

// Count counts requests by kind.
func Count(reqs []Request) Counts {
	var c Counts
	for _, r := range reqs {
		switch r.Kind {
		case KindKey:
			c.Key++
		case KindMeta:
			c.Meta++
		case KindRun:
			c.Run++
		case KindPut:
			c.Put++
		case KindToken:
			c.Token++
		default:
			c.Other++
		}
	}
	return c
}

// GitHubGETs is every GET on the GitHub side (key and guard reads; other
// requests are counted apart).
func (c Counts) GitHubGETs() int { return c.Key + c.Meta + c.Run }

// Total is every request of the run.
func (c Counts) Total() int { return c.Key + c.Meta + c.Run + c.Put + c.Token + c.Other }

// rank orders kinds within a described wave.
func rank(k Kind) int {
	i := slices.Index([]Kind{KindKey, KindMeta, KindRun, KindToken, KindPut}, k)
	if i < 0 {
		return 99
	}
	return i
}

// Describe lists waves compactly, kinds in a fixed order within a wave:
// "1: key GET, secret GET, run GET | 2: token POST | 3: PUT ×3".
func Describe(waves [][]Request) string {
	var parts []string
	for i, w := range waves {
		n := map[string]int{}
		var order []string
		w = slices.Clone(w)
		slices.SortStableFunc(w, func(a, b Request) int { return cmp.Compare(rank(a.Kind), rank(b.Kind)) })
		for _, r := range w {
			d := string(r.Kind)
			if r.Kind == KindOther {
				d = r.Desc
			}
			if n[d] == 0 {
				order = append(order, d)
			}
			n[d]++
		}
		var items []string
		for _, d := range order {
			if n[d] > 1 {
				d = fmt.Sprintf("%s ×%d", d, n[d])
			}
			items = append(items, d)
		}
		parts = append(parts, fmt.Sprintf("%d: %s", i+1, strings.Join(items, ", ")))
	}
	return strings.Join(parts, " | ")
}

// Result is one measured run.
type Result struct {
	Outcome  *stack.Outcome
	Requests []Request
	Waves    [][]Request
	Counts   Counts
}

// RunOnce starts a fresh stack with the given injected latency, runs the
// binary once as a scheduled run (the stack's default inputs: repository
// target, three secrets), and measures it. A run that does not exit 0 with
// a rotated refresh token is an error: only successful runs are measured.
func RunOnce(ctx context.Context, bin, dir string, latency time.Duration) (*Result, error) {
	s, err := stack.Start(stack.Options{Latency: latency})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	before := s.Stored("WIZARD_REFRESH_TOKEN")
	o, err := s.Run(ctx, bin, dir, s.Inputs())
	if err != nil {
		return nil, err
	}
	if o.ExitCode != 0 || o.Outputs["refreshed"] != "true" || o.Outputs["rotated"] != "true" || s.Stored("WIZARD_REFRESH_TOKEN") == before {
		return nil, fmt.Errorf("run did not refresh (exit %d, outputs %v):\n%s%s", o.ExitCode, o.Outputs, o.Stdout, o.Stderr)
	}
	reqs := Requests(s, latency)
	return &Result{Outcome: o, Requests: reqs, Waves: Waves(reqs), Counts: Count(reqs)}, nil
}

// BuildStripped builds the action the way it ships: static (CGO_ENABLED=0)
// and stripped (-trimpath -ldflags "-s -w"), into dir.
func BuildStripped(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "wizard-oauth-refresh")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build the action: %v\n%s", err, out)
	}
	return bin, nil
}

// BinaryInfo is what the benchmark reports about the binary itself.
type BinaryInfo struct {
	Size     int64
	Static   bool // no ELF interpreter and no dynamic libraries
	Stripped bool // no symbol table
}

// Inspect reads the binary's size and, for ELF, whether it is static and
// stripped.
func Inspect(bin string) (BinaryInfo, error) {
	st, err := os.Stat(bin)
	if err != nil {
		return BinaryInfo{}, err
	}
	info := BinaryInfo{Size: st.Size()}
	f, err := elf.Open(bin)
	if err != nil {
		return info, nil // not ELF (macOS): size only
	}
	defer f.Close()
	info.Static = true
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			info.Static = false
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		info.Static = false
	}
	_, symErr := f.Symbols()
	info.Stripped = errors.Is(symErr, elf.ErrNoSymbols)
	return info, nil
}

// StartupTime runs "bin --help" and returns the time from exec to the first
// byte on its stdout: process creation, the Go runtime and package
// initialisation, and flag parsing, with no network.
func StartupTime(ctx context.Context, bin string) (time.Duration, error) {
	cmd := exec.CommandContext(ctx, bin, "--help")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	var b [1]byte
	_, rerr := io.ReadFull(out, b[:])
	first := time.Since(start)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("%s --help: %w", bin, err)
	}
	if rerr != nil {
		return 0, fmt.Errorf("%s --help printed nothing: %w", bin, rerr)
	}
	return first, nil
}

// Stats summarise durations.
type Stats struct {
	Median, P90, Min, Max time.Duration
	N                     int
}

// Summarise computes nearest-rank percentiles (p90 of 10 runs is the 9th
// fastest) and the median (mean of the two middle values for even n).
func Summarise(ds []time.Duration) Stats {
	if len(ds) == 0 {
		return Stats{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.9*float64(n))) - 1
	return Stats{Median: med, P90: s[max(rank, 0)], Min: s[0], Max: s[n-1], N: n}
}

// Tally counts how often each value occurs, for values that should not vary
// between runs: "3" when all runs agree, "3 (×9), 4 (×1)" when they don't.
func Tally[T cmp.Ordered](vs []T) string {
	n := map[T]int{}
	var keys []T
	for _, v := range vs {
		if n[v] == 0 {
			keys = append(keys, v)
		}
		n[v]++
	}
	slices.Sort(keys)
	if len(keys) == 1 {
		return fmt.Sprint(keys[0])
	}
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%v (×%d)", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
