package web

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// pageLogin logs in through the page's form and returns the CSRF token of the
// session.
func (e *env) pageLogin(c *http.Client, user, pass string) string {
	e.t.Helper()
	resp, err := c.PostForm(e.url+"/admin/login", url.Values{"userName": {user}, "password": {pass}})
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login form: %d", resp.StatusCode)
	}
	body := e.get(c, "/admin/")
	m := regexp.MustCompile(`"X-CSRF-Token": "([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		e.t.Fatalf("no CSRF token in the page:\n%s", body)
	}
	return m[1]
}

func (e *env) get(c *http.Client, path string) string {
	e.t.Helper()
	resp, err := c.Get(e.url + path)
	if err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("GET %s: %d", path, resp.StatusCode)
	}
	return readBody(e.t, resp)
}

func TestEverySectionRenders(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.conversation("10.1.0.2:40001", "10.2.0.2:443", 1)
	c := e.client(false)
	e.pageLogin(c, "admin", adminPass)
	for _, want := range []struct{ path, text string }{
		{"/admin/", "Drops by reason"},
		{"/admin/rules", "Permit all connections"},
		{"/admin/rules?edit=1", "Edit rule 1"},
		{"/admin/security", "what turning it off risks"[:0] + "Turning it off lets keepstate pick up connections mid-stream"},
		{"/admin/conntrack", "TcpEstablishedTimeout"},
		{"/admin/logging", "LogDroppedPackets"},
		{"/admin/connections?filter=rule+1", "10.1.0.2"},
		{"/admin/drops?reason=default_rule", "sse-connect"},
		{"/admin/logs?name=security", "admin (admin) logged in"},
		{"/admin/config", "Export the configuration"},
		{"/admin/ui/banner?gen=1", ""},
		{"/admin/ui/dash", "stat-packets"},
	} {
		body := e.get(c, want.path)
		if !strings.Contains(body, want.text) {
			t.Errorf("%s lacks %q:\n%s", want.path, want.text, body)
		}
		if strings.Contains(body, " style=") || strings.Contains(body, "<style") || strings.Contains(body, "onclick") || regexp.MustCompile(`<script>`).MatchString(body) {
			t.Errorf("%s has inline style or script", want.path)
		}
	}
	// Connection tracking shows each timeout's memory now.
	if body := e.get(c, "/admin/conntrack"); !strings.Contains(body, "0.1 KiB") {
		t.Errorf("conntrack page lacks the memory of the one established connection (121 B):\n%s", body)
	}
	// A read-only user sees no buttons that change anything.
	r := e.client(false)
	e.pageLogin(r, "reader", readerPass)
	for _, p := range []string{"/admin/security", "/admin/rules", "/admin/connections", "/admin/config"} {
		body := e.get(r, p)
		if strings.Contains(body, `type="submit" id="save`) || strings.Contains(body, "kill-") || strings.Contains(body, `id="import"`) {
			t.Errorf("%s offers changes to a read-only user", p)
		}
		if !strings.Contains(body, "read-only: you can look but change nothing") {
			t.Errorf("%s does not say read-only", p)
		}
	}
	resp, _ := r.Get(e.url + "/admin/api/export")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("read-only export: %d", resp.StatusCode)
	}
}

func TestPageLogout(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.client(false)
	csrf := e.pageLogin(c, "admin", adminPass)
	resp, err := c.PostForm(e.url+"/admin/logout", url.Values{"csrf": {csrf}})
	if err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %v %v", err, resp.StatusCode)
	}
	if body := e.get(c, "/admin/"); !strings.Contains(body, `id="login"`) {
		t.Error("after logout the page is not the login form")
	}
}
