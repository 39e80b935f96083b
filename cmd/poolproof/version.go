package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

func init() {
	register(command{
		name:    "version",
		summary: "print poolproof's version: its module version, the commit it was built from, and the Go it was built with",
		run:     runVersion,
	})
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "poolproof version: unexpected argument %q: version takes none\n", args[0])
		return 2
	}
	fmt.Fprintln(stdout, versionLine())
	return 0
}

// versionLine is "poolproof <module version> (<commit>[, modified], <time>) <go version>",
// from what the Go toolchain stamped into the binary.
func versionLine() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "poolproof (no build information)"
	}
	version := info.Main.Version
	if version == "" {
		version = "(devel)"
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	line := "poolproof " + version
	if rev != "" {
		line += fmt.Sprintf(" (commit %.12s%s, %s)", rev, dirty, at)
	}
	return line + " " + info.GoVersion
}
