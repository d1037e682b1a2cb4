// Package conformance is Waygate's contract with its users: every Istio
// behavior Waygate claims has a scenario here, and a scenario is run
// against the real `waygate` binary and real backends on loopback, never
// against mocks.
//
// A scenario is a directory under scenarios/ holding scenario.yaml and the
// Istio YAML it applies (the seed study guide's YAML, nearly verbatim,
// with ServiceEntries that point the services at local backends). The
// runner starts the backends the scenario names on free loopback ports,
// starts one `waygate run --config DIR` for the whole scenario, and for
// each step writes that step's YAML into DIR (replacing the previous
// step's files), waits until the gateway serves it, and runs the step's
// checks: single requests, statistical shares over many requests, load
// with concurrency (circuit breaking), timings as generous ranges, and
// TCP line exchanges. Placeholders in the YAML ({{port "reviews-v1"}},
// {{gateway_port "http"}}) are replaced with the ports actually used.
//
// A scenario with meshCA: true gives the gateway a mesh CA directory
// (`waygate run --ca-dir`), so its ISTIO_MUTUAL ports present a workload
// certificate from it, and issues clients' workload certificates from
// the same root with `waygate ca`: a check's meshIdentity
// ("default/sleep") speaks Istio mTLS as that workload, and
// {{mesh_cert "ns/sa"}}, {{mesh_key "ns/sa"}} and {{mesh_ca}} are the
// files in the YAML.
//
// Scenarios that fail because the feature behind them is not built yet
// are listed, with the reason, in known_failures.yaml: they still run and
// show as failing in the table, they do not fail `go test`, and a known
// failure that starts passing does fail it, so the list stays honest.
//
// The format is described field by field on Scenario, Step and Check.
package conformance
