package main

import (
	"bytes"
	"fmt"
	"log"
	"net/http"
	"regexp"

	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// When the vCenter saves its state (durable.go): after every request that may change it, before
// the answer goes out.

// SOAP methods that change nothing saved: reads, sessions, property collection and views.
// Any other method (unknown ones included) is followed by a save.
var readOnlyMethods = map[string]bool{}

func init() {
	for _, m := range []string{
		"RetrieveServiceContent", "RetrieveProperties", "RetrievePropertiesEx",
		"ContinueRetrievePropertiesEx", "CancelRetrievePropertiesEx", "Fetch", "WaitForUpdates",
		"WaitForUpdatesEx", "CheckForUpdates", "CancelWaitForUpdates", "CreateFilter",
		"DestroyPropertyFilter", "CreatePropertyCollector", "DestroyPropertyCollector",
		"CreateContainerView", "CreateListView", "CreateListViewFromView", "CreateInventoryView",
		"DestroyView", "Login", "LoginByToken", "LoginExtensionByCertificate", "Logout",
		"SessionIsActive", "AcquireCloneTicket", "CloneSession", "CurrentTime",
		"FindByInventoryPath", "FindByUuid", "FindAllByUuid", "FindByIp", "FindAllByIp",
		"FindByDnsName", "FindAllByDnsName", "FindChild", "FindByDatastorePath",
		"QueryAvailableDisksForVmfs", "QueryVmfsDatastoreCreateOptions", "QueryPerf",
		"QueryPerfCounter", "QueryPerfCounterByLevel", "QueryAvailablePerfMetric",
		"QueryPerfProviderSummary", "QueryPerfComposite", "QueryEvents", "CreateCollectorForEvents",
		"CreateCollectorForTasks", "ReadNextEvents", "ReadPreviousEvents", "ReadNextTasks",
		"ReadPreviousTasks", "DestroyCollector", "ResetCollector", "RewindCollector",
		"SetCollectorPageSize", "QueryConfigOption", "QueryConfigOptionDescriptor",
		"QueryConfigOptionEx", "QueryConfigTarget", "QueryTargetCapabilities",
		"SearchDatastore_Task", "SearchDatastoreSubFolders_Task", "RetrieveUserGroups",
		"HasPrivilegeOnEntity", "HasPrivilegeOnEntities", "FetchUserPrivilegeOnEntities",
		"RetrieveEntityPermissions", "RetrieveAllPermissions", "RetrieveRolePermissions",
		"QueryVirtualDiskUuid", "QueryVirtualDiskInfo_Task", "QueryOptions",
		"RetrieveHardwareUptime", "QueryTpmAttestationReport", "ValidateCredentialsInGuest",
	} {
		readOnlyMethods[m] = true
	}
}

// soapMethod is the first element inside the envelope's Body ("" when there is none).
var soapMethodRe = regexp.MustCompile(`<(?:[\w.-]+:)?Body\b[^>]*>\s*<(?:[\w.-]+:)?([A-Za-z_][\w]*)`)

func soapMethod(body []byte) string {
	if m := soapMethodRe.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}

// heldResponse keeps a handler's answer until the state is saved.
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header         { return h.header }
func (h *heldResponse) Write(p []byte) (int, error) { return h.body.Write(p) }
func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

// Durably wraps a handler: mutates(r, body) says whether the request may change the state; if
// so the answer waits for a save, and a failed save answers 500 instead of success.
func (st *Store) Durably(next http.Handler, mutates func(*http.Request, []byte) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		if r.Body != nil && r.Method == http.MethodPost {
			var buf bytes.Buffer
			if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 64<<20)); err != nil {
				http.Error(w, "request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			body = buf.Bytes()
			r.Body = readCloser{bytes.NewReader(body)}
		}
		if !mutates(r, body) {
			next.ServeHTTP(w, r)
			return
		}
		st.touch(body)
		held := &heldResponse{header: w.Header()}
		next.ServeHTTP(held, r)
		if err := st.Commit(); err != nil {
			log.Printf("state not saved after %s %s: %v", r.Method, r.URL.Path, err)
			w.Header().Del("Content-Length")
			if r.URL.Path == fabricPath || r.URL.Path == guestinfoPath {
				writeError(w, http.StatusInternalServerError, "the vCenter could not save its state: "+err.Error())
			} else {
				w.Header().Set("Content-Type", "text/xml; charset=utf-8")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = fmt.Fprintf(w, soapFaultXML, xmlEscape("the vCenter could not save its state: "+err.Error()))
			}
			return
		}
		if held.status == 0 {
			held.status = http.StatusOK
		}
		w.WriteHeader(held.status)
		_, _ = w.Write(held.body.Bytes())
	})
}

var thisRe = regexp.MustCompile(`<_this\b[^>]*\btype="([^"]+)"[^>]*>([^<]*)</_this>`)

// touch notes the object a SOAP call was made on (collect reads it again).
func (st *Store) touch(body []byte) {
	if m := thisRe.FindSubmatch(body); m != nil {
		ref := types.ManagedObjectReference{Type: string(m[1]), Value: string(m[2])}
		st.touchMu.Lock()
		st.touched[ref] = true
		st.touchMu.Unlock()
	}
}

// SDKMutates: a SOAP call to /sdk not in readOnlyMethods.
func SDKMutates(r *http.Request, body []byte) bool {
	return r.Method == http.MethodPost && len(r.URL.Path) >= 4 && r.URL.Path[:4] == "/sdk" &&
		!readOnlyMethods[soapMethod(body)]
}

// WritesMutate: the JSON endpoints (fabric, guestinfo) change state on anything but GET/HEAD.
func WritesMutate(r *http.Request, _ []byte) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead
}

const soapFaultXML = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring><detail><SystemErrorFault xmlns="urn:vim25" xsi:type="SystemError"><reason>state not saved</reason></SystemErrorFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>`

func xmlEscape(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
