// Command poolproof certifies HTTP clients against fake services under
// injected faults. Usage: poolproof <command> [flags]; run "poolproof help"
// for the list of commands.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// command is one subcommand. run owns its flags (one flag.FlagSet each) and
// returns the process exit code: 0 success, 1 failure, 2 bad usage.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

// commands is filled by register calls in each command's init, so adding a
// command means adding a file, not editing this one.
var commands = map[string]command{}

func register(c command) {
	if _, dup := commands[c.name]; dup {
		panic("poolproof: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

func main() {
	// The first SIGINT or SIGTERM cancels ctx so commands shut down cleanly;
	// stop() restores default handling, so a second signal kills at once.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := dispatch(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func dispatch(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 { // help <command>: the command's own -h
			if cmd, ok := commands[args[1]]; ok {
				return cmd.run(ctx, []string{"-h"}, stdout, stderr)
			}
			fmt.Fprintf(stderr, "poolproof help: unknown command %q; known commands: %s\n", args[1], strings.Join(commandNames(), ", "))
			return 2
		}
		usage(stdout)
		return 0
	case "-version", "--version":
		name = "version"
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "poolproof: unknown command %q; known commands: %s\n", name, strings.Join(commandNames(), ", "))
		return 2
	}
	return cmd.run(ctx, args[1:], stdout, stderr)
}

func commandNames() []string {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: poolproof <command> [flags]")
	fmt.Fprintln(w, "\ncommands:")
	for _, n := range commandNames() {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nrun \"poolproof help <command>\" (or \"poolproof <command> -h\") for a command's flags")
}
