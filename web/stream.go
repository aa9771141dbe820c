package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"keepstate/config"
)

// streamPoll is how often a live feed looks for new drops.
const streamPoll = 300 * time.Millisecond

// serveDropStream is the API's live feed of drops: Server-Sent Events, one
// "drop" event per dropped packet as JSON, from ?since=ID (default: drops from
// now on), filtered by ?reason=, ?host=, ?port=, ?rule=. It takes the API token
// in X-Token, or the page's session cookie.
func (s *Server) serveDropStream(w http.ResponseWriter, r *http.Request) {
	sess := s.ss.lookup(r.Header.Get("X-Token"))
	if sess == nil {
		sess = s.pageSession(r)
	}
	if sess == nil {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": errorf(codeAuth, "not logged in: send the token of Session.login in X-Token")})
		return
	}
	s.streamDrops(w, r, false)
}

// streamDrops writes drops as they come until the client goes away or the
// server closes. With html, each event is a row of the page's drop table.
func (s *Server) streamDrops(w http.ResponseWriter, r *http.Request, html bool) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	f := dropFilterOf(r.URL.Query())
	next := s.d.DropsNext()
	if v := r.URL.Query().Get("since"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "since: want a drop id", http.StatusBadRequest)
			return
		}
		next = n
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, ": keepstate drops from %d\n\n", next)
	fl.Flush()
	tick := time.NewTicker(streamPoll)
	defer tick.Stop()
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	var buf strings.Builder
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			fl.Flush()
			continue
		case <-tick.C:
		}
		page := s.d.Drops(next, 500)
		next = page.Next
		if page.Missed > 0 && !html {
			fmt.Fprintf(w, "event: missed\ndata: {\"missed\":%d}\n\n", page.Missed)
		}
		for i := range page.Drops {
			d := &page.Drops[i]
			if !f.match(d) {
				continue
			}
			buf.Reset()
			if html {
				pageTemplates.ExecuteTemplate(&buf, "droprow", d)
			} else {
				js, _ := json.Marshal(d)
				buf.Write(js)
			}
			fmt.Fprintf(w, "event: drop\nid: %d\n", d.Seq)
			for line := range strings.Lines(buf.String()) {
				fmt.Fprintf(w, "data: %s\n", strings.TrimRight(line, "\n"))
			}
			if _, err := fmt.Fprint(w, "\n"); err != nil {
				return
			}
		}
		fl.Flush()
	}
}

// serveExport downloads the configuration in force as a bundle; admins only,
// since it holds the password hashes.
func (s *Server) serveExport(w http.ResponseWriter, r *http.Request) {
	sess := s.ss.lookup(r.Header.Get("X-Token"))
	if sess == nil {
		sess = s.pageSession(r)
	}
	if sess == nil {
		http.Error(w, "not logged in", http.StatusUnauthorized)
		return
	}
	if u, ok := s.user(sess.user); !ok || u.Role != config.RoleAdmin {
		http.Error(w, "read-only users cannot export: the bundle holds the password hashes", http.StatusForbidden)
		return
	}
	ex, err := s.d.Export()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.d.SecurityLog("web_export", remoteAddr(r), "web administration: %s exported the configuration %s", sess.user, ex.Hash)
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="keepstate-`+ex.Hash+`.tgz"`)
	w.Write(ex.Bundle)
}
