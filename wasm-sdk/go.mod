module github.com/waygate/waygate/wasm-sdk

go 1.26
