package nodeagent

// ReadRoutes reads only what the fast path of a gateway move needs: the
// agent's devices (one link dump) and its routes (one route dump). No
// address, entry, chain, sysctl or offload is read.
func (k *LinuxKernel) ReadRoutes() (RouteView, error) {
	links, err := ownedLinks()
	if err != nil {
		return RouteView{}, err
	}
	names := map[int]string{}
	v := RouteView{}
	for _, vx := range links {
		names[vx.Index] = vx.Name
		v.Devices = append(v.Devices, vx.Name)
	}
	if v.Routes, _, err = readRoutes(names); err != nil {
		return RouteView{}, err
	}
	return v, nil
}
