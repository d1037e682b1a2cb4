module github.com/waygate/waygate/filters/wasm/testdata/abi010

go 1.24
