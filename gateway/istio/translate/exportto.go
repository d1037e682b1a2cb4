package translate

// exportedTo reports whether a resource of namespace ns with the given
// exportTo reaches namespace to, as istiod's visibility
// (https://istio.io/latest/docs/reference/config/networking/virtual-service/#VirtualService-export_to):
// no exportTo is every namespace ("*", the mesh default), "." the
// resource's own, "~" none, and any other entry that namespace. For a
// gateway, to is the namespace the gateway runs in.
func exportedTo(exportTo []string, ns, to string) bool {
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		switch e {
		case "*":
			return true
		case ".":
			if ns == to {
				return true
			}
		case "~":
		default:
			if e == to {
				return true
			}
		}
	}
	return false
}
