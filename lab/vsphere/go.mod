// The lab's vCenter: govmomi's simulator from Debian's golang-github-vmware-govmomi-dev
// (GOPATH-style source under /usr/share/gocode), built offline: build.sh sets GOPROXY=off and
// GOFLAGS=-mod=mod, and the replace lines point at Debian's copies, so no module is downloaded.
module vancouver/lab/vsphere

go 1.19

require (
	github.com/google/uuid v0.0.0
	github.com/vmware/govmomi v0.24.2
)

replace github.com/vmware/govmomi => /usr/share/gocode/src/github.com/vmware/govmomi

replace github.com/google/uuid => /usr/share/gocode/src/github.com/google/uuid
