package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
	"time"
)

// caValidity is how long the test CA and its leaves are valid after they
// are made; they are valid from an hour before, too.
const caValidity = 24 * time.Hour

// CA is a certificate authority held in memory, for tests only: clients
// trust it through [CA.Pool], servers present what [CA.Issue] gives them.
// Its methods are safe for concurrent use.
type CA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

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
	key, tmpl, err := newKeyAndTemplate("g0efilter e2e test CA")
	if err != nil {
		return nil, fmt.Errorf("e2e: CA: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("e2e: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("e2e: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key}, nil
}

// newKeyAndTemplate makes an ECDSA P-256 key and a certificate template
// with a random serial, the common name cn, and a validity that starts an
// hour ago (for clock skew) and lasts caValidity.
func newKeyAndTemplate(cn string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randSerial()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	return key, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(caValidity),
	}, nil
}

// Certificate returns the CA's own certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool returns a new pool holding only the CA's certificate, for a
// client's tls.Config.RootCAs.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// Issue makes a leaf certificate, with a key of its own (ECDSA P-256), for
// a server answering to names: DNS names, or IP addresses in text form.
// The first name is also the subject's common name. It needs at least one
// name.
func (ca *CA) Issue(names ...string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("e2e: issue: no names")
	}
	key, tmpl, err := newKeyAndTemplate(names[0])
	if err != nil {
		return nil, fmt.Errorf("e2e: leaf: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	for _, n := range names {
		if a, err := netip.ParseAddr(n); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, a.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("e2e: leaf certificate for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("e2e: leaf certificate for %v: %w", names, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

func randSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("e2e: serial number: %w", err)
	}
	return serial, nil
}
