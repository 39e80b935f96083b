package main

import (
	"errors"
	"flag"
	"fmt"
	"os/exec"
)

// driverCommand checks -driver (after fs is parsed): not with -client, a
// command line that splits, a program that is found. It returns the
// command's words, nil when -driver is empty; verb says what the command
// does with one client ("certify", "sweep").
func driverCommand(fs *flag.FlagSet, driverCmd, verb string) ([]string, error) {
	if driverCmd == "" {
		return nil, nil
	}
	clientSet := false
	fs.Visit(func(fl *flag.Flag) { clientSet = clientSet || fl.Name == "client" })
	if clientSet {
		return nil, usageError{fmt.Sprintf("-driver and -client both given: %s one client, a driver or a built-in one", verb)}
	}
	words, err := splitCommand(driverCmd)
	if err != nil {
		return nil, usageError{fmt.Sprintf("-driver %q: %v", driverCmd, err)}
	}
	if _, err := exec.LookPath(words[0]); err != nil {
		return nil, usageError{fmt.Sprintf("-driver %q: %s: %v: give the command that runs your driver", driverCmd, words[0], errors.Unwrap(err))}
	}
	return words, nil
}
