package logging

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func readOrMissing(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "<missing>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRotatingFile(t *testing.T) {
	tests := []struct {
		name   string
		max    int64
		keep   int
		writes []string
		want   map[string]string // file suffix -> content
	}{
		{"fits", 100, 2, []string{"aaaa\n", "bbbb\n"},
			map[string]string{"": "aaaa\nbbbb\n", ".1": "<missing>"}},
		{"exact fit does not rotate", 10, 2, []string{"aaaa\n", "bbbb\n"},
			map[string]string{"": "aaaa\nbbbb\n", ".1": "<missing>"}},
		{"rotates and keeps two", 10, 2, []string{"1111\n", "2222\n", "3333\n", "4444\n", "5555\n", "6666\n", "7777\n"},
			map[string]string{"": "7777\n", ".1": "5555\n6666\n", ".2": "3333\n4444\n", ".3": "<missing>"}},
		{"keep zero truncates", 10, 0, []string{"1111\n", "2222\n", "3333\n"},
			map[string]string{"": "3333\n", ".1": "<missing>"}},
		{"oversized write goes whole into a new file", 10, 1, []string{"1111\n", "0123456789abcdef\n", "2222\n"},
			map[string]string{"": "2222\n", ".1": "0123456789abcdef\n", ".2": "<missing>"}},
		{"no limit", 0, 1, []string{strings.Repeat("x", 1000), "y"},
			map[string]string{"": strings.Repeat("x", 1000) + "y", ".1": "<missing>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "logs", "debug.log")
			r, err := NewRotatingFile(path, tt.max, tt.keep)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tt.writes {
				if n, err := r.Write([]byte(w)); err != nil || n != len(w) {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			for suffix, want := range tt.want {
				if got := readOrMissing(t, path+suffix); got != want {
					t.Errorf("debug.log%s = %q, want %q", suffix, got, want)
				}
			}
		})
	}
}

// A daemon restart must continue counting from the size already on disk.
func TestRotatingFileCountsExistingSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "debug.log")
	if err := os.WriteFile(path, []byte("12345678\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	r, err := NewRotatingFile(path, 12, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("abcd\n")); err != nil {
		t.Fatal(err)
	}
	if err := r.Rotate(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Write([]byte("efgh\n")); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if got := readOrMissing(t, path+".1"); got != "abcd\n" {
		t.Errorf(".1 = %q (the pre-existing file went to .1 and was then pushed out)", got)
	}
	if got := readOrMissing(t, path); got != "efgh\n" {
		t.Errorf("current = %q", got)
	}
	if _, err := r.Write([]byte("late")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if err := r.Rotate(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Rotate after Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Concurrent writers: every line lands whole in exactly one file, none is lost.
func TestRotatingFileConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "debug.log")
	const writers, lines = 4, 500
	r, err := NewRotatingFile(path, 4096, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < lines; i++ {
				fmt.Fprintf(r, "writer %d line %04d ..............................\n", w, i)
			}
		}()
	}
	wg.Wait()
	r.Close()
	files, _ := filepath.Glob(path + "*")
	seen := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if len(b) > 4096 {
			t.Errorf("%s has %d bytes > 4096", f, len(b))
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if !strings.HasPrefix(l, "writer ") || !strings.HasSuffix(l, ".") || seen[l] {
				t.Fatalf("%s: torn or repeated line %q", f, l)
			}
			seen[l] = true
		}
	}
	if len(seen) != writers*lines {
		t.Errorf("%d lines, want %d", len(seen), writers*lines)
	}
}
