package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The fabric models the SAN between Datera and the ESXi hosts (reference §3.2.1): the Datera
// lab registers a LUN when a storage instance is exported with the host in its ACL and
// withdraws it when the volume goes. Nothing changes on a host until it rescans, as in life.
//
//	PUT    /datera/luns           JSON LUN, upsert by naa -> 201 (new) or 200 (updated)
//	DELETE /datera/luns?naa=NAA   -> 204, or 404 when unknown
//	GET    /datera/luns           -> 200, JSON list of LUNs (chap_secret never included)
//
// Errors: status + {"error": "<one line>"}. Auth: HTTP basic with the vCenter user.
const fabricPath = "/datera/luns"

// Datera's default iSCSI port; a portal without a port means this one.
const iscsiPort = 3260

// LUN is one Datera volume as the fabric presents it. NAA ids are what Datera (LIO) exposes:
// naa.6001405 + 25 hex digits (reference §5).
type LUN struct {
	NAA           string   `json:"naa"`
	CapacityBytes int64    `json:"capacity_bytes"`
	Vendor        string   `json:"vendor"`
	Model         string   `json:"model"`
	TargetIQN     string   `json:"target_iqn"`
	Portals       []string `json:"portals"`
	LunID         int32    `json:"lun_id"`
	Initiators    []string `json:"initiators"` // empty: any initiator
	ChapUser      string   `json:"chap_user"`
	ChapSecret    string   `json:"chap_secret,omitempty"`
}

var (
	naaRe = regexp.MustCompile(`^naa\.[0-9a-f]{32}$`)
	iqnRe = regexp.MustCompile(`^(iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9a-fA-F]{16})$`)
)

// normalize checks a LUN document and fills defaults. The error is one line naming the field.
func (l *LUN) normalize() error {
	l.NAA = strings.ToLower(strings.TrimSpace(l.NAA))
	if !strings.HasPrefix(l.NAA, "naa.") {
		l.NAA = "naa." + l.NAA
	}
	if !naaRe.MatchString(l.NAA) {
		return fmt.Errorf("naa: %q is not naa.<32 hex digits>", l.NAA)
	}
	if l.CapacityBytes <= 0 || l.CapacityBytes%512 != 0 {
		return fmt.Errorf("capacity_bytes: %d must be a positive multiple of 512", l.CapacityBytes)
	}
	if l.Vendor == "" {
		l.Vendor = "DATERA"
	}
	if l.Model == "" {
		l.Model = "IBLOCK"
	}
	if !iqnRe.MatchString(l.TargetIQN) {
		return fmt.Errorf("target_iqn: %q is not an iSCSI name (iqn.yyyy-mm.…)", l.TargetIQN)
	}
	if len(l.Portals) == 0 {
		return fmt.Errorf("portals: at least one \"ip:port\" is required")
	}
	for i, p := range l.Portals {
		ap, err := parsePortal(p)
		if err != nil {
			return fmt.Errorf("portals[%d]: %v", i, err)
		}
		l.Portals[i] = ap.String()
	}
	if l.LunID < 0 || l.LunID > 16383 {
		return fmt.Errorf("lun_id: %d is outside 0..16383", l.LunID)
	}
	for i, q := range l.Initiators {
		if !iqnRe.MatchString(q) {
			return fmt.Errorf("initiators[%d]: %q is not an iSCSI name", i, q)
		}
	}
	if (l.ChapUser == "") != (l.ChapSecret == "") {
		return fmt.Errorf("chap_user and chap_secret go together")
	}
	return nil
}

// Portal is an iSCSI portal address.
type Portal struct {
	Address string
	Port    int32
}

func (p Portal) String() string { return net.JoinHostPort(p.Address, strconv.Itoa(int(p.Port))) }

func parsePortal(s string) (Portal, error) {
	host, port := s, strconv.Itoa(iscsiPort)
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	n, err := strconv.Atoi(port)
	if net.ParseIP(host) == nil || err != nil || n <= 0 || n > 65535 {
		return Portal{}, fmt.Errorf("%q is not \"ip:port\"", s)
	}
	return Portal{Address: host, Port: int32(n)}, nil
}

// portalOf names a configured target's portal (port 0 in the API means 3260).
func portalOf(address string, port int32) Portal {
	if port == 0 {
		port = iscsiPort
	}
	return Portal{Address: address, Port: port}
}

// Fabric is the table of LUNs the storage exports, keyed by NAA id.
type Fabric struct {
	mu   sync.Mutex
	luns map[string]LUN
}

func NewFabric() *Fabric { return &Fabric{luns: map[string]LUN{}} }

// Snapshot returns a copy of every LUN, sorted by NAA id (rescans read this).
func (f *Fabric) Snapshot() []LUN {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]LUN, 0, len(f.luns))
	for _, l := range f.luns {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].NAA < out[j].NAA })
	return out
}

// Lookup returns the LUN with this NAA id.
func (f *Fabric) Lookup(naa string) (LUN, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.luns[naa]
	return l, ok
}

func (f *Fabric) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet:
		luns := f.Snapshot()
		for i := range luns {
			luns[i].ChapSecret = ""
		}
		writeJSON(w, http.StatusOK, luns)
	case http.MethodPut, http.MethodPost:
		var l LUN
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			writeError(w, http.StatusBadRequest, "body: not a LUN document: "+err.Error())
			return
		}
		if err := l.normalize(); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		f.mu.Lock()
		_, existed := f.luns[l.NAA]
		f.luns[l.NAA] = l
		f.mu.Unlock()
		status := http.StatusCreated
		if existed {
			status = http.StatusOK
		}
		l.ChapSecret = ""
		writeJSON(w, status, l)
	case http.MethodDelete:
		naa := strings.ToLower(r.URL.Query().Get("naa"))
		if naa != "" && !strings.HasPrefix(naa, "naa.") {
			naa = "naa." + naa
		}
		if !naaRe.MatchString(naa) {
			writeError(w, http.StatusBadRequest, "naa: query parameter naa=naa.<32 hex digits> is required")
			return
		}
		f.mu.Lock()
		_, ok := f.luns[naa]
		delete(f.luns, naa)
		f.mu.Unlock()
		if !ok {
			writeError(w, http.StatusNotFound, "no LUN "+naa+" on the fabric")
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, PUT, POST, DELETE")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not supported on "+fabricPath)
	}
}

func writeJSON(w http.ResponseWriter, status int, v interface{}) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
