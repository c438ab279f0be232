package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// Store keeps the vCenter's state in data_dir/state.xml (and state-static.xml: the
// ServiceContent's managers, which rarely change), rewritten after every request that may
// change it (durable_http.go) before the caller gets its answer (temp file and rename; fsynced
// too with VANCOUVER_LAB_STORE_SYNC=full): a kill -9 loses nothing acknowledged (issue 13,
// Build 1). Another client may read a change before it is saved; only its caller waits.
//
// The inventory is saved in the simulator's own format: one types.ObjectContent with every
// property per managed object, as `govc object.save` writes them and simulator.Model.Load
// reads them (restore.go hands them to Model.Load), so managed object ids (vm-NN, ...) stay
// the same across a restart. What the Go main adds and no property shows travels beside it:
// the fabric's LUNs, each host's iSCSI adapter with its CHAP secrets (the API never returns
// them), the LUNs its last rescan found, the VMFS volumes, the registry's id counter (a new
// object never reuses an id a client may still hold) and the guest agents' pids.
//
// The state holds CHAP secrets: mode 0600 in the component's private data dir, as config.json.
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
	if st.client == nil { // a request before Attach (guestinfo posts wait for SetReady)
		return fmt.Errorf("the state store is not attached yet")
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
