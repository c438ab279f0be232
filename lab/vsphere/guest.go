package main

import (
	"bytes"
	"encoding/json"
	"log"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Guests runs a VM's job (DESIGN §3.5): when a VM powers on and its config.extraConfig has
// guestinfo.userdata, the guest agent starts in its own process group with a JSON document on
// stdin (GuestDoc). The agent publishes its results by POSTing {"guestinfo.<key>": "<value>"}
// to guestinfo_url, which lands in the VM's config.extraConfig as VMware Tools would put it.
// Power-off, suspend and destroy end the agent's process group (SIGTERM, SIGKILL after 5 s).
//
// It watches VMs through the registry's handler hook, so no VM type is wrapped.
type Guests struct {
	command []string
	workdir string
	auth    GuestAuth
	caFile  string

	mu        sync.Mutex
	baseURL   string
	procs     map[string]*guestProc // by VM moref value
	resultDir string                // agents' undelivered results (guest_result.go)
	commit    func() error          // saves an applied result (the store's Commit)
	ready     int32                 // guestinfo posts accepted (atomic; guest_result.go)
}

type guestProc struct {
	pid   int
	start uint64 // procStart(pid) when seen first: tells it from a later process with its pid
	done  chan struct{}
}

// GuestDoc is what the agent reads on stdin.
type GuestDoc struct {
	VM           string      `json:"vm"`
	Name         string      `json:"name"`
	Userdata     string      `json:"userdata"`
	Host         GuestHost   `json:"host"`
	Disks        []GuestDisk `json:"disks"`
	GuestinfoURL string      `json:"guestinfo_url"`
	Auth         GuestAuth   `json:"auth"`              // for guestinfo_url (HTTP basic)
	CAFile       string      `json:"ca_file,omitempty"` // verifies guestinfo_url's certificate
	// Where the agent leaves its final guestinfo values until its post is answered
	// (guest_result.go); the vCenter applies them if the post never is.
	ResultFile string `json:"result_file,omitempty"`
}

// GuestAuth is the vCenter login the agent publishes guestinfo with.
type GuestAuth struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// GuestHost is the ESXi host's initiator: its IQN and the CHAP it logs in with (target level
// when the VM's first VMFS LUN was reached through a target with its own CHAP, else adapter).
type GuestHost struct {
	IQN        string `json:"iqn"`
	ChapUser   string `json:"chap_user"`
	ChapSecret string `json:"chap_secret"`
}

// GuestDisk is one virtual disk of the VM and, when its datastore is VMFS on a fabric LUN,
// that LUN. capacity_bytes is the virtual disk's size; lun_capacity_bytes the LUN's.
type GuestDisk struct {
	Label            string   `json:"label"`
	Datastore        string   `json:"datastore"`
	NAA              *string  `json:"naa"`
	TargetIQN        string   `json:"target_iqn"`
	Portals          []string `json:"portals"`
	LunID            *int32   `json:"lun_id"`
	CapacityBytes    int64    `json:"capacity_bytes"`
	LunCapacityBytes int64    `json:"lun_capacity_bytes,omitempty"`
	VmdkPath         string   `json:"vmdk_path"` // "[datastore] vm/vm.vmdk"
	FlatPath         string   `json:"flat_path"` // the -flat.vmdk file on this machine
}

const guestinfoPath = "/guestinfo"

var guestsRef = types.ManagedObjectReference{Type: "VancouverGuests", Value: "guests"}

// guestCommand is env VANCOUVER_VSPHERE_GUEST (split on spaces), else
// <python> -m lab.vsphere.guest with python = env VANCOUVER_PYTHON, the config's, or python3.
func guestCommand(cfg *Config) []string {
	if c := strings.Fields(os.Getenv("VANCOUVER_VSPHERE_GUEST")); len(c) > 0 {
		return c
	}
	py := os.Getenv("VANCOUVER_PYTHON")
	if py == "" {
		py = cfg.Python
	}
	if py == "" {
		py = "python3"
	}
	return []string{py, "-m", "lab.vsphere.guest"}
}

// NewGuests registers the launcher with the registry.
func NewGuests(command []string, workdir string, auth GuestAuth, caFile string) *Guests {
	g := &Guests{command: command, workdir: workdir, auth: auth, caFile: caFile,
		procs: map[string]*guestProc{}}
	simulator.Map.AddHandler(g)
	return g
}

func (g *Guests) SetBaseURL(u string) {
	g.mu.Lock()
	g.baseURL = u
	g.mu.Unlock()
}

func (g *Guests) Reference() types.ManagedObjectReference { return guestsRef }

func (g *Guests) PutObject(mo.Reference) {}

// UpdateObject sees every property change; power state changes start and stop agents. It runs
// inside the power task, under the VM's lock, so reading the VM here is safe.
func (g *Guests) UpdateObject(obj mo.Reference, changes []types.PropertyChange) {
	vm, ok := obj.(*mo.VirtualMachine)
	if !ok {
		return
	}
	for _, c := range changes {
		if c.Name != "runtime.powerState" {
			continue
		}
		if c.Val == types.VirtualMachinePowerStatePoweredOn {
			g.start(vm)
		} else {
			g.stop(vm.Self.Value)
		}
	}
}

func (g *Guests) RemoveObject(ref types.ManagedObjectReference) {
	if ref.Type == "VirtualMachine" {
		g.stop(ref.Value)
		g.dropResult(ref.Value)
	}
}

func userdata(vm *mo.VirtualMachine) (string, bool) {
	if vm.Config == nil {
		return "", false
	}
	for _, o := range vm.Config.ExtraConfig {
		if v := o.GetOptionValue(); v.Key == "guestinfo.userdata" {
			s, ok := v.Value.(string)
			return s, ok
		}
	}
	return "", false
}

func (g *Guests) start(vm *mo.VirtualMachine) {
	data, ok := userdata(vm)
	if !ok {
		return
	}
	g.stop(vm.Self.Value)
	g.dropResult(vm.Self.Value) // a new run: an earlier run's undelivered result is stale
	doc := g.document(vm, data)
	payload, _ := json.Marshal(doc)
	cmd := exec.Command(g.command[0], g.command[1:]...)
	cmd.Dir = g.workdir
	cmd.Stdin = bytes.NewReader(payload)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Printf("guest %s (%s): cannot start %s: %v", vm.Name, vm.Self.Value, g.command[0], err)
		return
	}
	p := &guestProc{pid: cmd.Process.Pid, start: procStart(cmd.Process.Pid), done: make(chan struct{})}
	g.mu.Lock()
	g.procs[vm.Self.Value] = p
	g.mu.Unlock()
	log.Printf("guest %s (%s): agent pid %d", vm.Name, vm.Self.Value, p.pid)
	go func() {
		_ = cmd.Wait()
		close(p.done)
		g.mu.Lock()
		current := g.procs[vm.Self.Value] == p
		if current {
			delete(g.procs, vm.Self.Value)
		}
		g.mu.Unlock()
		if current { // not stopped by a power-off or destroy: its job ended
			g.agentExited(vm.Self.Value)
		}
	}()
}

// document describes the VM, its host's initiator and its disks for the agent.
func (g *Guests) document(vm *mo.VirtualMachine, data string) GuestDoc {
	g.mu.Lock()
	base := g.baseURL
	g.mu.Unlock()
	doc := GuestDoc{VM: vm.Self.Value, Name: vm.Name, Userdata: data, Disks: []GuestDisk{},
		GuestinfoURL: base + guestinfoPath + "?vm=" + url.QueryEscape(vm.Self.Value),
		Auth:         g.auth, CAFile: g.caFile, ResultFile: g.resultPath(vm.Self.Value)}
	var storage *HostStorageSystem
	if vm.Runtime.Host != nil {
		storage = storageFor(*vm.Runtime.Host)
	}
	var visible []VisibleLUN
	if storage != nil {
		visible = storage.Visible()
		if hba := storage.Adapter(); hba != nil {
			doc.Host = GuestHost{IQN: hba.IScsiName}
			setChap(&doc.Host, hba.AuthenticationProperties)
		}
	}
	chapFromTarget := false
	// Disks in SCSI order (controller, then unit): the guest's sda, sdb, ...
	devices := append([]types.BaseVirtualDevice(nil), vm.Config.Hardware.Device...)
	sort.SliceStable(devices, func(i, j int) bool {
		a, b := devices[i].GetVirtualDevice(), devices[j].GetVirtualDevice()
		if a.ControllerKey != b.ControllerKey {
			return a.ControllerKey < b.ControllerKey
		}
		return unit(a) < unit(b)
	})
	for _, dev := range devices {
		disk, ok := dev.(*types.VirtualDisk)
		if !ok {
			continue
		}
		backing, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		d := GuestDisk{Label: disk.DeviceInfo.GetDescription().Label, Portals: []string{},
			CapacityBytes: disk.CapacityInBytes, VmdkPath: backing.FileName}
		if disk.CapacityInBytes == 0 {
			d.CapacityBytes = disk.CapacityInKB * 1024
		}
		if backing.Datastore != nil {
			if ds, ok := simulator.Map.Get(*backing.Datastore).(*simulator.Datastore); ok {
				d.Datastore = ds.Name
				d.FlatPath = flatPath(ds.Info.GetDatastoreInfo().Url, backing.FileName)
			}
			if vol, ok := vmfsByRef(*backing.Datastore); ok {
				for _, v := range visible {
					if v.NAA != vol.NAA {
						continue
					}
					naa, lun := v.NAA, v.LunID
					d.NAA, d.LunID, d.TargetIQN = &naa, &lun, v.TargetIQN
					d.LunCapacityBytes = v.CapacityBytes
					for _, p := range v.Paths {
						d.Portals = append(d.Portals, p.String())
					}
					if !chapFromTarget {
						setChap(&doc.Host, v.Auth)
						chapFromTarget = true
					}
				}
			}
		}
		doc.Disks = append(doc.Disks, d)
	}
	return doc
}

func unit(d *types.VirtualDevice) int32 {
	if d.UnitNumber == nil {
		return -1
	}
	return *d.UnitNumber
}

func setChap(h *GuestHost, a types.HostInternetScsiHbaAuthenticationProperties) {
	h.ChapUser, h.ChapSecret = "", ""
	if a.ChapAuthEnabled {
		h.ChapUser, h.ChapSecret = a.ChapName, a.ChapSecret
	}
}

// flatPath maps "[ds] dir/disk.vmdk" to the local dir/disk-flat.vmdk under the datastore.
func flatPath(dsDir, fileName string) string {
	rel := fileName
	if i := strings.Index(fileName, "] "); i >= 0 {
		rel = fileName[i+2:]
	}
	rel = strings.TrimSuffix(rel, ".vmdk") + "-flat.vmdk"
	return path.Join(dsDir, rel)
}

func (g *Guests) stop(vm string) {
	g.mu.Lock()
	p := g.procs[vm]
	delete(g.procs, vm)
	g.mu.Unlock()
	if p == nil {
		return
	}
	_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	go func() {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	}()
}

// StopAll ends every agent and waits for them (at most ~5 s each, then SIGKILL).
func (g *Guests) StopAll() {
	simulator.Map.RemoveHandler(g)
	g.mu.Lock()
	procs := g.procs
	g.procs = map[string]*guestProc{}
	g.mu.Unlock()
	for _, p := range procs {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	}
}

// ServeGuestinfo: POST publishes guestinfo.* values into the VM's extraConfig (only while it is
// powered on, as Tools would); GET returns the VM's guestinfo.* values.
func (g *Guests) ServeGuestinfo(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("vm")
	vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: id}).(*simulator.VirtualMachine)
	if !ok {
		writeError(w, http.StatusNotFound, "no VM "+id)
		return
	}
	switch r.Method {
	case http.MethodGet:
		out := map[string]string{}
		simulator.Map.WithLock(vm, func() {
			for _, o := range vm.Config.ExtraConfig {
				v := o.GetOptionValue()
				if s, ok := v.Value.(string); ok && strings.HasPrefix(v.Key, "guestinfo.") {
					out[v.Key] = s
				}
			}
		})
		writeJSON(w, http.StatusOK, out)
	case http.MethodPost:
		var values map[string]string
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&values); err != nil {
			writeError(w, http.StatusBadRequest, "body: not a JSON object of strings: "+err.Error())
			return
		}
		for k := range values {
			if !strings.HasPrefix(k, "guestinfo.") || len(k) == len("guestinfo.") {
				writeError(w, http.StatusBadRequest, "key "+k+": only guestinfo.<name> keys can be published")
				return
			}
		}
		status, msg := http.StatusOK, ""
		simulator.Map.WithLock(vm, func() {
			if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
				status, msg = http.StatusConflict, "VM "+id+" is "+string(vm.Runtime.PowerState)
				return
			}
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig",
				Val: mergeExtraConfig(vm.Config.ExtraConfig, values)}})
		})
		if status != http.StatusOK {
			writeError(w, status, msg)
			return
		}
		writeJSON(w, http.StatusOK, map[string]int{"updated": len(values)})
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, http.StatusMethodNotAllowed, r.Method+" is not supported on "+guestinfoPath)
	}
}

func mergeExtraConfig(have []types.BaseOptionValue, set map[string]string) []types.BaseOptionValue {
	out := make([]types.BaseOptionValue, 0, len(have)+len(set))
	done := map[string]bool{}
	for _, o := range have {
		v := o.GetOptionValue()
		if nv, ok := set[v.Key]; ok {
			out = append(out, &types.OptionValue{Key: v.Key, Value: nv})
			done[v.Key] = true
		} else {
			out = append(out, o)
		}
	}
	for k, v := range set {
		if !done[k] {
			out = append(out, &types.OptionValue{Key: k, Value: v})
		}
	}
	return out
}
