package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"unsafe"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// loadModel builds the model from a saved state with the simulator's own loader: each object
// goes to a file of its own, named and encoded as `govc object.save` writes them
// (NNNN-<Type>-<value>.xml, the ServiceInstance first), and simulator.Model.Load reads that
// directory, keeping every managed object id.
func loadModel(m *simulator.Model, doc *StateDoc, scratch string) error {
	_ = os.RemoveAll(scratch)
	if err := os.MkdirAll(scratch, 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	for i, obj := range doc.Objects {
		name := filepath.Join(scratch, fmt.Sprintf("%06d-%s.xml", i, obj.Obj.Encode()))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		err = xml.NewEncoder(f).Encode(obj)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("%s: %v", obj.Obj, err)
		}
	}
	if len(doc.Objects) == 0 || doc.Objects[0].Obj.Type != "ServiceInstance" {
		return fmt.Errorf("the saved state does not start with the ServiceInstance")
	}
	if err := m.Load(scratch); err != nil {
		return fmt.Errorf("loading the saved inventory: %v", err)
	}
	raiseCounter(doc.Counter)
	return nil
}

// restoreExtensions puts back what the Go main holds beside the inventory: fabric LUNs, each
// host's iSCSI adapter, rescan results and target numbers, and the VMFS volumes. Call after
// installStorage.
func restoreExtensions(doc *StateDoc, fabric *Fabric) error {
	fabric.restore(doc.Fabric)
	for _, h := range doc.Hosts {
		s := storageFor(h.Host)
		if s == nil {
			return fmt.Errorf("saved iSCSI state of %s, which the inventory has not", h.Host)
		}
		s.restore(h)
	}
	vmfsMu.Lock()
	defer vmfsMu.Unlock()
	for _, v := range doc.Vmfs {
		if simulator.Map.Get(v.Ref) == nil {
			return fmt.Errorf("saved VMFS volume %s (%s), whose datastore the inventory has not", v.Name, v.Ref)
		}
		vmfsByNAA[v.NAA] = v
	}
	return nil
}

// restore sets a fresh wrapper's own state from the saved one (the published properties came
// with the inventory).
func (s *HostStorageSystem) restore(h HostStorageState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.base, s.iscsi, s.visible = h.Base, h.Iscsi, h.Visible
	for _, t := range h.Targets {
		s.targets[t.Key] = t.Number
	}
}

// hostStorageStates is every host's storage wrapper state, for the store.
func hostStorageStates() []HostStorageState {
	hostStorageMu.Lock()
	list := make([]*HostStorageSystem, 0, len(hostStorage))
	for _, s := range hostStorage {
		list = append(list, s)
	}
	hostStorageMu.Unlock()
	out := make([]HostStorageState, 0, len(list))
	for _, s := range list {
		s.mu.Lock()
		h := HostStorageState{Host: s.Host.Self, Base: s.base,
			Visible: append([]VisibleLUN(nil), s.visible...)}
		if s.iscsi != nil {
			c := *s.iscsi
			h.Iscsi = &c
		}
		for k, n := range s.targets {
			h.Targets = append(h.Targets, TargetNumber{Key: k, Number: n})
		}
		s.mu.Unlock()
		out = append(out, h)
	}
	return out
}

// vmfsVolumes is every VMFS volume, for the store.
func vmfsVolumes() []VmfsVolume {
	vmfsMu.Lock()
	defer vmfsMu.Unlock()
	out := make([]VmfsVolume, 0, len(vmfsByNAA))
	for _, v := range vmfsByNAA {
		out = append(out, v)
	}
	return out
}

// restore replaces the fabric's LUNs.
func (f *Fabric) restore(luns []LUN) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range luns {
		f.luns[l.NAA] = l
	}
}

// hostOf is the live HostSystem of a host reference (nil when unknown).
func hostOf(ref types.ManagedObjectReference) *simulator.HostSystem {
	h, _ := simulator.Map.Get(ref).(*simulator.HostSystem)
	return h
}

// restoreVMLogs points each loaded VM at its vmware.log again. The simulator sets that path
// (an unexported field) only when it creates a VM, and Model.Load does not: without it every
// later power or reconfigure logs "open : no such file or directory" instead of writing it.
func restoreVMLogs() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		if vm.Config == nil {
			continue
		}
		path := localPath(vm.Config.Files.LogDirectory)
		f := reflect.ValueOf(vm).Elem().FieldByName("log")
		if path == "" || !f.IsValid() || f.Kind() != reflect.String {
			continue
		}
		*(*string)(unsafe.Pointer(f.UnsafeAddr())) = filepath.Join(path, "vmware.log")
	}
}

// localPath maps "[datastore] dir/" to the directory on this machine ("" when unknown).
func localPath(dsPath string) string {
	if !strings.HasPrefix(dsPath, "[") {
		return ""
	}
	end := strings.Index(dsPath, "]")
	if end < 0 {
		return ""
	}
	name, rel := dsPath[1:end], strings.TrimSpace(dsPath[end+1:])
	for _, e := range simulator.Map.All("Datastore") {
		if ds := e.(*simulator.Datastore); ds.Name == name {
			return filepath.Join(ds.Info.GetDatastoreInfo().Url, rel)
		}
	}
	return ""
}
