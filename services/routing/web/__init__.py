"""The member workspace: server-rendered pages for members and leaders, on a phone, without
JavaScript, Vietnamese first, on the shared web kit (`shared.webkit`)."""
