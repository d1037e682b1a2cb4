module github.com/waygate/waygate/filters/wasm/testdata/audit

go 1.24
