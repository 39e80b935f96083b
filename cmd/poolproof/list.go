package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/poolproof/poolproof/brokenclients"
	"github.com/poolproof/poolproof/explore"
	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
)

func init() {
	register(command{
		name:    "list",
		summary: "list what poolproof knows: scenarios, families, checks, clients, the fault kinds explore draws (all of them without an argument)",
		run:     runList,
	})
}

// listWhat are the things list lists, in the order "list" prints them.
var listWhat = []string{"scenarios", "families", "checks", "clients", "faults"}

func runList(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("poolproof list", flag.ContinueOnError)
	profile := fs.String("profile", "standard", "the scenarios of this profile: quick, standard or soak")
	flags, what := splitPaths(fs, args)
	if err := parseFlags(fs, flags, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "\nwhat to list: %s (default: all)\n", strings.Join(listWhat, ", "))
			return 0
		}
		fmt.Fprintf(stderr, "poolproof list: %v\n", err)
		return 2
	}
	if len(what) == 0 {
		what = listWhat
	}
	for _, w := range what {
		if !slices.Contains(listWhat, w) {
			fmt.Fprintf(stderr, "poolproof list: %q: list one of %s\n", w, strings.Join(listWhat, ", "))
			return 2
		}
	}
	catalog, err := selectScenarios(*profile, "")
	if err != nil {
		fmt.Fprintf(stderr, "poolproof list: %v\n", err)
		return 2
	}
	for i, w := range what {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		switch w {
		case "scenarios":
			fmt.Fprintf(tw, "SCENARIO (%s)\tFAMILY\tDURATION\tFAULTS\tPROVES\n", *profile)
			for _, s := range catalog {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Family, harness.FormatDuration(s.Workload.Duration), faultsOf(s), s.Proves)
			}
		case "families":
			fmt.Fprintln(tw, "FAMILY\tSCENARIOS")
			for _, fam := range harness.Families {
				var names []string
				for _, s := range catalog {
					if s.Family == fam {
						names = append(names, s.Name)
					}
				}
				fmt.Fprintf(tw, "%s\t%s\n", fam, strings.Join(names, ", "))
			}
		case "checks":
			fmt.Fprintln(tw, "CHECK\tHOLDS THE CLIENT TO\tNEEDS")
			for _, d := range check.Docs() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", d.ID, d.Summary, d.Needs)
			}
		case "clients":
			fmt.Fprintln(tw, "CLIENT (-client)\tWHAT IT IS")
			fmt.Fprintf(tw, "%s\t%s\n", clientReference, "the reference pooled client (pooledclient), held to reference.Profile: it passes every check")
			fmt.Fprintf(tw, "%s\t%s\n", clientPlain, "an http.Client with Go's defaults, declaring nothing: held to the universal invariants")
			fmt.Fprintf(tw, "%s\t%s\n", clientRetrying, "examples/retryingclient: a correct retrying client on net/http")
			for _, e := range brokenclients.All() {
				fmt.Fprintf(tw, "%s\t%s\n", e.Name, "broken: "+e.Bug)
			}
		case "faults":
			fmt.Fprintln(tw, "FAULT KIND (explore)\tWHAT IT DOES")
			for _, k := range explore.Kinds {
				fmt.Fprintf(tw, "%s\t%s\n", k, explore.KindDocs[k])
			}
		}
		_ = tw.Flush()
	}
	return 0
}

// faultsOf names a scenario's faults, from its steps' labels.
func faultsOf(s harness.Scenario) string {
	var labels []string
	for _, st := range s.Steps {
		if st.Label != "" && !slices.Contains(labels, st.Label) {
			labels = append(labels, st.Label)
		}
	}
	if len(labels) == 0 {
		return "none"
	}
	return strings.Join(labels, "; ")
}
