package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/poolproof/poolproof/harness"
)

// profileNone is the -profile that runs no built-in scenario: only those
// of the -scenarios files.
const profileNone = "none"

// pathList is a flag taking paths, comma-separated, the flag repeatable.
type pathList []string

func (p *pathList) String() string { return strings.Join(*p, ",") }

func (p *pathList) Set(v string) error {
	for _, path := range strings.Split(v, ",") {
		if path = strings.TrimSpace(path); path != "" {
			*p = append(*p, path)
		}
	}
	return nil
}

// selectCertifyScenarios is what certify runs: the profile's catalog (none
// with -profile none), then every scenario of the -scenarios files, all of
// it narrowed by -scenario. A file that does not parse, or a scenario
// whose name is taken, is a usage error: nothing runs.
func selectCertifyScenarios(f certifyFlags) ([]harness.Scenario, error) {
	var (
		all []harness.Scenario
		err error
	)
	switch {
	case f.profile == profileNone && len(f.scenarioFiles) == 0:
		return nil, usageError{"-profile none runs only the scenarios of -scenarios files: give one, e.g. -scenarios my-scenarios.yaml"}
	case f.profile == profileNone:
	case f.proxy.kind != "":
		all, err = selectProxyScenarios(f.profile, "", f.proxy)
	default:
		all, err = selectScenarios(f.profile, "")
	}
	if err != nil {
		return nil, err
	}
	for _, path := range f.scenarioFiles {
		loaded, err := harness.LoadScenarios(path)
		if err != nil {
			return nil, usageError{"-scenarios: " + oneLine(err)}
		}
		for _, s := range loaded {
			if slices.ContainsFunc(all, func(c harness.Scenario) bool { return c.Name == s.Name }) {
				return nil, usageError{fmt.Sprintf("-scenarios: scenario file %s: scenario %q: the name is taken by a built-in scenario or an earlier file: rename it, or pass -profile none", path, s.Name)}
			}
		}
		all = append(all, loaded...)
	}
	where := f.profile + " profile"
	if f.proxy.kind != "" {
		where = f.profile + " proxy profile"
	}
	switch {
	case f.profile == profileNone:
		where = "-scenarios files"
	case len(f.scenarioFiles) > 0:
		where += " and the -scenarios files"
	}
	return filterScenarios(all, where, f.scenarios)
}
