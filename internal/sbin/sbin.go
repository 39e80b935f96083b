// Package sbin finds a daemon's program: on PATH, else in /usr/sbin, where
// Debian installs nginx and haproxy and which a user's PATH may lack.
package sbin

import (
	"os/exec"
	"path/filepath"
)

// LookPath returns the path of the program name, on PATH or in /usr/sbin.
func LookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, nil
	}
	if p, err := exec.LookPath(filepath.Join("/usr/sbin", name)); err == nil {
		return p, nil
	}
	return "", err
}
