package suggest

import (
	"fmt"
	"io"
	"strings"
)

// Diff writes a unified diff (three lines of context) from old to new,
// two versions of the file named name: what a person reviews before
// applying a suggestion. It writes nothing when they are equal.
func Diff(w io.Writer, name string, old, new []byte) error {
	a, b := lines(old), lines(new)
	ops := diffOps(a, b)
	if len(ops) == 0 {
		return nil
	}
	if _, err := fmt.Fprintf(w, "--- %s\n+++ %s (suggested)\n", name, name); err != nil {
		return err
	}
	const context = 3
	for i := 0; i < len(ops); {
		// A hunk: from context lines before the first change to context
		// lines after the last change that is near enough.
		start := max(ops[i].a-context, 0)
		j := i
		for j+1 < len(ops) && ops[j+1].a-ops[j].aEnd() <= 2*context {
			j++
		}
		endA := min(ops[j].aEnd()+context, len(a))
		startB := ops[i].b - (ops[i].a - start)
		endB := ops[j].bEnd() + (endA - ops[j].aEnd())
		var hunk strings.Builder
		pos := start
		for k := i; k <= j; k++ {
			for ; pos < ops[k].a; pos++ {
				hunk.WriteString(" " + a[pos])
			}
			for _, l := range a[ops[k].a:ops[k].aEnd()] {
				hunk.WriteString("-" + l)
			}
			for _, l := range b[ops[k].b:ops[k].bEnd()] {
				hunk.WriteString("+" + l)
			}
			pos = ops[k].aEnd()
		}
		for ; pos < endA; pos++ {
			hunk.WriteString(" " + a[pos])
		}
		if _, err := fmt.Fprintf(w, "@@ -%d,%d +%d,%d @@\n%s", start+1, endA-start, startB+1, endB-startB, hunk.String()); err != nil {
			return err
		}
		i = j + 1
	}
	return nil
}

// lines splits text into lines that keep their line breaks; a last line
// without one gets one.
func lines(text []byte) []string {
	var out []string
	for l := range strings.Lines(string(text)) {
		if !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		out = append(out, l)
	}
	return out
}

// op replaces a[a:a+del] with b[b:b+ins].
type op struct{ a, del, b, ins int }

func (o op) aEnd() int { return o.a + o.del }
func (o op) bEnd() int { return o.b + o.ins }

// diffOps returns the changes from a to b along a longest common
// subsequence of lines. Policy files are small: the quadratic table is
// fine.
func diffOps(a, b []string) []op {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		if i < n && j < m && a[i] == b[j] {
			i, j = i+1, j+1
			continue
		}
		o := op{a: i, b: j}
		for (i < n || j < m) && !(i < n && j < m && a[i] == b[j]) {
			if j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]) {
				j++
				o.ins++
			} else {
				i++
				o.del++
			}
		}
		ops = append(ops, o)
	}
	return ops
}
