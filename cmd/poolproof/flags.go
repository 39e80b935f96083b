package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// usageError is a bad command line: exit code 2, one line on stderr.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// splitPaths separates a command's flags from the paths among them (flag
// stops at the first word that is no flag, so "judge DIR -rewrite X"
// would leave -rewrite unparsed): a word after a flag that takes a value
// is that value; any other word not starting with "-", and everything
// after "--", is a path.
func splitPaths(fs *flag.FlagSet, args []string) (flags, paths []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return flags, append(paths, args[i+1:]...)
		case strings.HasPrefix(a, "-") && a != "-":
			flags = append(flags, a)
			name := strings.TrimLeft(a, "-")
			if strings.Contains(name, "=") {
				continue
			}
			if f := fs.Lookup(name); f != nil && !isBoolFlag(f) && i+1 < len(args) {
				i++
				flags = append(flags, args[i])
			}
		default:
			paths = append(paths, a)
		}
	}
	return flags, paths
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// parseFlags parses one command's flags, the same way for every command:
// with -h it prints the usage on stdout and returns flag.ErrHelp (exit 0);
// a bad flag or a stray argument comes back as a usageError whose one line
// says how to get the flags.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	fs.SetOutput(io.Discard) // errors are reported in one line by the caller
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stdout, "usage: %s [flags]\n", fs.Name())
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return flag.ErrHelp
		}
		return usageError{fmt.Sprintf("%v (run \"%s -h\" for the flags)", err, fs.Name())}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q: %s takes flags only", fs.Arg(0), fs.Name())}
	}
	return nil
}
