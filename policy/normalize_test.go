package policy

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNormalizeDomain(t *testing.T) {
	valid := []struct{ in, want string }{
		{"example.com", "example.com"},
		{"  Example.COM.  ", "example.com"},
		{"*.Example.com", "*.example.com"},
		{"*", "*"},
		{"*.com", "*.com"},
		{"bücher.example", "xn--bcher-kva.example"},
		{"*.BÜCHER.example", "*.xn--bcher-kva.example"},
		{"xn--bcher-kva.example", "xn--bcher-kva.example"},
		{"XN--BCHER-KVA.example", "xn--bcher-kva.example"},
		{"例え.テスト", "xn--r8jz45g.xn--zckzah"},
		{"_dmarc.example.com", "_dmarc.example.com"},
		{"a-b.example", "a-b.example"},
		{"123.example", "123.example"},
		{"localhost", "localhost"},
		{"exa\u200bmple.com", "example.com"}, // UTS 46 maps zero-width space away, as browsers do
		{strings.Repeat("a", 63) + ".example", strings.Repeat("a", 63) + ".example"},
	}
	for _, tt := range valid {
		t.Run(tt.in, func(t *testing.T) {
			got, err := NormalizeDomain(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := NormalizeDomain(got)
			require.NoError(t, err)
			assert.Equal(t, got, again, "normalising is idempotent")
		})
	}

	invalid := []struct{ in, why string }{
		{"", "empty name"},
		{"*.", "empty name"},
		{".", "empty"},
		{"example..com", "empty label"},
		{".example.com", "empty label"},
		{"example.com..", "empty label"},
		{"**.example.com", "'*' is allowed only"},
		{"*example.com", "'*' is allowed only"},
		{"a.*.example.com", "'*' is allowed only"},
		{"*.*", "'*' is allowed only"},
		{"192.0.2.1", "an IP address is not a domain"},
		{"2001:db8::1", "an IP address is not a domain"},
		{"[::1]", "an IP address is not a domain"},
		{"1.2.3", "numeric"},
		{"example.com:443", "ports are not allowed"},
		{"http://example.com", "not a URL"},
		{"example.com/path", "not a URL"},
		{"user@example.com", "not a URL"},
		{"exa mple.com", "character ' '"},
		{"exa\tmple.com", "character '\\t'"},
		{"example.com\x00", "character '\\x00'"},
		{"-example.com", "starts or ends with '-'"},
		{"example-.com", "starts or ends with '-'"},
		{strings.Repeat("a", 64) + ".example", "more than 63"},
		{strings.Repeat("abcdefgh.", 28) + "com", "more than 253"},
		{"xn--zz.example", "internationalised"},
		{"exa\ufffdmple.com", "internationalised"},
		{"exa\u2028mple.com", "internationalised"},
	}
	for _, tt := range invalid {
		t.Run(tt.in, func(t *testing.T) {
			_, err := NormalizeDomain(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrDomain)
			assert.Contains(t, err.Error(), tt.why)
		})
	}
}

func TestParsePrefix(t *testing.T) {
	valid := []struct{ in, want string }{
		{"192.0.2.1", "192.0.2.1/32"},
		{" 192.0.2.0/24 ", "192.0.2.0/24"},
		{"0.0.0.0/0", "0.0.0.0/0"},
		{"2001:db8::1", "2001:db8::1/128"},
		{"2001:DB8::/32", "2001:db8::/32"},
		{"::/0", "::/0"},
		{"::ffff:192.0.2.1", "192.0.2.1/32"},
		{"::ffff:192.0.2.0/120", "192.0.2.0/24"},
	}
	for _, tt := range valid {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParsePrefix(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.String())
		})
	}
	invalid := []struct{ in, why string }{
		{"", "empty entry"},
		{"192.0.2.1:80", "ports are not allowed"},
		{"[2001:db8::1]:443", "ports are not allowed"},
		{"fe80::1%eth0", "zones are not allowed"},
		{"192.0.2.1/24", "did you mean 192.0.2.0/24?"},
		{"2001:db8::1/32", "did you mean 2001:db8::/32?"},
		{"192.0.2.0/33", "not a valid CIDR prefix"},
		{"192.0.2", "not an IP address"},
		{"0x7f.0.0.1", "not an IP address"},
		{"example.com", "not an IP address"},
		{"192.0.2.1-192.0.2.9", "not an IP address"},
	}
	for _, tt := range invalid {
		t.Run(tt.in, func(t *testing.T) {
			_, err := ParsePrefix(tt.in)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrIP)
			assert.Contains(t, err.Error(), tt.why)
		})
	}
}
