package dnsplugin

// Ready implements ready.Readiness: true once the ServiceImport and
// EndpointSlice informers have synced and the first index is built.
func (k *Kosmos) Ready() bool { return k.synced.Load() }
