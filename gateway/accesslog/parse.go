package accesslog

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// segment is a literal, or an operator when op is set.
type segment struct {
	lit string
	op  *operator
}

func isCommandChar(c byte) bool { return c == '_' || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') }

// parse splits a format string as Envoy's substitution format parser
// does: "%%" is a literal percent sign, and every other "%" must open a
// command operator %NAME%, %NAME(ARG)% or %NAME(ARG):MAXLEN%.
func parse(format string) ([]segment, error) {
	var segs []segment
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			segs = append(segs, segment{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(format); {
		if format[i] != '%' {
			lit.WriteByte(format[i])
			i++
			continue
		}
		if i+1 < len(format) && format[i+1] == '%' {
			lit.WriteByte('%')
			i += 2
			continue
		}
		j := i + 1
		for j < len(format) && isCommandChar(format[j]) {
			j++
		}
		if j == i+1 {
			return nil, fmt.Errorf("position %d: %% starts no command operator (write %%%% for a literal %%)", i)
		}
		name := format[i+1 : j]
		arg, hasArg := "", false
		if j < len(format) && format[j] == '(' {
			k := strings.IndexByte(format[j+1:], ')')
			if k < 0 {
				return nil, fmt.Errorf("position %d: %%%s( has no closing )", i, name)
			}
			arg, hasArg = format[j+1:j+1+k], true
			j += k + 2
		}
		maxLen := 0
		if j < len(format) && format[j] == ':' {
			k := j + 1
			for k < len(format) && '0' <= format[k] && format[k] <= '9' {
				k++
			}
			n, err := strconv.Atoi(format[j+1 : k])
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("position %d: %%%s: the length after : must be a positive number", i, name)
			}
			maxLen, j = n, k
		}
		if j >= len(format) || format[j] != '%' {
			return nil, fmt.Errorf("position %d: command operator %%%s is not closed with %%", i, name)
		}
		op, err := newOperator(name, arg, hasArg, maxLen)
		if err != nil {
			return nil, fmt.Errorf("position %d: %w", i, err)
		}
		flush()
		segs = append(segs, segment{op: op})
		i = j + 1
	}
	flush()
	return segs, nil
}

// headerNames parses the X?Y argument of %REQ% and its kin: the header,
// and the one used when it is absent.
func headerNames(op, arg string) (main, alt string, err error) {
	main, alt, _ = strings.Cut(arg, "?")
	if main == "" || strings.Contains(alt, "?") {
		return "", "", fmt.Errorf("%%%s(%s): want a header name, optionally ?another", op, arg)
	}
	return canonical(main), canonical(alt), nil
}

// canonical keeps pseudo-headers (":path") lower case and gives others
// net/http's canonical form, the key of http.Header.
func canonical(h string) string {
	if h == "" || h[0] == ':' {
		return strings.ToLower(h)
	}
	return http.CanonicalHeaderKey(h)
}
