// Command vancouver-vcsim is the lab's vCenter: govmomi's simulator (Debian's
// golang-github-vmware-govmomi-dev 0.24.2) plus what a Datera storage demo needs and vcsim
// lacks: the iSCSI software adapter, a fabric of Datera LUNs, rescans, VMFS datastores on those
// LUNs, guests that run a job, the Fetch fix for pyvmomi 9 and a task janitor.
//
// Facts and design: shared/reference/vsphere.md (§1 the Go main, §2.8 Fetch, §3.2 storage).
//
// Usage: vancouver-vcsim -config config.json
//
// config.json (written by lab/components.py, mode 0600 since it holds the password):
//
//	{"address": "127.0.5.1", "port": 8989, "user": "...", "password": "...",
//	 "tls_cert": "vcenter.pem", "tls_key": "vcenter.key", "data_dir": "...",
//	 "url_file": "...", "task_gc_s": 10, "python": "...", "workdir": "..."}
//
// The process writes url_file (the SDK URL, without credentials) once it serves, and stops
// cleanly on SIGINT or SIGTERM: guests are killed, the server closes and the simulator's
// datastore directories and saved state are removed. Its state is saved in data_dir before
// each change is answered (durable.go), so after a kill -9 the next process on the same
// data_dir loads it instead of building a new inventory (restore.go, guest_resume.go).
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Config is the JSON document given with -config.
type Config struct {
	Address  string  `json:"address"`
	Port     int     `json:"port"`
	User     string  `json:"user"`
	Password string  `json:"password"`
	TLSCert  string  `json:"tls_cert"`
	TLSKey   string  `json:"tls_key"`
	CAFile   string  `json:"ca_file"` // the CA of tls_cert, handed to guest agents
	DataDir  string  `json:"data_dir"`
	URLFile  string  `json:"url_file"`
	TaskGCs  float64 `json:"task_gc_s"`
	Python   string  `json:"python"`  // the guest agent's interpreter (env VANCOUVER_PYTHON wins)
	Workdir  string  `json:"workdir"` // the guest agent's working directory (the repo root)
	// Durable (default true) saves the state before each change is answered (durable.go);
	// false only for bench/bench_vsphere_durable.py's reference: what the saves cost.
	Durable *bool `json:"durable"`
}

func loadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c := &Config{TaskGCs: 10}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	ip := net.ParseIP(c.Address)
	switch {
	case ip == nil || !ip.IsLoopback():
		return nil, fmt.Errorf("%s: address %q must be a loopback IP (the lab binds loopback only)", path, c.Address)
	case c.Port < 0 || c.Port > 65535: // 0: any free port (tests)
		return nil, fmt.Errorf("%s: port %d is not a TCP port", path, c.Port)
	case c.User == "" || c.Password == "":
		return nil, fmt.Errorf("%s: user and password are required", path)
	case c.TLSCert == "" || c.TLSKey == "":
		return nil, fmt.Errorf("%s: tls_cert and tls_key are required", path)
	case c.DataDir == "":
		return nil, fmt.Errorf("%s: data_dir is required", path)
	}
	return c, nil
}

// newModel is a vCenter with one datacenter, one cluster holding one ESXi host, the model's
// local datastore and no VMs (reference §7.1).
func newModel() *simulator.Model {
	m := simulator.VPX()
	m.Host = 0
	m.ClusterHost = 1
	m.Machine = 0
	m.Portgroup = 0
	m.Autostart = false
	return m
}

// quietLog drops vcsim's per-update PropertyCollector chatter (one line per object change
// while any WaitForUpdates is active: reference §1.1), which would grow the log without bound
// in an endless demo; everything else (faults, panics, "does not implement") is kept.
type quietLog struct{ out *os.File }

var chatter = regexp.MustCompile(`: applying \d+ updates to \d+ filters$| has \d+ changes$|: WaitForUpdates (MaxWaitSeconds exceeded|canceled)$`)

func (q quietLog) Write(p []byte) (int, error) {
	if chatter.Match(bytes.TrimRight(p, "\n")) {
		return len(p), nil
	}
	return q.out.Write(p)
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetOutput(quietLog{os.Stderr})
	configPath := flag.String("config", "", "JSON config (see the package comment)")
	flag.Parse()
	if *configPath == "" {
		fmt.Fprintln(os.Stderr, "vancouver-vcsim: -config is required")
		os.Exit(2)
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vancouver-vcsim:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "vancouver-vcsim:", err)
		os.Exit(1)
	}
}

func run(cfg *Config) error {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return fmt.Errorf("TLS certificate: %v", err)
	}
	// The model's datastores are temp dirs: keep them under the component's data dir, so even
	// a kill -9 leaves nothing outside the lab run.
	tmp := filepath.Join(cfg.DataDir, "tmp")
	vmfsDir := filepath.Join(cfg.DataDir, "vmfs")
	for _, d := range []string{tmp, vmfsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	// A clean stop (SIGINT/SIGTERM) removes the datastores and the saved state; anything else
	// (a failed start) leaves them for the next start to load.
	clean := false
	defer func() {
		if clean {
			_ = os.RemoveAll(vmfsDir)
			_ = os.RemoveAll(tmp)
		}
	}() // runs last
	os.Setenv("TMPDIR", tmp)

	// A state saved by an earlier process of this lab (it was killed): load it instead of
	// building the default model (durable.go, restore.go).
	store := NewStore(cfg.DataDir)
	saved, err := store.Read()
	if err != nil {
		return fmt.Errorf("saved state: %v", err)
	}
	started := time.Now()
	model := newModel()
	if saved != nil {
		err = loadModel(model, saved, filepath.Join(cfg.DataDir, "load"))
	} else {
		err = model.Create()
	}
	if err != nil {
		return fmt.Errorf("model: %v", err)
	}
	defer func() {
		if clean {
			store.Remove() // after the server and guests stopped: no save follows
			model.Remove()
		}
	}()

	fabric := NewFabric()
	installStorage(fabric, vmfsDir)
	if saved != nil {
		if err := restoreExtensions(saved, fabric); err != nil {
			return fmt.Errorf("saved state: %v", err)
		}
		restoreVMLogs()
	}
	installPropertyCollector()
	janitor := NewTaskJanitor(time.Duration(cfg.TaskGCs * float64(time.Second)))
	defer janitor.Stop()
	guests := NewGuests(guestCommand(cfg), cfg.Workdir, GuestAuth{cfg.User, cfg.Password}, cfg.CAFile)
	defer guests.StopAll()
	if err := guests.SetResultDir(filepath.Join(cfg.DataDir, resultDirName)); err != nil {
		return err
	}
	defer func() {
		if clean {
			_ = os.RemoveAll(filepath.Join(cfg.DataDir, resultDirName))
		}
	}()

	auth := basicAuth{user: cfg.User, password: cfg.Password}
	model.Service.Listen = &url.URL{
		Host: net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)),
		User: url.UserPassword(cfg.User, cfg.Password),
	}
	model.Service.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	model.Service.HandleFunc(fabricPath, auth.wrap(store.Durably(http.HandlerFunc(fabric.ServeHTTP), WritesMutate).ServeHTTP))
	model.Service.HandleFunc(guestinfoPath, auth.wrap(guests.WhenReady(store.Durably(http.HandlerFunc(guests.ServeGuestinfo), WritesMutate)).ServeHTTP))

	server := model.Service.NewServer()
	defer server.Close()
	guests.SetBaseURL("https://" + server.URL.Host)
	if err := store.Attach(model.Service, fabric, guests); err != nil {
		return fmt.Errorf("state store: %v", err)
	}
	guests.SetCommit(store.Commit)
	if saved != nil {
		guests.Resume(saved.Guests)
	}
	if cfg.Durable == nil || *cfg.Durable {
		// Saved once before the first client: from here on every change is (the loaded state
		// is written back in this build's form).
		if err := store.Commit(); err != nil {
			return fmt.Errorf("saving the state: %v", err)
		}
		// Every SOAP call that may change something answers only once the state is saved. No
		// client knows the server before the URL file below exists, so swapping the started
		// server's handler here races with no request.
		server.Config.Handler = store.Durably(server.Config.Handler, SDKMutates)
	} else {
		store.Off()
	}
	guests.SetReady() // guestinfo posts wait (503) until the guests are resumed and saved
	how := "a new inventory"
	if saved != nil {
		how = fmt.Sprintf("the saved inventory (%d objects)", len(saved.Objects))
	}
	log.Printf("vCenter simulator ready with %s in %.3f s", how, time.Since(started).Seconds())

	sdk := *server.URL
	sdk.User = nil
	if cfg.URLFile != "" {
		if err := writeAtomic(cfg.URLFile, sdk.String()+"\n"); err != nil {
			return err
		}
		defer os.Remove(cfg.URLFile)
	}
	log.Printf("vCenter simulator serving %s (%d host(s))", sdk.String(), len(hostStorage))

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	sig := <-stop
	log.Printf("%s: stopping", sig)
	clean = true
	signal.Stop(stop)
	// Defers run in reverse: url file, server, guests, janitor, model dirs, VMFS dirs.
	return nil
}

// serviceContent is the model's ServiceContent (the registry's own accessor is unexported).
func serviceContent() types.ServiceContent {
	return simulator.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance).Content
}

func writeAtomic(path, text string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
