package e2e

import (
	"sync"
	"time"

	"github.com/g0lab/g0efilter/internal/localca"
)

// caValidity is how long the test CA and its leaves are valid.
const caValidity = 24 * time.Hour

// CA is a certificate authority held in memory, for tests only: clients
// trust it through [CA.Pool], servers present what [CA.Issue] gives them.
type CA = localca.CA

var (
	testCAOnce sync.Once
	testCA     *CA
	testCAErr  error
)

// SharedCA returns the test CA of this test binary, made (an ECDSA P-256
// key and a self-signed certificate) on the first call. [Env.TestCA] is
// the same CA, failing the test on error.
func SharedCA() (*CA, error) {
	testCAOnce.Do(func() { testCA, testCAErr = NewCA() })
	return testCA, testCAErr
}

// NewCA makes a new CA: an ECDSA P-256 key and a self-signed certificate
// valid for a day. Most tests want [SharedCA] instead.
func NewCA() (*CA, error) {
	return localca.New("g0efilter e2e test CA", caValidity)
}
