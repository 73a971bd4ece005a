// Package kubelet serves the kubelet endpoint of the tree's virtual nodes:
// the host's API server calls it for `kubectl logs`, `exec`, `attach` and
// `port-forward` on pods bound to a virtual node, and it relays each
// request to the member's API server as the same operation on the
// member's copy of the pod (streams upgraded end to end).
//
// # Resolve, then relay
//
// As virtual-kubelet's node API does, a request is first resolved, then
// handled: Server.resolve reads the path (/containerLogs, /exec, /attach
// /NS/POD/CONTAINER, /portForward/NS/POD) and the method, finds the pod's
// virtual node through Tree, authorizes the caller, and asks Tree for the
// Upstream (the member API server holding the copy); only then is the
// request proxied, with the query reduced to what the operation knows and
// without the caller's credentials or impersonation headers.
//
// # Who may call
//
// The caller must present a client certificate ClientCA verifies (the
// host API server's kubelet client certificate) and be allowed, by a
// SubjectAccessReview in the host, to get (logs) or create (streams)
// nodes/proxy on the pod's virtual node, as the kubelet's webhook
// authorizer asks. Answers are cached briefly. A missing pod and a
// refused caller get the same 403, so a certificate holder learns nothing
// about pods it may not reach.
//
// # Usage
//
//	srv := &kubelet.Server{Tree: ctl, ClientCA: pool} // ctl: *tree.Controller
//	go srv.Serve(ctx, ln)
package kubelet
