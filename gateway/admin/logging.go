package admin

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// loggerName is the one logger Waygate has; Envoy has one per component,
// but the gateway logs through one slog handler whose level is shared.
const loggerName = "waygate"

// Envoy's level names, mapped onto slog levels.
var levels = []struct {
	name  string
	level slog.Level
}{
	{"trace", slog.LevelDebug - 4},
	{"debug", slog.LevelDebug},
	{"info", slog.LevelInfo},
	{"warning", slog.LevelWarn},
	{"error", slog.LevelError},
	{"critical", slog.LevelError + 4},
	{"off", slog.LevelError + 8},
}

func parseLevel(s string) (slog.Level, bool) {
	if s == "warn" {
		s = "warning"
	}
	for _, l := range levels {
		if l.name == s {
			return l.level, true
		}
	}
	return 0, false
}

func levelName(v slog.Level) string {
	name := levels[0].name
	for _, l := range levels {
		if v >= l.level {
			name = l.name
		}
	}
	return name
}

// logging serves POST /logging as Envoy does, which istioctl proxy-config
// log drives: no parameter lists the loggers, ?level=<level> sets every
// logger, ?<logger>=<level> and ?paths=<logger>:<level>,... set one.
func (s *Server) logging(w http.ResponseWriter, r *http.Request) {
	lv := s.opts.LogLevel
	if lv == nil {
		text(w, http.StatusNotImplemented, "log levels are not adjustable on this server\n")
		return
	}
	set := func(value string) bool {
		l, ok := parseLevel(value)
		if ok {
			lv.Set(l)
			s.opts.Log.Info("log level changed via admin", "level", value)
		}
		return ok
	}
	usage := fmt.Sprintf("usage: /logging?level=<level> or /logging?%s=<level>; levels: trace, debug, info, warning, error, critical, off\n", loggerName)
	for key, values := range r.URL.Query() {
		value := values[0]
		switch key {
		case "level", loggerName:
		case "paths":
			for _, p := range strings.Split(value, ",") {
				name, l, _ := strings.Cut(p, ":")
				if name != loggerName || !set(l) {
					text(w, http.StatusNotFound, "error: unknown logger name or level in "+p+"\n"+usage)
					return
				}
			}
			continue
		default:
			text(w, http.StatusNotFound, "error: unknown logger name "+key+"\n"+usage)
			return
		}
		if !set(value) {
			text(w, http.StatusNotFound, "error: unknown level "+value+"\n"+usage)
			return
		}
	}
	text(w, http.StatusOK, "active loggers:\n  "+loggerName+": "+levelName(lv.Level())+"\n")
}
