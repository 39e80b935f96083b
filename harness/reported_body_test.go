package harness_test

import (
	"crypto/sha256"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/harness/check"
	"github.com/poolproof/poolproof/internal/harnesstest"
)

// reportingClient reads each body itself and hands the harness an empty
// body that reports what was read, as a driver's client does; corrupt
// flips one bit of the reported digest.
type reportingClient struct {
	inner   *http.Client
	corrupt bool
}

type reported struct {
	io.Reader
	report harness.BodyReport
}

func (r reported) Close() error                   { return nil }
func (r reported) BodyReport() harness.BodyReport { return r.report }

func (c *reportingClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		return nil, err
	}
	rep := harness.BodyReport{Len: n}
	h.Sum(rep.SHA256[:0])
	if c.corrupt {
		rep.SHA256[0] ^= 1
	}
	resp.Body = reported{Reader: http.NoBody, report: rep}
	return resp, nil
}

func (c *reportingClient) CloseIdleConnections() { c.inner.CloseIdleConnections() }

func TestRunTakesAReportedBodyAndChecksItsDigest(t *testing.T) {
	env := newEmbeddedEnv(t)
	for _, corrupt := range []bool{false, true} {
		factory := func(svc harness.Service) (harness.Client, error) {
			return &reportingClient{inner: &http.Client{Timeout: 2 * time.Second, Transport: harnesstest.StdTransport(svc, 16)}, corrupt: corrupt}, nil
		}
		h, err := harness.Run(harnesstest.Ctx(t), env, factory, harnesstest.ShortSpec("reported", 3))
		require.NoError(t, err)
		require.NotEmpty(t, h.Calls)
		want := harness.DigestOK
		if corrupt {
			want = harness.DigestMismatch
		}
		for _, c := range h.Calls {
			require.Equal(t, harness.ClassNone, c.Class, "call %d: %s", c.Seq, h.ErrorText(c))
			require.Equal(t, want, c.Digest, "call %d", c.Seq)
			require.Positive(t, c.Bytes, "the reported length is recorded")
		}
		v := harness.Judge(h, check.IntegrityDigest{})[0]
		assert.Equal(t, !corrupt, v.Passed(), "%s", v)
	}
}
