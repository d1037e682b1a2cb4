module github.com/waygate/waygate/filters/wasm/testdata/rawabi

go 1.24
