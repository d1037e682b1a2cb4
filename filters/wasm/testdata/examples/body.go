package main

import (
	"encoding/json"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"
	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/types"
)

// setBody behaves as the SDK's http_body example: it rewrites the whole
// request (or, with buffer-replace-at: response, response) body by the
// buffer-operation header: append, prepend or replace.
type setBody struct {
	types.DefaultHttpContext
	response bool
	op       string
}

func (c *setBody) OnHttpRequestHeaders(int, bool) types.Action {
	if at, err := proxywasm.GetHttpRequestHeader("buffer-replace-at"); err == nil && at == "response" {
		c.response = true
	}
	if _, err := proxywasm.GetHttpRequestHeader("content-length"); err != nil {
		if err := proxywasm.SendHttpResponse(400, nil, []byte("content must be provided"), -1); err != nil {
			panic(err)
		}
		return types.ActionPause
	}
	if err := proxywasm.RemoveHttpRequestHeader("content-length"); err != nil {
		panic(err)
	}
	c.op, _ = proxywasm.GetHttpRequestHeader("buffer-operation")
	switch c.op {
	case "append", "prepend", "replace":
	default:
		c.op = "replace"
	}
	return types.ActionContinue
}

func (c *setBody) OnHttpRequestBody(size int, end bool) types.Action {
	if c.response {
		return types.ActionContinue
	}
	if !end {
		return types.ActionPause
	}
	if _, err := proxywasm.GetHttpRequestBody(0, size); err != nil {
		proxywasm.LogErrorf("failed to get request body: %v", err)
		return types.ActionContinue
	}
	c.rewrite(proxywasm.AppendHttpRequestBody, proxywasm.PrependHttpRequestBody, proxywasm.ReplaceHttpRequestBody)
	return types.ActionContinue
}

func (c *setBody) OnHttpResponseHeaders(int, bool) types.Action {
	if c.response {
		if err := proxywasm.RemoveHttpResponseHeader("content-length"); err != nil {
			panic(err)
		}
	}
	return types.ActionContinue
}

func (c *setBody) OnHttpResponseBody(size int, end bool) types.Action {
	if !c.response {
		return types.ActionContinue
	}
	if !end {
		return types.ActionPause
	}
	c.rewrite(proxywasm.AppendHttpResponseBody, proxywasm.PrependHttpResponseBody, proxywasm.ReplaceHttpResponseBody)
	return types.ActionContinue
}

func (c *setBody) rewrite(app, pre, rep func([]byte) error) {
	var err error
	switch c.op {
	case "append":
		err = app([]byte("[this is appended body]"))
	case "prepend":
		err = pre([]byte("[this is prepended body]"))
	default:
		err = rep([]byte("[this is replaced body]"))
	}
	if err != nil {
		proxywasm.LogErrorf("failed to %s body: %v", c.op, err)
	}
}

// echoBody answers with the request body, as http_body's echo mode.
type echoBody struct{ types.DefaultHttpContext }

func (*echoBody) OnHttpRequestBody(size int, end bool) types.Action {
	if !end {
		return types.ActionPause
	}
	body, _ := proxywasm.GetHttpRequestBody(0, size)
	if err := proxywasm.SendHttpResponse(200, nil, body, -1); err != nil {
		panic(err)
	}
	return types.ActionPause
}

// jsonValidation behaves as the SDK's json_validation example.
type jsonValidation struct {
	types.DefaultHttpContext
	requiredKeys []string
}

func (*jsonValidation) OnHttpRequestHeaders(int, bool) types.Action {
	ct, err := proxywasm.GetHttpRequestHeader("content-type")
	if err != nil || ct != "application/json" {
		if err := proxywasm.SendHttpResponse(403, nil, []byte("content-type must be provided"), -1); err != nil {
			panic(err)
		}
		return types.ActionPause
	}
	return types.ActionContinue
}

func (c *jsonValidation) OnHttpRequestBody(size int, end bool) types.Action {
	if !end {
		return types.ActionPause
	}
	body, err := proxywasm.GetHttpRequestBody(0, size)
	if err != nil {
		proxywasm.LogErrorf("failed to get request body: %v", err)
		return types.ActionContinue
	}
	var doc map[string]any
	valid := json.Unmarshal(body, &doc) == nil
	for _, k := range c.requiredKeys {
		if _, ok := doc[k]; !ok {
			valid = false
		}
	}
	if !valid {
		if err := proxywasm.SendHttpResponse(403, nil, []byte("invalid payload"), -1); err != nil {
			proxywasm.LogErrorf("failed to send the 403 response: %v", err)
		}
		return types.ActionPause
	}
	return types.ActionContinue
}

// readBody is the benchmark's body-reading plugin.
type readBody struct{ types.DefaultHttpContext }

func (*readBody) OnHttpRequestBody(size int, end bool) types.Action {
	if !end {
		return types.ActionPause
	}
	b, _ := proxywasm.GetHttpRequestBody(0, size)
	if len(b) != size {
		panic("short body")
	}
	return types.ActionContinue
}
