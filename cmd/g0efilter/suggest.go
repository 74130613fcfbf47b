package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/g0lab/g0efilter/events"
	"github.com/g0lab/g0efilter/nftrules"
	"github.com/g0lab/g0efilter/policy"
	"github.com/g0lab/g0efilter/suggest"
)

// maxEventLine bounds one line of a LOG_FILE.
const maxEventLine = 1 << 20

// cmdSuggest prints a policy that allows what the files (records of
// observations or events; the OBSERVED_FILE or else the LOG_FILE when
// none) show the workload did; with --diff POLICY, a unified
// diff that adds to POLICY only what it lacks.
func cmdSuggest(cfg config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("suggest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	diffPath := fs.String("diff", "", "print only what this policy file lacks, as a diff")
	wildcards := fs.Int("wildcard-min", suggest.DefaultWildcardMin, "names below one registrable domain that make a wildcard (negative: none)")
	if err := fs.Parse(args); err != nil {
		return usageErr(stderr, "suggest: "+err.Error())
	}
	files := fs.Args()
	if len(files) == 0 {
		switch {
		case cfg.ObservedFile != "":
			files = []string{cfg.ObservedFile}
		case cfg.LogFile != "":
			files = []string{cfg.LogFile}
		default:
			return usageErr(stderr, "suggest needs the filter's record (OBSERVED_FILE) or event files (LOG_FILE), as in g0efilter suggest events.jsonl")
		}
	}
	// Read offline from files the filter wrote: no bound.
	o := suggest.Observations{MaxDestinations: -1}
	for _, f := range files {
		if err := readObservations(f, &o); err != nil {
			printErr(stderr, err)
			return exitFailure
		}
	}
	dnsMode := cfg.Mode == nftrules.ModeDNS
	entries := suggest.Suggest(&o, suggest.Options{WildcardMin: *wildcards, DNSMode: dnsMode})
	header := fmt.Sprintf("Suggested by g0efilter suggest from %d events of %s", o.Events, strings.Join(files, ", "))
	if !o.From.IsZero() {
		header += fmt.Sprintf(",\n%s to %s", o.From.UTC().Format("2006-01-02 15:04:05"), o.To.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if o.Overflow > 0 {
		header += fmt.Sprintf(".\n%d events were about destinations beyond the record's bound, and are not in it", o.Overflow)
	}
	if o.Skipped > 0 {
		header += fmt.Sprintf(".\n%d events were no reason to allow anything (denied, malformed, attempts to get around the filter)", o.Skipped)
	}
	header += ".\nReview every entry before you use it: it allows what the workload did, no more."

	if *diffPath == "" {
		if err := suggest.Write(stdout, header, entries); err != nil {
			printErr(stderr, err)
			return exitFailure
		}
		return exitOK
	}
	data, err := os.ReadFile(*diffPath)
	if err != nil {
		printErr(stderr, fmt.Errorf("policy: %w", err))
		return exitFailure
	}
	p, err := policy.Parse(*diffPath, data)
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	snap, err := policy.Compile(p)
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	missing := suggest.Missing(entries, snap, dnsMode)
	if len(missing) == 0 {
		fmt.Fprintf(stdout, "%s allows everything the events show\n", *diffPath)
		return exitOK
	}
	ips, domains := suggest.Lists(missing)
	edited, err := policy.Append(*diffPath, data, ips, domains)
	if err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	if err := suggest.Diff(stdout, *diffPath, data, edited); err != nil {
		printErr(stderr, err)
		return exitFailure
	}
	fmt.Fprintln(stdout, "# What each added entry covers:")
	for _, e := range missing {
		fmt.Fprintf(stdout, "#   %s: %s\n", e.Value, e.Comment())
	}
	return exitFailure // something is missing, as diff(1) says
}

// readObservations adds to o what the file at path holds: the filter's
// record (OBSERVED_FILE) or events (a LOG_FILE).
func readObservations(path string, o *suggest.Observations) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("suggest: %w", err)
	}
	if !isObservations(data) {
		return readEvents(path, bytes.NewReader(data), o.Add)
	}
	rec := suggest.Observations{MaxDestinations: -1}
	if err := rec.UnmarshalJSON(data); err != nil {
		return fmt.Errorf("suggest: %s: %w", path, err)
	}
	o.Merge(&rec)
	return nil
}

// readEvents calls add with each event of r, the LOG_FILE at path (JSON
// lines).
func readEvents(path string, r io.Reader, add func(events.Event)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		var e events.Event
		if err := json.Unmarshal([]byte(text), &e); err != nil {
			return fmt.Errorf("suggest: %s:%d: not an event: %w", path, line, err)
		}
		add(e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("suggest: %s: a line longer than %d bytes", path, maxEventLine)
		}
		return fmt.Errorf("suggest: %s: %w", path, err)
	}
	return nil
}
