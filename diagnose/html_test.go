package diagnose

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"keepstate/synth"
)

// findChromium returns a headless-capable Chromium, or skips the test.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no chromium in PATH (Debian: apt-get install -y chromium): the HTML reports are not checked in a browser")
	return ""
}

// browserResult is what a headless Chromium made of a page.
type browserResult struct {
	dom      string
	console  []string // console lines Chromium logged (errors included)
	plots    int      // from #render-status, written by the page's script
	marks    int
	jsErrors string // the page's own #js-error, if its script failed
}

var (
	statusRE = regexp.MustCompile(`id="render-status" data-plots="(\d+)" data-marks="(\d+)"`)
	jsErrRE  = regexp.MustCompile(`(?s)<pre id="js-error">(.*?)</pre>`)
)

// loadInChromium opens page in a fresh headless Chromium that cannot resolve any
// host name (so a page that needed the network would show it), dumps the DOM
// after the scripts ran and collects the console. With KEEPSTATE_SCREENSHOT_DIR
// set it also saves a screenshot there to look at.
func loadInChromium(t *testing.T, chromium, page string) browserResult {
	t.Helper()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
	}
	run := func(extra ...string) (stdout, stderr []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		args := append(append(append([]string(nil), base...), "--user-data-dir="+t.TempDir()), extra...)
		args = append(args, "file://"+page)
		cmd := exec.CommandContext(ctx, chromium, args...)
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("chromium %v: %v\n%s", extra, err, errb.String())
		}
		return out.Bytes(), errb.Bytes()
	}
	out, errb := run("--enable-logging=stderr", "--v=0", "--dump-dom")
	r := browserResult{dom: string(out)}
	for _, line := range strings.Split(string(errb), "\n") {
		if strings.Contains(line, ":CONSOLE") {
			r.console = append(r.console, line)
		}
	}
	if m := statusRE.FindStringSubmatch(r.dom); m != nil {
		r.plots, _ = strconv.Atoi(m[1])
		r.marks, _ = strconv.Atoi(m[2])
	}
	if m := jsErrRE.FindStringSubmatch(r.dom); m != nil {
		r.jsErrors = m[1]
	}
	if dir := os.Getenv("KEEPSTATE_SCREENSHOT_DIR"); dir != "" {
		shot := filepath.Join(dir, strings.TrimSuffix(filepath.Base(page), ".html")+".png")
		run("--window-size=1100,1800", "--screenshot="+shot)
		t.Logf("screenshot: %s", shot)
	}
	return r
}

// checkSelfContained fails when the page refers to anything outside itself.
func checkSelfContained(t *testing.T, html string) {
	t.Helper()
	for _, bad := range []string{"src=", "href=", "url(", "@import", "fetch(", "XMLHttpRequest", "<link", "<iframe"} {
		if strings.Contains(html, bad) {
			t.Errorf("page contains %q: it must not load anything", bad)
		}
	}
	if n := strings.Count(html, "http"); n != 1 || !strings.Contains(html, `"http://www.w3.org/2000/svg"`) {
		t.Errorf("page mentions http %d times; only the SVG namespace name may appear", n)
	}
}

func checkBrowser(t *testing.T, r browserResult, plots, marks int) {
	t.Helper()
	if r.jsErrors != "" {
		t.Errorf("the page's script failed: %s", r.jsErrors)
	}
	if len(r.console) > 0 {
		t.Errorf("console messages:\n%s", strings.Join(r.console, "\n"))
	}
	if r.plots != plots || r.marks != marks {
		t.Errorf("rendered %d plots with %d marks, want %d and %d", r.plots, r.marks, plots, marks)
	}
	if n := strings.Count(r.dom, "<svg"); n != plots {
		t.Errorf("%d svg elements in the DOM, want %d", n, plots)
	}
	// Every mark is an SVG shape with a tooltip.
	if n := strings.Count(r.dom, "<title>"); n < marks {
		t.Errorf("%d tooltips for %d marks", n, marks)
	}
}

func TestAdviseHTMLInChromium(t *testing.T) {
	chromium := findChromium(t)
	path, _ := writeStory2(t)
	r, err := Advise(path, AdviseOptions{Policy: story2Config(t, 3600), BytesPerConn: 125, BytesSource: "test"})
	if err != nil {
		t.Fatal(err)
	}
	page := savePage(t, "advise.html", r.WriteHTML)
	// Three flagged connections (46, 43 and 43 packets) and the memory curve.
	wantMarks := 46 + 43 + 43 + len(r.Memory.Curve)
	checkBrowser(t, loadInChromium(t, chromium, page), 4, wantMarks)
}

func TestDiffHTMLInChromium(t *testing.T) {
	chromium := findChromium(t)
	a, b, _ := writePair(t, synth.PairPath{Start: pairStart, Conns: 12, ClockOffset: 3 * time.Second, DropEvery: 17,
		Around: func(i int) bool { return i%4 == 1 }, Strict: true})
	r, err := Diff(a, b, DiffOptions{Policy: story1Config(t)})
	if err != nil {
		t.Fatal(err)
	}
	page := savePage(t, "diff.html", r.WriteHTML)
	// One plot per connection, one mark per packet seen (on either side or both).
	want := 0
	for _, c := range r.Conns {
		want += len(c.Timeline)
	}
	if want != r.Crossed+r.OnlyA+r.OnlyB || len(r.Conns) != 12 {
		t.Fatalf("%d marks for %d sightings over %d connections", want, r.Crossed+r.OnlyA+r.OnlyB, len(r.Conns))
	}
	res := loadInChromium(t, chromium, page)
	checkBrowser(t, res, 12, want)
	// The verdicts reach the page, escaped.
	if !strings.Contains(res.dom, "replies are seen only on B and never cross the firewall") ||
		!strings.Contains(res.dom, "3 packets: dropped by the firewall: handshake_not_completed") {
		t.Errorf("verdicts missing from the page")
	}
}

// TestHTMLBrokenScriptIsCaught makes sure the checks above can fail: a page whose
// script throws is reported by its own error marker and by the console.
func TestHTMLBrokenScriptIsCaught(t *testing.T) {
	chromium := findChromium(t)
	var buf bytes.Buffer
	saved := reportJS
	reportJS = strings.Replace(reportJS, "var data = window.REPORT;", "var data = window.REPORT; data.conns = null;", 1)
	defer func() { reportJS = saved }()
	r := &DiffReport{Findings: []string{"x"}, Conns: []ConnDiff{}}
	if err := r.WriteHTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "broken.html")
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	res := loadInChromium(t, chromium, page)
	if !strings.Contains(res.jsErrors, "script error") || len(res.console) == 0 || res.plots != 0 {
		t.Errorf("a failing script went unnoticed: js errors %q, console %q, plots %d", res.jsErrors, res.console, res.plots)
	}
}

// savePage renders a report's page into a temporary file, checks that it needs
// nothing from the network, and returns its path.
func savePage(t *testing.T, name string, write func(io.Writer) error) string {
	t.Helper()
	var buf bytes.Buffer
	if err := write(&buf); err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(page, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	checkSelfContained(t, buf.String())
	return page
}
