// Command bench measures what one run of the action costs: it builds the
// binary as it ships (static, stripped), runs it -runs times against the
// loopback emulators with -latency injected into every request and again
// with none, and prints a table of wall time, sequential round trips on the
// critical path, requests by kind, process start time and binary size.
// With -o it also writes the table and the method to a file (docs/bench.md).
//
//	go run ./cmd/bench                       # 50 ms and 0 ms, 10 runs each
//	go run ./cmd/bench -latency 100ms -runs 20
//	go run ./cmd/bench -o docs/bench.md      # regenerate the doc
//
// Nothing here asserts a time: a run that fails or does not rotate the
// token is an error, numbers are only reported.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/bench"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// row is one latency's measurements.
type row struct {
	latency time.Duration
	wall    bench.Stats
	waves   []int
	counts  []bench.Counts
	shape   []string // wave composition of each run
}

func realMain(ctx context.Context, args []string, w, progress io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	latency := fs.Duration("latency", 50*time.Millisecond, "latency injected into every request on both emulators (the table also has a 0 ms row)")
	runs := fs.Int("runs", 10, "runs per latency, and --help runs for the process start time")
	out := fs.String("o", "", "also write the tables and the method to this file, e.g. docs/bench.md")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs < 1 || *latency < 0 {
		return fmt.Errorf("-runs must be at least 1 and -latency not negative")
	}
	dir, err := os.MkdirTemp("", "bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintln(progress, "building the static stripped binary...")
	bin, err := bench.BuildStripped(ctx, stack.ModuleDir(), dir)
	if err != nil {
		return err
	}
	info, err := bench.Inspect(bin)
	if err != nil {
		return err
	}

	// One unmeasured run, so the first measured one does not pay for
	// loading the fresh binary from disk.
	if _, err := bench.RunOnce(ctx, bin, filepath.Join(dir, "warmup"), 0); err != nil {
		return err
	}
	latencies := []time.Duration{*latency}
	if *latency != 0 {
		latencies = append(latencies, 0)
	}
	var rows []row
	for _, l := range latencies {
		fmt.Fprintf(progress, "latency %s: %d runs...\n", l, *runs)
		r := row{latency: l}
		var walls []time.Duration
		for i := range *runs {
			res, err := bench.RunOnce(ctx, bin, filepath.Join(dir, fmt.Sprintf("run-%s-%d", l, i)), l)
			if err != nil {
				return fmt.Errorf("latency %s, run %d: %w", l, i+1, err)
			}
			walls = append(walls, res.Outcome.Duration)
			r.waves = append(r.waves, len(res.Waves))
			r.counts = append(r.counts, res.Counts)
			r.shape = append(r.shape, bench.Describe(res.Waves))
		}
		r.wall = bench.Summarise(walls)
		rows = append(rows, r)
	}

	fmt.Fprintf(progress, "process start: %d runs of --help...\n", *runs)
	if _, err := bench.StartupTime(ctx, bin); err != nil { // warm-up
		return err
	}
	var starts []time.Duration
	for range *runs {
		d, err := bench.StartupTime(ctx, bin)
		if err != nil {
			return err
		}
		starts = append(starts, d)
	}
	start := bench.Summarise(starts)

	tables := render(rows, info, start, *runs)
	fmt.Fprint(w, tables)
	if *out != "" {
		cmdline := "go run ./cmd/bench"
		if *latency != 50*time.Millisecond {
			cmdline += " -latency " + latency.String()
		}
		if *runs != 10 {
			cmdline += fmt.Sprintf(" -runs %d", *runs)
		}
		cmdline += " -o " + filepath.ToSlash(*out)
		if err := os.WriteFile(*out, []byte(doc(cmdline, tables)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// verdict compares the runs with the target shape of a default run: three
// sequential round trips (measured with latency injected), one key fetch,
// the guard's two reads, one token exchange, one PUT per secret (three),
// nothing else.
func verdict(rows []row) string {
	want := bench.Counts{Key: 1, Meta: 1, Run: 1, Put: 3, Token: 1}
	var problems []string
	measured := false
	for _, r := range rows {
		for i, c := range r.counts {
			if c != want {
				problems = append(problems, fmt.Sprintf("%s run %d made %+v", ms(r.latency), i+1, c))
			}
		}
		if r.latency == 0 {
			continue
		}
		measured = true
		if n := countOf(r.shape, wantShape); n != len(r.shape) {
			problems = append(problems, fmt.Sprintf("at %s, %d of %d runs had another wave shape than %q (round trips: %s)", ms(r.latency), len(r.shape)-n, len(r.shape), wantShape, bench.Tally(r.waves)))
		}
	}
	if len(problems) > 0 {
		return "Verdict: differs from the target (3 round trips; 1 key GET, 2 guard GETs, 1 token POST, 1 PUT per secret, nothing else): " + strings.Join(problems, "; ") + "."
	}
	if !measured {
		return "Verdict: request counts on target (1 key GET, 2 guard GETs, 1 token POST, 1 PUT per secret, nothing else); round trips need a non-zero -latency to be measured."
	}
	return "Verdict: on target in every run: 3 sequential round trips (with latency injected); 1 key GET, 2 guard GETs in the key's round trip, 1 token POST, 1 PUT per secret, nothing else."
}

// wantShape is the wave shape of a default run (bench.Describe).
const wantShape = "1: key GET, secret GET, run GET | 2: token POST | 3: PUT ×3"

func countOf(vs []string, v string) int {
	n := 0
	for _, x := range vs {
		if x == v {
			n++
		}
	}
	return n
}

type count struct {
	v string
	n int
}

// byFrequency counts distinct values, most frequent first.
func byFrequency(vs []string) []count {
	var out []count
	for _, v := range vs {
		i := slices.IndexFunc(out, func(c count) bool { return c.v == v })
		if i < 0 {
			out = append(out, count{v: v})
			i = len(out) - 1
		}
		out[i].n++
	}
	slices.SortStableFunc(out, func(a, b count) int { return b.n - a.n })
	return out
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000)
}

func mib(n int64) string { return fmt.Sprintf("%.2f MiB (%d bytes)", float64(n)/(1<<20), n) }

// render prints both tables and the wave composition.
func render(rows []row, info bench.BinaryInfo, start bench.Stats, runs int) string {
	var b strings.Builder
	zero := false
	b.WriteString("| Injected latency | Runs | Wall median | Wall p90 | Wall min | Round trips | GitHub GETs (key + guard) | PUTs | Token POSTs | Other | Requests |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		col := func(f func(bench.Counts) int) string {
			vs := make([]int, len(r.counts))
			for i, c := range r.counts {
				vs[i] = f(c)
			}
			return bench.Tally(vs)
		}
		gets := col(bench.Counts.GitHubGETs) + " (" + col(func(c bench.Counts) int { return c.Key }) + " + " + col(func(c bench.Counts) int { return c.Meta + c.Run }) + ")"
		trips := bench.Tally(r.waves)
		if r.latency == 0 {
			trips += " †"
			zero = true
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			ms(r.latency), r.wall.N, ms(r.wall.Median), ms(r.wall.P90), ms(r.wall.Min), trips,
			gets, col(func(c bench.Counts) int { return c.Put }), col(func(c bench.Counts) int { return c.Token }),
			col(func(c bench.Counts) int { return c.Other }), col(bench.Counts.Total))
	}
	b.WriteString("\nRound trips wave by wave (guard = the stale-secret guard's secret GET and run GET), by number of runs:\n\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "- %s:\n", ms(r.latency))
		shapes := byFrequency(r.shape)
		for i, s := range shapes {
			if i == 3 {
				fmt.Fprintf(&b, "  - … %d other shapes\n", len(shapes)-3)
				break
			}
			fmt.Fprintf(&b, "  - %d of %d runs: %s\n", s.n, len(r.shape), s.v)
		}
	}
	if zero {
		b.WriteString("\n† At 0 ms the wave count is an upper bound, not the program's: with no latency holding requests open, concurrent requests are usually answered before their siblings arrive and count as separate waves (docs/bench.md, section How round trips are counted).\n")
	}
	b.WriteString("\n" + verdict(rows) + "\n")
	b.WriteString("\n| Binary | Size | Static | Stripped | Process start median | p90 | min |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	yes := map[bool]string{true: "yes", false: "no"}
	fmt.Fprintf(&b, "| `CGO_ENABLED=0 go build -trimpath -ldflags \"-s -w\"` | %s | %s | %s | %s | %s | %s |\n",
		mib(info.Size), yes[info.Static], yes[info.Stripped], ms(start.Median), ms(start.P90), ms(start.Min))
	fmt.Fprintf(&b, "\nProcess start = exec to the first byte on stdout of `wizard-oauth-refresh --help`, %d runs. (%s, %s/%s, %d CPUs)\n",
		runs, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
	return b.String()
}

func doc(cmdline, tables string) string {
	return "# Benchmark: what one run costs\n\n" +
		"Generated by `" + cmdline + "`. Regenerate it with the same command; " +
		"`go test -run '^$' -bench BenchmarkRun .` reports the same counts per op " +
		"(requests/op, GETs/op, PUTs/op, POSTs/op; roundtrips/op is the program's in its latency=50ms sub-benchmark, an upper bound at 0s).\n\n" +
		tables + `
## What is measured

Each run starts a fresh pair of emulators on 127.0.0.1 (the GitHub REST API
and the Hydra-compatible token endpoint, seeded as a bootstrapped
repository: three secrets, a PAT with Secrets: write and Actions: read, one
token chain) and runs the real binary once exactly as the runner runs a
container action (` + "`INPUT_*`" + ` environment, ` + "`GITHUB_OUTPUT`" + ` and
` + "`GITHUB_STEP_SUMMARY`" + ` files, a fresh workflow run started now). Every run
must exit 0 with a rotated refresh token, or the benchmark fails; it asserts
no time. Connections are cold in every run, as in an hourly job.

- **Injected latency** is added by the stack in front of both emulators'
  handlers, to every request: a stand-in for the round trip to
  api.github.com and auth.amplitude.com.
- **Wall** is exec to exit of the binary (` + "`stack.Outcome.Duration`" + `); p90 is
  nearest-rank (of 10 runs, the 9th fastest). One unmeasured run precedes
  the measured ones.
- **Requests** come from the emulators' own request logs. GitHub GETs are
  split into the one public-key fetch and the stale-secret guard's two reads
  (the refresh-token secret's metadata and this workflow run's start time),
  which ride in the same round trip as the key by design. **Other** is any
  request that is none of these (it should be 0).
- **Process start** is exec to the first byte on stdout of
  ` + "`wizard-oauth-refresh --help`" + ` (runtime and package initialisation plus flag
  parsing, no network), median of the runs after one warm-up.
- **Binary** is the build above, the way the Dockerfile builds it; static
  means no ELF interpreter and no shared libraries, stripped means no symbol
  table.

## How round trips are counted

Both emulators log every request with the times their handler started and
finished. The latency is injected before the handler, so a request's interval
on the server is [logged start − injected latency, logged end]. The requests
of a run, sorted by arrival, are swept once: a request that arrives after
**every** earlier request has ended starts a new wave (it could have waited for
their answers); a request that arrives while an earlier one is still open
joins the current wave (it was sent without waiting for that answer). The
number of waves is the number of sequential round trips on the critical path.

The sweep cannot under-count: a request that waited for an answer arrives
after that answer was written, and the logged end is taken before the handler
returns, so dependent requests never overlap. It can over-count: two requests
sent together are split when the second arrives after the first was already
answered. Injected latency keeps every request open for at least that long,
so with 50 ms a split needs the binary to send two concurrent requests more
than 50 ms apart, and the count is the program's (on a machine starved for
CPU, with a load average three times its CPU count, one run in ten was seen
split that way: the "Round trips" column then shows it, e.g. "3 (×9), 4 (×1)").
At 0 ms a request is open only while it is handled (tens of
microseconds), so that row's count is an upper bound that goroutine scheduling
can raise; it is shown to make that visible, not as a different answer.
` + "`TestCriticalPathIsThreeRoundTrips`" + ` (root package) asserts the counts of a
default run with 200 ms injected: 3 waves (key + guard reads | token POST |
all PUTs), 1 key GET, 2 guard GETs, 1 token POST, 1 PUT per secret, nothing
else; since the count can only go up by accident, a run with more waves is
retried (three runs at most), fewer waves or other request counts fail at
once. No test asserts a time.
`
}
