package config

import (
	"reflect"
	"testing"
	"time"

	"keepstate/firewall"
)

// TestDefaultEngineSettings: the built-in configuration gives the engine its default
// settings, so programs without a winroute.cfg run as the default file would.
func TestDefaultEngineSettings(t *testing.T) {
	if got, want := Default().EngineSettings(), firewall.DefaultSettings(); !reflect.DeepEqual(got, want) {
		t.Errorf("Default().EngineSettings() = %+v\nfirewall.DefaultSettings() = %+v", got, want)
	}
	c := Default()
	c.Settings.TombstoneCount = 0
	c.Settings.Require3WayHandshake = false
	c.Settings.AdaptiveStartPercent = 0
	if err := c.SetSetting("TcpEstablishedTimeout", "9000"); err != nil {
		t.Fatal(err)
	}
	s := c.EngineSettings()
	if s.Conntrack.TombstoneCap != -1 || s.Conntrack.Strict || s.Conntrack.AdaptiveEnd != 0 || s.Conntrack.Timeouts.TCPEstablished != 9000*time.Second {
		t.Errorf("mapped: %+v", s.Conntrack)
	}
}
