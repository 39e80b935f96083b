package driver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/poolproof/poolproof/harness"
)

// What a driver did wrong, as the Kind of a ProtocolError (match with
// errors.Is).
var (
	// ErrNoInitOK: the driver did not answer init within the bound.
	ErrNoInitOK = errors.New("no init_ok")
	// ErrExited: the driver exited, or closed its stdout, before it was
	// told to (it crashed), or exited at shutdown with a status other
	// than 0.
	ErrExited = errors.New("exited")
	// ErrHung: the driver did not answer close within the bound.
	ErrHung = errors.New("hung")
	// ErrBadMessage: the driver printed a line that is not a valid message.
	ErrBadMessage = errors.New("bad message")
	// ErrUnknownCall: the driver answered a call it was never sent, or
	// answered one twice.
	ErrUnknownCall = errors.New("unknown call")
	// ErrSlowExit: the driver did not exit within the bound of shutdown,
	// and was killed.
	ErrSlowExit = errors.New("slow exit")
)

// ErrClosed is returned by a call made on, or still pending at, a Process
// that was closed.
var ErrClosed = errors.New("driver closed")

// ProtocolError ends a driver that broke the protocol. Every pending and
// later call returns it; it wraps its Kind and harness.ErrClientGone, so
// the runner ends the workload.
type ProtocolError struct {
	Command string // the driver's command line
	PID     int
	Kind    error  // ErrNoInitOK, ErrExited, ErrHung, ErrBadMessage, ErrUnknownCall or ErrSlowExit
	What    string // what the driver did, in words
	Line    string // the offending line as printed (at most maxQuotedLine bytes), "" when none
	Stderr  string // the last lines of its stderr
}

// maxQuotedLine bounds the offending line an error quotes.
const maxQuotedLine = 200

func (e *ProtocolError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "driver %q (pid %d) broke the protocol: %s", e.Command, e.PID, e.What)
	if e.Line != "" {
		b.WriteString(": ")
		b.WriteString(strconv.Quote(e.Line))
	}
	b.WriteString("; ")
	b.WriteString(fixFor(e.Kind))
	if e.Stderr != "" {
		b.WriteString("; its stderr ends: ")
		b.WriteString(strconv.Quote(e.Stderr))
	}
	return b.String()
}

// fixFor says what to do about each kind of protocol error.
func fixFor(kind error) string {
	switch kind {
	case ErrNoInitOK:
		return "answer init with init_ok on stdout (see docs/driver-protocol.md)"
	case ErrExited:
		return "see its stderr for why it stopped"
	case ErrHung:
		return "answer close at once, whatever calls are in flight"
	case ErrBadMessage:
		return "print only protocol messages on stdout, one JSON object a line (debug output goes to stderr)"
	case ErrUnknownCall:
		return "answer each call exactly once, with the id it was sent"
	case ErrSlowExit:
		return "exit with status 0 at shutdown or at EOF on stdin"
	}
	return "see docs/driver-protocol.md"
}

func (e *ProtocolError) Unwrap() []error { return []error{e.Kind, harness.ErrClientGone} }

// PoolproofClass: a call the driver never answered is no network error.
func (e *ProtocolError) PoolproofClass() string { return harness.ClassOther.String() }

// quoteLine keeps at most maxQuotedLine bytes of a line for an error.
func quoteLine(line []byte) string {
	if len(line) > maxQuotedLine {
		line = line[:maxQuotedLine]
	}
	return string(line)
}
