"""Server-rendered pages for residents: the submission form and the tracking page, on the
shared web kit (`shared.webkit`)."""
