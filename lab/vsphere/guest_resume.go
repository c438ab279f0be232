package main

import (
	"log"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// What becomes of the guests when the vCenter process comes back after a crash (kill -9).
//
// A guest agent runs in a process group of its own, so it outlives the crash, as a VM outlives
// a vCenter restart on a real ESXi host; its guestinfo posts retry until the vCenter answers
// again (guest.py). The saved state names each agent's pid and start time, and a restarted
// vCenter adopts the agent still running for a powered-on VM: PowerOff and Destroy end it as
// before. A powered-on VM whose agent is gone without having published guestinfo.state=done
// is started again, as vSphere HA restarts the VMs of a failed host: its job runs from the
// start. A VM whose job finished (done) is left as it is, and so is one whose agent left its
// final result on disk undelivered: that result is applied instead (guest_result.go).

// States lists the running agents, for the store.
func (g *Guests) States() []GuestState {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]GuestState, 0, len(g.procs))
	for vm, p := range g.procs {
		out = append(out, GuestState{VM: vm, Pid: p.pid, Start: p.start})
	}
	return out
}

// Resume adopts or restarts the guests of the powered-on VMs after a load (see above).
func (g *Guests) Resume(saved []GuestState) {
	byVM := map[string]GuestState{}
	for _, s := range saved {
		byVM[s.VM] = s
	}
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		var mvm *mo.VirtualMachine
		var on, done bool
		simulator.Map.WithLock(vm, func() {
			on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
			done = guestinfo(&vm.VirtualMachine, "guestinfo.state") == "done"
			c := vm.VirtualMachine
			mvm = &c
		})
		if _, ok := userdata(mvm); !on || !ok {
			continue
		}
		if s, ok := byVM[vm.Self.Value]; ok && s.Start != 0 && procStart(s.Pid) == s.Start {
			g.adopt(vm.Self.Value, s)
			log.Printf("guest %s (%s): adopted agent pid %d, still running", vm.Name, vm.Self.Value, s.Pid)
			continue
		}
		// The agent is gone: a result it left undelivered counts (guest_result.go); read after
		// the pid check, so an agent that ends between the two has left it by then. (Posts wait
		// until Resume is over: none changes guestinfo.state meanwhile.)
		if done || g.applyLeftResult(vm, false) {
			continue
		}
		log.Printf("guest %s (%s): agent gone with its job unfinished: starting the VM's guest again", vm.Name, vm.Self.Value)
		simulator.Map.WithLock(vm, func() { g.start(mvm) })
	}
}

// adopt tracks an agent this process did not start: it cannot wait for it, so it polls.
func (g *Guests) adopt(vm string, s GuestState) {
	p := &guestProc{pid: s.Pid, start: s.Start, done: make(chan struct{})}
	g.mu.Lock()
	g.procs[vm] = p
	g.mu.Unlock()
	go func() {
		for procStart(p.pid) == p.start {
			time.Sleep(200 * time.Millisecond)
		}
		close(p.done)
		g.mu.Lock()
		current := g.procs[vm] == p
		if current {
			delete(g.procs, vm)
		}
		g.mu.Unlock()
		if current {
			g.agentExited(vm)
		}
	}()
}

// procStart is a live process's start time in clock ticks since boot (/proc/<pid>/stat field
// 22), 0 when there is no such process or it is a zombie.
func procStart(pid int) uint64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces and parentheses
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 || f[0] == "Z" || f[0] == "X" {
		return 0
	}
	n, _ := strconv.ParseUint(f[19], 10, 64)
	return n
}

// guestinfo is one guestinfo.* value of the VM's extraConfig ("" when unset).
func guestinfo(vm *mo.VirtualMachine, key string) string {
	if vm.Config == nil {
		return ""
	}
	for _, o := range vm.Config.ExtraConfig {
		if v := o.GetOptionValue(); v.Key == key {
			s, _ := v.Value.(string)
			return s
		}
	}
	return ""
}
