//go:build unix

package report_test

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/html"

	"github.com/poolproof/poolproof/internal/testenv"
	"github.com/poolproof/poolproof/report"
)

// chromiumTimeout bounds one headless run; a healthy one takes a second or
// two, a loaded machine several.
const chromiumTimeout = 90 * time.Second

// chromium finds the browser, or skips the test (fails it when
// POOLPROOF_REQUIRE_CHROMIUM is set, as CI does).
func chromium(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		testenv.Unavailable(t, testenv.RequireChromium, "chromium", "install it with apt-get install -y chromium to render the report in a browser", err)
	}
	return path
}

// runChromium runs one headless, isolated, bounded chromium and returns its
// stdout. The whole process group is killed on timeout, renderers included.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), chromiumTimeout)
	t.Cleanup(cancel)
	base := []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--user-data-dir=" + t.TempDir(), "--window-size=1400,3000"}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	require.NoError(t, err, "chromium %v after %s; stderr:\n%s", args, time.Since(start), stderr.String())
	t.Logf("chromium %s took %s", args[len(args)-2], time.Since(start).Round(time.Millisecond))
	return stdout.Bytes()
}

// measureScript is added to a copy of the page (the report itself has no
// script): it writes each chart's rendered size into the DOM, which
// --dump-dom then prints.
const measureScript = `<script>
document.body.setAttribute("data-svg-sizes", Array.from(document.querySelectorAll("svg")).map(function (s) {
  var r = s.getBoundingClientRect();
  return (s.getAttribute("data-chart") || "?") + ":" + Math.round(r.width) + "x" + Math.round(r.height);
}).join(" "));
</script>
</body>`

func TestHTMLRendersInChromium(t *testing.T) {
	bin := chromium(t)
	cert := certificate(t)
	dir := t.TempDir()
	files, err := report.Write(dir, cert, report.Meta{Client: "retries-unsafe-post"})
	require.NoError(t, err)
	wantCharts := 0
	for _, r := range cert.Results {
		if r.History != nil {
			wantCharts += 5
		}
	}

	t.Run("every chart is in the DOM", func(t *testing.T) {
		dom := runChromium(t, bin, "--dump-dom", "file://"+files.HTML)
		doc, err := html.Parse(bytes.NewReader(dom))
		require.NoError(t, err)
		svgs := 0
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "svg" {
				svgs++
			}
		}
		assert.Equal(t, wantCharts, svgs)
	})

	t.Run("every chart has a size", func(t *testing.T) {
		page, err := os.ReadFile(files.HTML)
		require.NoError(t, err)
		measured := filepath.Join(dir, "measured.html")
		require.NoError(t, os.WriteFile(measured, bytes.Replace(page, []byte("</body>"), []byte(measureScript), 1), 0o600))
		dom := runChromium(t, bin, "--dump-dom", "file://"+measured)
		doc, err := html.Parse(bytes.NewReader(dom))
		require.NoError(t, err)
		var sizes string
		for n := range doc.Descendants() {
			if n.Type == html.ElementNode && n.Data == "body" {
				sizes = attr(n, "data-svg-sizes")
			}
		}
		t.Logf("rendered chart sizes (CSS px): %s", sizes)
		charts := strings.Fields(sizes)
		require.Len(t, charts, wantCharts, "sizes: %q", sizes)
		for _, c := range charts {
			name, size, _ := strings.Cut(c, ":")
			w, h, _ := strings.Cut(size, "x")
			assert.NotEqual(t, "0", w, "chart %s has no width", name)
			assert.NotEqual(t, "0", h, "chart %s has no height", name)
			assert.NotEqual(t, "?", name)
		}
	})

	t.Run("screenshot", func(t *testing.T) {
		shot := filepath.Join(dir, "report.png")
		runChromium(t, bin, "--screenshot="+shot, "file://"+files.HTML)
		f, err := os.Open(shot)
		require.NoError(t, err)
		t.Cleanup(func() { _ = f.Close() })
		img, err := png.Decode(f)
		require.NoError(t, err)
		b := img.Bounds()
		assert.Equal(t, 1400, b.Dx())
		assert.Equal(t, 3000, b.Dy())
		colours := map[uint32]bool{}
		for y := b.Min.Y; y < b.Max.Y && len(colours) < 50; y += 7 {
			for x := b.Min.X; x < b.Max.X; x += 7 {
				r, g, bl, _ := img.At(x, y).RGBA()
				colours[r>>8<<16|g>>8<<8|bl>>8] = true
			}
		}
		assert.GreaterOrEqual(t, len(colours), 50, "the screenshot is not a blank page")
		if keep := os.Getenv("POOLPROOF_REPORT_KEEP"); keep != "" {
			data, err := os.ReadFile(shot)
			require.NoError(t, err)
			require.NoError(t, os.MkdirAll(keep, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(keep, "report.png"), data, 0o644))
		}
	})
}
