package check

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// grade is A when nothing is above low, B with medium findings, C with one
// high, D with more than one high, F with any critical.
func grade(fs []Finding) string {
	var highs, mediums int
	for _, f := range fs {
		switch f.Severity {
		case Critical:
			return "F"
		case High:
			highs++
		case Medium:
			mediums++
		}
	}
	switch {
	case highs > 1:
		return "D"
	case highs == 1:
		return "C"
	case mediums > 0:
		return "B"
	}
	return "A"
}

// WriteJSON writes the report as one JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// ANSI colours for the terminal report, used only when asked (a TTY).
const (
	reset  = "\x1b[0m"
	bold   = "\x1b[1m"
	red    = "\x1b[31m"
	yellow = "\x1b[33m"
	cyan   = "\x1b[36m"
	green  = "\x1b[32m"
	dim    = "\x1b[2m"
)

// WriteText writes the report for a reader: grade, findings grouped by
// severity (worst first) with evidence and fix, what could not be checked
// and why, what passed, and the traffic sent. color adds ANSI colours.
func (r *Report) WriteText(w io.Writer, color bool) error {
	return r.writeText(w, color, false)
}

// WriteTextVerbose is WriteText with the evidence of each passed check.
func (r *Report) WriteTextVerbose(w io.Writer, color bool) error {
	return r.writeText(w, color, true)
}

func (r *Report) writeText(w io.Writer, color, verbose bool) error {
	paint := func(c, s string) string {
		if !color {
			return s
		}
		return c + s + reset
	}
	var b strings.Builder
	gradeColor := green
	switch r.Grade {
	case "F", "D":
		gradeColor = red
	case "C", "B":
		gradeColor = yellow
	}
	fmt.Fprintf(&b, "wsguard check %s\ngrade %s: %d finding(s), %d passed, %d not checked\n",
		r.Target, paint(bold+gradeColor, r.Grade), len(r.Findings), len(r.Passed), len(r.Skipped))
	sevColor := map[Severity]string{Critical: bold + red, High: red, Medium: yellow, Low: cyan}
	for _, sev := range []Severity{Critical, High, Medium, Low} {
		first := true
		for _, f := range r.Findings {
			if f.Severity != sev {
				continue
			}
			if first {
				fmt.Fprintf(&b, "\n%s\n", paint(sevColor[sev], strings.ToUpper(sev.String())))
				first = false
			}
			fmt.Fprintf(&b, "  %s  %s\n", paint(bold, string(f.ID)), f.Title)
			fmt.Fprintf(&b, "    evidence: %s\n", f.Evidence)
			fmt.Fprintf(&b, "    fix: %s\n", f.Fix)
		}
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(&b, "\n%s\n", paint(bold, "NOT CHECKED"))
		for _, s := range r.Skipped {
			fmt.Fprintf(&b, "  %s  not checked: %s\n", s.ID, s.Reason)
		}
	}
	if len(r.Passed) > 0 {
		ids := make([]string, len(r.Passed))
		for i, id := range r.Passed {
			ids[i] = string(id)
		}
		fmt.Fprintf(&b, "\n%s %s\n", paint(green, "PASSED"), strings.Join(ids, " "))
		if verbose {
			for _, n := range r.PassedEvidence {
				fmt.Fprintf(&b, "  %s  %s\n", n.ID, n.Evidence)
			}
		}
	}
	fmt.Fprintf(&b, "%s\n", paint(dim, fmt.Sprintf("\nsent %d connections, %d frames, %d bytes (budget %d, %d, %d)",
		r.Sent.Connections, r.Sent.Frames, r.Sent.Bytes, r.Budget.Connections, r.Budget.Frames, r.Budget.Bytes)))
	_, err := io.WriteString(w, b.String())
	return err
}
