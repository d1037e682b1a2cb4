package backend

import (
	"fmt"
	"html"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"
)

// serveBookinfo answers the paths of the Bookinfo service this backend
// plays, with bodies shaped like the real sample's
// (https://github.com/istio/istio/tree/master/samples/bookinfo/src), and
// reports false for any other path so the echo answers it instead.
//
// Unlike the real sample, productpage and reviews call nobody: every
// Waygate scenario tests the hop from the gateway to one service, and a
// backend that fanned out would blur which hop a fault or a timeout hit.
func (s *Server) serveBookinfo(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch s.opts.Service {
	case "productpage":
		return s.serveProductpage(w, r)
	case "details":
		if id, ok := strings.CutPrefix(p, "/details/"); ok {
			withProductID(w, id, func(n int) any { return details(n) })
			return true
		}
	case "ratings":
		if id, ok := strings.CutPrefix(p, "/ratings/"); ok {
			withProductID(w, id, func(n int) any { return ratings(n) })
			return true
		}
	case "reviews":
		if id, ok := strings.CutPrefix(p, "/reviews/"); ok {
			withProductID(w, id, func(n int) any { return reviews(n, s.opts.Version) })
			return true
		}
	}
	return false
}

// withProductID answers with the JSON made for a numeric product id, or
// with the real services' 400 for anything else.
func withProductID(w http.ResponseWriter, id string, body func(int) any) {
	n, err := strconv.Atoi(id)
	if err != nil || n < 0 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product ID"})
		return
	}
	writeJSON(w, http.StatusOK, body(n))
}

func details(id int) any {
	return map[string]any{
		"id": id, "author": "William Shakespeare", "year": 1595,
		"type": "paperback", "pages": 200, "publisher": "PublisherA",
		"language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890",
	}
}

func ratings(id int) any {
	return map[string]any{"id": id, "ratings": map[string]int{"Reviewer1": 5, "Reviewer2": 4}}
}

// Review is one review in a reviews response.
type Review struct {
	Reviewer string  `json:"reviewer"`
	Text     string  `json:"text"`
	Rating   *Rating `json:"rating,omitempty"`
}

// Rating is the star rating reviews v2 and v3 attach to a review.
type Rating struct {
	Stars int    `json:"stars"`
	Color string `json:"color"`
}

// Reviews is the body of /reviews/<id>. Version and Stars are not in the
// real sample: they let a test or a curl user see at a glance which
// version answered ("" for v1, "black" for v2, "red" for v3).
type Reviews struct {
	ID          string   `json:"id"`
	Version     string   `json:"version"`
	Stars       string   `json:"stars,omitempty"`
	Podname     string   `json:"podname"`
	Clustername string   `json:"clustername"`
	Reviews     []Review `json:"reviews"`
}

// starColor is how each reviews version shows ratings: v1 shows none.
func starColor(version string) string {
	switch version {
	case "v2":
		return "black"
	case "v3":
		return "red"
	}
	return ""
}

func reviews(id int, version string) Reviews {
	rv := Reviews{
		ID:          strconv.Itoa(id),
		Version:     version,
		Stars:       starColor(version),
		Podname:     "reviews-" + version,
		Clustername: "null",
		Reviews: []Review{
			{Reviewer: "Reviewer1", Text: "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},
			{Reviewer: "Reviewer2", Text: "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."},
		},
	}
	if rv.Stars != "" {
		rv.Reviews[0].Rating = &Rating{Stars: 5, Color: rv.Stars}
		rv.Reviews[1].Rating = &Rating{Stars: 4, Color: rv.Stars}
	}
	return rv
}

type product struct {
	ID              int    `json:"id"`
	Title           string `json:"title"`
	DescriptionHTML string `json:"descriptionHtml"`
}

var comedyOfErrors = product{
	ID:    0,
	Title: "The Comedy of Errors",
	DescriptionHTML: `<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: ` +
		`The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his most farcical comedies, ` +
		`with a major part of the humour coming from slapstick and mistaken identity, in addition to puns and word play.`,
}

// sessionCookie carries the signed-in user, as the real productpage's
// session does; the real one then forwards it as the end-user header.
const sessionCookie = "user"

func (s *Server) serveProductpage(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case p == "/productpage" || p == "/":
		s.writeProductpage(w, r)
	case strings.HasPrefix(p, "/static/"):
		w.Header().Set("Content-Type", staticType(p))
		fmt.Fprintf(w, "/* bookinfo static %s from productpage %s */\n", p, s.opts.Version)
	case p == "/login":
		user := r.PostFormValue("username")
		if user == "" {
			user = r.URL.Query().Get("username")
		}
		if user != "" {
			http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: user, Path: "/", HttpOnly: true})
		}
		http.Redirect(w, r, "/productpage", http.StatusFound)
	case p == "/logout":
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1})
		http.Redirect(w, r, "/productpage", http.StatusFound)
	case p == "/api/v1/products":
		writeJSON(w, http.StatusOK, []product{comedyOfErrors})
	case strings.HasPrefix(p, "/api/v1/products/"):
		id := strings.TrimPrefix(p, "/api/v1/products/")
		if id != "0" {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "product not found"})
			return true
		}
		writeJSON(w, http.StatusOK, comedyOfErrors)
	default:
		return false
	}
	return true
}

func (s *Server) writeProductpage(w http.ResponseWriter, r *http.Request) {
	user := r.Header.Get("end-user")
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		user = c.Value
	}
	signed := `<a href="/login">Sign in</a>`
	if user != "" {
		signed = `signed in as <b id="user">` + html.EscapeString(user) + `</b> <a href="/logout">Sign out</a>`
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	io.WriteString(w, `<!DOCTYPE html>
<html><head><title>Simple Bookstore App</title><link rel="stylesheet" href="/static/bootstrap/css/bootstrap.min.css"></head>
<body>
<p>`+signed+`</p>
<h1>`+html.EscapeString(comedyOfErrors.Title)+`</h1>
<p>`+comedyOfErrors.DescriptionHTML+`</p>
<p id="served-by">served by productpage `+html.EscapeString(s.opts.Version)+`</p>
</body></html>
`)
}

func staticType(p string) string {
	switch path.Ext(p) {
	case ".css":
		return "text/css; charset=utf-8"
	case ".js":
		return "text/javascript; charset=utf-8"
	}
	return "text/plain; charset=utf-8"
}
