package dashboardapi

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed ui
var uiFiles embed.FS

// contentSecurityPolicy allows the page only its own script, style and
// API: no inline script, no other origin. Event text is put in the page as
// text, and this policy is a second wall should that ever slip.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

func (s *Server) uiRoutes(m *http.ServeMux) {
	sub, err := fs.Sub(uiFiles, "ui")
	if err != nil {
		panic(err) // the embedded directory is there at build time
	}
	files := http.FileServerFS(sub)
	secure := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			secureHeaders(w.Header(), contentSecurityPolicy)
			w.Header().Set("Cache-Control", "no-cache")
			h.ServeHTTP(w, r)
		})
	}
	// The page needs a person; its script and style hold no data, and the
	// sign-in page uses the style.
	m.Handle("GET /{$}", s.person(RoleViewer, secure(files)))
	m.Handle("GET /assets/", secure(files))
}
