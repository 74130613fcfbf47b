package sni

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/tls"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"testing/cryptotest"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "regenerate testdata/hello-*.bin with crypto/tls clients")

// capturedHello is a ClientHello file in testdata, the client configuration
// that produced it, and what ParseClientHello must read from it.
type capturedHello struct {
	file   string
	config func(t *testing.T) *tls.Config
	want   helloSummary
}

var capturedHellos = []capturedHello{
	{
		file: "hello-tls12.bin",
		config: func(*testing.T) *tls.Config {
			return &tls.Config{ServerName: "tls12.example.com", MaxVersion: tls.VersionTLS12}
		},
		want: helloSummary{
			ServerName: "tls12.example.com", HasSNI: true,
			Versions: []uint16{tls.VersionTLS12}, LegacyVersion: tls.VersionTLS12,
		},
	},
	{
		// A classic TLS 1.3 hello: one X25519 key share.
		file: "hello-tls13.bin",
		config: func(*testing.T) *tls.Config {
			return &tls.Config{ServerName: "www.example.com", CurvePreferences: []tls.CurveID{tls.X25519}}
		},
		want: helloSummary{
			ServerName: "www.example.com", HasSNI: true,
			Versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, LegacyVersion: tls.VersionTLS12,
		},
	},
	{
		// A post-quantum key share makes the hello about 1.4 KB, more
		// than fits in one TCP segment of a 1500-byte MTU link.
		file: "hello-tls13-mlkem.bin",
		config: func(*testing.T) *tls.Config {
			return &tls.Config{ServerName: "pq.example.com", CurvePreferences: []tls.CurveID{tls.X25519MLKEM768, tls.X25519}}
		},
		want: helloSummary{
			ServerName: "pq.example.com", HasSNI: true,
			Versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, LegacyVersion: tls.VersionTLS12,
		},
	},
	{
		// crypto/tls strips the trailing dot but keeps the case.
		file: "hello-alpn-h2.bin",
		config: func(*testing.T) *tls.Config {
			return &tls.Config{ServerName: "API.Example.COM.", NextProtos: []string{"h2", "http/1.1"}}
		},
		want: helloSummary{
			ServerName: "api.example.com", HasSNI: true, ALPN: []string{"h2", "http/1.1"},
			Versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, LegacyVersion: tls.VersionTLS12,
		},
	},
	{
		// crypto/tls sends no SNI when it has no name to send.
		file: "hello-nosni.bin",
		config: func(*testing.T) *tls.Config {
			return &tls.Config{InsecureSkipVerify: true}
		},
		want: helloSummary{
			Versions: []uint16{tls.VersionTLS13, tls.VersionTLS12}, LegacyVersion: tls.VersionTLS12,
		},
	},
	{
		// With ECH the outer hello names the ECH public name; the real
		// name is encrypted.
		file: "hello-ech.bin",
		config: func(t *testing.T) *tls.Config {
			return &tls.Config{
				ServerName:                     "secret.example.com",
				MinVersion:                     tls.VersionTLS13,
				EncryptedClientHelloConfigList: echConfigList(t, "public.example.net"),
			}
		},
		want: helloSummary{
			ServerName: "public.example.net", HasSNI: true,
			Versions: []uint16{tls.VersionTLS13}, LegacyVersion: tls.VersionTLS12, ECH: true,
		},
	},
}

// readHello returns the contents of a testdata file.
func readHello(tb testing.TB, file string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(tb, err, "regenerate with: go test ./sni -run TestGenerateTestdata -update")
	return data
}

// TestGenerateTestdata rewrites the captured hellos. The crypto random
// source is seeded, so the files change only when crypto/tls does.
func TestGenerateTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to regenerate testdata/hello-*.bin")
	}
	for _, c := range capturedHellos {
		cryptotest.SetGlobalRandom(t, 1)
		data, err := captureHello(c.config(t))
		require.NoError(t, err, c.file)
		require.NoError(t, os.WriteFile(filepath.Join("testdata", c.file), data, 0o644))
	}
}

// echConfigList returns an ECHConfigList (draft-ietf-tls-esni-22 §4) with one
// config for a fresh X25519 key: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
// AES-128-GCM.
func echConfigList(t *testing.T, publicName string) []byte {
	key, err := ecdh.X25519().GenerateKey(rand.Reader)
	require.NoError(t, err)
	contents := slices.Concat(
		[]byte{1},                       // config_id
		u16(0x0020),                     // kem_id
		vec16(key.PublicKey().Bytes()),  // public_key
		vec16(u16(0x0001), u16(0x0001)), // cipher_suites: kdf_id, aead_id
		[]byte{0},                       // maximum_name_length
		vec8([]byte(publicName)),        // public_name
		vec16(),                         // extensions
	)
	return vec16(u16(extECH), vec16(contents))
}
