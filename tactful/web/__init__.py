"""Pages people see: the customer's unsubscribe page now; the dashboard and preference centre."""
