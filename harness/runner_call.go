package harness

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/poolproof/poolproof/fakeservers"
)

// MaxBody bounds the response body the harness reads per call.
const MaxBody = 8 << 20

// ErrBodyTooLarge is the error recorded for a response body over MaxBody.
var ErrBodyTooLarge = errors.New("response body larger than 8 MiB")

// callResult is what a call's goroutine hands back to its worker.
type callResult struct {
	status int
	bytes  int64
	digest DigestState
	err    error
	end    time.Time
}

// BodyReport is a response body as the client read it: its length and
// its SHA-256.
type BodyReport struct {
	Len    int64
	SHA256 [sha256.Size]byte
}

// ReportedBody may be implemented by a response body whose bytes were read
// where the harness cannot see them: a driver's child process reads the
// body and reports its length and digest, the bytes never cross the pipe.
// doCall then takes the report instead of reading the body, and checks it
// against X-Body-Digest as it checks the bytes it reads itself.
type ReportedBody interface {
	BodyReport() BodyReport
}

// doCall runs one call on the client: Do, then read the body to EOF (or
// take its ReportedBody), verify its digest and close it. It runs in its
// own goroutine so that a client that never returns only costs that
// goroutine; a panicking client is recorded, not fatal.
func doCall(client Client, req *http.Request) (res callResult) {
	defer func() {
		if p := recover(); p != nil {
			res = callResult{err: fmt.Errorf("the client panicked: %v", p)}
		}
		res.end = time.Now()
	}()
	resp, err := client.Do(req)
	if err != nil {
		if resp != nil && resp.Body != nil {
			resp.Body.Close()
		}
		return callResult{err: err}
	}
	if resp == nil {
		return callResult{err: errors.New("the client returned a nil response and a nil error")}
	}
	res.status = resp.StatusCode
	if resp.Body == nil {
		return res
	}
	if rb, ok := resp.Body.(ReportedBody); ok {
		res.bytes, res.digest, res.err = reportedBody(resp.Header, rb.BodyReport())
	} else {
		res.bytes, res.digest, res.err = readBody(resp)
	}
	if cerr := resp.Body.Close(); cerr != nil && res.err == nil {
		res.err = fmt.Errorf("closing the response body: %w", cerr)
	}
	return res
}

type bodyReader struct {
	buf  []byte
	hash hash.Hash
	sum  [sha256.Size]byte
}

var bodyReaders = sync.Pool{New: func() any {
	return &bodyReader{buf: make([]byte, 32<<10), hash: sha256.New()}
}}

// readBody reads the body to EOF (at most MaxBody) and checks it against
// the X-Body-Digest header.
func readBody(resp *http.Response) (int64, DigestState, error) {
	br := bodyReaders.Get().(*bodyReader)
	defer bodyReaders.Put(br)
	br.hash.Reset()
	lr := io.LimitedReader{R: resp.Body, N: MaxBody + 1}
	n, err := io.CopyBuffer(br.hash, &lr, br.buf)
	if err != nil {
		return n, DigestNotRead, fmt.Errorf("reading the response body after %d bytes: %w", n, err)
	}
	if n > MaxBody {
		return n, DigestNotRead, ErrBodyTooLarge
	}
	br.hash.Sum(br.sum[:0])
	return n, digestState(resp.Header, &br.sum), nil
}

// reportedBody holds a reported body to the bounds readBody keeps.
func reportedBody(h http.Header, r BodyReport) (int64, DigestState, error) {
	if r.Len > MaxBody {
		return r.Len, DigestNotRead, ErrBodyTooLarge
	}
	return r.Len, digestState(h, &r.SHA256), nil
}

// digestState compares a body's SHA-256 with the X-Body-Digest header.
func digestState(h http.Header, sum *[sha256.Size]byte) DigestState {
	header := h.Get(fakeservers.HeaderBodyDigest)
	if header == "" {
		return DigestAbsent
	}
	hexSum, ok := strings.CutPrefix(header, fakeservers.DigestPrefix)
	if !ok || len(hexSum) != 2*sha256.Size {
		return DigestMismatch
	}
	var want [sha256.Size]byte
	if _, err := hex.Decode(want[:], []byte(hexSum)); err != nil {
		return DigestMismatch
	}
	if want != *sum {
		return DigestMismatch
	}
	return DigestOK
}
