package main

import (
	"log"
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// PropertyCollector fixes Fetch for pyvmomi 9 (reference §2.8.1, govmomi issue #3337).
//
// pyvmomi 9 reads every managed-object property with the undocumented Fetch method; vcsim
// 0.24.2 answers an unset property (vm.snapshot, storageSystem.multipathStateInfo, ...) by
// indexing an empty MissingSet and panics, so the client sees a dropped connection. This
// wrapper calls the stock Fetch and turns that panic into an empty FetchResponse: the client
// reads None, as from a real vCenter.
//
// Embedded by value (not pointer): vcsim clones the registered type per session with
// reflect.New, and getManagedObject walks embedded structs only.
type PropertyCollector struct {
	simulator.PropertyCollector
}

// FetchResponse must carry this exact Go type name: vcsim names the SOAP element after it.
type FetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *FetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch takes the request as interface{}: its type lives in simulator/internal, which only
// govmomi itself may import.
func (pc *PropertyCollector) Fetch(ctx *simulator.Context, req interface{}) (res soap.HasFault) {
	defer func() {
		if r := recover(); r != nil {
			log.Printf("Fetch of an unset property answered empty (%v)", r)
			res = &fetchBody{Res: &FetchResponse{}}
		}
	}()
	stock := reflect.ValueOf(&pc.PropertyCollector).MethodByName("Fetch")
	out := stock.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	return out[0].Interface().(soap.HasFault)
}

// installPropertyCollector replaces the root PropertyCollector singleton in the registry.
func installPropertyCollector() {
	pc := &PropertyCollector{}
	pc.Self = serviceContent().PropertyCollector
	simulator.Map.Put(pc)
}
