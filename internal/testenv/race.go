//go:build race

package testenv

// Race is set when the code runs with the race detector (-race).
const Race = true
