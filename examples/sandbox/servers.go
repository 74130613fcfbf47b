package main

import (
	"fmt"
	"net"
	"net/http"
)

// rawHandler answers the direct-IP target, which has no name.
func rawHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		local := "this address"
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			local = a.String()
		}
		fmt.Fprintf(w, "hello from %s: no name, the address alone decided\n", local)
	})
}
