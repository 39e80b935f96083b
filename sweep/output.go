package sweep

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// LoadLabel names a knee's load level, e.g. "concurrency 32" or "rate 200/s".
func (k Knee) LoadLabel() string {
	if k.Concurrency > 0 {
		return fmt.Sprintf("concurrency %d", k.Concurrency)
	}
	return fmt.Sprintf("rate %g/s", k.Rate)
}

// Knee returns the knee of the load level of c, false when there is none.
func (r *Result) Knee(concurrency int) (Knee, bool) {
	for _, k := range r.Knees {
		if k.Concurrency == concurrency {
			return k, true
		}
	}
	return Knee{}, false
}

// Cell returns the cell of one pool size and load level.
func (r *Result) Cell(pool, concurrency int) (Cell, bool) {
	for _, c := range r.Cells {
		if c.Pool == pool && c.Concurrency == concurrency {
			return c, true
		}
	}
	return Cell{}, false
}

// WriteJSON writes the result as indented JSON.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the sweep as JSON: %w", err)
	}
	return nil
}

// WriteTable prints the sweep for a terminal: one row per cell, the knee
// marked, then per load level the measured answer beside the rule of thumb
// and Little's law.
func (r *Result) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "pool sizing sweep of the %s client: %s, latency %s (%s), fault %s, %s per cell, %s, seed %d\n",
		cmp.Or(r.Client, "reference"), r.Service, r.Latency, r.LatencyVia, r.Fault, r.Duration, r.RunsLabel(), r.Seed)
	if r.FixedPool {
		fmt.Fprintf(w, "%s\n", FixedPoolNote)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	load := "concurrency"
	if r.Rate > 0 {
		load = "rate/s"
	}
	fmt.Fprintf(tw, "%s\tpool\tcalls\tok/s\tok/s min-max (sd)\tp50\tp99\tp99 min-max\terrors\tdropped\tpeak conns\tattempts\tfaulted\t \t\n", load)
	for _, c := range r.Cells {
		k, _ := r.Knee(c.Concurrency)
		lv := fmt.Sprint(c.Concurrency)
		if c.Concurrency == 0 {
			lv = fmt.Sprintf("%g", c.Rate)
		}
		pool := fmt.Sprint(c.Pool)
		if r.FixedPool {
			pool = "own"
		}
		tputSpread, p99Spread := c.Spread.Format()
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%.1f%%\t%d\t%d\t%d\t%d\t%s\t\n",
			lv, pool, c.Calls, c.Throughput, tputSpread, FormatLatency(c.P50), FormatLatency(c.P99), p99Spread, 100*c.ErrorRate, c.Dropped, c.PeakConns, c.Attempts, c.Faulted, k.Marks(c))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range r.Knees {
		fmt.Fprintf(w, "\n%s:\n", k.LoadLabel())
		if k.Plateau > 0 {
			fmt.Fprintf(w, "  measured: throughput plateaus at pool %d (>= 95%% of the best %.1f ok/s); lowest p99 at pool %d\n",
				k.Plateau, k.MaxThroughput, k.LowestP99)
			if k.AtEdge {
				fmt.Fprintf(w, "  the plateau is the largest pool swept: throughput may still rise beyond it; sweep larger pools\n")
			}
		} else {
			fmt.Fprintf(w, "  measured: no call succeeded, so no plateau\n")
		}
		if k.ErrorsBegin > 0 {
			fmt.Fprintf(w, "  errors begin at pool %d and below\n", k.ErrorsBegin)
		} else {
			fmt.Fprintf(w, "  no pool size raised the error rate\n")
		}
		grid := "beyond the largest pool swept"
		if k.LittleGrid > 0 {
			grid = fmt.Sprintf("pool %d on this grid", k.LittleGrid)
		}
		fmt.Fprintf(w, "  Little's law: %.1f/s x %s = %.1f connections (%s)\n", k.LittleRate, FormatLatency(k.LittleLatency), k.LittleEstimate, grid)
		fmt.Fprintf(w, "  rule of thumb (cores * 2) + spindles: %d * 2 + 1 = %d\n", r.Cores, r.RuleOfThumb)
	}
	if r.Interrupted {
		fmt.Fprintf(w, "\ninterrupted: %d cells measured\n", len(r.Cells))
	}
	return nil
}

// FixedPoolNote is what the table and the page say of a client whose pool
// the sweep cannot set.
const FixedPoolNote = "this client builds its own pool (a driver or a gallery client): the sweep cannot set its size, so it varies only the load and finds no knee; read throughput and p99 across the loads, and peak conns for the pool the client kept"

// RunsLabel says how many runs each cell took, e.g. "median of 3 runs per cell".
func (r *Result) RunsLabel() string {
	if r.Repeat <= 1 {
		return "1 run per cell"
	}
	return fmt.Sprintf("median of %d runs per cell", r.Repeat)
}

// Format prints a spread's throughput (min-max and standard deviation) and
// p99 (min-max) as the table and the page do; "-" for a single run.
func (s *Spread) Format() (throughput, p99 string) {
	if s == nil || s.Runs < 2 {
		return "-", "-"
	}
	return fmt.Sprintf("%.1f-%.1f (%.1f)", s.MinThroughput, s.MaxThroughput, s.StddevThroughput),
		FormatLatency(s.MinP99) + "-" + FormatLatency(s.MaxP99)
}

// Marks names what a cell is for its load level k: the knee, the lowest
// p99, where errors begin, or why it failed. The table and the HTML page
// (package sweepreport) both print it.
func (k Knee) Marks(c Cell) string {
	var m []string
	if c.Err != "" {
		m = append(m, "failed: "+c.Err)
	}
	// 0 is no pool: nothing succeeded, or the client's pool is its own.
	if k.Plateau > 0 && c.Pool == k.Plateau {
		m = append(m, "knee")
	}
	if k.LowestP99 > 0 && c.Pool == k.LowestP99 {
		m = append(m, "lowest p99")
	}
	if k.ErrorsBegin > 0 && c.Pool == k.ErrorsBegin {
		m = append(m, "errors begin")
	}
	return strings.Join(m, ", ")
}

// FormatLatency prints a latency as the table and the HTML page do: in
// milliseconds with one decimal, "-" when nothing was measured.
func FormatLatency(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}
