module github.com/waygate/waygate/filters/wasm/testdata/httpwasm

go 1.24
