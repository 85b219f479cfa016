"""pix-payouts, the client's command-line tool: submit batches (JSON or CSV), follow them, read reports."""
