"""The lab's Kubernetes: a real control plane plus what a cluster delegates (DESIGN §3.3).

kube-apiserver, kube-controller-manager and kube-scheduler are built once from Debian's
`kubernetes` source package (build.sh) and run with Debian's etcd; the project adds only the
Datera CSI controller side (csi_controller.py) and the node agent. Facts:
shared/reference/kubernetes.md.
"""
