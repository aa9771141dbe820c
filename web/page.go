package web

import (
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"keepstate/config"
	"keepstate/daemon"
	"keepstate/insight"
	"keepstate/reason"
)

//go:embed assets/templates/*.html
var templateFS embed.FS

//go:embed assets/static assets/vendor
var staticFS embed.FS

var pageTemplates = template.Must(template.New("").Funcs(template.FuncMap{
	"inc":     func(i int) int { return i + 1 },
	"join":    func(ss []string) string { return strings.Join(ss, "; ") },
	"actions": func() []string { return []string{"Permit", "Deny", "Drop"} },
}).ParseFS(templateFS, "assets/templates/*.html"))

// sections of the page, in the order of its navigation.
var sections = []struct{ Path, Name string }{
	{"/admin/", "Dashboard"},
	{"/admin/rules", "Traffic rules"},
	{"/admin/security", "Security"},
	{"/admin/conntrack", "Connection tracking"},
	{"/admin/connections", "Active connections"},
	{"/admin/drops", "Live drops"},
	{"/admin/logs", "Logs"},
	{"/admin/logging", "Logging"},
	{"/admin/config", "Configuration"},
}

type navItem struct {
	Path, Name string
	Current    bool
}

// pageData is what every section's template gets.
type pageData struct {
	Title, User, Role, CSRF, Hash string
	Gen                           uint64
	ReadOnly                      bool
	Nav                           []navItem
	Banner                        *bannerData
	Data                          any
}

type bannerData struct {
	Seconds                int
	Hash, Source, Rollback string
	CanConfirm             bool
}

func (s *Server) pageRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "assets")
	fileServer := http.StripPrefix("/admin/static/", http.FileServerFS(static))
	mux.Handle("GET /admin/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=3600")
		fileServer.ServeHTTP(w, r)
	}))
	mux.HandleFunc("POST /admin/login", s.pageLogin)
	mux.HandleFunc("POST /admin/logout", s.pageLogout)

	page := func(path, title, tmpl string, data func(c *call, r *http.Request) (any, error)) {
		mux.HandleFunc("GET "+path, s.withPage(func(w http.ResponseWriter, r *http.Request, c *call) {
			d, err := data(c, r)
			if err != nil {
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			s.render(w, c, path, title, tmpl, d)
		}))
	}
	page("/admin/{$}", "Dashboard", "dashboard", s.dashData)
	page("/admin/rules", "Traffic rules", "rules", s.rulesData)
	page("/admin/security", "Security settings", "security", s.securityData)
	page("/admin/conntrack", "Connection tracking", "settingsform", s.tableData("ConnTrack"))
	page("/admin/logging", "Logging", "settingsform", s.tableData("Logging"))
	page("/admin/connections", "Active connections", "connections", s.connsData)
	page("/admin/drops", "Live drops", "drops", s.dropsData)
	page("/admin/logs", "Logs", "logs", s.logsData)
	page("/admin/config", "Configuration", "configuration", s.configData)

	mux.HandleFunc("GET /admin/ui/banner", s.withPage(s.uiBanner))
	mux.HandleFunc("GET /admin/ui/dash", s.withPage(func(w http.ResponseWriter, r *http.Request, c *call) {
		d, _ := s.dashData(c, r)
		s.renderFragment(w, "dashcards", d)
	}))
	mux.HandleFunc("GET /admin/ui/history", s.withPage(func(w http.ResponseWriter, r *http.Request, c *call) {
		writeJSON(w, http.StatusOK, s.d.History())
	}))
	mux.HandleFunc("GET /admin/ui/explain", s.withPage(s.uiExplain))
	mux.HandleFunc("GET /admin/ui/drops/stream", s.withPage(func(w http.ResponseWriter, r *http.Request, c *call) {
		s.streamDrops(w, r, true)
	}))
	mux.HandleFunc("POST /admin/ui/settings/{table}", s.withAction(s.uiSettings))
	mux.HandleFunc("POST /admin/ui/rules/{id}/{op}", s.withAction(s.uiRuleOp))
	mux.HandleFunc("POST /admin/ui/rules/save", s.withAction(s.uiRuleSave))
	mux.HandleFunc("POST /admin/ui/conns/kill", s.withAction(func(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
		var ids []uint64
		for _, f := range strings.Fields(strings.ReplaceAll(r.FormValue("ids"), ",", " ")) {
			id, err := strconv.ParseUint(f, 10, 64)
			if err != nil {
				return nil, errorf(codeBadParams, "connection id %q", f)
			}
			ids = append(ids, id)
		}
		return s.invokeWith(c, "ActiveConnections.kill", map[string]any{"ids": ids})
	}))
	mux.HandleFunc("POST /admin/ui/conns/killmatching", s.withAction(func(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
		return s.invokeWith(c, "ActiveConnections.killMatching", map[string]any{"filter": r.FormValue("filter")})
	}))
	mux.HandleFunc("POST /admin/ui/confirm", s.withAction(func(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
		ts, _ := s.invokeWith(c, "Session.getConfigTimestamp", nil)
		list := ts.(map[string]any)["clientTimestampList"]
		return s.invokeWith(c, "Session.confirmConfig", map[string]any{"clientTimestampList": list})
	}))
	mux.HandleFunc("POST /admin/ui/import", s.withAction(s.uiImport))
	mux.HandleFunc("POST /admin/ui/insights/apply", s.withAction(func(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
		fix, _ := strconv.Atoi(r.FormValue("fix"))
		return s.invokeWith(c, "Insights.apply", map[string]any{"id": r.FormValue("id"), "fix": fix})
	}))
}

// pageSession is the session of the page's cookie.
func (s *Server) pageSession(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	return s.ss.lookup(ck.Value)
}

// withPage serves a GET of the page: a session is required (the login form
// otherwise).
func (s *Server) withPage(h func(w http.ResponseWriter, r *http.Request, c *call)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		sess := s.pageSession(r)
		if sess == nil {
			if r.Header.Get("HX-Request") != "" {
				w.Header().Set("HX-Redirect", "/admin/")
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			s.renderLogin(w, http.StatusOK, "")
			return
		}
		c := &call{s: s, r: r, w: w, sess: sess}
		if _, ok := s.user(sess.user); !ok {
			s.ss.remove(sess.token)
			s.renderLogin(w, http.StatusOK, "Your user no longer exists.")
			return
		}
		h(w, r, c)
	}
}

// sameOrigin refuses a state-changing request another site's page could have
// sent: the browser's Sec-Fetch-Site or Origin headers say where it came from.
func sameOrigin(r *http.Request) error {
	if sfs := r.Header.Get("Sec-Fetch-Site"); sfs != "" && sfs != "same-origin" && sfs != "none" {
		return fmt.Errorf("cross-site request refused (Sec-Fetch-Site: %s)", sfs)
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return fmt.Errorf("request from origin %s refused", o)
		}
	}
	return nil
}

// withAction serves a POST of the page: session cookie, the session's CSRF
// token (X-CSRF-Token, which htmx sends, or a csrf form field) and a same-origin
// request. The handler's result or error is rendered into the message area.
func (s *Server) withAction(h func(w http.ResponseWriter, r *http.Request, c *call) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxRPCBody)
		sess := s.pageSession(r)
		if sess == nil {
			w.Header().Set("HX-Redirect", "/admin/")
			http.Error(w, "not logged in", http.StatusUnauthorized)
			return
		}
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			token = r.FormValue("csrf")
		}
		if err := sameOrigin(r); err != nil || !sameSecret(token, sess.csrf) {
			why := "missing or wrong CSRF token"
			if err != nil {
				why = err.Error()
			}
			s.d.SecurityLog("web_csrf", remoteAddr(r), "web administration: %s %s from %s refused: %s", r.Method, r.URL.Path, remoteAddr(r), why)
			http.Error(w, "refused: "+why, http.StatusForbidden)
			return
		}
		c := &call{s: s, r: r, w: w, sess: sess}
		res, err := h(w, r, c)
		s.renderResult(w, res, err)
	}
}

// invokeWith calls a method with params given as a Go value.
func (s *Server) invokeWith(c *call, name string, params any) (any, error) {
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, err
	}
	cc := *c
	cc.params = raw
	return s.invoke(&cc, name)
}

type resultData struct {
	OK       string
	Warnings []string
	Error    string
	Problems []string
}

func (s *Server) renderResult(w http.ResponseWriter, res any, err error) {
	var d resultData
	if err != nil {
		re := toRPCError(err)
		d.Error = re.Message
		if m, ok := re.Data.(map[string]any); ok {
			d.Problems, _ = m["messages"].([]string)
			if len(d.Problems) > 0 {
				d.Error = "Configuration refused; nothing changed."
			}
		}
		w.Header().Set("HX-Reswap", "innerHTML")
		s.renderFragment(w, "result", d)
		return
	}
	switch x := res.(type) {
	case ChangeResult:
		d.OK = fmt.Sprintf("Applied: %d connection(s) closed, %d kept.", x.Closed, x.Kept)
		d.Warnings = x.Warnings
		// The page shows the new values and the countdown banner.
		w.Header().Set("HX-Refresh", "true")
	case map[string]int:
		d.OK = fmt.Sprintf("%d connection(s) ended.", x["killed"])
		w.Header().Set("HX-Refresh", "true")
	case map[string]any:
		if x["confirmed"] == true {
			d.OK = "Confirmed and saved."
		} else {
			d.OK = "Done."
		}
	default:
		d.OK = "Done."
	}
	s.renderFragment(w, "result", d)
}

func (s *Server) renderFragment(w http.ResponseWriter, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplates.ExecuteTemplate(w, name, data); err != nil {
		fmt.Fprintf(s.o.Stderr, "keepstate: error: web page %s: %v\n", name, err)
	}
}

func (s *Server) render(w http.ResponseWriter, c *call, path, title, tmpl string, data any) {
	st := s.d.Status()
	u, _ := s.user(c.sess.user)
	pd := &pageData{Title: title, User: u.Name, Role: u.Role, CSRF: c.sess.csrf, Hash: st.Config.Hash,
		Gen: st.Config.Generation, ReadOnly: u.Role != config.RoleAdmin, Data: data, Banner: s.banner(c, st)}
	for _, sec := range sections {
		pd.Nav = append(pd.Nav, navItem{Path: sec.Path, Name: sec.Name, Current: sec.Path == strings.TrimSuffix(path, "{$}")})
	}
	var buf strings.Builder
	if err := pageTemplates.ExecuteTemplate(&buf, tmpl, pd); err != nil {
		http.Error(w, "page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, buf.String())
}

func (s *Server) banner(c *call, st *daemon.Status) *bannerData {
	if st.Pending == nil {
		return nil
	}
	u, _ := s.user(c.sess.user)
	return &bannerData{Seconds: int(st.Pending.SecondsLeft + 0.5), Hash: st.Pending.Hash, Source: st.Pending.Source,
		Rollback: st.Pending.RollbackHash, CanConfirm: u.Role == config.RoleAdmin}
}

// uiBanner answers the page's poll for the pending change. When the
// configuration in force is no longer the one the page shows (rolled back,
// or changed elsewhere) the page reloads.
func (s *Server) uiBanner(w http.ResponseWriter, r *http.Request, c *call) {
	st := s.d.Status()
	if gen, err := strconv.ParseUint(r.URL.Query().Get("gen"), 10, 64); err == nil && gen != st.Config.Generation {
		w.Header().Set("HX-Refresh", "true")
	}
	s.renderFragment(w, "banner", s.banner(c, st))
}

func (s *Server) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	pageTemplates.ExecuteTemplate(w, "login", map[string]any{"Title": "Log in", "NoUsers": len(s.d.Users()) == 0, "Error": msg})
}

func (s *Server) pageLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := sameOrigin(r); err != nil {
		s.d.SecurityLog("web_csrf", remoteAddr(r), "web administration: login from %s refused: %v", remoteAddr(r), err)
		http.Error(w, "refused: "+err.Error(), http.StatusForbidden)
		return
	}
	sess, err := s.login(r, r.FormValue("userName"), r.FormValue("password"))
	if err != nil {
		status := http.StatusUnauthorized
		var re *rpcError
		if errors.As(err, &re) && re.Code == codeTooMany {
			status = http.StatusTooManyRequests
		}
		s.renderLogin(w, status, err.Error())
		return
	}
	setSessionCookie(w, sess.token, s.o.IdleTimeout)
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

func (s *Server) pageLogout(w http.ResponseWriter, r *http.Request) {
	sess := s.pageSession(r)
	if sess == nil {
		http.Redirect(w, r, "/admin/", http.StatusSeeOther)
		return
	}
	if err := sameOrigin(r); err != nil || !sameSecret(r.FormValue("csrf"), sess.csrf) {
		http.Error(w, "refused: missing or wrong CSRF token", http.StatusForbidden)
		return
	}
	s.invoke(&call{s: s, r: r, w: w, sess: sess}, "Session.logout")
	http.Redirect(w, r, "/admin/", http.StatusSeeOther)
}

// ---- section data ----

func (s *Server) dashData(c *call, r *http.Request) (any, error) {
	var open []insight.Insight
	for _, in := range s.d.Insights(0).Insights {
		if in.Open {
			open = append(open, in)
		}
	}
	return map[string]any{"Stats": s.d.Stats(), "Status": s.d.Status(), "Insights": open, "ConfirmSeconds": int(s.d.ConfirmTimeout().Seconds())}, nil
}

type settingRow struct {
	SettingDoc
	IsSwitch bool
	Use      *useRow
}

type useRow struct {
	Connections    int
	KiB, DoubleKiB string
}

type memData struct {
	Connections        int
	MiB                string
	BytesPerConnection int
}

func (s *Server) settingsRows(c *call, table string) ([]settingRow, string, error) {
	_, docs, err := c.table(table)
	if err != nil {
		return nil, "", err
	}
	var rows []settingRow
	var switches []string
	for _, d := range docs {
		_, isBool := d.Value.(bool)
		if isBool {
			switches = append(switches, d.Name)
		}
		rows = append(rows, settingRow{SettingDoc: d, IsSwitch: isBool})
	}
	return rows, strings.Join(switches, ","), nil
}

func (s *Server) securityData(c *call, r *http.Request) (any, error) {
	rows, sw, err := s.settingsRows(c, "SecuritySettings")
	return map[string]any{"Settings": rows, "Switches": sw, "ConfirmSeconds": int(s.d.ConfirmTimeout().Seconds())}, err
}

func (s *Server) tableData(table string) func(c *call, r *http.Request) (any, error) {
	return func(c *call, r *http.Request) (any, error) {
		rows, sw, err := s.settingsRows(c, table)
		if err != nil {
			return nil, err
		}
		out := map[string]any{"Table": table, "Settings": rows, "Switches": sw, "ConfirmSeconds": int(s.d.ConfirmTimeout().Seconds())}
		if table == "ConnTrack" {
			use := s.d.TimeoutUse()
			total := s.d.Stats().Conntrack.Connections
			for i := range rows {
				if rows[i].Unit == "s" {
					n := use[rows[i].Name]
					kib := func(f int) string { return strconv.FormatFloat(float64(f*n*BytesPerConnection)/1024, 'f', 1, 64) }
					rows[i].Use = &useRow{Connections: n, KiB: kib(1), DoubleKiB: kib(2)}
				}
			}
			out["Memory"] = memData{Connections: total, BytesPerConnection: BytesPerConnection,
				MiB: strconv.FormatFloat(float64(total*BytesPerConnection)/(1<<20), 'f', 2, 64)}
		}
		return out, nil
	}
}

func (s *Server) rulesData(c *call, r *http.Request) (any, error) {
	v, err := s.invoke(c, "TrafficPolicy.get")
	if err != nil {
		return nil, err
	}
	m := v.(map[string]any)
	rules := m["rules"].([]Rule)
	out := map[string]any{"Rules": rules, "Default": m["defaultRule"].(map[string]string)["action"]}
	switch e := r.URL.Query().Get("edit"); e {
	case "":
	case "new":
		out["Edit"] = Rule{Enabled: true, Action: "Permit"}
	default:
		id, _ := strconv.Atoi(e)
		for _, rl := range rules {
			if rl.ID == id {
				out["Edit"] = rl
			}
		}
	}
	return out, nil
}

func (s *Server) connsData(c *call, r *http.Request) (any, error) {
	q := r.URL.Query()
	filter, sortBy, desc := q.Get("filter"), q.Get("sort"), q.Get("desc") == "1"
	if sortBy == "" {
		sortBy = "id"
	}
	cq := ConnQuery{Filter: filter, Limit: 500}
	dir := "Asc"
	if desc {
		dir = "Desc"
	}
	cq.OrderBy = append(cq.OrderBy, struct {
		ColumnName string `json:"columnName"`
		Direction  string `json:"direction"`
	}{sortBy, dir})
	out := map[string]any{"Filter": filter, "Sort": sortBy, "Desc": desc, "Columns": connColumns(), "Conns": []daemon.Conn{}, "Total": 0, "TableSize": 0}
	res, err := s.queryConns(cq)
	if err != nil {
		out["Error"] = err.Error()
		return out, nil
	}
	out["Conns"], out["Total"], out["TableSize"] = res["list"], res["totalItems"], res["tableSize"]
	return out, nil
}

// dropFilter selects drops of the live log.
type dropFilter struct {
	Reason, Host, Port, Rule string
}

func dropFilterOf(q url.Values) dropFilter {
	return dropFilter{Reason: q.Get("reason"), Host: q.Get("host"), Port: q.Get("port"), Rule: q.Get("rule")}
}

func (f dropFilter) match(d *daemon.Drop) bool {
	port := strconv.Itoa(int(d.SrcPort))
	dport := strconv.Itoa(int(d.DstPort))
	return (f.Reason == "" || d.Reason == f.Reason) && (f.Host == "" || d.Src == f.Host || d.Dst == f.Host) &&
		(f.Port == "" || port == f.Port || dport == f.Port) && (f.Rule == "" || d.Rule == f.Rule)
}

func (f dropFilter) query() string {
	v := url.Values{}
	for k, x := range map[string]string{"reason": f.Reason, "host": f.Host, "port": f.Port, "rule": f.Rule} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

func (s *Server) dropsData(c *call, r *http.Request) (any, error) {
	f := dropFilterOf(r.URL.Query())
	page := s.d.Drops(0, 100000)
	var recent []daemon.Drop
	for i := len(page.Drops) - 1; i >= 0 && len(recent) < 200; i-- {
		if f.match(&page.Drops[i]) {
			recent = append(recent, page.Drops[i])
		}
	}
	var reasons []string
	for _, rs := range reason.All() {
		if rs != reason.None {
			reasons = append(reasons, rs.String())
		}
	}
	q := f.query()
	if q != "" {
		q += "&"
	}
	q += "since=" + strconv.FormatUint(page.Next, 10)
	return map[string]any{"Reason": f.Reason, "Host": f.Host, "Port": f.Port, "Rule": f.Rule, "Reasons": reasons,
		"Drops": recent, "Query": template.URL(q)}, nil
}

func (s *Server) uiExplain(w http.ResponseWriter, r *http.Request, c *call) {
	id, _ := strconv.ParseUint(r.URL.Query().Get("id"), 10, 64)
	x, err := s.invokeWith(c, "Logs.explain", map[string]any{"id": id})
	if err != nil {
		s.renderResult(w, nil, err)
		return
	}
	var drop daemon.Drop
	if p := s.d.Drops(id, 1); len(p.Drops) == 1 && p.Drops[0].Seq == id {
		drop = p.Drops[0]
	}
	s.renderFragment(w, "explain", map[string]any{"ID": id, "X": x, "Drop": drop})
}

func (s *Server) logsData(c *call, r *http.Request) (any, error) {
	q := r.URL.Query()
	name := q.Get("name")
	if !slices.Contains(daemon.LogNames, name) {
		name = "warning"
	}
	page, err := s.d.LogLines(name, -1, 500, q.Get("contains"))
	if err != nil {
		return nil, err
	}
	return map[string]any{"Name": name, "Names": daemon.LogNames, "Contains": q.Get("contains"), "Page": page}, nil
}

func (s *Server) configData(c *call, r *http.Request) (any, error) {
	return map[string]any{"Status": s.d.Status(), "Users": s.d.Users(), "ConfirmSeconds": int(s.d.ConfirmTimeout().Seconds())}, nil
}

// ---- actions ----

// uiSettings applies a settings form. Unchecked boxes send nothing, so the
// form lists its switches in _switches: those absent are off.
func (s *Server) uiSettings(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
	table := r.PathValue("table")
	if err := r.ParseForm(); err != nil {
		return nil, errorf(codeBadParams, "%v", err)
	}
	settings := map[string]any{}
	switches := strings.Split(r.PostForm.Get("_switches"), ",")
	for name, vals := range r.PostForm {
		if name == "_switches" || name == "csrf" || len(vals) == 0 {
			continue
		}
		if slices.Contains(switches, name) {
			settings[name] = vals[0] == "1"
			continue
		}
		if n, err := strconv.ParseInt(vals[0], 10, 64); err == nil {
			settings[name] = n
		} else {
			settings[name] = vals[0]
		}
	}
	for _, sw := range switches {
		if _, ok := settings[sw]; !ok && sw != "" {
			settings[sw] = false
		}
	}
	if table == "TrafficPolicy" {
		return s.invokeWith(c, "TrafficPolicy.set", s.withDefault(c, settings["DefaultAction"]))
	}
	return s.invokeWith(c, table+".set", map[string]any{"settings": settings})
}

func (s *Server) withDefault(c *call, action any) map[string]any {
	v, _ := s.invoke(c, "TrafficPolicy.get")
	m := v.(map[string]any)
	return map[string]any{"rules": m["rules"], "defaultRule": map[string]any{"action": action}}
}

// uiRuleOp enables/disables a rule or moves it up or down.
func (s *Server) uiRuleOp(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	v, err := s.invoke(c, "TrafficPolicy.get")
	if err != nil {
		return nil, err
	}
	rules := slices.Clone(v.(map[string]any)["rules"].([]Rule))
	i := slices.IndexFunc(rules, func(x Rule) bool { return x.ID == id })
	if i < 0 {
		return nil, errorf(codeBadParams, "no rule %d", id)
	}
	switch r.PathValue("op") {
	case "toggle":
		rules[i].Enabled = !rules[i].Enabled
	case "up":
		if i == 0 {
			return nil, errorf(codeBadParams, "rule %d is already first", id)
		}
		rules[i-1], rules[i] = rules[i], rules[i-1]
	case "down":
		if i == len(rules)-1 {
			return nil, errorf(codeBadParams, "rule %d is already last", id)
		}
		rules[i+1], rules[i] = rules[i], rules[i+1]
	default:
		return nil, errorf(codeBadParams, "unknown operation %q", r.PathValue("op"))
	}
	return s.invokeWith(c, "TrafficPolicy.set", map[string]any{"rules": rules})
}

func splitTerms(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (s *Server) uiRuleSave(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
	v, err := s.invoke(c, "TrafficPolicy.get")
	if err != nil {
		return nil, err
	}
	rules := slices.Clone(v.(map[string]any)["rules"].([]Rule))
	id, _ := strconv.Atoi(r.FormValue("id"))
	nr := Rule{ID: id, Name: strings.TrimSpace(r.FormValue("name")), Enabled: r.FormValue("enabled") == "1",
		Source: splitTerms(r.FormValue("source")), Destination: splitTerms(r.FormValue("destination")),
		Services: splitTerms(r.FormValue("services")), Action: r.FormValue("action"),
		LogPackets: r.FormValue("logPackets") == "1", LogConnections: r.FormValue("logConnections") == "1",
		Description: r.FormValue("description")}
	if i := slices.IndexFunc(rules, func(x Rule) bool { return x.ID == id && id != 0 }); i >= 0 {
		rules[i] = nr
	} else {
		rules = append(rules, nr)
	}
	return s.invokeWith(c, "TrafficPolicy.set", map[string]any{"rules": rules})
}

func (s *Server) uiImport(w http.ResponseWriter, r *http.Request, c *call) (any, error) {
	f, hdr, err := r.FormFile("file")
	if err != nil {
		return nil, errorf(codeBadParams, "no file: %v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxRPCBody))
	if err != nil {
		return nil, err
	}
	up, err := s.invokeWith(c, "Configuration.upload", map[string]any{"fileName": hdr.Filename, "data": data})
	if err != nil {
		return nil, err
	}
	return s.invokeWith(c, "Configuration.apply", map[string]any{"fileId": up.(map[string]string)["fileId"]})
}
