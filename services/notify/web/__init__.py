"""notify's pages, on the shared web kit (`shared.webkit`): the leadership dashboard, a
petition's timeline with its delivery log, meeting digests as printable pages and, in
embedded mode, the demo mailbox. Every page but the demo mailbox needs a signed-in staff
member (routing's sign-in page sets the session cookie; without it the browser is sent there
and comes back) and shows only what that person may see (`access.py`)."""
