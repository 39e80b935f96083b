package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// usageError is a bad command line: exit code 2, one line on stderr.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

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
