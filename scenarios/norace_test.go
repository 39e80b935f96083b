//go:build !race

package scenarios_test

// raceDetector is set when the tests run with -race.
const raceDetector = false
