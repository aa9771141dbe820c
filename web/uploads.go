package web

import (
	"bytes"
	"sync"
	"time"

	"keepstate/config"
	"keepstate/daemon"
)

// uploadTTL is how long an uploaded configuration waits for apply.
const uploadTTL = 10 * time.Minute

// upload is a configuration uploaded for import, kept for its session only.
type upload struct {
	id, session, name string
	data              []byte
	at                time.Time
}

// uploads holds at most one upload per session: what Configuration.upload sent
// until Configuration.apply puts it in force.
type uploads struct {
	mu   sync.Mutex
	byID map[string]upload
}

func (u *uploads) put(session, name string, data []byte, now time.Time) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.byID == nil {
		u.byID = map[string]upload{}
	}
	for id, x := range u.byID {
		if x.session == session || now.Sub(x.at) > uploadTTL {
			delete(u.byID, id)
		}
	}
	if name == "" {
		name = "upload"
	}
	id := randomToken()[:16]
	u.byID[id] = upload{id: id, session: session, name: name, data: data, at: now}
	return id
}

func (u *uploads) get(session, id string, now time.Time) (upload, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	x, ok := u.byID[id]
	if !ok || x.session != session || now.Sub(x.at) > uploadTTL {
		return upload{}, false
	}
	return x, true
}

func isBundle(data []byte) bool { return len(data) >= 2 && data[0] == 0x1f && data[1] == 0x8b }

// readUpload reads an uploaded bundle or lone winroute.cfg with the
// configuration's checks.
func readUpload(up upload) (*config.Bundle, error) {
	if isBundle(up.data) {
		return config.ReadBundle(up.name, bytes.NewReader(up.data))
	}
	c, err := config.Parse(up.name, up.data)
	if err != nil {
		return nil, err
	}
	return config.NewBundle(c), nil
}

func inspectUpload(up upload) *ImportInfo {
	info := &ImportInfo{FileName: up.name}
	b, err := readUpload(up)
	if err != nil {
		info.Problems = (&daemon.ConfigError{Source: up.name, Err: err}).Problems()
		return info
	}
	info.Summary, info.Hash, info.Changed = daemon.Summary(b.Config), daemon.ConfigHash(b.Config), b.Config.ChangedSettings()
	return info
}
