//go:build !race

package driver_test

// raceDetector is set when the tests run with -race.
const raceDetector = false
