// Package suites owns the Ginkgo suites teams call from their own test
// package to certify their HTTP client with poolproof. It only maps the
// certification onto Ginkgo (one container per scenario family, one spec per
// scenario, the embedded environment owned by the top container); the
// running and judging is harness.Certify, which the CLI calls too.
//
// A team copies this into a _test.go file of its own package:
//
//	package myclient_test
//
//	import (
//		"testing"
//
//		. "github.com/onsi/ginkgo/v2"
//		. "github.com/onsi/gomega"
//		"github.com/poolproof/poolproof/suites"
//	)
//
//	var _ = suites.Certify(myFactory, myProfile) // or suites.Certify(f, p, suites.WithQuick())
//
//	func TestPoolproof(t *testing.T) {
//		RegisterFailHandler(Fail)
//		RunSpecs(t, "poolproof certification")
//	}
//
// myFactory is a harness.ClientFactory (build the client for one
// harness.Service, trusting Service.CAs) and myProfile the harness.Profile the
// client claims; example_test.go certifies a plain *http.Client this way.
// A client in another language is certified through its driver (a program
// speaking docs/driver-protocol.md), its contract read from its file:
//
//	var _ = suites.CertifyDriver([]string{"python3", "my_driver.py"}, myProfile)
//
// A failed spec lists every failed check with its scenario, seed, measured
// value and bound; replay it with suites.WithSeed(seed). Specs are labelled
// with their family and scenario name, so
//
//	go test ./mypkg/ -ginkgo.label-filter=retry
//
// runs one family. For CI, Ginkgo writes a JUnit report (one testcase per
// scenario, path relative to the package directory):
//
//	go test ./mypkg/ -ginkgo.junit-report=junit.xml
package suites
