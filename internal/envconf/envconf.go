// Package envconf reads a binary's configuration from environment
// variables, collecting every invalid one instead of stopping at the first,
// each error naming the variable and its value. Only the commands under
// cmd/ use it: libraries take their configuration as values.
//
// Typical usage:
//
//	p := envconf.Parser{Lookup: os.LookupEnv}
//	level := p.Level("LOG_LEVEL")
//	size := p.Positive("BUFFER_SIZE", 5000)
//	if err := p.Err(); err != nil {
//		// every invalid variable, one per line
//	}
package envconf

import (
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/g0lab/g0efilter/events"
)

// Error is an invalid environment variable.
type Error struct {
	Name  string // the variable
	Value string // its value, as set
	Err   error  // what is wrong with it
}

func (e *Error) Error() string { return fmt.Sprintf("%s=%q: %v", e.Name, e.Value, e.Err) }

func (e *Error) Unwrap() error { return e.Err }

// Parser reads variables through Lookup and collects the errors of the
// invalid ones. Each method returns the default when the variable is unset
// or blank, and also when it is invalid, after recording the error.
type Parser struct {
	// Lookup returns a variable's value and whether it is set
	// (os.LookupEnv).
	Lookup func(string) (string, bool)
	errs   []error
}

// Fail records that variable name, set to value, is invalid.
func (p *Parser) Fail(name, value string, err error) {
	p.errs = append(p.errs, &Error{Name: name, Value: value, Err: err})
}

// Err returns every recorded error, joined, or nil.
func (p *Parser) Err() error { return errors.Join(p.errs...) }

// Get returns the trimmed value and whether it is set and not blank.
func (p *Parser) Get(name string) (string, bool) {
	v, ok := p.Lookup(name)
	v = strings.TrimSpace(v)
	return v, ok && v != ""
}

// String returns the trimmed value, or "".
func (p *Parser) String(name string) string {
	v, _ := p.Get(name)
	return v
}

// Level reads a log level: TRACE, DEBUG, INFO, WARN (or WARNING) or ERROR,
// in any case. The default is INFO.
func (p *Parser) Level(name string) slog.Level {
	v, ok := p.Get(name)
	if !ok {
		return slog.LevelInfo
	}
	if strings.EqualFold(v, "WARNING") {
		v = "WARN"
	}
	l, err := events.ParseLevel(v)
	if err != nil {
		p.Fail(name, v, errors.New("want TRACE, DEBUG, INFO, WARN or ERROR"))
		return slog.LevelInfo
	}
	return l
}

// Positive reads a whole number above zero.
func (p *Parser) Positive(name string, def int) int {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		p.Fail(name, v, errors.New("want a positive whole number"))
		return def
	}
	return n
}

// Bool reads true or false (and the other spellings of strconv.ParseBool).
func (p *Parser) Bool(name string, def bool) bool {
	v, ok := p.Get(name)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.Fail(name, v, errors.New("want true or false"))
		return def
	}
	return b
}
