package jwt

import (
	"fmt"

	jwtauthnv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
)

// verifier is a compiled JwtRequirement, after Envoy's verifier tree.
// https://www.envoyproxy.io/docs/envoy/latest/api-v3/extensions/filters/http/jwt_authn/v3/config.proto#extensions-filters-http-jwt-authn-v3-jwtrequirement
type verifier interface {
	verify(v *verification) status
}

// providerVerifier requires a valid token of one provider: every token
// found in the provider's locations must verify, and at least one must
// be there (provider_name, provider_and_audiences).
type providerVerifier struct {
	p         *provider
	audiences []string // override when not nil
}

func (pv *providerVerifier) verify(v *verification) status {
	sanitize(v, pv.p.extractor)
	toks := pv.p.extractor.extract(&v.x.Request)
	if len(toks) == 0 {
		return statusMissing
	}
	for _, t := range toks {
		if st := v.authenticate(t, pv.p, pv.audiences); st != statusOK {
			return st
		}
	}
	return statusOK
}

// allowVerifier is allow_missing (a request without any token passes,
// one with a token must verify it) and allow_missing_or_failed (every
// request passes; tokens that verify still publish their payload). The
// provider of a token is found by its issuer.
type allowVerifier struct {
	ext    *extractor
	failed bool
}

func (av *allowVerifier) verify(v *verification) status {
	sanitize(v, av.ext)
	for _, t := range av.ext.extract(&v.x.Request) {
		if st := v.authenticate(t, nil, nil); st != statusOK && !av.failed {
			return st
		}
	}
	return statusOK
}

// anyVerifier passes when one requirement does. When all fail, the
// status is that of the last requirement that failed for another reason
// than a missing token or a token of another issuer, else "Jwt issuer is
// not configured" when one saw a token of an unknown issuer, else "Jwt
// is missing": a request with a bad token hears why, and a token of a
// wrong issuer is never taken for a missing one, as in Envoy since 1.17.1.
type anyVerifier struct{ list []verifier }

func (a *anyVerifier) verify(v *verification) status {
	final := statusMissing
	specific := false
	for _, c := range a.list {
		st := c.verify(v)
		switch st {
		case statusOK:
			return statusOK
		case statusMissing:
		case statusUnknownIssuer:
			if !specific {
				final = st
			}
		default:
			final, specific = st, true
		}
	}
	return final
}

// allVerifier passes when every requirement does.
type allVerifier struct{ list []verifier }

func (a *allVerifier) verify(v *verification) status {
	for _, c := range a.list {
		if st := c.verify(v); st != statusOK {
			return st
		}
	}
	return statusOK
}

// allowAll is a requirement with nothing set: no token is checked.
type allowAll struct{}

func (allowAll) verify(*verification) status { return statusOK }

// sanitize removes, before verifying, the headers a verified token of
// the extractor's providers would write, so a client cannot forge them.
func sanitize(v *verification, e *extractor) {
	for _, h := range e.sanitize {
		v.x.Request.Header.Del(h)
	}
}

// compileRequirement builds the verifier of r. within lists the providers
// of the enclosing requires_any, whose locations allow_missing and
// allow_missing_or_failed look at; at the top level they look at every
// provider's.
func (f *Factory) compileRequirement(r *jwtauthnv3.JwtRequirement, within []*provider) (verifier, error) {
	switch t := r.GetRequiresType().(type) {
	case nil:
		return allowAll{}, nil
	case *jwtauthnv3.JwtRequirement_ProviderName:
		p, err := f.provider(t.ProviderName)
		if err != nil {
			return nil, fmt.Errorf("provider_name: %w", err)
		}
		return &providerVerifier{p: p}, nil
	case *jwtauthnv3.JwtRequirement_ProviderAndAudiences:
		p, err := f.provider(t.ProviderAndAudiences.GetProviderName())
		if err != nil {
			return nil, fmt.Errorf("provider_and_audiences.provider_name: %w", err)
		}
		aud := []string{}
		for _, a := range t.ProviderAndAudiences.GetAudiences() {
			aud = append(aud, normalizeAudience(a))
		}
		return &providerVerifier{p: p, audiences: aud}, nil
	case *jwtauthnv3.JwtRequirement_AllowMissing:
		return f.allow(within, false), nil
	case *jwtauthnv3.JwtRequirement_AllowMissingOrFailed:
		return f.allow(within, true), nil
	case *jwtauthnv3.JwtRequirement_RequiresAll:
		all := &allVerifier{}
		for i, c := range t.RequiresAll.GetRequirements() {
			cv, err := f.compileRequirement(c, nil)
			if err != nil {
				return nil, fmt.Errorf("requires_all.requirements[%d].%w", i, err)
			}
			all.list = append(all.list, cv)
		}
		return all, nil
	case *jwtauthnv3.JwtRequirement_RequiresAny:
		return f.compileAny(t.RequiresAny)
	case *jwtauthnv3.JwtRequirement_ExtractOnlyWithoutValidation:
		return nil, fmt.Errorf("extract_only_without_validation: not supported; a gateway validates the tokens it accepts")
	}
	return nil, fmt.Errorf("requires_type: unknown requirement %T", r.GetRequiresType())
}

// compileAny follows Envoy's AnyVerifierImpl: the provider requirements
// in order, then at most one bypass (allow_missing_or_failed winning over
// allow_missing) looking at the locations of the list's providers.
func (f *Factory) compileAny(or *jwtauthnv3.JwtRequirementOrList) (verifier, error) {
	av := &anyVerifier{}
	var used []*provider
	var bypass *jwtauthnv3.JwtRequirement
	for i, c := range or.GetRequirements() {
		switch t := c.GetRequiresType().(type) {
		case *jwtauthnv3.JwtRequirement_AllowMissing:
			if bypass == nil {
				bypass = c
			}
			continue
		case *jwtauthnv3.JwtRequirement_AllowMissingOrFailed:
			bypass = c
			continue
		case *jwtauthnv3.JwtRequirement_ProviderName:
			if p, err := f.provider(t.ProviderName); err == nil {
				used = append(used, p)
			}
		case *jwtauthnv3.JwtRequirement_ProviderAndAudiences:
			if p, err := f.provider(t.ProviderAndAudiences.GetProviderName()); err == nil {
				used = append(used, p)
			}
		}
		cv, err := f.compileRequirement(c, nil)
		if err != nil {
			return nil, fmt.Errorf("requires_any.requirements[%d].%w", i, err)
		}
		av.list = append(av.list, cv)
	}
	if bypass != nil {
		if used == nil {
			used = []*provider{}
		}
		cv, _ := f.compileRequirement(bypass, used)
		av.list = append(av.list, cv)
	}
	return av, nil
}

func (f *Factory) allow(within []*provider, failed bool) *allowVerifier {
	if within == nil {
		within = f.ordered
	}
	return &allowVerifier{ext: newExtractor(within), failed: failed}
}

func (f *Factory) provider(name string) (*provider, error) {
	p, ok := f.providers[name]
	if !ok {
		return nil, fmt.Errorf("provider %q is not configured (providers: %v)", name, f.names())
	}
	return p, nil
}
