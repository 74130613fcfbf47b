// Package localca is a certificate authority held in memory, for the
// end-to-end tests and the sandbox: clients trust it through [CA.Pool] (or
// [CA.PEM], for curl), servers present what [CA.Issue] gives them. Nothing
// it makes should be trusted outside them.
//
// Typical usage:
//
//	ca, err := localca.New("g0efilter test CA", 24*time.Hour)
//	cert, err := ca.Issue("allowed.example", "198.18.0.3")
//	server := &tls.Config{Certificates: []tls.Certificate{*cert}}
//	client := &tls.Config{RootCAs: ca.Pool()}
package localca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"
)

// CA is a certificate authority held in memory. Its methods are safe for
// concurrent use.
type CA struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	validity time.Duration
}

// New makes a CA named name: an ECDSA P-256 key and a self-signed
// certificate. It and the certificates it issues are valid from an hour ago
// (for clock skew) for validity.
func New(name string, validity time.Duration) (*CA, error) {
	key, tmpl, err := newKeyAndTemplate(name, validity)
	if err != nil {
		return nil, fmt.Errorf("localca: CA: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("localca: CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("localca: CA certificate: %w", err)
	}
	return &CA{cert: cert, key: key, validity: validity}, nil
}

// newKeyAndTemplate makes an ECDSA P-256 key and a certificate template
// with a random serial, the common name cn, and a validity that starts an
// hour ago and lasts validity.
func newKeyAndTemplate(cn string, validity time.Duration) (*ecdsa.PrivateKey, *x509.Certificate, error) {
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
		NotAfter:     now.Add(validity),
	}, nil
}

// PEM returns the CA's certificate in PEM form, for a client such as curl
// (--cacert).
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw})
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
		return nil, errors.New("localca: issue: no names")
	}
	key, tmpl, err := newKeyAndTemplate(names[0], ca.validity)
	if err != nil {
		return nil, fmt.Errorf("localca: leaf: %w", err)
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
		return nil, fmt.Errorf("localca: leaf certificate for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("localca: leaf certificate for %v: %w", names, err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, ca.cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}

// randSerial returns a random 127-bit serial number.
func randSerial() (*big.Int, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("localca: serial number: %w", err)
	}
	return serial, nil
}
