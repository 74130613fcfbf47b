//go:build !linux

package nftrules

import (
	"fmt"
	"net/netip"
	"runtime"
)

// Conn manages the g0efilter table through netlink. On this operating
// system every method returns [ErrUnsupported].
type Conn struct{}

// Open returns [ErrUnsupported] on this operating system.
func Open(ConnConfig) (*Conn, error) {
	return nil, fmt.Errorf("%w (GOOS=%s)", ErrUnsupported, runtime.GOOS)
}

// Apply returns [ErrUnsupported].
func (c *Conn) Apply(*Ruleset) error { return ErrUnsupported }

// UpdateSets returns [ErrUnsupported].
func (c *Conn) UpdateSets(v4, v6 []netip.Prefix) error { return ErrUnsupported }

// UpdateLists returns [ErrUnsupported].
func (c *Conn) UpdateLists(Lists) error { return ErrUnsupported }

// Pin returns [ErrUnsupported].
func (c *Conn) Pin([]Pin) error { return ErrUnsupported }

// Installed returns [ErrUnsupported].
func (c *Conn) Installed() error { return ErrUnsupported }

// Close does nothing.
func (c *Conn) Close() error { return nil }

// Applied returns nil.
func (c *Conn) Applied() *Ruleset { return nil }

// AddEgress returns [ErrUnsupported].
func (c *Conn) AddEgress(string) error { return ErrUnsupported }

// SelfCgroup returns [ErrUnsupported].
func SelfCgroup() (id uint64, level int, err error) { return 0, 0, ErrUnsupported }

// RawFrames returns [ErrUnsupported].
func (c *Conn) RawFrames() (map[string]uint64, error) { return nil, ErrUnsupported }

// Auditing returns [ErrUnsupported].
func (c *Conn) Auditing() (bool, error) { return false, ErrUnsupported }

// Guards returns [ErrUnsupported].
func (c *Conn) Guards() (byCgroup bool, egress []string, err error) {
	return false, nil, ErrUnsupported
}
