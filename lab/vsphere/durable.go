package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// Store keeps the vCenter's state in one file, data_dir/state.xml, rewritten after every
// request that may change it (write to a temp file, fsync, rename, fsync the directory), before
// the caller gets its answer: a kill -9 loses nothing acknowledged (issue 13, Build 1).
//
// The inventory is saved in the simulator's own format: one types.ObjectContent with every
// property per managed object, as `govc object.save` writes them and simulator.Model.Load
// reads them (restore.go hands them to Model.Load), so managed object ids (vm-NN, ...) stay
// the same across a restart. What the Go main adds and no property shows travels beside it:
// the fabric's LUNs, each host's iSCSI adapter with its CHAP secrets (the API never returns
// them), the LUNs its last rescan found, the VMFS volumes, the registry's id counter (a new
// object never reuses an id a client may still hold) and the guest agents' pids.
//
// The file holds CHAP secrets: mode 0600 in the component's private data dir, as config.json.
type Store struct {
	path   string
	client *vim25.Client
	fabric *Fabric
	guests *Guests

	wanted        uint64                                // commit tickets handed out (atomic)
	mu            sync.Mutex                            // one save at a time; guards saved and extra
	saved         uint64                                // the highest ticket a finished save covers
	extra         map[types.ManagedObjectReference]bool // non-entities worth saving (followProps)
	cache         map[types.ManagedObjectReference]cached
	off           bool
	sync          bool
	extSum        uint64 // fingerprint of the last encoded extension state, and its XML
	extXML        []byte
	staticChanged bool // a static object was re-encoded since state-static.xml was written // fsync each save (VANCOUVER_LAB_STORE_SYNC=full)

	touchMu sync.Mutex
	touched map[types.ManagedObjectReference]bool // objects SOAP calls were made on since the last save
}

// StateDoc is state.xml. Version 1.
type StateDoc struct {
	XMLName xml.Name              `xml:"vancouverVcenter"`
	Version int                   `xml:"version"`
	Counter int64                 `xml:"counter"`
	Objects []types.ObjectContent `xml:"object"`
	Fabric  []LUN                 `xml:"lun"`
	Hosts   []HostStorageState    `xml:"hostStorage"`
	Vmfs    []VmfsVolume          `xml:"vmfs"`
	Guests  []GuestState          `xml:"guest"`
}

// HostStorageState is what a host's HostStorageSystem wrapper holds beyond its properties.
type HostStorageState struct {
	Host    types.ManagedObjectReference `xml:"host"`
	Base    types.HostStorageDeviceInfo  `xml:"base"`
	Iscsi   *types.HostInternetScsiHba   `xml:"iscsi,omitempty"`
	Visible []VisibleLUN                 `xml:"visible"`
	Targets []TargetNumber               `xml:"target"`
}

// TargetNumber is one "<iqn>@<portal>" -> SCSI target number of a host.
type TargetNumber struct {
	Key    string `xml:"key"`
	Number int32  `xml:"number"`
}

// GuestState is a running guest agent: its VM, pid and the pid's start time in clock ticks
// since boot (/proc/<pid>/stat field 22), which tells it from a later process with that pid.
type GuestState struct {
	VM    string `xml:"vm"`
	Pid   int    `xml:"pid"`
	Start uint64 `xml:"start"`
}

const (
	stateFile  = "state.xml"
	staticFile = "state-static.xml"
)

// Types never saved: per-session and transient objects (a restart ends every session, as a real
// vCenter's does) and tasks (the task janitor drops finished ones within seconds anyway).
var transientTypes = map[string]bool{"Task": true, "PropertyFilter": true, "ContainerView": true,
	"ListView": true, "InventoryView": true, "EventHistoryCollector": true,
	"TaskHistoryCollector": true, "VancouverGuests": true, "VancouverTaskJanitor": true}

// Properties dropped from saved objects: references to transient objects and sessions.
var transientProps = map[string]bool{"recentTask": true, "sessionList": true,
	"currentSession": true, "viewList": true, "filter": true}

// Properties whose references lead to the non-entity objects worth saving (host config
// managers, datastore and environment browsers); entities are all listed from the registry.
var followProps = map[string]bool{"configManager": true, "browser": true, "environmentBrowser": true}

func NewStore(dataDir string) *Store {
	return &Store{path: filepath.Join(dataDir, stateFile), extra: map[types.ManagedObjectReference]bool{},
		cache: map[types.ManagedObjectReference]cached{}, touched: map[types.ManagedObjectReference]bool{},
		sync: os.Getenv("VANCOUVER_LAB_STORE_SYNC") == "full", off: os.Getenv("VANCOUVER_LAB_STORE") == "off"}
}

// Read returns the saved state, or nil when there is none.
func (st *Store) Read() (*StateDoc, error) {
	f, err := os.Open(st.path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	doc := &StateDoc{}
	dec := xml.NewDecoder(f)
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(doc); err != nil {
		return nil, fmt.Errorf("%s: %v", st.path, err)
	}
	if doc.Version != 1 {
		return nil, fmt.Errorf("%s: version %d, this build reads 1", st.path, doc.Version)
	}
	static := &StaticDoc{}
	if err := decodeFile(st.staticPath(), static); err != nil {
		return nil, err
	}
	if len(doc.Objects) == 0 {
		return nil, fmt.Errorf("%s: no objects", st.path)
	}
	doc.Objects = append(append(doc.Objects[:1:1], static.Objects...), doc.Objects[1:]...)
	return doc, nil
}

// StaticDoc is state-static.xml: the ServiceContent's managers (see isStatic).
type StaticDoc struct {
	XMLName xml.Name              `xml:"vancouverVcenterStatic"`
	Objects []types.ObjectContent `xml:"object"`
}

func (st *Store) staticPath() string { return filepath.Join(filepath.Dir(st.path), staticFile) }

func decodeFile(path string, v interface{}) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	return nil
}

// Attach connects the store to the running simulator (an in-process client, no HTTP).
func (st *Store) Attach(svc *simulator.Service, fabric *Fabric, guests *Guests) error {
	c, err := vim25.NewClient(context.Background(), svc)
	if err != nil {
		return err
	}
	st.client, st.fabric, st.guests = c, fabric, guests
	return nil
}

// Off makes Commit a no-op (config durable=false: the bench's reference).
func (st *Store) Off() { st.off = true }

// Remove deletes the state (clean stop: the datastores go too).
func (st *Store) Remove() { _ = os.Remove(st.path); _ = os.Remove(st.staticPath()) }

// Commit returns once a save that began after the call has finished: concurrent callers share
// one save (group commit).
func (st *Store) Commit() error {
	if st.off {
		return nil
	}
	ticket := atomic.AddUint64(&st.wanted, 1)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.saved >= ticket {
		return nil
	}
	covers := atomic.LoadUint64(&st.wanted)
	if err := st.save(); err != nil {
		return err
	}
	st.saved = covers
	return nil
}

// save writes the whole state. Call with st.mu held.
func (st *Store) save() error {
	chunks, static, staticChanged, err := st.collect()
	if err != nil {
		return fmt.Errorf("reading the inventory: %v", err)
	}
	if staticChanged {
		var buf bytes.Buffer
		buf.WriteString("<vancouverVcenterStatic>")
		for _, c := range static {
			buf.Write(c)
		}
		buf.WriteString("</vancouverVcenterStatic>\n")
		if err := writeState(st.staticPath(), buf.Bytes(), st.sync); err != nil {
			return err
		}
	}
	ext := StateDoc{Fabric: st.fabric.Snapshot(), Hosts: hostStorageStates(), Vmfs: vmfsVolumes(),
		Guests: st.guests.States()}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "<vancouverVcenter><version>1</version><counter>%d</counter>",
		atomic.LoadInt64(registryCounter()))
	for _, c := range chunks {
		buf.Write(c)
	}
	// The Go main's own state, under StateDoc's element names; re-encoded only when changed.
	if sum := fingerprint(ext); sum != st.extSum || st.extXML == nil {
		var eb bytes.Buffer
		enc := xml.NewEncoder(&eb)
		for _, part := range []struct {
			name  string
			items interface{}
		}{{"lun", ext.Fabric}, {"hostStorage", ext.Hosts}, {"vmfs", ext.Vmfs}, {"guest", ext.Guests}} {
			items := reflect.ValueOf(part.items)
			for i := 0; i < items.Len(); i++ {
				start := xml.StartElement{Name: xml.Name{Local: part.name}}
				if err := enc.EncodeElement(items.Index(i).Interface(), start); err != nil {
					return fmt.Errorf("encoding the state: %v", err)
				}
			}
		}
		st.extSum, st.extXML = sum, eb.Bytes()
	}
	buf.Write(st.extXML)
	buf.WriteString("</vancouverVcenter>\n")
	return writeState(st.path, buf.Bytes(), st.sync)
}

// cached is an object's last encoded <object> element, assembled from its properties' encoded
// <propSet> elements, each kept with the fingerprint it was made from.
type cached struct {
	xml   []byte
	props map[string]cachedProp
}

type cachedProp struct {
	sum uint64
	xml []byte
}

// collect returns every saved object as an encoded <object> element, ServiceInstance first,
// then by reference, reading them through the PropertyCollector as `govc object.save` does:
// the ServiceInstance's content, the ServiceContent's managers, every entity, and the objects
// their configManager/browser properties lead to. An object is re-encoded only when its
// properties' fingerprint changed. Entities are read on every save (a call on one changes
// others: CreateVM adds to the host's, pool's and datastore's lists); the other objects, the
// ServiceContent's managers (the largest: performance counters, task and event descriptions)
// and the hosts' config managers, only when a call was made on them (touched): their own
// methods are what changes them.
func (st *Store) collect() (main, static [][]byte, staticChanged bool, err error) {
	st.touchMu.Lock()
	touched := st.touched
	st.touched = map[types.ManagedObjectReference]bool{}
	st.touchMu.Unlock()

	refs := map[types.ManagedObjectReference]bool{vim25.ServiceInstance: true}
	var want []types.ManagedObjectReference
	for _, r := range mo.References(serviceContent()) {
		refs[r] = true
		if _, ok := st.cache[r]; !ok || touched[r] {
			want = append(want, r)
		}
	}
	for _, e := range simulator.Map.All("") {
		refs[e.Entity().Self] = true
		want = append(want, e.Entity().Self)
	}
	for r := range st.extra { // host config managers and browsers: changed by calls on them
		refs[r] = true
		if _, ok := st.cache[r]; !ok || touched[r] {
			want = append(want, r)
		}
	}
	if _, ok := st.cache[vim25.ServiceInstance]; !ok {
		si, err := st.retrieve([]types.ManagedObjectReference{vim25.ServiceInstance}, []string{"content"})
		if err != nil {
			return nil, nil, false, err
		}
		if err := st.remember(si); err != nil {
			return nil, nil, false, err
		}
	}
	for len(want) > 0 {
		list := want[:0:0]
		for _, r := range want {
			if !transientTypes[r.Type] && simulator.Map.Get(r) != nil {
				list = append(list, r)
			}
		}
		got, err := st.retrieve(list, nil)
		if err != nil {
			return nil, nil, false, err
		}
		want = nil
		for i := range got {
			props := got[i].PropSet[:0]
			for _, p := range got[i].PropSet {
				if transientProps[p.Name] {
					continue
				}
				props = append(props, p)
				if followProps[p.Name] {
					for _, r := range mo.References(p.Val) {
						if !refs[r] && !transientTypes[r.Type] {
							refs[r], st.extra[r] = true, true
							want = append(want, r)
						}
					}
				}
			}
			got[i].PropSet, got[i].MissingSet = props, nil
		}
		if err := st.remember(got); err != nil {
			return nil, nil, false, err
		}
	}
	order := make([]types.ManagedObjectReference, 0, len(st.cache))
	for r := range st.cache {
		if !refs[r] || (r != vim25.ServiceInstance && simulator.Map.Get(r) == nil) {
			delete(st.cache, r) // removed from the inventory
			delete(st.extra, r)
			continue
		}
		order = append(order, r)
	}
	sort.Slice(order, func(i, j int) bool {
		if (order[i] == vim25.ServiceInstance) != (order[j] == vim25.ServiceInstance) {
			return order[i] == vim25.ServiceInstance
		}
		return order[i].Encode() < order[j].Encode()
	})
	for _, r := range order {
		if st.isStatic(r) {
			static = append(static, st.cache[r].xml)
		} else {
			main = append(main, st.cache[r].xml)
		}
	}
	staticChanged, st.staticChanged = st.staticChanged, false
	return main, static, staticChanged, nil
}

// isStatic: a ServiceContent manager (not an entity, not a host's): saved apart, in
// state-static.xml, rewritten only when one of them changed.
func (st *Store) isStatic(r types.ManagedObjectReference) bool {
	if r == vim25.ServiceInstance || st.extra[r] {
		return false
	}
	_, entity := simulator.Map.Get(r).(mo.Entity)
	return !entity
}

var (
	objElement  = xml.StartElement{Name: xml.Name{Local: "obj"}}
	propElement = xml.StartElement{Name: xml.Name{Local: "propSet"}}
)

// remember re-encodes into the cache the properties whose fingerprint changed, and reassembles
// the objects that have any.
func (st *Store) remember(objects []types.ObjectContent) error {
	for _, o := range objects {
		c, ok := st.cache[o.Obj]
		changed := !ok || len(c.props) != len(o.PropSet)
		props := make(map[string]cachedProp, len(o.PropSet))
		for _, p := range o.PropSet {
			sum := fingerprint(p.Val)
			if old, ok := c.props[p.Name]; ok && old.sum == sum {
				props[p.Name] = old
				continue
			}
			var buf bytes.Buffer
			if err := xml.NewEncoder(&buf).EncodeElement(p, propElement); err != nil {
				return fmt.Errorf("%s %s: %v", o.Obj, p.Name, err)
			}
			props[p.Name] = cachedProp{sum: sum, xml: buf.Bytes()}
			changed = true
		}
		if !changed {
			continue
		}
		var buf bytes.Buffer
		buf.WriteString("<object>")
		if err := xml.NewEncoder(&buf).EncodeElement(o.Obj, objElement); err != nil {
			return fmt.Errorf("%s: %v", o.Obj, err)
		}
		for _, p := range o.PropSet {
			buf.Write(props[p.Name].xml)
		}
		buf.WriteString("</object>")
		st.cache[o.Obj] = cached{xml: buf.Bytes(), props: props}
		if st.isStatic(o.Obj) {
			st.staticChanged = true
		}
	}
	return nil
}

// retrieve is RetrieveProperties of refs: all properties, or pathSet.
func (st *Store) retrieve(refs []types.ManagedObjectReference, pathSet []string) ([]types.ObjectContent, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	spec := types.PropertyFilterSpec{}
	kinds := map[string]bool{}
	for _, r := range refs {
		spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: r})
		if kinds[r.Type] {
			continue
		}
		kinds[r.Type] = true
		ps := types.PropertySpec{Type: r.Type, PathSet: pathSet}
		if pathSet == nil {
			ps.All = types.NewBool(true)
		}
		spec.PropSet = append(spec.PropSet, ps)
	}
	res, err := methods.RetrieveProperties(context.Background(), st.client, &types.RetrieveProperties{
		This: serviceContent().PropertyCollector, SpecSet: []types.PropertyFilterSpec{spec}})
	if err != nil {
		return nil, err
	}
	return res.Returnval, nil
}

// writeState replaces path with data: a temp file, then rename. A process killed right after
// loses nothing (the kernel holds the written pages), as lab/store.py's SQLite with
// synchronous=NORMAL; with sync (VANCOUVER_LAB_STORE_SYNC=full) the file and the directory are
// fsynced too, which a power loss needs and which costs ~10 ms a save on this kind of disk.
func writeState(path string, data []byte, sync bool) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if !sync {
		return nil
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// registryCounter is the simulator registry's id counter (the N of vm-N, task-N, ...). It is
// unexported and Model.Load starts it at 0, which would hand out ids of saved objects again;
// there is no setter, hence the unsafe access. Checked at start: a govmomi without the field
// stops the program there, not later.
func registryCounter() *int64 {
	f := reflect.ValueOf(simulator.Map).Elem().FieldByName("counter")
	if !f.IsValid() || f.Kind() != reflect.Int64 {
		panic("simulator.Registry has no int64 counter: this govmomi is not 0.24.x")
	}
	return (*int64)(unsafe.Pointer(f.UnsafeAddr()))
}

// raiseCounter makes the registry's next id at least n+1.
func raiseCounter(n int64) {
	p := registryCounter()
	for {
		cur := atomic.LoadInt64(p)
		if cur >= n || atomic.CompareAndSwapInt64(p, cur, n) {
			return
		}
	}
}

// ---- when to save --------------------------------------------------------------------------

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
