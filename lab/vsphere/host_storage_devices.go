package main

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// The storage device info a HostStorageSystem publishes after each change: the host's own
// adapters and disks plus the iSCSI adapter, its LUNs, their SCSI topology and multipath
// paths (reference §3.2.2). Split from host_storage_system.go for length only.

// lunUUID is the ESXi-style device UUID: a prefix, the LUN number, the NAA id and the model.
func lunUUID(l LUN) string {
	return fmt.Sprintf("0200%04x%s%s", l.LunID, strings.TrimPrefix(l.NAA, "naa."),
		hex.EncodeToString([]byte(fmt.Sprintf("%-6.6s", l.Model))))
}

// scsiDisk is the HostScsiDisk a Datera LUN shows as (reference §3.2.2, §5).
func scsiDisk(l LUN) types.HostScsiDisk {
	uuid := lunUUID(l)
	return types.HostScsiDisk{
		ScsiLun: types.ScsiLun{
			HostDevice:       types.HostDevice{DeviceName: "/vmfs/devices/disks/" + l.NAA, DeviceType: "disk"},
			Key:              "key-vim.host.ScsiDisk-" + uuid,
			Uuid:             uuid,
			CanonicalName:    l.NAA,
			DisplayName:      fmt.Sprintf("%s iSCSI Disk (%s)", l.Vendor, l.NAA),
			LunType:          "disk",
			Vendor:           l.Vendor,
			Model:            l.Model,
			Revision:         "4.0",
			ScsiLevel:        6,
			QueueDepth:       128,
			OperationalState: []string{"ok"},
			VStorageSupport:  "vStorageSupported",
		},
		Capacity:   types.HostDiskDimensionsLba{BlockSize: 512, Block: l.CapacityBytes / 512},
		DevicePath: "/vmfs/devices/disks/" + l.NAA,
		Ssd:        types.NewBool(true),
		LocalDisk:  types.NewBool(false),
	}
}

// publish rebuilds the device info and announces it on the storage system and on the host
// (config.storageDevice.*), at the deepest paths clients watch (reference §2.7).
func (s *HostStorageSystem) publish(ctx *simulator.Context) {
	s.mu.Lock()
	info := s.deviceInfo()
	s.mu.Unlock()
	fields := []struct {
		name string
		val  interface{}
	}{
		{"hostBusAdapter", info.HostBusAdapter}, {"scsiLun", info.ScsiLun},
		{"scsiTopology", info.ScsiTopology}, {"multipathInfo", info.MultipathInfo},
		{"softwareInternetScsiEnabled", info.SoftwareInternetScsiEnabled},
	}
	var own, host []types.PropertyChange
	for _, f := range fields {
		own = append(own, types.PropertyChange{Name: "storageDeviceInfo." + f.name, Val: f.val})
		host = append(host, types.PropertyChange{Name: "config.storageDevice." + f.name, Val: f.val})
	}
	simulator.Map.Update(s, own)
	h := simulator.Map.Get(s.Host.Self)
	ctx.WithLock(h, func() { simulator.Map.Update(h, host) })
}

// deviceInfo is the template's adapters and disks plus the iSCSI adapter and its LUNs. Secrets
// are never published (the API does not return them either). Call with s.mu held.
func (s *HostStorageSystem) deviceInfo() types.HostStorageDeviceInfo {
	info := s.base
	info.HostBusAdapter = append([]types.BaseHostHostBusAdapter(nil), s.base.HostBusAdapter...)
	info.ScsiLun = append([]types.BaseScsiLun(nil), s.base.ScsiLun...)
	topo := types.HostScsiTopology{}
	if s.base.ScsiTopology != nil {
		topo.Adapter = append(topo.Adapter, s.base.ScsiTopology.Adapter...)
	}
	mp := types.HostMultipathInfo{}
	if s.base.MultipathInfo != nil {
		mp.Lun = append(mp.Lun, s.base.MultipathInfo.Lun...)
	}
	info.SoftwareInternetScsiEnabled = s.iscsi != nil
	if s.iscsi != nil {
		info.HostBusAdapter = append(info.HostBusAdapter, redacted(s.iscsi))
		iface := types.HostScsiTopologyInterface{Key: "key-vim.host.ScsiTopology.Interface-" + iscsiDevice, Adapter: iscsiHbaKey}
		for i := range s.visible {
			v := &s.visible[i]
			disk := v.Disk
			info.ScsiLun = append(info.ScsiLun, &disk)
			lu := types.HostMultipathInfoLogicalUnit{
				Key: "key-vim.host.MultipathInfo.LogicalUnit-" + disk.Uuid, Id: disk.Uuid, Lun: disk.Key,
				Policy:                 &types.HostMultipathInfoLogicalUnitPolicy{Policy: "VMW_PSP_RR"},
				StorageArrayTypePolicy: &types.HostMultipathInfoLogicalUnitStorageArrayTypePolicy{Policy: "VMW_SATP_ALUA"},
			}
			for _, p := range v.Paths {
				n := s.targetNumber(v.TargetIQN, p)
				transport := &types.HostInternetScsiTargetTransport{IScsiName: v.TargetIQN, Address: []string{p.String()}}
				name := fmt.Sprintf("%s:C0:T%d:L%d", iscsiDevice, n, v.LunID)
				iface.Target = append(iface.Target, types.HostScsiTopologyTarget{
					Key:    fmt.Sprintf("key-vim.host.ScsiTopology.Target-%s:0:%d", iscsiDevice, n),
					Target: n, Transport: transport,
					Lun: []types.HostScsiTopologyLun{{Key: "key-vim.host.ScsiTopology.Lun-" + disk.Uuid,
						Lun: v.LunID, ScsiLun: disk.Key}},
				})
				lu.Path = append(lu.Path, types.HostMultipathInfoPath{
					Key: "key-vim.host.MultipathInfo.Path-" + name, Name: name, PathState: "active",
					State: "active", IsWorkingPath: types.NewBool(true), Adapter: iscsiHbaKey,
					Lun: lu.Key, Transport: transport,
				})
			}
			mp.Lun = append(mp.Lun, lu)
		}
		topo.Adapter = append(topo.Adapter, iface)
	}
	info.ScsiTopology, info.MultipathInfo = &topo, &mp
	return info
}

// targetNumber gives each (target, portal) a stable SCSI target number. Call with s.mu held.
func (s *HostStorageSystem) targetNumber(iqn string, p Portal) int32 {
	k := iqn + "@" + p.String()
	n, ok := s.targets[k]
	if !ok {
		n = int32(len(s.targets))
		s.targets[k] = n
	}
	return n
}

// redacted copies the adapter without CHAP secrets.
func redacted(h *types.HostInternetScsiHba) *types.HostInternetScsiHba {
	c := *h
	strip := func(a *types.HostInternetScsiHbaAuthenticationProperties) *types.HostInternetScsiHbaAuthenticationProperties {
		if a == nil {
			return nil
		}
		x := *a
		x.ChapSecret, x.MutualChapSecret = "", ""
		return &x
	}
	c.AuthenticationProperties = *strip(&h.AuthenticationProperties)
	c.ConfiguredSendTarget = append([]types.HostInternetScsiHbaSendTarget(nil), h.ConfiguredSendTarget...)
	for i := range c.ConfiguredSendTarget {
		c.ConfiguredSendTarget[i].AuthenticationProperties = strip(c.ConfiguredSendTarget[i].AuthenticationProperties)
	}
	c.ConfiguredStaticTarget = append([]types.HostInternetScsiHbaStaticTarget(nil), h.ConfiguredStaticTarget...)
	for i := range c.ConfiguredStaticTarget {
		c.ConfiguredStaticTarget[i].AuthenticationProperties = strip(c.ConfiguredStaticTarget[i].AuthenticationProperties)
	}
	return &c
}
