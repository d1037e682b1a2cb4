package accesslog

import (
	"fmt"
	"strconv"
	"time"
)

// timeFormat is a compiled strftime format for %START_TIME(...)%.
type timeFormat []timePiece

// timePiece is a literal, or a specifier when spec is set. digits is the
// precision of %Nf and %ENS.
type timePiece struct {
	lit    string
	spec   byte
	digits int
}

// compileTime compiles the strftime subset Envoy users write: the C
// specifiers, Envoy's %s (epoch seconds) and %f / %1f..%9f (fractional
// seconds), and absl's %E3S-style seconds with a fraction.
func compileTime(f string) (timeFormat, error) {
	var out timeFormat
	lit := []byte{}
	flush := func() {
		if len(lit) > 0 {
			out = append(out, timePiece{lit: string(lit)})
			lit = lit[:0]
		}
	}
	for i := 0; i < len(f); i++ {
		if f[i] != '%' {
			lit = append(lit, f[i])
			continue
		}
		i++
		if i >= len(f) {
			return nil, fmt.Errorf("trailing %%")
		}
		c := f[i]
		switch {
		case c == '%':
			lit = append(lit, '%')
			continue
		case c == 'n':
			lit = append(lit, '\n')
			continue
		case c == 't':
			lit = append(lit, '\t')
			continue
		case c == 'f':
			flush()
			out = append(out, timePiece{spec: 'f', digits: 9})
			continue
		case '1' <= c && c <= '9' && i+1 < len(f) && f[i+1] == 'f':
			flush()
			out = append(out, timePiece{spec: 'f', digits: int(c - '0')})
			i++
			continue
		case c == 'E' && i+2 < len(f) && '0' <= f[i+1] && f[i+1] <= '9' && f[i+2] == 'S':
			flush()
			out = append(out, timePiece{spec: 'S', digits: int(f[i+1] - '0')})
			i += 2
			continue
		case c == 'E' && i+2 < len(f) && f[i+1] == '*' && f[i+2] == 'S':
			flush()
			out = append(out, timePiece{spec: 'S', digits: -1})
			i += 2
			continue
		}
		switch c {
		case 'Y', 'm', 'd', 'H', 'M', 'S', 'y', 'j', 'a', 'A', 'b', 'h', 'B', 'e', 'p', 'I',
			'z', 'Z', 's', 'T', 'F', 'D', 'R', 'u', 'w', 'C':
			flush()
			out = append(out, timePiece{spec: c})
		default:
			return nil, fmt.Errorf("unsupported time specifier %%%c", c)
		}
	}
	flush()
	return out, nil
}

func pad2(dst []byte, v int) []byte {
	return append(dst, byte('0'+v/10%10), byte('0'+v%10))
}

func (f timeFormat) append(dst []byte, t time.Time) []byte {
	for _, p := range f {
		if p.spec == 0 {
			dst = append(dst, p.lit...)
			continue
		}
		switch p.spec {
		case 'Y':
			dst = strconv.AppendInt(dst, int64(t.Year()), 10)
		case 'C':
			dst = pad2(dst, t.Year()/100)
		case 'y':
			dst = pad2(dst, t.Year()%100)
		case 'm':
			dst = pad2(dst, int(t.Month()))
		case 'd':
			dst = pad2(dst, t.Day())
		case 'e':
			if t.Day() < 10 {
				dst = append(dst, ' ')
			}
			dst = strconv.AppendInt(dst, int64(t.Day()), 10)
		case 'H':
			dst = pad2(dst, t.Hour())
		case 'I':
			h := t.Hour() % 12
			if h == 0 {
				h = 12
			}
			dst = pad2(dst, h)
		case 'p':
			if t.Hour() < 12 {
				dst = append(dst, "AM"...)
			} else {
				dst = append(dst, "PM"...)
			}
		case 'M':
			dst = pad2(dst, t.Minute())
		case 'S':
			dst = pad2(dst, t.Second())
			switch {
			case p.digits > 0:
				dst = append(dst, '.')
				dst = appendFraction(dst, t.Nanosecond(), p.digits)
			case p.digits < 0 && t.Nanosecond() != 0:
				dst = append(dst, '.')
				dst = appendFraction(dst, t.Nanosecond(), 9)
			}
		case 'f':
			dst = appendFraction(dst, t.Nanosecond(), p.digits)
		case 'j':
			d := t.YearDay()
			dst = append(dst, byte('0'+d/100))
			dst = pad2(dst, d%100)
		case 'a':
			dst = append(dst, t.Weekday().String()[:3]...)
		case 'A':
			dst = append(dst, t.Weekday().String()...)
		case 'b', 'h':
			dst = append(dst, t.Month().String()[:3]...)
		case 'B':
			dst = append(dst, t.Month().String()...)
		case 'u':
			wd := int(t.Weekday())
			if wd == 0 {
				wd = 7
			}
			dst = strconv.AppendInt(dst, int64(wd), 10)
		case 'w':
			dst = strconv.AppendInt(dst, int64(t.Weekday()), 10)
		case 'z':
			dst = t.AppendFormat(dst, "-0700")
		case 'Z':
			dst = t.AppendFormat(dst, "MST")
		case 's':
			dst = strconv.AppendInt(dst, t.Unix(), 10)
		case 'T':
			dst = t.AppendFormat(dst, "15:04:05")
		case 'R':
			dst = t.AppendFormat(dst, "15:04")
		case 'F':
			dst = t.AppendFormat(dst, "2006-01-02")
		case 'D':
			dst = t.AppendFormat(dst, "01/02/06")
		}
	}
	return dst
}

// appendFraction appends the first digits digits of ns (nanoseconds).
func appendFraction(dst []byte, ns, digits int) []byte {
	var b [9]byte
	for i := 8; i >= 0; i-- {
		b[i] = byte('0' + ns%10)
		ns /= 10
	}
	return append(dst, b[:digits]...)
}

// appendISO8601 appends t as Envoy's default %START_TIME%,
// 2006-01-02T15:04:05.000Z, by hand: it runs for every logged request
// and time.AppendFormat's layout interpretation costs several times more.
func appendISO8601(dst []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	if y < 0 || y > 9999 {
		return t.AppendFormat(dst, "2006-01-02T15:04:05.000Z")
	}
	dst = pad2(pad2(dst, y/100), y%100)
	dst = pad2(append(dst, '-'), int(mo))
	dst = pad2(append(dst, '-'), d)
	dst = pad2(append(dst, 'T'), h)
	dst = pad2(append(dst, ':'), mi)
	dst = pad2(append(dst, ':'), s)
	dst = appendFraction(append(dst, '.'), t.Nanosecond(), 3)
	return append(dst, 'Z')
}
