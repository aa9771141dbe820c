package web

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"keepstate/config"
	"keepstate/packet"
	"keepstate/synth"
)

func TestNoUserNoLogin(t *testing.T) {
	e := newEnv(t, envOptions{users: []config.User{}})
	c := e.client(false)
	err := e.fails(c, "", "Session.login", map[string]any{"userName": "root", "password": "anything at all"}, codeAuth)
	if !strings.Contains(err.Message, "keepstate user add NAME --role admin") {
		t.Errorf("message %q does not say how to create a user", err.Message)
	}
	resp, _ := c.Get(e.url + "/admin/")
	body := readBody(t, resp)
	if !strings.Contains(body, "No user can log in yet") || !strings.Contains(body, "keepstate user add NAME --role admin") {
		t.Errorf("the login page does not say how to create a user:\n%s", body)
	}
	if !strings.Contains(e.stderr.String(), "no web administration user yet") {
		t.Errorf("start does not say there is no user: %s", e.stderr)
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		b.WriteString(sc.Text() + "\n")
	}
	return b.String()
}

func TestLoginSessionLogout(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	r := e.rpc(c, "", "Session.login", map[string]any{"userName": "admin", "password": adminPass})
	var res loginResult
	if r.Error != nil || json.Unmarshal(r.Result, &res) != nil || res.Role != config.RoleAdmin {
		t.Fatalf("login: %+v %s", r.Error, r.Result)
	}
	ck := r.header.Get("Set-Cookie")
	for _, want := range []string{sessionCookie + "=", "Secure", "HttpOnly", "SameSite=Strict", "Path=/admin/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("cookie %q lacks %s", ck, want)
		}
	}
	var who map[string]string
	e.ok(c, res.Token, "Session.whoAmI", nil, &who)
	if who["user"] != "admin" || who["role"] != "admin" {
		t.Errorf("whoAmI %v", who)
	}
	e.ok(c, res.Token, "Session.logout", nil, nil)
	e.fails(c, res.Token, "Session.whoAmI", nil, codeAuth)
	e.waitLog("security", "admin logged out")
	e.waitLog("security", "admin (admin) logged in from 127.0.0.1")

	// A wrong password, and an unknown user, get the same answer.
	a := e.fails(c, "", "Session.login", map[string]any{"userName": "admin", "password": "wrong password"}, codeAuth)
	b := e.fails(c, "", "Session.login", map[string]any{"userName": "nobody", "password": "wrong password"}, codeAuth)
	if a.Message != b.Message {
		t.Errorf("a wrong password (%q) and an unknown user (%q) are told apart", a.Message, b.Message)
	}
}

func TestSessionIdleExpiry(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now()
	e.s.ss.now = func() time.Time { return now }
	c := e.client(false)
	tok := e.login(c, "admin", adminPass)
	now = now.Add(DefaultIdleTimeout - time.Second)
	e.ok(c, tok, "Session.whoAmI", nil, nil)
	now = now.Add(DefaultIdleTimeout + time.Second)
	e.fails(c, tok, "Session.whoAmI", nil, codeAuth)
}

// Every method needs a session; every change is refused to a read-only user
// with the configuration unchanged.
func TestEveryMethodAuthAndRoles(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	reader := e.login(c, "reader", readerPass)
	before := e.state()
	for name, m := range methods {
		if name == "Session.login" {
			continue
		}
		e.fails(c, "", name, map[string]any{}, codeAuth)
		e.fails(c, "not-a-token", name, map[string]any{}, codeAuth)
		if m.write {
			e.fails(c, reader, name, map[string]any{}, codeRights)
		}
	}
	if after := e.state(); after != before {
		t.Errorf("refused calls changed the configuration:\n%s\n%s", before, after)
	}
	e.waitLog("security", "reader (read-only) refused SecuritySettings.set")
	// A read-only user can look.
	for _, name := range []string{"SecuritySettings.get", "TrafficPolicy.get", "ConnTrack.get", "Logging.get", "IpServices.get",
		"IpAddressGroups.get", "Interfaces.get", "Statistics.get", "ProductInfo.get", "Insights.get", "Users.get"} {
		e.ok(c, reader, name, nil, nil)
	}
	e.ok(c, reader, "ActiveConnections.get", map[string]any{"query": map[string]any{}}, nil)
	e.ok(c, reader, "Logs.get", map[string]any{"logName": "warning", "countLines": 10, "fromLine": -1}, nil)
}

// Bad input is refused with the configuration's own messages and nothing
// changes: not the configuration in force, not --config.
func TestBadInputRefusedNothingChanges(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(true)
	tok := e.login(c, "admin", adminPass)
	before := e.state()
	cases := []struct {
		method string
		params any
		code   int
		want   string
	}{
		{"ConnTrack.set", map[string]any{"settings": map[string]any{"TcpEstablishedTimeout": 0}}, codeConfig, "TcpEstablishedTimeout: 0 is out of range 1-31536000"},
		{"ConnTrack.set", map[string]any{"settings": map[string]any{"AdaptiveStartPercent": 90, "AdaptiveEndPercent": 80}}, codeConfig, "/winroute.cfg:"},
		{"SecuritySettings.set", map[string]any{"settings": map[string]any{"TcpEstablishedTimeout": 100}}, codeConfig, `SecuritySettings has no setting "TcpEstablishedTimeout"`},
		{"SecuritySettings.set", map[string]any{"settings": map[string]any{"Require3WayHandshake": "maybe"}}, codeConfig, `want 0 or 1, got "maybe"`},
		{"SecuritySettings.set", map[string]any{"settings": map[string]any{}}, codeBadParams, "no settings"},
		{"SecuritySettings.set", map[string]any{"setings": map[string]any{}}, codeBadParams, "unknown field"},
		{"TrafficPolicy.set", map[string]any{"rules": []Rule{{Name: "x", Enabled: true, Action: "Permit", Services: []string{"HTTPX"}}}}, codeConfig, `no service "HTTPX"`},
		{"TrafficPolicy.set", map[string]any{"rules": []Rule{{Name: "x", Action: "Allow"}}}, codeConfig, `action "Allow"`},
		{"TrafficPolicy.set", map[string]any{"rules": []Rule{{ID: 99, Name: "x", Action: "Permit"}}}, codeConfig, "no rule has id 99"},
		{"TrafficPolicy.set", map[string]any{"rules": []Rule{{Name: "x", Action: "Permit", Source: []string{"hots:1.2.3.4"}}}}, codeConfig, "source"},
		{"IpServices.set", map[string]any{"services": []Service{{Name: "W", Protocol: "tcp", Condition: "dport=99999"}}}, codeConfig, "bad port"},
		{"Interfaces.set", map[string]any{"interfaces": []Interface{{Name: "LAN", Group: "Trustd"}}}, codeConfig, `group "Trustd"`},
		{"ActiveConnections.get", map[string]any{"query": map[string]any{"filter": "iface eth0"}}, codeBadParams, "unknown key"},
		{"ActiveConnections.kill", map[string]any{"ids": []int{}}, codeBadParams, "ids"},
		{"ActiveConnections.killMatching", map[string]any{"filter": ""}, codeBadParams, "empty"},
		{"Logs.get", map[string]any{"logName": "passwd", "countLines": 10}, codeBadParams, "no log"},
		{"Session.confirmConfig", map[string]any{"clientTimestampList": []Timestamp{}}, codeFailed, "no change awaits"},
		{"Configuration.apply", map[string]any{"fileId": "nope"}, codeBadParams, "no upload"},
		{"No.such", nil, codeNoMethod, "no method"},
	}
	for _, tc := range cases {
		err := e.fails(c, tok, tc.method, tc.params, tc.code)
		msg := err.Message
		if d, ok := err.Data.(map[string]any); ok {
			js, _ := json.Marshal(d)
			msg += string(js)
		}
		if !strings.Contains(msg, tc.want) {
			t.Errorf("%s %v: error %q lacks %q", tc.method, tc.params, msg, tc.want)
		}
		if after := e.state(); after != before {
			t.Fatalf("%s refused but changed the configuration", tc.method)
		}
	}

	// An uploaded configuration with a problem: getImportInfo lists it as
	// file:line, apply refuses it.
	bad := []byte("<config>\n<table name=\"ConnTrack\">\n<variable name=\"TcpEstablishedTimeout\">never</variable>\n</table>\n</config>\n")
	var up map[string]string
	e.ok(c, tok, "Configuration.upload", map[string]any{"fileName": "mine.cfg", "data": bad}, &up)
	var info ImportInfo
	e.ok(c, tok, "Configuration.getImportInfo", map[string]any{"fileId": up["fileId"]}, &info)
	if len(info.Problems) != 1 || !strings.HasPrefix(info.Problems[0], "mine.cfg:3: TcpEstablishedTimeout") {
		t.Errorf("import info problems %q", info.Problems)
	}
	err := e.fails(c, tok, "Configuration.apply", map[string]any{"fileId": up["fileId"]}, codeConfig)
	if msgs := err.Data.(map[string]any)["messages"].([]any); len(msgs) != 1 || !strings.HasPrefix(msgs[0].(string), "mine.cfg:3:") {
		t.Errorf("apply error data %v", err.Data)
	}
	if after := e.state(); after != before {
		t.Fatal("a refused import changed the configuration")
	}
}

// A change waits for its confirmation; the confirmation must come on a new
// connection; unconfirmed, it rolls back by itself.
func TestChangeConfirmAndRollback(t *testing.T) {
	e := newEnv(t, envOptions{})
	keep := e.client(false) // one keep-alive connection
	tok := e.login(keep, "admin", adminPass)
	var got struct{ Settings map[string]any }
	e.ok(keep, tok, "SecuritySettings.get", nil, &got)
	if got.Settings["Require3WayHandshake"] != true {
		t.Fatalf("settings %v", got)
	}
	r := e.rpc(keep, tok, "SecuritySettings.set", map[string]any{"settings": map[string]any{"Require3WayHandshake": false}})
	var ch ChangeResult
	if r.Error != nil || json.Unmarshal(r.Result, &ch) != nil || ch.Pending == nil {
		t.Fatalf("set: %+v %s", r.Error, r.Result)
	}
	if !r.closed {
		t.Errorf("a change's answer does not close its connection: %v", r.header)
	}
	if ch.Pending.SecondsLeft < 4 || ch.Pending.SecondsLeft > 5 {
		t.Errorf("pending %+v, want about host.cfg's 5 s", ch.Pending)
	}
	if !e.cfg().Settings.Require3WayHandshake == false {
		t.Error("not in force")
	}
	var ts struct {
		List []Timestamp `json:"clientTimestampList"`
	}
	e.ok(keep, tok, "Session.getConfigTimestamp", nil, &ts)
	fresh := e.client(true)
	e.ok(fresh, tok, "Session.confirmConfig", map[string]any{"clientTimestampList": ts.List}, nil)
	if e.d.Status().Pending != nil {
		t.Fatal("still pending after confirm")
	}
	data, _ := os.ReadFile(filepath.Join(e.cfgDir, "winroute.cfg"))
	if !strings.Contains(string(data), `<variable name="Require3WayHandshake">0</variable>`) {
		t.Error("confirmed change not saved to --config")
	}
	e.waitLog("warning", "confirmed and saved")

	// Now a change nobody confirms.
	saved := string(data)
	gen := e.d.Status().Config.Generation
	e.ok(fresh, tok, "SecuritySettings.set", map[string]any{"settings": map[string]any{"AntiSpoofing": false}}, nil)
	if e.cfg().Settings.AntiSpoofing {
		t.Fatal("AntiSpoofing=0 not in force")
	}
	for end := time.Now().Add(10 * time.Second); e.d.Status().Pending != nil && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
	}
	if e.d.Status().Pending != nil || !e.cfg().Settings.AntiSpoofing {
		t.Fatal("the unconfirmed change did not roll back")
	}
	if st := e.d.Status(); st.Config.Generation != gen+2 {
		t.Errorf("generation %d after change and rollback, want %d", st.Config.Generation, gen+2)
	}
	data, _ = os.ReadFile(filepath.Join(e.cfgDir, "winroute.cfg"))
	if string(data) != saved {
		t.Error("an unconfirmed change was written to --config")
	}
	e.waitLog("warning", "not confirmed within the time given: rolled back")
}

// The confirmation must come on a connection opened after the change.
func TestConfirmFromOldConnectionRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	fresh := e.client(true)
	tok := e.login(fresh, "admin", adminPass)
	// A connection opened before the change (and not idle long enough to be
	// closed with the idle ones).
	old, err := tls.Dial("tcp", e.s.Addr().String(), &tls.Config{RootCAs: e.pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	e.ok(fresh, tok, "SecuritySettings.set", map[string]any{"settings": map[string]any{"Require3WayHandshake": false}}, nil)
	var ts struct {
		List []Timestamp `json:"clientTimestampList"`
	}
	e.ok(fresh, tok, "Session.getConfigTimestamp", nil, &ts)
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "Session.confirmConfig", "params": map[string]any{"clientTimestampList": ts.List}})
	req, _ := http.NewRequest("POST", e.url+"/admin/api/jsonrpc/", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Token", tok)
	if err := req.Write(old); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(old), req)
	if err != nil {
		t.Fatal(err)
	}
	var r rpcReply
	json.NewDecoder(resp.Body).Decode(&r)
	resp.Body.Close()
	if r.Error == nil || !strings.Contains(r.Error.Message, "connection opened before the change") || !resp.Close {
		t.Fatalf("confirmation on an old connection: %+v %s %v", r.Error, r.Result, resp.Header)
	}
	if e.d.Status().Pending == nil {
		t.Fatal("the change is no longer pending")
	}
	// A wrong timestamp is refused too.
	e.fails(fresh, tok, "Session.confirmConfig", map[string]any{"clientTimestampList": []Timestamp{{"config", 1}}}, codeBadParams)
	e.ok(fresh, tok, "Session.confirmConfig", map[string]any{"clientTimestampList": ts.List}, nil)
}

func TestCSRFRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	tok := e.login(c, "admin", adminPass)
	before := e.state()
	post := func(path string, hdr map[string]string, form url.Values) int {
		req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	form := url.Values{"Require3WayHandshake": {"0"}, "_switches": {"Require3WayHandshake"}}
	// The page's cookie alone: refused.
	if code := post("/admin/ui/settings/SecuritySettings", nil, form); code != http.StatusForbidden {
		t.Errorf("no CSRF token: %d", code)
	}
	sess := e.s.ss.lookup(tok)
	if code := post("/admin/ui/settings/SecuritySettings", map[string]string{"X-CSRF-Token": sess.token}, form); code != http.StatusForbidden {
		t.Errorf("wrong CSRF token (the session token): %d", code)
	}
	if code := post("/admin/ui/settings/SecuritySettings", map[string]string{"X-CSRF-Token": sess.csrf, "Origin": "https://evil.example"}, form); code != http.StatusForbidden {
		t.Errorf("cross-origin with the right token: %d", code)
	}
	if code := post("/admin/ui/settings/SecuritySettings", map[string]string{"X-CSRF-Token": sess.csrf, "Sec-Fetch-Site": "cross-site"}, form); code != http.StatusForbidden {
		t.Errorf("Sec-Fetch-Site cross-site: %d", code)
	}
	if code := post("/admin/logout", nil, url.Values{}); code != http.StatusForbidden {
		t.Errorf("logout without token: %d", code)
	}
	// JSON-RPC with the cookie but no X-Token: not logged in.
	e.fails(c, "", "SecuritySettings.set", map[string]any{"settings": map[string]any{"Require3WayHandshake": false}}, codeAuth)
	// JSON-RPC as a form (what a cross-site form can send): refused unread.
	req, _ := http.NewRequest("POST", e.url+"/admin/api/jsonrpc/", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"Session.whoAmI"}`))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("X-Token", tok)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain JSON-RPC: %v %v", resp.StatusCode, err)
	}
	if after := e.state(); after != before {
		t.Fatal("a refused request changed the configuration")
	}
	e.waitLog("security", "missing or wrong CSRF token")
	// With the token, same origin: applied.
	if code := post("/admin/ui/settings/SecuritySettings", map[string]string{"X-CSRF-Token": sess.csrf, "Origin": e.url, "Sec-Fetch-Site": "same-origin"}, form); code != http.StatusOK {
		t.Errorf("right CSRF token: %d", code)
	}
	if e.cfg().Settings.Require3WayHandshake {
		t.Error("the page's change is not in force")
	}
}

func TestLoginRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	for i := 0; i < loginBurst; i++ {
		e.fails(c, "", "Session.login", map[string]any{"userName": "admin", "password": "guess " + string(rune('a'+i))}, codeAuth)
	}
	// Over the limit even the right password is refused, unchecked.
	err := e.fails(c, "", "Session.login", map[string]any{"userName": "admin", "password": adminPass}, codeTooMany)
	if !strings.Contains(err.Message, "too many failed logins from 127.0.0.1") {
		t.Errorf("message %q", err.Message)
	}
	e.waitLog("security", `login as "admin" from 127.0.0.1 failed: wrong user name or password`)
	e.waitLog("security", "too many failed logins")
	// The page's login form too.
	resp, herr := c.PostForm(e.url+"/admin/login", url.Values{"userName": {"admin"}, "password": {adminPass}})
	if herr != nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("page login over the limit: %v %v", resp.StatusCode, herr)
	}
	// Time passes: one more try.
	now := time.Now().Add(loginEvery + time.Second)
	e.s.ss.now = func() time.Time { return now }
	e.login(c, "admin", adminPass)
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	for _, path := range []string{"/admin/", "/admin/static/app.js"} {
		resp, err := c.Get(e.url + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		for k, v := range map[string]string{"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"} {
			if h.Get(k) != v {
				t.Errorf("%s: %s %q", path, k, h.Get(k))
			}
		}
	}
	r := e.rpc(c, "", "Session.whoAmI", nil)
	if r.header.Get("Content-Security-Policy") == "" {
		t.Error("the API has no CSP")
	}
}

func TestActiveConnectionsKill(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	tok := e.login(c, "admin", adminPass)
	e.conversation("10.1.0.2:40001", "10.2.0.2:443", 1)
	e.conversation("10.1.0.3:40002", "10.2.0.2:443", 2)
	e.conversation("10.1.0.3:40003", "10.2.0.9:22", 3)
	var list struct {
		List  []struct{ ID uint64 } `json:"list"`
		Total int                   `json:"totalItems"`
	}
	e.ok(c, tok, "ActiveConnections.get", map[string]any{"query": map[string]any{"filter": "dport 443",
		"orderBy": []map[string]string{{"columnName": "src", "direction": "Desc"}}, "start": 0, "limit": 1}}, &list)
	if list.Total != 2 || len(list.List) != 1 {
		t.Fatalf("list %+v", list)
	}
	var killed map[string]int
	e.ok(c, tok, "ActiveConnections.kill", map[string]any{"ids": []uint64{list.List[0].ID}}, &killed)
	if killed["killed"] != 1 || e.d.Engine().Table().Len() != 2 {
		t.Errorf("kill: %v, %d left", killed, e.d.Engine().Table().Len())
	}
	// Every connection rule 1 admitted.
	e.ok(c, tok, "ActiveConnections.killMatching", map[string]any{"filter": "rule 1"}, &killed)
	if killed["killed"] != 2 || e.d.Engine().Table().Len() != 0 {
		t.Errorf("killMatching: %v, %d left", killed, e.d.Engine().Table().Len())
	}
	e.waitLog("security", "admin ended 2 connection(s) (rule 1)")
}

func TestDropsLogsExplainStream(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	tok := e.login(c, "admin", adminPass)
	// Open the stream first, then drop a packet: a mid-stream ACK nobody opened.
	req, _ := http.NewRequest("GET", e.url+"/admin/api/drops?reason=handshake_not_completed", nil)
	req.Header.Set("X-Token", tok)
	resp, err := e.client(false).Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("stream: %v %v", err, resp.StatusCode)
	}
	defer resp.Body.Close()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	<-lines // the opening comment
	conv := synth.NewConv(mustAP("10.1.0.7:5555"), mustAP("10.2.0.2:8080"), 9)
	if d := e.plane.inject(conv.Segment(synth.FromClient, packet.ACK|packet.PSH, 10)); d.Action == 0 {
		t.Fatalf("mid-stream packet accepted")
	}
	var event string
	for deadline := time.After(10 * time.Second); event == ""; {
		select {
		case l := <-lines:
			if strings.HasPrefix(l, "data: ") {
				event = strings.TrimPrefix(l, "data: ")
			}
		case <-deadline:
			t.Fatal("no drop event")
		}
	}
	var ev map[string]any
	if json.Unmarshal([]byte(event), &ev) != nil || ev["reason"] != "handshake_not_completed" || ev["src"] != "10.1.0.7" || ev["dport"] != 8080.0 {
		t.Fatalf("event %s", event)
	}
	var page struct {
		Drops []struct {
			ID uint64 `json:"id"`
		} `json:"drops"`
	}
	e.ok(c, tok, "Logs.drops", map[string]any{"since": 0}, &page)
	if len(page.Drops) != 1 {
		t.Fatalf("drops %+v", page)
	}
	var x struct {
		Action string `json:"action"`
		Steps  []any  `json:"steps"`
	}
	e.ok(c, tok, "Logs.explain", map[string]any{"id": page.Drops[0].ID}, &x)
	if x.Action == "" || len(x.Steps) == 0 {
		t.Errorf("explain %+v", x)
	}
	var logs struct {
		Viewport []struct{ Content string } `json:"viewport"`
		Total    int                        `json:"totalItems"`
	}
	e.ok(c, tok, "Logs.get", map[string]any{"logName": "security", "countLines": 5, "fromLine": -1}, &logs)
	if logs.Total == 0 || !strings.Contains(logs.Viewport[len(logs.Viewport)-1].Content, "logged in") {
		t.Errorf("security log %+v", logs)
	}
	var stats struct {
		Stats struct {
			Dropped uint64 `json:"dropped"`
		} `json:"stats"`
		History []any `json:"history"`
	}
	e.ok(c, tok, "Statistics.get", nil, &stats)
	if stats.Stats.Dropped != 1 || len(stats.History) == 0 {
		t.Errorf("statistics %+v", stats)
	}
}

func mustAP(s string) (ap netipAddrPort) { return parseAP(s) }

func TestTrafficPolicyKeepsIDs(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(true)
	tok := e.login(c, "admin", adminPass)
	var tp struct {
		Rules []Rule `json:"rules"`
	}
	e.ok(c, tok, "TrafficPolicy.get", nil, &tp)
	rules := append([]Rule{{Name: "Block telnet", Enabled: true, Action: "Deny", Services: []string{"SSH"},
		Source: []string{"host:10.1.0.66"}}}, tp.Rules...)
	var ch ChangeResult
	e.ok(c, tok, "TrafficPolicy.set", map[string]any{"rules": rules}, &ch)
	e.ok(c, tok, "TrafficPolicy.get", nil, &tp)
	if len(tp.Rules) != 2 || tp.Rules[0].ID != 2 || tp.Rules[1].ID != 1 || tp.Rules[0].Source[0] != "host:10.1.0.66" {
		t.Fatalf("rules %+v", tp.Rules)
	}
	// Reorder and disable: the ids travel with the rules.
	tp.Rules[0], tp.Rules[1] = tp.Rules[1], tp.Rules[0]
	tp.Rules[1].Enabled = false
	e.ok(c, tok, "TrafficPolicy.set", map[string]any{"rules": tp.Rules, "defaultRule": map[string]string{"action": "Drop"}}, nil)
	e.ok(c, tok, "TrafficPolicy.get", nil, &tp)
	if tp.Rules[0].ID != 1 || tp.Rules[1].ID != 2 || tp.Rules[1].Enabled {
		t.Fatalf("after reorder %+v", tp.Rules)
	}
	if e.cfg().Policy.DefaultAction.String() != "Drop" {
		t.Error("default rule not set")
	}
}

func TestSelfCutRefusedUnlessForced(t *testing.T) {
	e := newEnv(t, envOptions{filtersInput: true})
	c := e.client(true)
	tok := e.login(c, "admin", adminPass)
	before := e.state()
	deny := []Rule{{Name: "No admin from loopback", Enabled: true, Action: "Deny", Source: []string{"host:127.0.0.1"}}, {ID: 1, Name: "Permit all connections", Enabled: true, Action: "Permit"}}
	err := e.fails(c, tok, "TrafficPolicy.set", map[string]any{"rules": deny}, codeSelfCut)
	if !strings.Contains(err.Message, `rule "No admin from loopback" refuses it`) {
		t.Errorf("message %q", err.Message)
	}
	if e.state() != before {
		t.Fatal("a refused self-cut changed the configuration")
	}
	e.ok(c, tok, "TrafficPolicy.set", map[string]any{"rules": deny, "force": true}, nil)
	if e.d.Status().Pending == nil {
		t.Fatal("the forced change does not await confirmation")
	}
}

func TestExportImportUsers(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(true)
	tok := e.login(c, "admin", adminPass)
	var ex struct {
		Bundle string `json:"bundle"`
	}
	e.ok(c, tok, "Configuration.exportConfig", nil, &ex)
	data, _ := base64.StdEncoding.DecodeString(ex.Bundle)
	b, err := config.ReadBundle("export", strings.NewReader(string(data)))
	if err != nil || len(b.Users) != 2 {
		t.Fatalf("export: %v", err)
	}
	if err := b.Config.SetSetting("TcpEstablishedTimeout", "9000"); err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	config.WriteBundle(&buf, b)
	var up map[string]string
	e.ok(c, tok, "Configuration.upload", map[string]any{"fileName": "new.tgz", "data": []byte(buf.String())}, &up)
	var info ImportInfo
	e.ok(c, tok, "Configuration.getImportInfo", map[string]any{"fileId": up["fileId"]}, &info)
	if !slices.Contains(info.Changed, "TcpEstablishedTimeout=9000") {
		t.Errorf("import info %+v", info)
	}
	var ch ChangeResult
	e.ok(c, tok, "Configuration.apply", map[string]any{"fileId": up["fileId"]}, &ch)
	if ch.Pending == nil || !slices.Contains(e.cfg().ChangedSettings(), "TcpEstablishedTimeout=9000") {
		t.Errorf("apply %+v", ch)
	}
	var users struct {
		Users []map[string]any `json:"users"`
	}
	e.ok(c, tok, "Users.get", nil, &users)
	if len(users.Users) != 2 || users.Users[0]["hasPassword"] != true {
		t.Errorf("users %v", users)
	}
	if strings.Contains(string(mustJSON(users)), "argon2") {
		t.Error("Users.get shows a hash")
	}
	// A user whose password changes loses its sessions.
	if err := e.d.SetUsers("test", func(us []config.User) ([]config.User, error) {
		us[0].PasswordHash = cheapHash("another long password")
		return us, nil
	}); err != nil {
		t.Fatal(err)
	}
	e.fails(c, tok, "Session.whoAmI", nil, codeAuth)
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
