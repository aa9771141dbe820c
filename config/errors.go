package config

import (
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration file, with where it is.
type Error struct {
	File string
	Line int // 1-based; 0 when the problem has no single place (a missing list, a cycle)
	Col  int // 1-based column of the element's "<"; 0 when unknown
	Msg  string
}

// Error formats the problem as "file:line: message", the form editors and CI jump to.
func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// ErrorList is every problem found in a configuration, in file and line order.
type ErrorList []*Error

// Error joins the problems, one per line.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "\n")
}

// Err returns l sorted as an error, or nil when l is empty.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.sort()
	return l
}

func (l ErrorList) sort() {
	slices.SortStableFunc(l, func(a, b *Error) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		if a.Line != b.Line {
			return a.Line - b.Line
		}
		return a.Col - b.Col
	})
}

// pos is a place in the file being read.
type pos struct{ line, col int }

// diag collects errors and warnings for one file.
type diag struct {
	file     string
	errs     ErrorList
	warnings ErrorList
}

func (d *diag) errorf(p pos, format string, a ...any) {
	d.errs = append(d.errs, &Error{File: d.file, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, a...)})
}

func (d *diag) warnf(p pos, format string, a ...any) {
	d.warnings = append(d.warnings, &Error{File: d.file, Line: p.line, Col: p.col, Msg: fmt.Sprintf(format, a...)})
}

// suggest returns " (did you mean X?)" for the candidate nearest to s, when it is
// near enough to be a typo: a case-only difference, an edit distance (swapped
// letters count once) of at most a third of the name, at least 1 and at most 3, or
// failing that the one candidate that contains s (a shortened name).
func suggest(s string, candidates []string) string {
	if len(s) > 64 { // no typo is that long, and the distance is quadratic
		return ""
	}
	ls := strings.ToLower(s)
	best, bestD := "", 1<<30
	var containing []string
	for _, c := range candidates {
		lc := strings.ToLower(c)
		if d := editDistance(ls, lc); d < bestD {
			best, bestD = c, d
		}
		if len(s) >= 4 && strings.Contains(lc, ls) {
			containing = append(containing, c)
		}
	}
	limit := min(max(len(s)/3, 1), 3)
	switch {
	case best != "" && bestD <= limit:
	case len(containing) == 1:
		best = containing[0]
	default:
		return ""
	}
	return " (did you mean " + best + "?)"
}

// editDistance is the optimal-string-alignment distance between a and b, by bytes:
// insertions, deletions, substitutions and swaps of adjacent letters cost one.
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}
