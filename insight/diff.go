package insight

import (
	"fmt"
	"strings"
)

// diffContext is the number of unchanged lines around each change, as diff -u.
const diffContext = 3

// maxDiffCells bounds the table of the line comparison. A fix changes a few lines
// of a configuration that keepstate itself wrote, so the changed region is small;
// a larger one is written as a block removed and a block added.
const maxDiffCells = 1 << 22

// op is one line of an edit script.
type op struct {
	kind byte // ' ', '-' or '+'
	text string
}

// unifiedDiff returns the unified diff from a to b (empty when they are equal).
// Each hunk's header names, as diff -p does for functions, the nearest line before
// it that heading accepts (nil: none).
func unifiedDiff(a, b, nameA, nameB string, heading func(line string) bool) string {
	if a == b {
		return ""
	}
	ops := diffLines(splitLines(a), splitLines(b))
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", nameA, nameB)
	// Hunks: changes with their context, merged when the unchanged lines between
	// two changes are no more than the context of both.
	var changed []int
	for i, o := range ops {
		if o.kind != ' ' {
			changed = append(changed, i)
		}
	}
	for k := 0; k < len(changed); {
		first, last := changed[k], changed[k]
		for k++; k < len(changed) && changed[k]-last-1 <= 2*diffContext; k++ {
			last = changed[k]
		}
		start, end := max(0, first-diffContext), min(len(ops), last+1+diffContext)
		lineA, lineB := 1, 1
		for _, o := range ops[:start] {
			if o.kind != '+' {
				lineA++
			}
			if o.kind != '-' {
				lineB++
			}
		}
		na, nb := 0, 0
		for _, o := range ops[start:end] {
			if o.kind != '+' {
				na++
			}
			if o.kind != '-' {
				nb++
			}
		}
		fmt.Fprintf(&out, "@@ -%s +%s @@", hunkRange(lineA, na), hunkRange(lineB, nb))
		if heading != nil {
			for j := start - 1; j >= 0; j-- {
				if ops[j].kind != '+' && heading(ops[j].text) {
					out.WriteString(" " + strings.TrimSpace(ops[j].text))
					break
				}
			}
		}
		out.WriteByte('\n')
		for _, o := range ops[start:end] {
			out.WriteByte(o.kind)
			out.WriteString(o.text)
			out.WriteByte('\n')
		}
	}
	return out.String()
}

func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprint(start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}

func splitLines(s string) []string {
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// diffLines is the edit script from a to b: the common prefix and suffix as they
// are, and a longest common subsequence of what is between.
func diffLines(a, b []string) []op {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var ops []op
	for _, l := range a[:pre] {
		ops = append(ops, op{' ', l})
	}
	ops = append(ops, middle(a[pre:len(a)-suf], b[pre:len(b)-suf])...)
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, op{' ', l})
	}
	return ops
}

// middle diffs two blocks that differ at both ends.
func middle(a, b []string) []op {
	var ops []op
	if len(a)*len(b) > maxDiffCells {
		for _, l := range a {
			ops = append(ops, op{'-', l})
		}
		for _, l := range b {
			ops = append(ops, op{'+', l})
		}
		return ops
	}
	// lcs[i][j]: length of the longest common subsequence of a[i:] and b[j:].
	w := len(b) + 1
	lcs := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i*w+j] = lcs[(i+1)*w+j+1] + 1
			} else {
				lcs[i*w+j] = max(lcs[(i+1)*w+j], lcs[i*w+j+1])
			}
		}
	}
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i, j = i+1, j+1
		case lcs[(i+1)*w+j] >= lcs[i*w+j+1]:
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	for ; i < len(a); i++ {
		ops = append(ops, op{'-', a[i]})
	}
	for ; j < len(b); j++ {
		ops = append(ops, op{'+', b[j]})
	}
	return ops
}
