package main

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
	"time"
)

// certValidity is how long the sandbox's CA and certificate are valid;
// they are valid from an hour before they are made, too, for clock skew.
const certValidity = 7 * 24 * time.Hour

// ca is the sandbox's certificate authority, made afresh for each run and
// held in memory; only its certificate is written out (ca.pem, for curl's
// --cacert). internal/e2e has one like it, but that package is bound to
// the testing package, which a program should not link.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// newCA makes an ECDSA P-256 key and a self-signed CA certificate.
func newCA() (*ca, error) {
	key, tmpl, err := newKeyAndTemplate("g0efilter sandbox CA")
	if err != nil {
		return nil, fmt.Errorf("CA: %w", err)
	}
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	tmpl.BasicConstraintsValid = true
	tmpl.IsCA = true
	tmpl.MaxPathLenZero = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	return &ca{cert: cert, key: key}, nil
}

// PEM returns the CA's certificate in PEM form.
func (c *ca) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.cert.Raw})
}

// Pool returns a pool holding only the CA's certificate.
func (c *ca) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// Issue makes a server certificate, with a key of its own, for the DNS
// names given; the first is also the subject's common name.
func (c *ca) Issue(names ...string) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("issue: no names")
	}
	key, tmpl, err := newKeyAndTemplate(names[0])
	if err != nil {
		return nil, fmt.Errorf("certificate for %v: %w", names, err)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.DNSNames = names
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		return nil, fmt.Errorf("certificate for %v: %w", names, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("certificate for %v: %w", names, err)
	}
	return &tls.Certificate{Certificate: [][]byte{der, c.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

func newKeyAndTemplate(cn string) (*ecdsa.PrivateKey, *x509.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	return key, &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
	}, nil
}
