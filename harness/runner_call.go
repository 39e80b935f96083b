package harness

import (
	"bytes"
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

// doCall runs one call on the client: Do, then read the body to EOF, verify
// its digest and close it. It runs in its own goroutine so that a client
// that never returns only costs that goroutine; a panicking client is
// recorded, not fatal.
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
	res.bytes, res.digest, res.err = readBody(resp)
	if cerr := resp.Body.Close(); cerr != nil && res.err == nil {
		res.err = fmt.Errorf("closing the response body: %w", cerr)
	}
	return res
}

type bodyReader struct {
	buf  []byte
	hash hash.Hash
	sum  [sha256.Size]byte
	want [sha256.Size]byte
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
	header := resp.Header.Get(fakeservers.HeaderBodyDigest)
	if header == "" {
		return n, DigestAbsent, nil
	}
	hexSum, ok := strings.CutPrefix(header, fakeservers.DigestPrefix)
	if !ok || len(hexSum) != 2*sha256.Size {
		return n, DigestMismatch, nil
	}
	if _, err := hex.Decode(br.want[:], []byte(hexSum)); err != nil {
		return n, DigestMismatch, nil
	}
	if !bytes.Equal(br.hash.Sum(br.sum[:0]), br.want[:]) {
		return n, DigestMismatch, nil
	}
	return n, DigestOK, nil
}
