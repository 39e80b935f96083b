package report_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/poolproof/poolproof/harness"
	"github.com/poolproof/poolproof/report"
)

func TestWriteWritesEveryFile(t *testing.T) {
	cert := certificate(t)
	dir := filepath.Join(t.TempDir(), "out")
	files, err := report.Write(dir, cert, report.Meta{Client: "plain"})
	require.NoError(t, err)
	for _, p := range []string{files.HTML, files.JUnit, files.Summary} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		assert.Positive(t, st.Size(), p)
	}
	require.Len(t, files.Histories, len(cert.Results))
	for i, r := range cert.Results {
		assert.Equal(t, filepath.Join(dir, "histories", r.Scenario+".json.gz"), files.Histories[i])
		f, err := os.Open(files.Histories[i])
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		var magic [2]byte
		_, err = f.ReadAt(magic[:], 0)
		require.NoError(t, err)
		assert.Equal(t, [2]byte{0x1f, 0x8b}, magic, "compressed with gzip")
		h, err := harness.LoadHistory(f)
		require.NoError(t, err)
		assert.Len(t, h.Calls, len(r.History.Calls))
	}
	if keep := os.Getenv("POOLPROOF_REPORT_KEEP"); keep != "" { // to look at the report by hand
		_, err := report.Write(keep, cert, report.Meta{Client: "retries-unsafe-post"})
		require.NoError(t, err)
		t.Logf("report kept in %s", keep)
	}
}
