package localca

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIssue(t *testing.T) {
	ca, err := New("test CA", time.Hour)
	require.NoError(t, err)
	block, _ := pem.Decode(ca.PEM())
	require.NotNil(t, block)
	assert.Equal(t, ca.Certificate().Raw, block.Bytes)

	cert, err := ca.Issue("a.example.test", "198.18.0.2", "fd00:18::2")
	require.NoError(t, err)
	require.NotNil(t, cert.Leaf)
	assert.Equal(t, "a.example.test", cert.Leaf.Subject.CommonName)

	tests := []struct {
		name    string
		trusted bool
	}{
		{name: "a.example.test", trusted: true},
		{name: "198.18.0.2", trusted: true},
		{name: "fd00:18::2", trusted: true},
		{name: "b.example.test", trusted: false},
		{name: "198.18.0.3", trusted: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: ca.Pool()})
			if tc.trusted {
				assert.NoError(t, err)
			} else {
				assert.Error(t, err)
			}
		})
	}

	// Another CA's pool does not trust it.
	other, err := New("another CA", time.Hour)
	require.NoError(t, err)
	_, err = cert.Leaf.Verify(x509.VerifyOptions{DNSName: "a.example.test", Roots: other.Pool()})
	assert.Error(t, err)

	_, err = ca.Issue()
	assert.Error(t, err)
}
