package fakeservers

import (
	"fmt"
	"slices"
	"strings"
)

// ValidateFault checks f as service's SetFaults would, without a running
// server, so that a fault written in a file is refused before anything
// runs. The error names the field as "<json name>: problem".
func ValidateFault(service string, f Fault) error {
	if !slices.Contains(Services, service) {
		return fmt.Errorf("service %q: use one of %s", service, strings.Join(Services, ", "))
	}
	return validateFault(routesFor(service), &f)
}
