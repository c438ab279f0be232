package main

import (
	"bytes"
	"context"
	"fmt"
	"sort"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

// Reading the inventory for a save (durable.go), as `govc object.save` does, with a cache of
// encoded properties so that a save costs what changed, not the whole inventory.

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
