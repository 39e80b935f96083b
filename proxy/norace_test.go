//go:build !race

package proxy_test

// raceDetector is set when the tests run with -race.
const raceDetector = false
