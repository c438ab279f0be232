package main

import (
	"fmt"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// HostStorageSystem adds the iSCSI software adapter to a simulated ESXi host (reference §3.2.2):
// enable/disable, send and static targets, CHAP at adapter or target level, advanced options,
// and RescanAllHba/RescanHba that reveal exactly the fabric LUNs this host may see: a LUN
// shows when one of its portals is a send target (then every portal of the target is a path,
// as SendTargets discovery reports them) or a static target with its IQN, its ACL lists the
// adapter's IQN (or is empty), and the CHAP in force for that target matches the LUN's.
//
// Method names, arguments and faults follow the vSphere API reference (HostStorageSystem).
// Embedded by value: the PropertyCollector only walks embedded structs (reference §3.1).
type HostStorageSystem struct {
	simulator.HostStorageSystem

	fabric *Fabric
	base   types.HostStorageDeviceInfo // the host's own HBAs and disks (the ESX template)

	mu      sync.Mutex                 // guards what other objects read: iscsi, visible
	iscsi   *types.HostInternetScsiHba // nil while software iSCSI is disabled; holds secrets
	visible []VisibleLUN               // after the last rescan, in NAA order
	targets map[string]int32           // "<iqn>@<portal>" -> SCSI target number, never reused
}

// VisibleLUN is a fabric LUN as a host sees it after a rescan.
type VisibleLUN struct {
	LUN
	Disk  types.HostScsiDisk
	Paths []Portal
	Auth  types.HostInternetScsiHbaAuthenticationProperties // the CHAP it logged in with
}

const (
	iscsiDevice = "vmhba65"
	iscsiHbaKey = "key-vim.host.InternetScsiHba-" + iscsiDevice
	iscsiModel  = "iSCSI Software Adapter"
)

var (
	hostStorageMu sync.Mutex
	hostStorage   = map[types.ManagedObjectReference]*HostStorageSystem{} // by host moref
)

// storageFor returns the wrapper of a host's storage system.
func storageFor(host types.ManagedObjectReference) *HostStorageSystem {
	hostStorageMu.Lock()
	defer hostStorageMu.Unlock()
	return hostStorage[host]
}

// installStorage replaces every host's HostStorageSystem and HostDatastoreSystem in the
// registry. Each host gets a private copy of the storage device info: stock vcsim points every
// host at one package-global template (reference §2.1).
func installStorage(fabric *Fabric, vmfsDir string) {
	for _, e := range simulator.Map.All("HostSystem") {
		host := e.(*simulator.HostSystem)
		var stock simulator.HostStorageSystem
		switch x := simulator.Map.Get(*host.ConfigManager.StorageSystem).(type) {
		case *simulator.HostStorageSystem: // a new model
			stock = *x
		case *mo.HostStorageSystem: // loaded (restore.go): Model.Load has no wrapper for it
			stock = simulator.HostStorageSystem{HostStorageSystem: *x, Host: &host.HostSystem}
		}
		s := &HostStorageSystem{HostStorageSystem: stock, fabric: fabric,
			base: *stock.StorageDeviceInfo, targets: map[string]int32{}}
		info := *stock.StorageDeviceInfo
		s.StorageDeviceInfo = &info
		simulator.Map.Put(s)
		hostStorageMu.Lock()
		hostStorage[host.Self] = s
		hostStorageMu.Unlock()

		var dss simulator.HostDatastoreSystem
		switch x := simulator.Map.Get(*host.ConfigManager.DatastoreSystem).(type) {
		case *simulator.HostDatastoreSystem:
			dss = *x
		case *mo.HostDatastoreSystem:
			dss = simulator.HostDatastoreSystem{HostDatastoreSystem: *x, Host: &host.HostSystem}
		}
		simulator.Map.Put(&HostDatastoreSystem{HostDatastoreSystem: dss, vmfsDir: vmfsDir})
	}
}

// IQN is the software adapter's initiator name, as ESXi derives it: the short host name and
// a suffix unique to the host (iSCSI names allow no '_', so it becomes '-').
func (s *HostStorageSystem) IQN() string {
	name := strings.ToLower(strings.ReplaceAll(strings.Split(s.Host.Name, ".")[0], "_", "-"))
	id := strings.ReplaceAll(s.Host.Summary.Hardware.Uuid, "-", "")
	if len(id) > 8 {
		id = id[:8]
	}
	return "iqn.1998-01.com.vmware:" + name + "-" + id
}

// Visible returns the LUNs of the last rescan.
func (s *HostStorageSystem) Visible() []VisibleLUN {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]VisibleLUN(nil), s.visible...)
}

// Adapter returns a copy of the iSCSI adapter with its secrets (nil when disabled).
func (s *HostStorageSystem) Adapter() *types.HostInternetScsiHba {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.iscsi == nil {
		return nil
	}
	c := *s.iscsi
	return &c
}

func notFound(msg string) *soap.Fault { return simulator.Fault(msg, &types.NotFound{}) }

// hba checks the device argument of the iSCSI methods.
func (s *HostStorageSystem) hba(device string) *soap.Fault {
	if s.iscsi == nil || device != iscsiDevice {
		return notFound(fmt.Sprintf("%s is not an iSCSI adapter of host %s", device, s.Host.Name))
	}
	return nil
}

func (s *HostStorageSystem) UpdateSoftwareInternetScsiEnabled(ctx *simulator.Context, req *types.UpdateSoftwareInternetScsiEnabled) soap.HasFault {
	body := &methods.UpdateSoftwareInternetScsiEnabledBody{}
	s.mu.Lock()
	switch {
	case req.Enabled && s.iscsi == nil:
		s.iscsi = newSoftwareAdapter(s.IQN())
	case !req.Enabled && s.iscsi != nil:
		for _, v := range s.visible {
			if ds := vmfsOn(v.NAA); ds != "" {
				s.mu.Unlock()
				body.Fault_ = simulator.Fault(fmt.Sprintf("LUN %s holds VMFS datastore %s", v.NAA, ds),
					&types.ResourceInUse{Type: "Datastore", Name: ds})
				return body
			}
		}
		s.iscsi, s.visible = nil, nil
	}
	s.mu.Unlock()
	s.publish(ctx)
	body.Res = &types.UpdateSoftwareInternetScsiEnabledResponse{}
	return body
}

func newSoftwareAdapter(iqn string) *types.HostInternetScsiHba {
	return &types.HostInternetScsiHba{
		HostHostBusAdapter: types.HostHostBusAdapter{Key: iscsiHbaKey, Device: iscsiDevice,
			Status: "online", Model: iscsiModel, Driver: "iscsi_vmk", StorageProtocol: "scsi"},
		IsSoftwareBased: true,
		CanBeDisabled:   types.NewBool(true),
		DiscoveryCapabilities: types.HostInternetScsiHbaDiscoveryCapabilities{
			SendTargetsDiscoverySettable: true, StaticTargetDiscoverySettable: true},
		DiscoveryProperties: types.HostInternetScsiHbaDiscoveryProperties{
			SendTargetsDiscoveryEnabled: true, StaticTargetDiscoveryEnabled: true},
		AuthenticationCapabilities: types.HostInternetScsiHbaAuthenticationCapabilities{
			ChapAuthSettable: true, MutualChapSettable: types.NewBool(true),
			TargetChapSettable: types.NewBool(true), TargetMutualChapSettable: types.NewBool(true)},
		AuthenticationProperties: types.HostInternetScsiHbaAuthenticationProperties{
			ChapAuthenticationType: string(types.HostInternetScsiHbaChapAuthenticationTypeChapProhibited)},
		IScsiName:  iqn,
		MaxSpeedMb: 10000,
	}
}

// editAdapter runs change on the software iSCSI adapter `device` under s.mu and publishes
// the result; the adapter check's fault or change's own fault comes back instead (nothing
// published then).
func (s *HostStorageSystem) editAdapter(ctx *simulator.Context, device string, change func() *soap.Fault) *soap.Fault {
	s.mu.Lock()
	f := s.hba(device)
	if f == nil {
		f = change()
	}
	s.mu.Unlock()
	if f == nil {
		s.publish(ctx)
	}
	return f
}

func (s *HostStorageSystem) AddInternetScsiSendTargets(ctx *simulator.Context, req *types.AddInternetScsiSendTargets) soap.HasFault {
	body := &methods.AddInternetScsiSendTargetsBody{}
	if body.Fault_ = s.editAdapter(ctx, req.IScsiHbaDevice, func() *soap.Fault {
		for _, t := range req.Targets {
			if findSendTarget(s.iscsi.ConfiguredSendTarget, t) < 0 { // adding twice is a no-op
				t.Port = portalOf(t.Address, t.Port).Port
				s.iscsi.ConfiguredSendTarget = append(s.iscsi.ConfiguredSendTarget, t)
			}
		}
		return nil
	}); body.Fault_ == nil {
		body.Res = &types.AddInternetScsiSendTargetsResponse{}
	}
	return body
}

func (s *HostStorageSystem) RemoveInternetScsiSendTargets(ctx *simulator.Context, req *types.RemoveInternetScsiSendTargets) soap.HasFault {
	body := &methods.RemoveInternetScsiSendTargetsBody{}
	if body.Fault_ = s.editAdapter(ctx, req.IScsiHbaDevice, func() *soap.Fault {
		for _, t := range req.Targets {
			i := findSendTarget(s.iscsi.ConfiguredSendTarget, t)
			if i < 0 {
				return notFound(fmt.Sprintf("send target %s is not configured", portalOf(t.Address, t.Port)))
			}
			list := s.iscsi.ConfiguredSendTarget
			s.iscsi.ConfiguredSendTarget = append(list[:i:i], list[i+1:]...)
		}
		return nil
	}); body.Fault_ == nil {
		body.Res = &types.RemoveInternetScsiSendTargetsResponse{}
	}
	return body
}

func (s *HostStorageSystem) AddInternetScsiStaticTargets(ctx *simulator.Context, req *types.AddInternetScsiStaticTargets) soap.HasFault {
	body := &methods.AddInternetScsiStaticTargetsBody{}
	if body.Fault_ = s.editAdapter(ctx, req.IScsiHbaDevice, func() *soap.Fault {
		for _, t := range req.Targets {
			if findStaticTarget(s.iscsi.ConfiguredStaticTarget, t) < 0 {
				t.Port = portalOf(t.Address, t.Port).Port
				t.DiscoveryMethod = string(types.HostInternetScsiHbaStaticTargetTargetDiscoveryMethodStaticMethod)
				s.iscsi.ConfiguredStaticTarget = append(s.iscsi.ConfiguredStaticTarget, t)
			}
		}
		return nil
	}); body.Fault_ == nil {
		body.Res = &types.AddInternetScsiStaticTargetsResponse{}
	}
	return body
}

func (s *HostStorageSystem) RemoveInternetScsiStaticTargets(ctx *simulator.Context, req *types.RemoveInternetScsiStaticTargets) soap.HasFault {
	body := &methods.RemoveInternetScsiStaticTargetsBody{}
	if body.Fault_ = s.editAdapter(ctx, req.IScsiHbaDevice, func() *soap.Fault {
		for _, t := range req.Targets {
			i := findStaticTarget(s.iscsi.ConfiguredStaticTarget, t)
			if i < 0 {
				return notFound(fmt.Sprintf("static target %s at %s is not configured", t.IScsiName, portalOf(t.Address, t.Port)))
			}
			list := s.iscsi.ConfiguredStaticTarget
			s.iscsi.ConfiguredStaticTarget = append(list[:i:i], list[i+1:]...)
		}
		return nil
	}); body.Fault_ == nil {
		body.Res = &types.RemoveInternetScsiStaticTargetsResponse{}
	}
	return body
}

// UpdateInternetScsiAuthenticationProperties sets CHAP on the adapter (targetSet absent) or on
// the named send/static targets. Disabling CHAP clears the name and secret.
func (s *HostStorageSystem) UpdateInternetScsiAuthenticationProperties(ctx *simulator.Context, req *types.UpdateInternetScsiAuthenticationProperties) soap.HasFault {
	body := &methods.UpdateInternetScsiAuthenticationPropertiesBody{}
	auth := req.AuthenticationProperties
	if !auth.ChapAuthEnabled {
		auth.ChapName, auth.ChapSecret = "", ""
	}
	if body.Fault_ = s.editAdapter(ctx, req.IScsiHbaDevice, func() *soap.Fault {
		if req.TargetSet == nil {
			auth.ChapInherited = nil
			s.iscsi.AuthenticationProperties = auth
			return nil
		}
		return s.eachTarget(req.TargetSet, func(p **types.HostInternetScsiHbaAuthenticationProperties, _ *[]types.HostInternetScsiHbaParamValue) {
			a := auth
			*p = &a
		})
	}); body.Fault_ == nil {
		body.Res = &types.UpdateInternetScsiAuthenticationPropertiesResponse{}
	}
	return body
}

// Advanced options the software adapter accepts (a subset of ESXi's; DelayedAck is the one
// Datera's VMware best practice turns off).
var iscsiOptions = map[string]bool{"DelayedAck": true, "LoginTimeout": true, "NoopOutInterval": true,
	"NoopOutTimeout": true, "RecoveryTimeout": true, "FirstBurstLength": true, "MaxBurstLength": true,
	"MaxRecvDataSegLen": true, "MaxOutstandingR2T": true, "InitialR2T": true, "ImmediateData": true}

func (s *HostStorageSystem) UpdateInternetScsiAdvancedOptions(ctx *simulator.Context, req *types.UpdateInternetScsiAdvancedOptions) soap.HasFault {
	body := &methods.UpdateInternetScsiAdvancedOptionsBody{}
	for _, o := range req.Options {
		if !iscsiOptions[o.Key] {
			body.Fault_ = simulator.Fault("unknown iSCSI option "+o.Key, &types.InvalidArgument{InvalidProperty: "options"})
			return body
		}
	}
	set := func(list *[]types.HostInternetScsiHbaParamValue) { *list = mergeOptions(*list, req.Options) }
	if body.Fault_ = s.editAdapter(ctx, req.IScsiHbaDevice, func() *soap.Fault {
		if req.TargetSet == nil {
			set(&s.iscsi.AdvancedOptions)
			return nil
		}
		return s.eachTarget(req.TargetSet, func(_ **types.HostInternetScsiHbaAuthenticationProperties, opts *[]types.HostInternetScsiHbaParamValue) {
			set(opts)
		})
	}); body.Fault_ == nil {
		body.Res = &types.UpdateInternetScsiAdvancedOptionsResponse{}
	}
	return body
}

func mergeOptions(have, set []types.HostInternetScsiHbaParamValue) []types.HostInternetScsiHbaParamValue {
	out := append([]types.HostInternetScsiHbaParamValue(nil), have...)
	for _, o := range set {
		o.IsInherited = types.NewBool(false)
		replaced := false
		for i := range out {
			if out[i].Key == o.Key {
				out[i], replaced = o, true
			}
		}
		if !replaced {
			out = append(out, o)
		}
	}
	return out
}

// eachTarget applies f to every configured target named in set (NotFound for any other).
// Call with s.mu held.
func (s *HostStorageSystem) eachTarget(set *types.HostInternetScsiHbaTargetSet, f func(**types.HostInternetScsiHbaAuthenticationProperties, *[]types.HostInternetScsiHbaParamValue)) *soap.Fault {
	for _, t := range set.SendTargets {
		i := findSendTarget(s.iscsi.ConfiguredSendTarget, t)
		if i < 0 {
			return notFound(fmt.Sprintf("send target %s is not configured", portalOf(t.Address, t.Port)))
		}
		c := &s.iscsi.ConfiguredSendTarget[i]
		f(&c.AuthenticationProperties, &c.AdvancedOptions)
	}
	for _, t := range set.StaticTargets {
		i := findStaticTarget(s.iscsi.ConfiguredStaticTarget, t)
		if i < 0 {
			return notFound(fmt.Sprintf("static target %s at %s is not configured", t.IScsiName, portalOf(t.Address, t.Port)))
		}
		c := &s.iscsi.ConfiguredStaticTarget[i]
		f(&c.AuthenticationProperties, &c.AdvancedOptions)
	}
	return nil
}

func findSendTarget(list []types.HostInternetScsiHbaSendTarget, t types.HostInternetScsiHbaSendTarget) int {
	for i, c := range list {
		if portalOf(c.Address, c.Port) == portalOf(t.Address, t.Port) {
			return i
		}
	}
	return -1
}

func findStaticTarget(list []types.HostInternetScsiHbaStaticTarget, t types.HostInternetScsiHbaStaticTarget) int {
	for i, c := range list {
		if c.IScsiName == t.IScsiName && portalOf(c.Address, c.Port) == portalOf(t.Address, t.Port) {
			return i
		}
	}
	return -1
}

func (s *HostStorageSystem) RescanAllHba(ctx *simulator.Context, _ *types.RescanAllHba) soap.HasFault {
	s.rescan(ctx)
	return &methods.RescanAllHbaBody{Res: &types.RescanAllHbaResponse{}}
}

// RescanHba rescans one adapter; the host's own (non-iSCSI) adapters have nothing new to find.
func (s *HostStorageSystem) RescanHba(ctx *simulator.Context, req *types.RescanHba) soap.HasFault {
	body := &methods.RescanHbaBody{}
	known := req.HbaDevice == iscsiDevice && s.Adapter() != nil
	for _, h := range s.base.HostBusAdapter {
		known = known || h.GetHostHostBusAdapter().Device == req.HbaDevice
	}
	if !known {
		body.Fault_ = notFound(fmt.Sprintf("%s is not an adapter of host %s", req.HbaDevice, s.Host.Name))
		return body
	}
	if req.HbaDevice == iscsiDevice {
		s.rescan(ctx)
	}
	body.Res = &types.RescanHbaResponse{}
	return body
}

// rescan applies the fabric to this host (see the type comment) and publishes the result.
func (s *HostStorageSystem) rescan(ctx *simulator.Context) {
	luns := s.fabric.Snapshot()
	s.mu.Lock()
	var visible []VisibleLUN
	if s.iscsi != nil {
		for _, l := range luns {
			if v, ok := s.sees(l); ok {
				v.Disk = scsiDisk(l)
				visible = append(visible, v)
			}
		}
	}
	s.visible = visible
	s.mu.Unlock()
	s.publish(ctx)
}

// sees decides whether the adapter reaches LUN l, and over which portals. Call with s.mu held.
func (s *HostStorageSystem) sees(l LUN) (VisibleLUN, bool) {
	hba := s.iscsi
	if len(l.Initiators) > 0 && !contains(l.Initiators, hba.IScsiName) {
		return VisibleLUN{}, false
	}
	v := VisibleLUN{LUN: l}
	for _, t := range hba.ConfiguredSendTarget {
		auth := effectiveAuth(hba, t.AuthenticationProperties)
		if contains(l.Portals, portalOf(t.Address, t.Port).String()) && chapAdmits(l, auth) {
			for _, p := range l.Portals { // SendTargets discovery reports every portal
				pp, _ := parsePortal(p)
				v.Paths = append(v.Paths, pp)
			}
			v.Auth = auth
			return v, true
		}
	}
	for _, t := range hba.ConfiguredStaticTarget {
		auth := effectiveAuth(hba, t.AuthenticationProperties)
		p := portalOf(t.Address, t.Port)
		if t.IScsiName == l.TargetIQN && contains(l.Portals, p.String()) && chapAdmits(l, auth) {
			v.Paths = append(v.Paths, p)
			v.Auth = auth
		}
	}
	return v, len(v.Paths) > 0
}

// effectiveAuth is a target's CHAP, or the adapter's when the target inherits (or sets none).
func effectiveAuth(hba *types.HostInternetScsiHba, t *types.HostInternetScsiHbaAuthenticationProperties) types.HostInternetScsiHbaAuthenticationProperties {
	if t == nil || (t.ChapInherited != nil && *t.ChapInherited) {
		return hba.AuthenticationProperties
	}
	return *t
}

// chapAdmits is the target's login check: a CHAP LUN wants its user and secret; a LUN without
// CHAP refuses an initiator that insists on CHAP (chapRequired).
func chapAdmits(l LUN, a types.HostInternetScsiHbaAuthenticationProperties) bool {
	on := a.ChapAuthEnabled && a.ChapAuthenticationType != string(types.HostInternetScsiHbaChapAuthenticationTypeChapProhibited)
	if l.ChapUser == "" {
		return !(on && a.ChapAuthenticationType == string(types.HostInternetScsiHbaChapAuthenticationTypeChapRequired))
	}
	return on && a.ChapName == l.ChapUser && a.ChapSecret == l.ChapSecret
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var _ mo.Reference = (*HostStorageSystem)(nil)
