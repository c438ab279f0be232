package main

import (
	"crypto/subtle"
	"net"
	"net/http"
)

// basicAuth guards the Go main's own endpoints (fabric, guestinfo) with the vCenter's user
// and password, and answers only loopback clients (the lab binds loopback only).
type basicAuth struct {
	user, password string
}

func (a basicAuth) wrap(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			writeError(w, http.StatusForbidden, "only loopback clients may use this endpoint")
			return
		}
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(a.user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(a.password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="vcenter"`)
			writeError(w, http.StatusUnauthorized, "HTTP basic authentication with the vCenter user is required")
			return
		}
		next(w, r)
	}
}
