package hcm

// values backs the header values the connection manager sets on every
// request and response (x-forwarded-for, x-forwarded-proto,
// x-envoy-external-address, x-request-id, server), so
// that setting them costs no allocation beyond the stream's own.
// http.Header.Set would allocate a one-element slice for each.
type values struct {
	a [6]string
	n int
}

// one returns a one-value header slice holding v. Its capacity is one,
// so a later Add copies it instead of writing over a neighbour.
func (vs *values) one(v string) []string {
	if vs == nil || vs.n == len(vs.a) {
		return []string{v}
	}
	i := vs.n
	vs.n++
	vs.a[i] = v
	return vs.a[i : i+1 : i+1]
}
