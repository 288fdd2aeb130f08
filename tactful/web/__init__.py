"""Pages people see: the operations dashboard (`dashboard`, under /ui), the customer's
preference centre (`preferences`, under /p/{token}) and the unsubscribe page; the views
they show (`overview`, `timeline`, `whatif`), sessions and CSRF (`session`), and charts."""
