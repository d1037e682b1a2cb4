package jwt

import "strings"

// status is the outcome of verifying a request's tokens, one value per
// failure Envoy distinguishes. Its text is the body of the 401 (or 403)
// and, with spaces turned into underscores, the response code details,
// worded as google/jwt_verify_lib words them so clients and log pipelines
// written against Envoy see the same strings.
// https://github.com/google/jwt_verify_lib/blob/master/src/status.cc
type status uint8

const (
	statusOK status = iota
	statusMissing
	statusNotYetValid
	statusExpired
	statusBadFormat
	statusHeaderParse
	statusHeaderBadAlg
	statusHeaderAlgNotImplemented
	statusHeaderBadKid
	statusPayloadParse
	statusSignatureParse
	statusUnknownIssuer
	statusAudienceNotAllowed
	statusVerificationFail
	statusNoValidKeys
	statusKidAlgMismatch
	statusFetchFail
	statusTooLarge
	statusNoExpiration
	statusLifetimeTooLong
)

var statusText = [...]string{
	statusOK:                      "OK",
	statusMissing:                 "Jwt is missing",
	statusNotYetValid:             "Jwt not yet valid",
	statusExpired:                 "Jwt is expired",
	statusBadFormat:               "Jwt is not in the form of Header.Payload.Signature",
	statusHeaderParse:             "Jwt header is an invalid Base64url input or an invalid JSON",
	statusHeaderBadAlg:            "Jwt header [alg] field is not a string",
	statusHeaderAlgNotImplemented: "Jwt header [alg] field value is invalid",
	statusHeaderBadKid:            "Jwt header [kid] field is not a string",
	statusPayloadParse:            "Jwt payload is an invalid Base64 or an invalid JSON",
	statusSignatureParse:          "Jwt signature is an invalid Base64",
	statusUnknownIssuer:           "Jwt issuer is not configured",
	statusAudienceNotAllowed:      "Audiences in Jwt are not allowed",
	statusVerificationFail:        "Jwt verification fails",
	statusNoValidKeys:             "Jwks doesn't have any valid public key",
	statusKidAlgMismatch:          "Jwks doesn't have key to match kid or alg from Jwt",
	statusFetchFail:               "Jwks remote fetch is failed",
	// Envoy has no status of its own for these: an oversized token is
	// refused before it is parsed, and require_expiration / max_lifetime
	// name what was violated.
	statusTooLarge:        "Jwt is too large",
	statusNoExpiration:    "Jwt does not have an expiration",
	statusLifetimeTooLong: "Jwt lifetime is longer than the maximum allowed",
}

func (s status) String() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return "Jwt verification fails"
}

// details is Envoy's response code details for a denial,
// jwt_authn_access_denied{<status with spaces as underscores>}.
func (s status) details() string {
	return "jwt_authn_access_denied{" + strings.ReplaceAll(s.String(), " ", "_") + "}"
}
