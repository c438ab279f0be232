package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// A guest's final result must not be lost to a vCenter kill -9 (issue 13: a guest running
// across the kill never reported done once under CI load). Its POST alone can be lost: it is
// sent while the vCenter is down and the agent's retries run out, or it lands on a process
// that is still loading its state, or the agent dies before it is answered; and a VM whose
// agent is gone unfinished is started again "as HA would", which runs the whole job (its fio
// and writes) a second time. So the agent also leaves its result on disk (GuestDoc.ResultFile,
// written before the post, removed once the post is answered), and the vCenter applies a
// result left there, as the agent's last info-set, when the agent exits (its own child or an
// adopted one) and when it resumes after a restart, instead of starting the guest again.
// Until the restarted process has resumed its guests, guestinfo posts get 503 and are retried
// (guest.py), so Resume decides on a state no post changes under it.

const resultDirName = "guestinfo" // under data_dir: the agents' undelivered results (0700)

// SetResultDir names the directory the agents leave their results in (created 0700).
func (g *Guests) SetResultDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	g.mu.Lock()
	g.resultDir = dir
	g.mu.Unlock()
	return nil
}

// SetCommit is how an applied result is saved (the store's Commit) before it counts as done.
func (g *Guests) SetCommit(commit func() error) { g.commit = commit }

// resultPath is the VM's result file ("" without a result directory).
func (g *Guests) resultPath(vm string) string {
	g.mu.Lock()
	dir := g.resultDir
	g.mu.Unlock()
	if dir == "" || strings.ContainsAny(vm, "/\\") || vm == "" || vm[0] == '.' {
		return ""
	}
	return filepath.Join(dir, vm+".json")
}

// dropResult forgets a VM's left result (a new power-on: a new run of its job).
func (g *Guests) dropResult(vm string) {
	if p := g.resultPath(vm); p != "" {
		_ = os.Remove(p)
	}
}

// applyLeftResult puts the result the VM's agent left on disk into its extraConfig, as the
// agent's post would have, when the VM is powered on; saves it (save: the store's Commit);
// removes the file once applied and saved. Returns whether a result was applied. A file that
// is not a JSON object of guestinfo.* strings is removed with one log line.
func (g *Guests) applyLeftResult(vm *simulator.VirtualMachine, save bool) bool {
	path := g.resultPath(vm.Self.Value)
	if path == "" {
		return false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var values map[string]string
	if err := json.Unmarshal(data, &values); err != nil {
		log.Printf("guest %s: left result %s is not a JSON object of strings (%v): ignored", vm.Self.Value, path, err)
		_ = os.Remove(path)
		return false
	}
	for k := range values {
		if !strings.HasPrefix(k, "guestinfo.") || len(k) == len("guestinfo.") {
			delete(values, k)
		}
	}
	applied := false
	simulator.Map.WithLock(vm, func() {
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			return
		}
		simulator.Map.Update(vm, []types.PropertyChange{{Name: "config.extraConfig",
			Val: mergeExtraConfig(vm.Config.ExtraConfig, values)}})
		applied = true
	})
	if !applied {
		_ = os.Remove(path) // the VM is off: the run it belonged to is over
		return false
	}
	if save && g.commit != nil {
		if err := g.commit(); err != nil {
			log.Printf("guest %s: left result applied but not saved (kept on disk): %v", vm.Self.Value, err)
			return true
		}
	}
	_ = os.Remove(path)
	log.Printf("guest %s (%s): applied the result its agent left on disk (%d values; its post was not answered)",
		vm.Name, vm.Self.Value, len(values))
	return true
}

// agentExited: the VM's current agent is gone; a result it could not deliver is applied.
func (g *Guests) agentExited(vmID string) {
	if vm, ok := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: vmID}).(*simulator.VirtualMachine); ok {
		g.applyLeftResult(vm, true)
	}
}

// SetReady opens guestinfo posts (after Resume and the first save).
func (g *Guests) SetReady() { atomic.StoreInt32(&g.ready, 1) }

// WhenReady answers guestinfo posts 503 (Retry-After: 1) until SetReady; reads pass.
func (g *Guests) WhenReady(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && atomic.LoadInt32(&g.ready) == 0 {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "the vCenter is resuming its guests: retry")
			return
		}
		next.ServeHTTP(w, r)
	})
}
