package diagnose

import (
	_ "embed"
	"html/template"
	"io"
	"strings"
	"time"
)

// The HTML reports are one self-contained page each: the style sheet, the script
// and the data are inline, the plots are SVG drawn by the script, and nothing is
// loaded from anywhere, so the file can be mailed or opened offline. The script
// writes what it drew into #render-status (and any error into #js-error), which
// the tests read back from a headless browser.

//go:embed assets/report.css
var reportCSS string

//go:embed assets/report.js
var reportJS string

// Limits that keep a page light enough for a browser whatever the capture.
const (
	htmlMaxConns = 60   // connections plotted
	htmlMaxMarks = 1500 // points per connection plot
	htmlFewConns = 10   // connections an advice page plots when none stands out
)

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>{{.CSS}}</style>
</head>
<body>
<header><h1>{{.Title}}</h1><p>{{.Subtitle}}</p></header>
<main>
<section><h2>Findings</h2><ul class="findings">{{range .Findings}}<li>{{.}}</li>{{end}}</ul></section>
{{.Body}}
<p id="render-status">the plots need JavaScript</p>
</main>
<script>window.REPORT = {{.Data}};</script>
<script>{{.JS}}</script>
</body>
</html>
`))

type page struct {
	Title, Subtitle string
	Findings        []string
	Body            template.HTML
	Data            any
	CSS             template.CSS
	JS              template.JS
}

func writePage(w io.Writer, p page) error {
	p.CSS, p.JS = template.CSS(reportCSS), template.JS(reportJS)
	return pageTemplate.Execute(w, p)
}

var diffBody = template.Must(template.New("diff").Parse(`
<section><h2>Connections</h2>
<p class="legend"><span><i style="background:#2f6fde"></i>request</span><span><i style="background:#1f9d55"></i>reply</span><span><i style="background:#d62828"></i>seen on one side only</span>
Lane A above, lane B below; a line joins the two sightings of a packet, B's time corrected by the clock offset. Hover for details.</p>
{{range $i, $c := .}}<h3>{{$c.Proto}} {{$c.Client}} &rarr; {{$c.Server}} <span class="status status-{{$c.Status}}">{{$c.Status}}</span></h3>
<p class="verdict">{{$c.Verdict}}</p>
{{range $c.Labels}}<p class="verdict">{{.Packets}} packet{{if ne .Packets 1}}s{{end}}: {{.Label}}</p>{{end}}
<div id="plot-{{$i}}"></div>
{{end}}</section>`))

// diffPlotData is the JSON the script draws a diff from. A mark is
// [reply (0/1), time on A, time on B, description, label], times -1 when unseen.
type diffPlotData struct {
	Kind  string          `json:"kind"`
	Conns []diffPlotConns `json:"conns"`
}

type diffPlotConns struct {
	Title string  `json:"title"`
	Marks [][]any `json:"marks"`
}

// WriteHTML writes the diff as one self-contained HTML page: the findings and,
// per connection (the worst first), a timeline of its packets on each side.
func (r *DiffReport) WriteHTML(w io.Writer) error {
	conns := r.Conns[:min(len(r.Conns), htmlMaxConns)]
	data := diffPlotData{Kind: "diff", Conns: []diffPlotConns{}}
	for _, c := range conns {
		pc := diffPlotConns{Title: c.Proto + " " + c.Client + " -> " + c.Server, Marks: [][]any{}}
		for _, m := range c.Timeline[:min(len(c.Timeline), htmlMaxMarks)] {
			pc.Marks = append(pc.Marks, []any{b2i(m.Reply), m.TA, m.TB, m.Desc, m.Label})
		}
		data.Conns = append(data.Conns, pc)
	}
	body, err := execute(diffBody, conns)
	if err != nil {
		return err
	}
	sub := "A: " + r.A.Path + "   B: " + r.B.Path + "   times from " + r.Start.Format("2006-01-02 15:04:05.000") + " UTC on A's clock"
	return writePage(w, page{Title: "keepstate diff", Subtitle: sub, Findings: r.Findings, Body: body, Data: data})
}

var adviseBody = template.Must(template.New("advise").Parse(`
<section><h2>Idle timeouts</h2>
<table><tr><th>setting</th><th class="num">current</th><th class="num">longest idle</th><th class="num">needed</th><th class="num">advised</th><th class="num">connections cut</th></tr>
{{range .R.Timeouts}}<tr><td>{{.Name}}</td><td class="num">{{.CurrentS}} s</td><td class="num">{{printf "%.1f" .LongestIdleS}} s</td><td class="num">{{.NeededS}} s</td><td class="num">{{.AdvisedS}} s</td><td class="num">{{.Cut}}</td></tr>
{{end}}</table>
<p>RFC 5382 asks at least {{.R.RFC5382S}} s for an established connection.</p></section>
{{if .R.Memory}}<section><h2>Memory against the timeout</h2>
<p>Peak of connections tracked at once for this capture's traffic (each lingers until its timeout ends after its last packet), times {{printf "%.1f" .R.Memory.BytesPerConn}} bytes per connection ({{.R.Memory.Source}}).</p>
<div id="plot-memory"></div></section>{{end}}
<section><h2>Connections</h2>
<p class="legend"><span><i style="background:#5b6577"></i>packet</span><span><i style="background:#1f9d55"></i>keep-alive answered</span><span><i style="background:#d62828"></i>keep-alive unanswered</span>
Each packet at its time since the connection's first, as high as the idle time before it. Red dashed: the current timeout; green: advised; violet: RFC 5382.</p>
{{range $i, $c := .Conns}}<h3>{{$c.Proto}} {{$c.Client}} &rarr; {{$c.Server}} {{if $c.Flagged}}<span class="status status-cut">cut</span>{{else}}<span class="status status-kept">kept</span>{{end}}</h3>
<p class="verdict">{{$c.Verdict}}</p>
<div id="plot-{{$i}}"></div>
{{end}}</section>`))

// advisePlotData is the JSON the script draws advice from. A keep-alive is
// [time since the connection's first packet, answered (0/1), retry (0/1), index
// of the packet].
type advisePlotData struct {
	Kind        string            `json:"kind"`
	TimeoutName string            `json:"timeout_name"`
	TimeoutS    int64             `json:"timeout_s"`
	AdvisedS    int64             `json:"advised_s"`
	RFCS        int64             `json:"rfc_s"`
	Conns       []advisePlotConn  `json:"conns"`
	Memory      *advisePlotMemory `json:"memory"`
}

type advisePlotConn struct {
	Title string    `json:"title"`
	Times []float64 `json:"times"`
	KAs   [][]any   `json:"kas"`
}

type advisePlotMemory struct {
	Current MemPoint `json:"current"`
	Advised MemPoint `json:"advised"`
	Curve   [][]any  `json:"curve"` // [timeout s, peak connections, MiB]
}

// WriteHTML writes the advice as one self-contained HTML page: the findings, the
// timeouts, the memory curve against the timeout and, per connection (flagged
// first), its idle gaps and keep-alives against the timeout lines.
func (r *AdviseReport) WriteHTML(w io.Writer) error {
	conns := plottedConns(r.Conns)
	est := r.Timeouts[0]
	data := advisePlotData{Kind: "advise", TimeoutName: est.Name, TimeoutS: est.CurrentS, AdvisedS: est.AdvisedS,
		RFCS: r.RFC5382S, Conns: []advisePlotConn{}}
	for _, c := range conns {
		pc := advisePlotConn{Title: c.Proto + " " + c.Client + " -> " + c.Server, Times: thin(c.Times, htmlMaxMarks), KAs: [][]any{}}
		if len(pc.Times) == len(c.Times) {
			for _, k := range c.KeepAlives {
				pc.KAs = append(pc.KAs, []any{seconds(time.Duration(k.Time.UnixNano() - c.firstNs)), b2i(k.Answered), b2i(k.Retry), k.index})
			}
		}
		data.Conns = append(data.Conns, pc)
	}
	if m := r.Memory; m != nil {
		pm := &advisePlotMemory{Current: m.Current, Advised: m.Advised, Curve: [][]any{}}
		for _, p := range m.Curve {
			pm.Curve = append(pm.Curve, []any{p.TimeoutS, p.PeakConns, p.MiB})
		}
		data.Memory = pm
	}
	body, err := execute(adviseBody, struct {
		R     *AdviseReport
		Conns []ConnAdvice
	}{r, conns})
	if err != nil {
		return err
	}
	sub := "capture: " + r.Capture.Path
	return writePage(w, page{Title: "keepstate advise", Subtitle: sub, Findings: r.Findings, Body: body, Data: data})
}

// plottedConns picks the connections an advice page plots: those flagged or kept
// alive by probes (Conns lists them first), else the few idle the longest.
func plottedConns(all []ConnAdvice) []ConnAdvice {
	n := 0
	for n < len(all) && n < htmlMaxConns && (all[n].Flagged || len(all[n].KeepAlives) > 0) {
		n++
	}
	if n == 0 {
		n = min(len(all), htmlFewConns)
	}
	return all[:n]
}

// thin samples at most n of a connection's packet times evenly, first and last
// included: enough to draw a connection with a million packets. (Keep-alive
// markers are left out of a thinned plot: their packet indexes no longer apply.)
func thin(ts []float64, n int) []float64 {
	if len(ts) <= n {
		return ts
	}
	out := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, ts[i*(len(ts)-1)/(n-1)])
	}
	return out
}

func execute(t *template.Template, data any) (template.HTML, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}
