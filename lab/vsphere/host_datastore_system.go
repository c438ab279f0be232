package main

import (
	"crypto/sha1"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// HostDatastoreSystem adds VMFS on the host's iSCSI LUNs (reference §3.2.3):
// QueryAvailableDisksForVmfs, QueryVmfsDatastoreCreateOptions, CreateVmfsDatastore and
// RemoveDatastore, named and faulted as in the vSphere API reference (HostDatastoreSystem).
//
// A VMFS datastore is a directory per LUN under vmfsDir wired into the inventory by the stock
// CreateLocalDatastore, then dressed as VMFS (VmfsDatastoreInfo, summary.type VMFS, the LUN's
// capacity), so VM files, the datastore browser and /folder all work on it unchanged.
type HostDatastoreSystem struct {
	simulator.HostDatastoreSystem

	vmfsDir string
}

// VmfsVolume is a VMFS datastore the Go main created on a LUN.
type VmfsVolume struct {
	Ref  types.ManagedObjectReference
	Name string
	NAA  string
	Dir  string
}

var (
	vmfsMu    sync.Mutex
	vmfsByNAA = map[string]VmfsVolume{}
)

// vmfsOn names the VMFS datastore on a LUN ("" when none).
func vmfsOn(naa string) string {
	vmfsMu.Lock()
	defer vmfsMu.Unlock()
	return vmfsByNAA[naa].Name
}

// vmfsByRef finds the VMFS volume behind a datastore.
func vmfsByRef(ref types.ManagedObjectReference) (VmfsVolume, bool) {
	vmfsMu.Lock()
	defer vmfsMu.Unlock()
	for _, v := range vmfsByNAA {
		if v.Ref == ref {
			return v, true
		}
	}
	return VmfsVolume{}, false
}

// vmfsGUID is the GPT partition type of a VMFS partition.
const vmfsGUID = "AA31E02A400F11DB9590000C2911D1B8"

// QueryAvailableDisksForVmfs lists the visible LUNs that hold no VMFS datastore yet.
func (dss *HostDatastoreSystem) QueryAvailableDisksForVmfs(ctx *simulator.Context, req *types.QueryAvailableDisksForVmfs) soap.HasFault {
	var disks []types.HostScsiDisk
	if s := storageFor(dss.Host.Self); s != nil {
		for _, v := range s.Visible() {
			if vmfsOn(v.NAA) == "" {
				disks = append(disks, v.Disk)
			}
		}
	}
	return &methods.QueryAvailableDisksForVmfsBody{
		Res: &types.QueryAvailableDisksForVmfsResponse{Returnval: disks},
	}
}

// visibleDisk finds a LUN this host sees by device path or canonical name.
func (dss *HostDatastoreSystem) visibleDisk(match func(types.HostScsiDisk) bool) (VisibleLUN, bool) {
	if s := storageFor(dss.Host.Self); s != nil {
		for _, v := range s.Visible() {
			if match(v.Disk) {
				return v, true
			}
		}
	}
	return VisibleLUN{}, false
}

// QueryVmfsDatastoreCreateOptions offers the one layout ESXi offers for an empty disk: a GPT
// label with a single VMFS partition over the whole disk (after the 1 MiB alignment).
func (dss *HostDatastoreSystem) QueryVmfsDatastoreCreateOptions(ctx *simulator.Context, req *types.QueryVmfsDatastoreCreateOptions) soap.HasFault {
	body := &methods.QueryVmfsDatastoreCreateOptionsBody{}
	if req.VmfsMajorVersion != 0 && req.VmfsMajorVersion != 5 && req.VmfsMajorVersion != 6 {
		body.Fault_ = simulator.Fault(fmt.Sprintf("VMFS major version %d is not supported", req.VmfsMajorVersion),
			&types.InvalidArgument{InvalidProperty: "vmfsMajorVersion"})
		return body
	}
	v, ok := dss.visibleDisk(func(d types.HostScsiDisk) bool { return d.DevicePath == req.DevicePath })
	if !ok {
		body.Fault_ = notFound(fmt.Sprintf("no disk %s on host %s", req.DevicePath, dss.Host.Name))
		return body
	}
	if ds := vmfsOn(v.NAA); ds != "" {
		body.Fault_ = simulator.Fault(fmt.Sprintf("%s already holds VMFS datastore %s", v.NAA, ds), &types.HostConfigFault{})
		return body
	}
	major := req.VmfsMajorVersion
	if major == 0 {
		major = 6
	}
	blocks := v.Disk.Capacity.Block
	lba := func(b int64) types.HostDiskDimensionsLba { return types.HostDiskDimensionsLba{BlockSize: 512, Block: b} }
	part := types.HostDiskPartitionBlockRange{Partition: 1, Type: "vmfs", Start: lba(2048), End: lba(blocks - 1)}
	info := &types.VmfsDatastoreAllExtentOption{VmfsDatastoreSingleExtentOption: types.VmfsDatastoreSingleExtentOption{
		VmfsDatastoreBaseOption: types.VmfsDatastoreBaseOption{
			Layout:                types.HostDiskPartitionLayout{Total: &types.HostDiskDimensionsLba{BlockSize: 512, Block: blocks}, Partition: []types.HostDiskPartitionBlockRange{part}},
			PartitionFormatChange: types.NewBool(false),
		},
		VmfsExtent: part,
	}}
	spec := &types.VmfsDatastoreCreateSpec{
		VmfsDatastoreSpec: types.VmfsDatastoreSpec{DiskUuid: v.Disk.Uuid},
		Partition: types.HostDiskPartitionSpec{PartitionFormat: "gpt", TotalSectors: blocks,
			Partition: []types.HostDiskPartitionAttributes{{Partition: 1, StartSector: 2048,
				EndSector: blocks - 1, Type: vmfsGUID, Attributes: 0}}},
		Vmfs: types.HostVmfsSpec{Extent: types.HostScsiDiskPartition{DiskName: v.NAA, Partition: 1},
			MajorVersion: major, BlockSizeMb: 1},
	}
	body.Res = &types.QueryVmfsDatastoreCreateOptionsResponse{
		Returnval: []types.VmfsDatastoreOption{{Info: info, Spec: spec}},
	}
	return body
}

// CreateVmfsDatastore formats the spec's extent LUN as VMFS and mounts it on this host.
func (dss *HostDatastoreSystem) CreateVmfsDatastore(ctx *simulator.Context, req *types.CreateVmfsDatastore) soap.HasFault {
	body := &methods.CreateVmfsDatastoreBody{}
	spec := req.Spec
	name := spec.Vmfs.VolumeName
	if name == "" {
		body.Fault_ = simulator.Fault("spec.vmfs.volumeName is required", &types.InvalidArgument{InvalidProperty: "spec.vmfs.volumeName"})
		return body
	}
	v, ok := dss.visibleDisk(func(d types.HostScsiDisk) bool { return d.CanonicalName == spec.Vmfs.Extent.DiskName })
	if !ok {
		body.Fault_ = notFound(fmt.Sprintf("no disk %s on host %s", spec.Vmfs.Extent.DiskName, dss.Host.Name))
		return body
	}
	if spec.DiskUuid != "" && spec.DiskUuid != v.Disk.Uuid {
		body.Fault_ = simulator.Fault("spec.diskUuid does not match "+v.NAA, &types.InvalidArgument{InvalidProperty: "spec.diskUuid"})
		return body
	}
	if ds := vmfsOn(v.NAA); ds != "" {
		body.Fault_ = simulator.Fault(fmt.Sprintf("%s already holds VMFS datastore %s", v.NAA, ds), &types.HostConfigFault{})
		return body
	}
	dir := filepath.Join(dss.vmfsDir, v.NAA)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		body.Fault_ = simulator.Fault(err.Error(), &types.HostConfigFault{})
		return body
	}
	res := dss.HostDatastoreSystem.CreateLocalDatastore(ctx, &types.CreateLocalDatastore{Name: name, Path: dir})
	if f := res.Fault(); f != nil {
		_ = os.RemoveAll(dir)
		body.Fault_ = f
		return body
	}
	ref := res.(*methods.CreateLocalDatastoreBody).Res.Returnval
	ds := simulator.Map.Get(ref).(*simulator.Datastore)
	capacity := v.CapacityBytes
	uuid := vmfsUUID(v.NAA)
	vol := &types.HostVmfsVolume{
		HostFileSystemVolume: types.HostFileSystemVolume{Type: "VMFS", Name: name, Capacity: capacity},
		BlockSizeMb:          1, BlockSize: 1024, MaxBlocks: 63963136, MajorVersion: spec.Vmfs.MajorVersion,
		Version: "6.82", Uuid: uuid, Extent: []types.HostScsiDiskPartition{{DiskName: v.NAA, Partition: 1}},
		Ssd: types.NewBool(true), Local: types.NewBool(false),
	}
	if vol.MajorVersion == 5 {
		vol.Version = "5.61"
	} else {
		vol.MajorVersion = 6
	}
	now := time.Now()
	info := &types.VmfsDatastoreInfo{
		DatastoreInfo: types.DatastoreInfo{Name: name, Url: dir, FreeSpace: capacity,
			MaxFileSize: 62 << 40, MaxVirtualDiskCapacity: 62 << 40, Timestamp: &now},
		MaxPhysicalRDMFileSize: 64 << 40, MaxVirtualRDMFileSize: 62 << 40, Vmfs: vol,
	}
	ctx.WithLock(ds, func() {
		ds.Info = info
		ds.Summary.Type = "VMFS"
		ds.Summary.Capacity = capacity
		ds.Summary.FreeSpace = capacity
		ds.Summary.MultipleHostAccess = types.NewBool(true)
		simulator.Map.Update(ds, []types.PropertyChange{
			{Name: "summary.type", Val: "VMFS"}, {Name: "summary.capacity", Val: capacity},
			{Name: "summary.freeSpace", Val: capacity},
		})
	})
	vmfsMu.Lock()
	vmfsByNAA[v.NAA] = VmfsVolume{Ref: ref, Name: name, NAA: v.NAA, Dir: dir}
	vmfsMu.Unlock()
	body.Res = &types.CreateVmfsDatastoreResponse{Returnval: ref}
	return body
}

// vmfsUUID is a VMFS-style volume UUID (8-8-4-12 hex) derived from the LUN.
func vmfsUUID(naa string) string {
	h := fmt.Sprintf("%x", sha1.Sum([]byte(naa)))
	return h[0:8] + "-" + h[8:16] + "-" + h[16:20] + "-" + h[20:32]
}

// RemoveDatastore unmounts a datastore from this host and forgets it; refused with
// ResourceInUse while any VM has files on it.
func (dss *HostDatastoreSystem) RemoveDatastore(ctx *simulator.Context, req *types.RemoveDatastore) soap.HasFault {
	body := &methods.RemoveDatastoreBody{}
	ds, ok := simulator.Map.Get(req.Datastore).(*simulator.Datastore)
	if !ok || simulator.FindReference(dss.Datastore, req.Datastore) == nil {
		body.Fault_ = notFound(fmt.Sprintf("datastore %s is not mounted on host %s", req.Datastore.Value, dss.Host.Name))
		return body
	}
	var inUse bool
	var name string
	ctx.WithLock(ds, func() { inUse, name = len(ds.Vm) > 0, ds.Name })
	if inUse {
		body.Fault_ = simulator.Fault(fmt.Sprintf("datastore %s is in use by %d VM(s)", name, len(ds.Vm)),
			&types.ResourceInUse{Type: "Datastore", Name: name})
		return body
	}
	var task types.ManagedObjectReference
	ctx.WithLock(ds, func() {
		task = ds.DestroyTask(ctx, &types.Destroy_Task{This: ds.Self}).(*methods.Destroy_TaskBody).Res.Returnval
	})
	if t, ok := simulator.Map.Get(task).(*simulator.Task); ok && t.Info.Error != nil {
		body.Fault_ = simulator.Fault(t.Info.Error.LocalizedMessage, t.Info.Error.Fault)
		return body
	}
	if ds.Browser.Value != "" {
		simulator.Map.Remove(ds.Browser)
	}
	// Stock Destroy edits host.datastore in place, and that slice aliases this object's
	// datastore list (reference §2.2): give each its own copy again.
	h := simulator.Map.Get(dss.Host.Self)
	var refs []types.ManagedObjectReference
	ctx.WithLock(h, func() {
		for _, r := range dss.Host.Datastore {
			if r != req.Datastore && simulator.FindReference(refs, r) == nil {
				refs = append(refs, r)
			}
		}
		dss.Host.Datastore = append([]types.ManagedObjectReference(nil), refs...)
		simulator.Map.Update(h, []types.PropertyChange{{Name: "datastore", Val: dss.Host.Datastore}})
	})
	dss.Datastore = append([]types.ManagedObjectReference(nil), refs...)
	simulator.Map.Update(dss, []types.PropertyChange{{Name: "datastore", Val: dss.Datastore}})
	if vol, ok := vmfsByRef(req.Datastore); ok {
		_ = os.RemoveAll(vol.Dir)
		vmfsMu.Lock()
		delete(vmfsByNAA, vol.NAA)
		vmfsMu.Unlock()
	}
	body.Res = &types.RemoveDatastoreResponse{}
	return body
}
