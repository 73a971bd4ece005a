// Package testenv starts real Kubernetes control planes (etcd + kube-apiserver)
// for integration tests, benchmarks and the local sandbox.
//
// # Clusters
//
// Start brings up N independent clusters in parallel, each its own etcd and
// kube-apiserver on loopback, and writes one kubeconfig with a context per
// cluster. Nothing is faked: clients talk to the real API server, with its
// admission, defaulting, server-side apply and watch semantics.
//
// # Binaries
//
// The binaries come from bin/k8s at the module root (make testbin builds them
// from the Go module proxy), or from $KOSMOS_TESTBIN. When they are missing,
// Start fails with an error that says how to get them; tests never skip.
//
// # Usage
//
//	env := testenv.StartT(t, testenv.Options{Names: []string{"host", "member"}})
//	cfg := env.Cluster("host").Config // *rest.Config of the host
//	kubeconfig := env.KubeconfigPath   // contexts "host" and "member"
package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"kosmos.io/kosmos/schema/scheme"
)

// Options say which clusters to start.
type Options struct {
	// Names of the clusters; each becomes a kubeconfig context.
	Names []string
	// CRDDirs are directories of CRD manifests installed in every cluster.
	CRDDirs []string
	// Dir is where the kubeconfig is written; a temporary directory when empty.
	Dir string
	// BinDir holds kube-apiserver and etcd; found automatically when empty.
	BinDir string
	// Output attaches the control planes' output to this process's.
	Output bool
	// APIServerArgs are extra kube-apiserver flags (name without dashes →
	// value) for every cluster, e.g. its kubelet client certificate.
	APIServerArgs map[string]string
	// ClusterArgs are extra kube-apiserver flags of one cluster (by name),
	// over APIServerArgs, e.g. its service-cluster-ip-range.
	ClusterArgs map[string]map[string]string
}

// Cluster is one running control plane.
type Cluster struct {
	Name   string
	Config *rest.Config
	env    *envtest.Environment
}

// Pause freezes this cluster's API server (SIGSTOP): it stops answering,
// connections hang, as with a crashed or cut-off control plane. Resume
// brings it back with its state and endpoint unchanged.
func (c *Cluster) Pause() error { return c.signal(syscall.SIGSTOP) }

// Resume undoes Pause (SIGCONT).
func (c *Cluster) Resume() error { return c.signal(syscall.SIGCONT) }

func (c *Cluster) signal(sig syscall.Signal) error {
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		return err
	}
	return signalByArg("kube-apiserver", "--secure-port="+u.Port(), sig)
}

// signalByArg signals the process running binary with arg among its
// arguments.
func signalByArg(binary, arg string, sig syscall.Signal) error {
	procs, err := filepath.Glob("/proc/[0-9]*/cmdline")
	if err != nil {
		return err
	}
	for _, p := range procs {
		raw, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(args[0]) != binary || !slices.Contains(args, arg) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil {
			continue
		}
		return syscall.Kill(pid, sig)
	}
	return fmt.Errorf("testenv: no %s process with %s", binary, arg)
}

// Env is a set of running clusters.
type Env struct {
	Clusters       []*Cluster
	KubeconfigPath string
	dir            string
	ownDir         bool
}

// Cluster returns the cluster of that name, or nil.
func (e *Env) Cluster(name string) *Cluster {
	for _, c := range e.Clusters {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// BinDir finds the directory holding kube-apiserver and etcd.
func BinDir() (string, error) {
	if d := os.Getenv("KOSMOS_TESTBIN"); d != "" {
		return d, checkBinaries(d)
	}
	// In the module (tests, make targets), or beside the kosmos binary
	// (bin/kosmos next to bin/k8s, run from anywhere).
	var tried []string
	if root, err := moduleRoot(); err == nil {
		d := filepath.Join(root, "bin", "k8s")
		if checkBinaries(d) == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Join(filepath.Dir(exe), "k8s")
		if checkBinaries(d) == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("control-plane binaries (kube-apiserver, etcd) not found in %s: run `make testbin` (make test and make demo do it for you) or set KOSMOS_TESTBIN", strings.Join(tried, " or "))
}

func checkBinaries(dir string) error {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("control-plane binary %s missing in %s: run `make testbin` (make test does it for you): %w", b, dir, err)
		}
	}
	return nil
}

// moduleRoot walks up from the working directory to the directory of go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Start starts the clusters in parallel. On error, whatever started is stopped.
func Start(ctx context.Context, opts Options) (*Env, error) {
	if len(opts.Names) == 0 {
		return nil, errors.New("testenv: no cluster names")
	}
	bin := opts.BinDir
	if bin == "" {
		var err error
		if bin, err = BinDir(); err != nil {
			return nil, err
		}
	}
	e := &Env{dir: opts.Dir}
	if e.dir == "" {
		d, err := os.MkdirTemp("", "kosmos-testenv-")
		if err != nil {
			return nil, err
		}
		e.dir, e.ownDir = d, true
	}
	e.Clusters = make([]*Cluster, len(opts.Names))
	errs := make([]error, len(opts.Names))
	var wg sync.WaitGroup
	for i, name := range opts.Names {
		wg.Go(func() {
			c, err := startCluster(name, bin, opts)
			e.Clusters[i], errs[i] = c, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		_ = e.Stop()
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		_ = e.Stop()
		return nil, err
	}
	e.KubeconfigPath = filepath.Join(e.dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*e.kubeconfig(), e.KubeconfigPath); err != nil {
		_ = e.Stop()
		return nil, fmt.Errorf("write kubeconfig: %w", err)
	}
	return e, nil
}

func startCluster(name, bin string, opts Options) (*Cluster, error) {
	useExisting := false
	env := &envtest.Environment{
		BinaryAssetsDirectory:    bin,
		CRDDirectoryPaths:        opts.CRDDirs,
		ErrorIfCRDPathMissing:    len(opts.CRDDirs) > 0,
		UseExistingCluster:       &useExisting,
		AttachControlPlaneOutput: opts.Output,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// A test cluster's etcd needs no durability: without an fsync per
	// write, the control plane is bound by CPU, not by the disk.
	env.ControlPlane.Etcd = &envtest.Etcd{}
	env.ControlPlane.Etcd.Configure().Set("unsafe-no-fsync", "true")
	for k, v := range opts.APIServerArgs {
		env.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	for k, v := range opts.ClusterArgs[name] {
		env.ControlPlane.GetAPIServer().Configure().Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("start cluster %s: %w", name, err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000 // a test control plane has no one else to protect
	return &Cluster{Name: name, Config: cfg, env: env}, nil
}

// kubeconfig renders one kubeconfig with a context per cluster.
func (e *Env) kubeconfig() *clientcmdapi.Config {
	kc := clientcmdapi.NewConfig()
	for _, c := range e.Clusters {
		kc.Clusters[c.Name] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: c.Config.CAData}
		kc.AuthInfos[c.Name] = &clientcmdapi.AuthInfo{
			ClientCertificateData: c.Config.CertData,
			ClientKeyData:         c.Config.KeyData,
			Token:                 c.Config.BearerToken,
		}
		kc.Contexts[c.Name] = &clientcmdapi.Context{Cluster: c.Name, AuthInfo: c.Name}
	}
	if len(e.Clusters) > 0 {
		kc.CurrentContext = e.Clusters[0].Name
	}
	return kc
}

// KubeconfigFor renders a kubeconfig holding only cluster name (as its
// current context), the way a kubeconfig Secret holds one.
func (e *Env) KubeconfigFor(name string) ([]byte, error) {
	kc := e.kubeconfig()
	if kc.Contexts[name] == nil {
		return nil, fmt.Errorf("testenv: no cluster %q", name)
	}
	one := clientcmdapi.NewConfig()
	one.Clusters[name], one.AuthInfos[name], one.Contexts[name] = kc.Clusters[name], kc.AuthInfos[name], kc.Contexts[name]
	one.CurrentContext = name
	return clientcmd.Write(*one)
}

// Stop stops every cluster and removes the temporary directory.
func (e *Env) Stop() error {
	var errs []error
	for _, c := range e.Clusters {
		if c != nil {
			_ = c.Resume() // a paused API server would not see SIGTERM
			if err := c.env.Stop(); err != nil {
				errs = append(errs, fmt.Errorf("stop cluster %s: %w", c.Name, err))
			}
		}
	}
	if e.ownDir {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	return errors.Join(errs...)
}

// StartT starts the clusters for a test or benchmark and stops them when it
// ends. It fails the test (never skips it) when they cannot start.
func StartT(tb testing.TB, opts Options) *Env {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	e, err := Start(ctx, opts)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Logf("testenv: %d cluster(s) up in %s", len(opts.Names), time.Since(start).Round(time.Millisecond))
	tb.Cleanup(func() {
		if err := e.Stop(); err != nil {
			tb.Errorf("testenv: %v", err)
		}
	})
	return e
}

// ClientsT returns a client of every cluster, by name, knowing every type
// Kosmos reads or writes (schema/scheme).
func (e *Env) ClientsT(tb testing.TB) map[string]client.Client {
	tb.Helper()
	s, err := scheme.New()
	if err != nil {
		tb.Fatal(err)
	}
	out := map[string]client.Client{}
	for _, c := range e.Clusters {
		if out[c.Name], err = client.New(c.Config, client.Options{Scheme: s}); err != nil {
			tb.Fatalf("client of cluster %s: %v", c.Name, err)
		}
	}
	return out
}
