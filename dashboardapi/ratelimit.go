package dashboardapi

import (
	"net"
	"net/http"
)

// clientKey is the client's IP address, without the port.
func clientKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
