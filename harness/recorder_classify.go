package harness

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
)

// Classifier may be implemented by a client's errors to name their class
// themselves, which is more reliable than the harness guessing from the
// error's text. PoolproofClass returns one of the ErrorClass names:
// "timeout", "conn_refused", "reset", "eof", "tls", "pool_exhausted",
// "circuit_open", "canceled" or "other" (unknown names count as "other").
// It is found with errors.As, so it may sit anywhere in the wrapped chain.
//
//	func (e *PoolError) PoolproofClass() string { return "pool_exhausted" }
type Classifier interface {
	PoolproofClass() string
}

// Classify maps an error a client returned to its ErrorClass. In order: a
// Classifier in the chain; the text of the sentinel errors a pooled client
// returns ("pool exhausted", "circuit open" and gobreaker's "circuit breaker
// is open" / "too many requests"), since the harness cannot import a client;
// context cancellation; timeouts (context.DeadlineExceeded,
// os.ErrDeadlineExceeded, a net.Error that says Timeout); ECONNREFUSED;
// ECONNRESET, EPIPE and ECONNABORTED; TLS and certificate errors; EOF. The
// text fallbacks catch clients that wrap with %v instead of %w.
func Classify(err error) ErrorClass {
	if err == nil {
		return ClassNone
	}
	var c Classifier
	if errors.As(err, &c) {
		if cl, ok := ParseErrorClass(c.PoolproofClass()); ok {
			return cl
		}
		return ClassOther
	}
	text := strings.ToLower(err.Error())
	switch {
	case strings.Contains(text, "pool exhausted"):
		return ClassPoolExhausted
	case strings.Contains(text, "circuit open"), strings.Contains(text, "circuit breaker is open"),
		strings.Contains(text, "breaker open"), strings.Contains(text, "too many requests") && strings.Contains(text, "breaker"):
		return ClassCircuitOpen
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), isNetTimeout(err):
		return ClassTimeout
	case errors.Is(err, syscall.ECONNREFUSED), strings.Contains(text, "connection refused"):
		return ClassConnRefused
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNABORTED),
		strings.Contains(text, "connection reset"), strings.Contains(text, "broken pipe"):
		return ClassReset
	case isTLSError(err), strings.Contains(text, "tls:"), strings.Contains(text, "x509:"):
		return ClassTLS
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(text, "eof"),
		strings.Contains(text, "server closed idle connection"):
		return ClassEOF
	case strings.Contains(text, "timeout"), strings.Contains(text, "deadline exceeded"):
		return ClassTimeout
	}
	return ClassOther
}

func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isTLSError(err error) bool {
	var (
		rh  tls.RecordHeaderError
		al  tls.AlertError
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		prh *tls.RecordHeaderError
	)
	return errors.As(err, &rh) || errors.As(err, &prh) || errors.As(err, &al) || errors.As(err, &cv) ||
		errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
