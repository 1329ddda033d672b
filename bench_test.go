package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/bench"
)

// BenchmarkRun runs the real binary (built by TestMain) once per iteration
// against a fresh emulator stack, as a scheduled run: repository target,
// three secrets. Besides ns/op (stack start, exec, run, exit) it reports
// the requests per run from the emulators' logs and the sequential round
// trips counted from them (see cmd/bench/benchkit and docs/bench.md).
//
// latency=0s is the run with no injected latency. Its roundtrips/op is an
// upper bound only: with nothing holding a request open, concurrent
// requests are often answered before their siblings arrive and count as
// separate waves. latency=50ms is where roundtrips/op is the program's.
//
//	go test -run '^$' -bench BenchmarkRun .
func BenchmarkRun(b *testing.B) {
	for _, l := range []time.Duration{0, 50 * time.Millisecond} {
		b.Run("latency="+l.String(), func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			var waves, total, gets, puts, posts, n int
			for b.Loop() {
				res, err := bench.RunOnce(ctx, binary, filepath.Join(dir, fmt.Sprint(n)), l)
				if err != nil {
					b.Fatal(err)
				}
				n++
				waves += len(res.Waves)
				total += res.Counts.Total()
				gets += res.Counts.GitHubGETs()
				puts += res.Counts.Put
				posts += res.Counts.Token
			}
			per := func(v int) float64 { return float64(v) / float64(n) }
			b.ReportMetric(per(waves), "roundtrips/op")
			b.ReportMetric(per(total), "requests/op")
			b.ReportMetric(per(gets), "GETs/op")
			b.ReportMetric(per(puts), "PUTs/op")
			b.ReportMetric(per(posts), "POSTs/op")
		})
	}
}

// TestCriticalPathIsThreeRoundTrips checks the shape of a default run from
// the emulators' request logs: three sequential round trips (the public key
// with the stale-secret guard's two reads | the token exchange | every PUT),
// one key fetch, one PUT per secret, and no other request. It asserts
// counts, never times.
//
// The wave count comes from request intervals with latency injected, which
// can only over-count (a starved client sends two concurrent requests more
// than the latency apart), never under-count (a request that waited for an
// answer always arrives after that answer was written). So a run that
// counts more than three waves is retried, up to three runs; fewer than
// three, or any wrong request count, fails at once.
func TestCriticalPathIsThreeRoundTrips(t *testing.T) {
	t.Parallel()
	const latency = 200 * time.Millisecond
	want := bench.Counts{Key: 1, Meta: 1, Run: 1, Put: 3, Token: 1}
	wantWaves := [][]bench.Kind{
		{bench.KindKey, bench.KindMeta, bench.KindRun},
		{bench.KindToken},
		{bench.KindPut, bench.KindPut, bench.KindPut},
	}
	var seen []string
	for attempt := range 3 {
		res, err := bench.RunOnce(context.Background(), binary, filepath.Join(t.TempDir(), fmt.Sprint(attempt)), latency)
		if err != nil {
			t.Fatal(err)
		}
		if res.Counts != want {
			t.Fatalf("requests %+v, want %+v:\n%s", res.Counts, want, dumpRequests(res.Requests))
		}
		got := make([][]bench.Kind, len(res.Waves))
		for i, w := range res.Waves {
			for _, r := range w {
				got[i] = append(got[i], r.Kind)
			}
			slices.Sort(got[i])
		}
		for _, w := range wantWaves {
			slices.Sort(w)
		}
		switch {
		case len(got) < len(wantWaves):
			t.Fatalf("%d waves (%s), want %d: two dependent requests overlapped, the wave count is wrong:\n%s", len(got), bench.Describe(res.Waves), len(wantWaves), dumpRequests(res.Requests))
		case len(got) == len(wantWaves):
			for i := range got {
				if !slices.Equal(got[i], wantWaves[i]) {
					t.Fatalf("wave %d is %v, want %v (%s):\n%s", i+1, got[i], wantWaves[i], bench.Describe(res.Waves), dumpRequests(res.Requests))
				}
			}
			return
		}
		seen = append(seen, bench.Describe(res.Waves))
		t.Logf("run %d: %d waves (%s); retrying", attempt+1, len(got), bench.Describe(res.Waves))
	}
	t.Fatalf("more than three sequential round trips in every run:\n%s", strings.Join(seen, "\n"))
}

func dumpRequests(reqs []bench.Request) string {
	var b strings.Builder
	if len(reqs) == 0 {
		return ""
	}
	t0 := reqs[0].Arrive
	for _, r := range reqs {
		fmt.Fprintf(&b, "  %-7s %-45s %3d  arrive +%-10s end +%s\n", r.Server, r.Desc, r.Status, r.Arrive.Sub(t0).Round(time.Microsecond), r.End.Sub(t0).Round(time.Microsecond))
	}
	return b.String()
}
