package istio

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LoadDir loads every *.yaml, *.yml and *.json file under dir, recursively
// and in sorted order, so that the result (and which of two duplicates
// wins) does not depend on the file system's listing order. Hidden files
// and directories (editor swap files, .git) are skipped. The error is for
// a directory that cannot be read at all; problems in files are findings.
func LoadDir(dir string) (*Config, []Finding, error) {
	return LoadPaths(dir)
}

// LoadPaths loads files and directories as LoadDir does, in the order
// given; the waygate validate command takes such a list.
func LoadPaths(paths ...string) (*Config, []Finding, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		more, err := configFiles(p)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, more...)
	}
	cfg := newConfig()
	var findings []Finding
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			// A file removed between listing and reading is a finding,
			// not a failure: the other files still load.
			findings = append(findings, Finding{Severity: Error, File: file, Message: err.Error()})
			continue
		}
		fc, ff := ParseDocuments(file, data)
		findings = append(findings, ff...)
		findings = append(findings, cfg.merge(fc)...)
	}
	return cfg, findings, nil
}

// configFiles lists the configuration files under dir in sorted order.
func configFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && isConfigFile(path) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	return files, nil
}

func isConfigFile(path string) bool {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yaml", ".yml", ".json":
		return !strings.HasPrefix(filepath.Base(path), ".")
	}
	return false
}

// merge adds the resources of o to c. A resource already in c keeps its
// place; the later one is reported, naming both files, and dropped.
func (c *Config) merge(o *Config) []Finding {
	var findings []Finding
	dup := func(k Key) bool {
		prev, ok := c.Origins[k]
		if !ok {
			return false
		}
		cur := o.Origins[k]
		findings = append(findings, Finding{Severity: Error, File: cur.File, Line: cur.Line, Resource: k,
			Message: fmt.Sprintf("duplicate of the resource defined in %s:%d; this one is ignored", prev.File, prev.Line)})
		return true
	}
	c.Gateways = appendNew(c.Gateways, o.Gateways, "Gateway", dup)
	c.VirtualServices = appendNew(c.VirtualServices, o.VirtualServices, "VirtualService", dup)
	c.DestinationRules = appendNew(c.DestinationRules, o.DestinationRules, "DestinationRule", dup)
	c.ServiceEntries = appendNew(c.ServiceEntries, o.ServiceEntries, "ServiceEntry", dup)
	c.WorkloadEntries = appendNew(c.WorkloadEntries, o.WorkloadEntries, "WorkloadEntry", dup)
	c.AuthorizationPolicies = appendNew(c.AuthorizationPolicies, o.AuthorizationPolicies, "AuthorizationPolicy", dup)
	c.RequestAuthentications = appendNew(c.RequestAuthentications, o.RequestAuthentications, "RequestAuthentication", dup)
	c.PeerAuthentications = appendNew(c.PeerAuthentications, o.PeerAuthentications, "PeerAuthentication", dup)
	c.WasmPlugins = appendNew(c.WasmPlugins, o.WasmPlugins, "WasmPlugin", dup)
	c.EnvoyFilters = appendNew(c.EnvoyFilters, o.EnvoyFilters, "EnvoyFilter", dup)
	c.RateLimitPolicies = appendNew(c.RateLimitPolicies, o.RateLimitPolicies, "RateLimitPolicy", dup)
	c.Services = append(c.Services, o.Services...)
	for k, origin := range o.Origins {
		if _, ok := c.Origins[k]; !ok {
			c.Origins[k] = origin
			if c.lines == nil {
				c.lines = map[Key]*fieldLines{}
			}
			c.lines[k] = o.lines[k]
		}
	}
	return findings
}
