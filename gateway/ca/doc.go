// Package ca is Waygate's mesh certificate authority, the part of istiod
// that signs workload certificates
// (https://istio.io/latest/docs/concepts/security/#pki): a self-signed
// root (ECDSA P-256) made at first start and kept in a directory or in
// memory, which issues short-lived certificates whose only identity is a
// SPIFFE URI SAN, spiffe://<trust domain>/ns/<namespace>/sa/<service
// account> (https://istio.io/latest/docs/concepts/security/#istio-identity).
//
// The control plane hands each proxy its certificate over SDS as the
// secret "default" and the root as "ROOTCA", the names Istio's agent
// serves to Envoy; Workloads keeps one certificate per identity and
// renews it once half its lifetime has passed, as Istio's agent does
// (SECRET_GRACE_PERIOD_RATIO 0.5).
package ca
