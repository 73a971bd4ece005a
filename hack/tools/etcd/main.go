// Command etcd is etcd's own server entry point, built at the version that
// k8s.io/kubernetes pins, so that the test control planes pair a kube-apiserver
// with the etcd it is released against.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
