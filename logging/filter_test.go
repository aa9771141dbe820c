package logging

import (
	"testing"

	"keepstate/reason"
)

func TestDropFilter(t *testing.T) {
	tests := []struct {
		name   string
		f      DropFilter
		has    []reason.Reason
		hasNot []reason.Reason
		str    string
	}{
		{"zero shows none", DropFilter{}, nil, reason.All(), "none"},
		{"any", AnyDrop(), reason.All(), []reason.Reason{reason.None, reason.Reason(reason.Count), 255}, "any"},
		{"chosen", DropsFor(reason.StateExpired, reason.HandshakeNotCompleted, reason.None),
			[]reason.Reason{reason.HandshakeNotCompleted, reason.StateExpired},
			[]reason.Reason{reason.None, reason.OutOfWindow, reason.TrafficRule, 200},
			"handshake_not_completed,state_expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, r := range tt.has {
				if !tt.f.Has(r) {
					t.Errorf("Has(%v) = false", r)
				}
			}
			for _, r := range tt.hasNot {
				if tt.f.Has(r) {
					t.Errorf("Has(%v) = true", r)
				}
			}
			if got := tt.f.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			back, err := ParseDropFilter(tt.f.String())
			if err != nil || back != tt.f {
				t.Errorf("ParseDropFilter(%q) = %+v, %v; want %+v", tt.f.String(), back, err, tt.f)
			}
		})
	}
}

func TestParseDropFilter(t *testing.T) {
	tests := []struct {
		in      string
		want    DropFilter
		wantErr string
	}{
		{"all", AnyDrop(), ""},
		{" any ", AnyDrop(), ""},
		{"", DropFilter{}, ""},
		{"none", DropFilter{}, ""},
		{"state_expired, out_of_window", DropsFor(reason.StateExpired, reason.OutOfWindow), ""},
		{"state_expired,state_expired", DropsFor(reason.StateExpired), ""},
		{"state_expird", DropFilter{}, `logging: unknown drop reason "state_expird"`},
		{"none,state_expired", DropFilter{}, `logging: unknown drop reason "none"`},
		{"state_expired,", DropFilter{}, `logging: unknown drop reason ""`},
	}
	for _, tt := range tests {
		got, err := ParseDropFilter(tt.in)
		errStr := ""
		if err != nil {
			errStr = err.Error()
		}
		if got != tt.want || errStr != tt.wantErr {
			t.Errorf("ParseDropFilter(%q) = %+v, %q; want %+v, %q", tt.in, got, errStr, tt.want, tt.wantErr)
		}
	}
}

// FuzzParseDropFilter: the filter comes from configuration and command lines. It
// must never panic, and whatever it accepts must print back to the same filter.
func FuzzParseDropFilter(f *testing.F) {
	for _, s := range []string{"any", "none", "", "state_expired,out_of_window", "x,,y", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseDropFilter(s)
		if err != nil {
			return
		}
		back, err := ParseDropFilter(fl.String())
		if err != nil || back != fl {
			t.Fatalf("%q parsed to %+v, printed %q, reparsed %+v %v", s, fl, fl.String(), back, err)
		}
	})
}
